"""Who may reach a service and what it may reach: `[network] ingress` / `egress` entries.

An entry is a service name of the same stack or a CIDR, optionally with a port and a
protocol: `db`, `db:5432`, `10.20.0.0/16:443`, `dns:53/udp`. It is parsed here, once,
into typed values (an `ipaddress` network, an int port, a validated name); the firewall
rules are generated from those values only, never from the text the user wrote.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

import msgspec

SERVICE_PATTERN = r"[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?"
_SERVICE = rf"^{SERVICE_PATTERN}$"
# NAME-OR-CIDR[:PORT][/PROTO]; an IPv6 CIDR goes in brackets when a port follows.
_ENTRY = (
    r"^(?:\[(?P<v6>[0-9a-fA-F:.]+(?:/[0-9]{1,3})?)\]|(?P<target>[^:\[\]]+|[0-9a-fA-F:]+/[0-9]{1,3}))"
    r"(?::(?P<port>[0-9]{1,5}))?(?:/(?P<proto>tcp|udp))?$"
)
# Compiled on first use (re caches them): most starts declare no ingress or egress.

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Peer(msgspec.Struct, frozen=True):
    """One ingress or egress entry: a service of the stack or an address range."""

    service: str | None  # a service name of the same stack
    network: IpNetwork | None  # or an address range
    port: int | None = None  # None: every port
    protocol: Literal["tcp", "udp"] = "tcp"

    def __str__(self) -> str:
        where = self.service if self.service is not None else str(self.network)
        if self.port is None:
            return where
        if self.network is not None and self.network.version == 6:
            where = f"[{where}]"
        suffix = "" if self.protocol == "tcp" else "/udp"
        return f"{where}:{self.port}{suffix}"


def parse_peer(text: str) -> Peer:
    """Parse one entry; ValueError naming the entry when it is neither a service nor a CIDR."""
    match = re.match(_ENTRY, text.strip())
    if match is None:
        raise ValueError(f"'{text}' is not SERVICE[:PORT] or CIDR[:PORT] (e.g. db:5432, "
                         "10.20.0.0/16:443, dns:53/udp)")
    target = match.group("v6") or match.group("target")
    port = int(match.group("port")) if match.group("port") else None
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"'{text}': port {port} is outside 1-65535")
    protocol: Literal["tcp", "udp"] = "udp" if match.group("proto") == "udp" else "tcp"
    if match.group("proto") and port is None:
        raise ValueError(f"'{text}': a protocol needs a port (e.g. {target}:53/udp)")
    if re.match(_SERVICE, target) and not _looks_like_address(target):
        return Peer(service=target, network=None, port=port, protocol=protocol)
    try:
        network = ipaddress.ip_network(target, strict=True)
    except ValueError as exc:
        raise ValueError(f"'{text}': {target} is neither a service name (lower case letters, "
                         f"digits, - and _) nor a CIDR ({exc})") from None
    return Peer(service=None, network=network, port=port, protocol=protocol)


def _looks_like_address(target: str) -> bool:
    return bool(re.match(r"^[0-9.]+$", target))


def parse_peers(entries: list[str]) -> tuple[Peer, ...]:
    return tuple(parse_peer(entry) for entry in entries)


def check_service_name(name: str, key: str) -> str:
    """A stack service name: it becomes a DNS alias, a container name part and a label."""
    if not re.fullmatch(_SERVICE, name):  # whole: `$` alone also matches before a final "\n"
        raise ValueError(f"{key} {name!r} is not a service name (lower case letters, digits, "
                         "- and _, at most 63, starting and ending with a letter or digit)")
    return name


def peers_of(value: list[str] | str | None) -> tuple[Peer, ...] | None:
    """A manifest's ingress or egress value: None open (docker's default), () nothing."""
    if value is None:
        return None
    return () if isinstance(value, str) else parse_peers(value)
