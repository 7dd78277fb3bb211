"""`docker run` for a stack service's sandbox: the container that holds its network namespace.

Like a Kubernetes pod sandbox, it owns the service's place on the stack network (address,
DNS alias, published ports) and the firewall rules loaded into its namespace; the service's
own container joins it (`--network container:SANDBOX`) without NET_ADMIN, so it can neither
see nor change the rules. The sandbox itself runs `sleep` with nothing: no capability, a
read-only root, no new privileges, nobody's uid, a few pids and little memory.
"""

from __future__ import annotations

from typing import Any

from saferun.model.stack import (
    ROLE_LABEL,
    SERVICE_LABEL,
    STACK_LABEL,
    network_name,
    sandbox_name,
)

SLEEP_SECONDS = "2147483647"  # busybox's sleep has no "infinity"


def sandbox_argv(*, stack: str, service: str, image: str, network: Any,
                 hostname: str | None, labels: dict[str, str]) -> list[str]:
    """The sandbox's `docker create` argv (`up` starts it once the service is created too).
    `network` is the service manifest's validated NetworkSection: its endpoint settings
    (aliases, ports, DNS, hosts) belong to the namespace, hence here."""
    argv = ["docker", "create", "--name", sandbox_name(stack, service),
            "--network", network_name(stack), "--network-alias", service,
            "--hostname", hostname or service,
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--read-only",
            "--user", "65534:65534", "--memory", "16m", "--pids-limit", "4",
            "--restart", "no", "--log-driver", "none", "--no-healthcheck",
            "--label", f"{STACK_LABEL}={stack}", "--label", f"{ROLE_LABEL}=sandbox",
            "--label", f"{SERVICE_LABEL}={service}"]
    for key, value in sorted(labels.items()):
        argv += ["--label", f"{key}={value}"]
    repeated = (("--ip", [network.ip] if network.ip else []),
                ("--ip6", [network.ip6] if network.ip6 else []),
                ("--network-alias", network.aliases), ("--expose", network.expose),
                ("--add-host", network.extra_hosts), ("--dns", network.dns),
                ("--dns-search", network.dns_search), ("--dns-option", network.dns_options))
    for flag, values in repeated:
        for value in values:
            argv += [flag, value]
    if network.publish_all:
        argv.append("--publish-all")
    for port in network.ports:
        host_ip = port.host_ip if ":" not in port.host_ip else f"[{port.host_ip}]"
        argv += ["--publish",
                 f"{host_ip}:{port.host or ''}:{port.container}/{port.protocol}"]
    argv += ["--entrypoint", "sleep", image, SLEEP_SECONDS]
    return argv


def service_network(network: Any, sandbox: str) -> Any:
    """The service's own NetworkSection: it joins the sandbox's namespace and gives the
    sandbox everything that belongs to an endpoint (docker refuses those with container:)."""
    return network.model_copy(update={
        "mode": f"container:{sandbox}", "ports": [], "publish_all": False, "expose": [],
        "aliases": [], "extra_hosts": [], "dns": [], "dns_search": [], "dns_options": [],
        "ip": None, "ip6": None, "mac_address": None, "link_local_ips": [], "links": [],
        "driver_opts": {}, "extra_networks": []})
