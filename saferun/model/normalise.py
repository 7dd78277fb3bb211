"""Values judged the way the kernel and docker read them, not as they are spelled.

`-u 00` and `-u 0000:0` are uid 0; `[::0]`, `0:0:0:0:0:0:0:0` and `::ffff:0.0.0.0` bind
every address. Every rule that asks "is this root?" or "is this every interface?" asks
here, so no spelling slips past one command and not another.
"""

from __future__ import annotations

import ipaddress
import re


def is_root_user(user: str | None) -> bool:
    """The user part of `user[:group]` names root: `root`, or a number equal to 0."""
    if not user:
        return False
    name = user.split(":")[0].strip()
    return name == "root" or (name.isascii() and name.isdigit() and int(name) == 0)


def is_all_addresses(host_ip: str) -> bool:
    """A publish address that listens on every interface: empty (docker's default), the
    unspecified IPv4 or IPv6 address in any spelling, or its IPv4-mapped form."""
    text = host_ip.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text:
        return True
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_unspecified
    return address.is_unspecified


_ANONYMOUS_VOLUME = re.compile(r"[0-9a-f]{64}")


def is_anonymous_volume(name: str) -> bool:
    """A volume nobody named (`-v /data`, an image's VOLUME): docker names it with a random
    64-hex id."""
    return _ANONYMOUS_VOLUME.fullmatch(name) is not None
