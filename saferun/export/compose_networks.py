"""[network] ingress/egress -> Compose networks (pure): what Compose can say of them.

Compose has no firewall rule; it has networks, and services that share one can talk. So:
each app with ingress rules gets an internal network `to-APP` holding it and the services
its ingress names; apps that need a way out (no egress rule, a CIDR in egress, a published
port, or an open ingress) are on `default`, which is not internal; an app with neither
gets `network_mode: none`. Ports, CIDRs and the direction of a rule cannot be said in
networks: a note says they are enforced only by `saferun up`.
"""

from __future__ import annotations

from typing import Any

from saferun.export.common import Prepared, Unsupported
from saferun.model.netpolicy import peers_of as _peers


def add_networks(apps: list[Prepared], services: dict[str, Any], document: dict[str, Any],
                 notes: list[Unsupported]) -> None:
    """Put the apps of one stack on networks that follow their rules (in place). Nothing
    changes when no app declares rules, or for an app on a network of its own choosing."""
    stack = [a for a in apps if a.plan.network == "bridge"]
    if not any(a.manifest.network.restricted for a in stack):
        return
    names = {a.name for a in stack}
    member: dict[str, set[str]] = {a.name: set() for a in stack}
    networks: dict[str, Any] = {}
    for app in stack:
        ingress = _peers(app.manifest.network.ingress)
        egress = _peers(app.manifest.network.egress)
        if ingress is not None:
            network = f"to-{app.name}"
            networks[network] = {"internal": True}
            member[app.name].add(network)
            for peer in ingress:
                if peer.service in names:
                    member[peer.service].add(network)
        outside = (egress is None or any(p.network is not None for p in egress)
                   or ingress is None or bool(app.plan.ports) or app.plan.publish_all)
        if outside:
            member[app.name].add("default")
        if app.manifest.network.restricted:
            notes.append(Unsupported(app.name, "network", (
                "Compose networks let services that share one talk both ways on every port; "
                "the rules' ports, CIDRs and direction are enforced only by `saferun up`")))
    for app in stack:
        egress = _peers(app.manifest.network.egress) or ()
        for peer in egress:  # to reach an app that is open, be where it is
            if peer.service in names and _peers(_ingress_of(stack, peer.service)) is None:
                member[app.name].add("default")
    if any("default" in m for m in member.values()):
        networks["default"] = {}
    for app in stack:
        if member[app.name]:
            services[app.name]["networks"] = sorted(member[app.name])
        else:
            services[app.name]["network_mode"] = "none"
    document["networks"] = {**dict(sorted(networks.items())), **document.get("networks", {})}


def _ingress_of(stack: list[Prepared], name: str) -> list[str] | str | None:
    return next(a.manifest.network.ingress for a in stack if a.name == name)
