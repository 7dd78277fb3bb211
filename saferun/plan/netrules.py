"""The nftables ruleset that enforces one service's ingress and egress (pure).

The rules go into the service's own network namespace (held by its sandbox container, see
docs/networks.md), so they name no interface of the host and die with the namespace. The
text is built from typed values only: `ipaddress` objects, int ports and the two protocol
names; nothing the user wrote is pasted in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from saferun.model.netpolicy import IpNetwork, Peer

TABLE = "saferun"  # `table inet saferun` in the service's namespace

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class ServiceRules:
    """What one service's rules are made of: its entries and the stack's addresses."""

    ingress: tuple[Peer, ...] | None  # None: open (docker's default)
    egress: tuple[Peer, ...] | None  # None: open; (): nothing ("none")
    published: tuple[tuple[int, str], ...] = ()  # (container port, protocol) published on the host

    @property
    def restricted(self) -> bool:
        return self.ingress is not None or self.egress is not None


class UnknownService(ValueError):
    """An entry names a service the stack does not have."""


def _networks(peer: Peer, addresses: Mapping[str, tuple[IpAddress, ...]]) -> list[IpNetwork]:
    if peer.network is not None:
        return [peer.network]
    assert peer.service is not None
    if peer.service not in addresses:
        raise UnknownService(f"'{peer}' names service '{peer.service}', which is not in the "
                             f"stack (services: {', '.join(sorted(addresses)) or 'none'})")
    return [ipaddress.ip_network(address) for address in addresses[peer.service]]


def _match(direction: str, network: IpNetwork, peer: Peer) -> str:
    family = "ip" if network.version == 4 else "ip6"
    words = [f"{family} {direction} {network.compressed}"]
    if peer.port is not None:
        words.append(f"{peer.protocol} dport {int(peer.port)}")
    return " ".join(words)


def _chain(name: str, hook: str, peers: tuple[Peer, ...], direction: str,
           addresses: Mapping[str, tuple[IpAddress, ...]], extra: list[str],
           final: list[str]) -> list[str]:
    loopback = "oif" if hook == "output" else "iif"
    lines = [f"  chain {name} {{",
             f"    type filter hook {hook} priority filter; policy drop;",
             # Loopback carries docker's embedded DNS (127.0.0.11, DNATed to a random port
             # in this namespace) and the app's own health checks.
             f'    {loopback} "lo" accept',
             "    ct state established,related accept",
             "    ct state invalid drop"]
    lines += [f"    {rule}" for rule in extra]
    for peer in peers:
        for network in _networks(peer, addresses):
            lines.append(f"    {_match(direction, network, peer)} accept")
    lines += [f"    {rule}" for rule in final]
    lines.append("  }")
    return lines


def render_ruleset(rules: ServiceRules, addresses: Mapping[str, tuple[IpAddress, ...]]) -> str:
    """`nft -f` input for one service's namespace; "" when it declares no rule.

    `addresses` maps every service of the stack to its addresses on the stack network.
    UnknownService when an entry names a service that is not there.
    """
    if not rules.restricted:
        return ""
    lines = [f"table inet {TABLE} {{"]
    if rules.ingress is not None:
        published = [f"{protocol} dport {int(port)} accept" for port, protocol in rules.published
                     if protocol in ("tcp", "udp")]
        lines += _chain("ingress", "input", rules.ingress, "saddr", addresses, published, [])
    if rules.egress is not None:
        # Refuse at once rather than let the app wait for a timeout.
        final = ["meta l4proto tcp reject with tcp reset",
                 "reject with icmpx type admin-prohibited"]
        lines += _chain("egress", "output", rules.egress, "daddr", addresses, [], final)
    lines.append("}")
    return "\n".join(lines) + "\n"
