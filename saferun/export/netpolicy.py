"""[network] ingress/egress -> one Kubernetes NetworkPolicy per app (pure).

Every exported pod gets a policy that selects it alone and lists both directions, so the
default is deny: a service name becomes a podSelector on that app's name label (the apps of
one export are one stack, in one namespace), a CIDR an ipBlock, a port a port rule. Egress
that names services also gets DNS (UDP and TCP 53 to the cluster's kube-dns), as `saferun
up` keeps the stack's resolver reachable. A direction left unset is allowed in full (`[{}]`),
as docker allows it. An app with no rule at all gets a policy too, open both ways: the
same traffic as no policy, but written down where a reviewer (or checkov's CKV2_K8S_6)
looks for it, and a place to tighten.
"""

from __future__ import annotations

from typing import Any

from saferun.export.common import Prepared, Unsupported
from saferun.model.netpolicy import Peer
from saferun.model.netpolicy import peers_of as _peers

NAME_LABEL = "app.kubernetes.io/name"  # as saferun.export.kubernetes labels its pods
_DNS = {"to": [{"namespaceSelector": {},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}


def network_policies(apps: list[Prepared], names: dict[str, str],
                     notes: list[Unsupported]) -> list[dict[str, Any]]:
    """A NetworkPolicy for each app; `names` maps app names to their Kubernetes names. An
    app without rules keeps Kubernetes' (and docker's) open default, said explicitly:
    `saferun check` reports it (ingress-unrestricted, egress-unrestricted)."""
    return [_policy(app, names, notes) for app in apps]


def _policy(app: Prepared, names: dict[str, str], notes: list[Unsupported]) -> dict[str, Any]:
    name = names[app.name]
    network = app.manifest.network
    ingress, egress = _peers(network.ingress), _peers(network.egress)
    spec: dict[str, Any] = {"podSelector": {"matchLabels": {NAME_LABEL: name}},
                            "policyTypes": ["Ingress", "Egress"]}
    if ingress is None:
        spec["ingress"] = [{}]
    else:
        published = [{"protocol": p.protocol.upper(), "port": p.container}
                     for p in network.ports]
        spec["ingress"] = [_rule("from", peer, app, names, notes) for peer in ingress]
        if published:
            # Published ports are open to every client under `saferun up`; here, to the
            # cluster's Services and ingress controllers.
            spec["ingress"].append({"ports": published})
    if egress is None:
        spec["egress"] = [{}]
    else:
        spec["egress"] = [_rule("to", peer, app, names, notes) for peer in egress]
        if any(peer.service is not None for peer in egress):
            spec["egress"].append(_DNS)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"{name}-network",
                         "labels": {NAME_LABEL: name, "app.kubernetes.io/managed-by": "saferun"}},
            "spec": spec}


def _rule(direction: str, peer: Peer, app: Prepared, names: dict[str, str],
          notes: list[Unsupported]) -> dict[str, Any]:
    if peer.service is not None:
        if peer.service not in names:
            notes.append(Unsupported(app.name, "network", (
                f"'{peer}' names '{peer.service}', which is not among the exported apps: the "
                "policy selects pods named so in the same namespace")))
        target: dict[str, Any] = {"podSelector": {"matchLabels": {
            NAME_LABEL: names.get(peer.service, peer.service)}}}
    else:
        assert peer.network is not None
        target = {"ipBlock": {"cidr": peer.network.compressed}}
    rule: dict[str, Any] = {direction: [target]}
    if peer.port is not None:
        rule["ports"] = [{"protocol": peer.protocol.upper(), "port": peer.port}]
    return rule
