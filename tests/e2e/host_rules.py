"""The host's firewall state, and which changes to it could be a stack's.

A stack must leave the host's `nft list ruleset` and `iptables-save` as it found them. The
engine is shared (other sessions start containers, networks and daemons meanwhile), so two
snapshots may differ for reasons that are not the stack's. The comparison is as strict as
that allows: every line that differs (counted, so a duplicate of a line that stays is seen)
must be *provably another's*, or it is reported. A line is another's when, at the time of
the snapshot that holds it, it names a network interface that exists and is not one of the
stack's bridges, or, naming none, holds an address routed through such an interface (a
container's address on docker0 or on another network). A line that names one of the
stack's bridges, an address routed through one, or nothing one can tell, is reported.

One kind of line names nothing and is still provably not a stack's: a dockerd's own
scaffolding, which it writes when it starts (other sessions start and stop their test
daemons on this host): its DOCKER* chains, their declarations and closing braces, and the
jumps into them from the built-in chains, naming no interface and no address but loopback.
A stack only adds a network and containers to a running daemon, and every rule docker
writes for those names the network's bridge or an address on it.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from collections import Counter
from dataclasses import dataclass

_INTERFACE = re.compile(r'(?:(?<!\S)-[io]|[io]ifname)(?: !=)? "?([A-Za-z0-9_.@-]+)"?')
_ADDRESS = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?:/(\d{1,2}))?(?![\d.])")


@dataclass(frozen=True)
class Snapshot:
    lines: Counter[str]
    interfaces: frozenset[str]
    routes: tuple[tuple[ipaddress.IPv4Network, str], ...]  # (destination, device)


def _ip_json(*args: str) -> list[dict[str, object]]:
    out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout
    return list(json.loads(out or "[]"))


def _links() -> tuple[set[str], list[tuple[ipaddress.IPv4Network, str]]]:
    interfaces = {str(link["ifname"]) for link in _ip_json("link", "show")}
    routes = [(ipaddress.IPv4Network(str(r["dst"]), strict=False), str(r["dev"]))
              for r in _ip_json("-4", "route", "show") if r.get("dst") != "default"]
    return interfaces, routes


def ruleset_lines() -> list[str]:
    """nft and iptables-save, without counters (traffic changes them) or comments."""
    nft = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True,
                         check=True).stdout
    ipt = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    text = re.sub(r"counter packets \d+ bytes \d+", "counter", nft + ipt)
    text = re.sub(r"\[\d+:\d+\]", "[]", text)
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def snapshot() -> Snapshot:
    """The ruleset, and the interfaces and routes seen just before and after reading it
    (so an interface that came or went meanwhile still explains its lines)."""
    interfaces, routes = _links()
    lines = Counter(ruleset_lines())
    later_interfaces, later_routes = _links()
    return Snapshot(lines, frozenset(interfaces | later_interfaces),
                    tuple(dict.fromkeys(routes + later_routes)))


_DAEMON_SCAFFOLDING = re.compile(
    r":DOCKER[\w-]* .*|chain DOCKER[\w-]* \{|\}|(?:-A DOCKER[\w-]* -j RETURN|counter return)"
    r"|.*(?:-j|jump|goto) DOCKER[\w-]*")


def _provably_others(line: str, snap: Snapshot, ours: frozenset[str]) -> bool:
    names = set(_INTERFACE.findall(line))
    if names & ours:
        return False
    addresses = [ipaddress.ip_address(m.group(1)) for m in _ADDRESS.finditer(line)
                 if all(int(part) < 256 for part in m.group(1).split("."))]
    if not names and all(a.is_loopback for a in addresses) and _DAEMON_SCAFFOLDING.fullmatch(
            line):
        return True
    devices = {dev for address in addresses for network, dev in snap.routes
               if address in network}
    if devices & ours:
        return False
    return bool(names & snap.interfaces) or bool(devices & snap.interfaces)


def leftovers(before: Snapshot, after: Snapshot, ours: frozenset[str]) -> list[str]:
    """Lines added or removed between the snapshots that are not provably another's.
    `ours`: the stack's bridge interfaces (br-<network id prefix>)."""
    added, removed = after.lines - before.lines, before.lines - after.lines
    return sorted([f"+ {line}" for line in added if not _provably_others(line, after, ours)]
                  + [f"- {line}" for line in removed
                     if not _provably_others(line, before, ours)])
