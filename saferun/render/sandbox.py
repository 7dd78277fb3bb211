"""A stack service's sandbox: the container that holds its network namespace.

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
from saferun.model.strict import updated
from saferun.plan.planner import EndpointPlan, HealthcheckPlan, PortPlan, RunPlan

SLEEP_SECONDS = "2147483647"  # busybox's sleep has no "infinity"
MEMORY = 16 << 20


def sandbox_plan(*, stack: str, service: str, image: str, network: Any,
                 hostname: str | None, labels: dict[str, str]) -> RunPlan:
    """The sandbox as a RunPlan, so the one argv renderer (`docker create`, through the CLI)
    and the one API body renderer (over the local socket) both serve it. `network` is the
    service manifest's validated NetworkSection: its endpoint settings (aliases, ports, DNS,
    hosts) belong to the namespace, hence here."""
    endpoint = (EndpointPlan(network_name(stack), ip=network.ip, ip6=network.ip6)
                if network.ip or network.ip6 else None)
    all_labels = {STACK_LABEL: stack, ROLE_LABEL: "sandbox", SERVICE_LABEL: service, **labels}
    return RunPlan(
        image=image, container_name=sandbox_name(stack, service), entrypoint=("sleep",),
        command=(SLEEP_SECONDS,), user="65534:65534", workdir=None,
        hostname=hostname or service, env=(), env_files=(),
        labels=tuple(sorted(all_labels.items())), cap_add=(), read_only=True, tmpfs=(),
        mounts=(), memory=MEMORY, memory_swap=MEMORY, nano_cpus=0, pids_limit=4, ulimits=(),
        network=network_name(stack),
        ports=tuple(PortPlan(p.host_ip, p.host, p.container, p.protocol)
                    for p in network.ports),
        restart_policy="no", restart_retries=0,
        healthcheck=HealthcheckPlan(shell_command=None, disable=True), log_driver="none",
        log_options=(), security_opts=("no-new-privileges",), seccomp_profile=None,
        apparmor_profile=None, runtime="runc", init=False, pull="missing", detach=False,
        remove=False, interactive=False, tty=False, endpoint=endpoint,
        network_aliases=(service, *network.aliases), expose=tuple(network.expose),
        extra_hosts=tuple(network.extra_hosts), dns=tuple(network.dns),
        dns_search=tuple(network.dns_search), dns_options=tuple(network.dns_options),
        publish_all=network.publish_all)


def sandbox_argv(plan: RunPlan) -> list[str]:
    """The sandbox's `docker create` line (`up` starts it once the service is created too)."""
    from saferun.render.argv import render_argv

    argv = render_argv(plan)
    argv[1] = "create"
    return argv


def service_network(network: Any, sandbox: str) -> Any:
    """The service's own NetworkSection: it joins the sandbox's namespace and gives the
    sandbox everything that belongs to an endpoint (docker refuses those with container:)."""
    return updated(network, **{
        "mode": f"container:{sandbox}", "ports": [], "publish_all": False, "expose": [],
        "aliases": [], "extra_hosts": [], "dns": [], "dns_search": [], "dns_options": [],
        "ip": None, "ip6": None, "mac_address": None, "link_local_ips": [], "links": [],
        "driver_opts": {}, "extra_networks": []})
