"""Policy rules as data: one table of frozen rules, each a pure check over a ContainerSpec.

A rule's id is stable kebab-case and means one thing across the product: it is the
suppression key (`[policy] ignore`), the docs anchor (docs/policy.md#ID), the SARIF ruleId
and, where the same request is refused by `saferun run`, the id of the refusal rule in
saferun.model.refusals (whose title, rationale and fix are reused here, so they are written
once). References name the CIS Docker Benchmark section with the benchmark's version,
because the numbering moves between versions.

Checks are built from a few factories (`flag_is_false`, `cap_absent`, `limit_set`,
`namespace_not_host`, ...) and return one `Hit` per offending item; an empty list passes.
No check reads a file or asks the engine: host paths arrive already resolved.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

import msgspec

from saferun.model.capabilities import DOCKER_DEFAULT_CAPS
from saferun.model.normalise import is_all_addresses, is_root_user
from saferun.model.refusals import RULES as REFUSALS
from saferun.model.refusals import SOCKET_NAMES, WARNINGS, host_path_rule, image_tag_problem
from saferun.policy.digest import check_image_policy, image_parts
from saferun.policy.severity import Severity
from saferun.policy.spec import ContainerSpec

CIS_VERSION = "v1.6.0"
CIS_NAME = f"CIS Docker Benchmark {CIS_VERSION}"


class Policy(msgspec.Struct, frozen=True):
    """Per-input policy settings (a manifest's [policy] table)."""

    digest: str = "recommend"  # recommend | require


class Hit(msgspec.Struct, frozen=True):
    """One offending item found by a check."""

    detail: str
    unconfined: bool = False  # on its own, makes the container root-equivalent on the host
    severity: Severity | None = None  # overrides the rule's severity (e.g. policy-required)


Check = Callable[[ContainerSpec, Policy], list[Hit]]


class Rule(msgspec.Struct, frozen=True):
    id: str
    title: str
    severity: Severity
    weight: int  # share of the exposure score, like systemd-analyze security's weights
    cis: tuple[str, ...]  # CIS Docker Benchmark sections (CIS_VERSION numbering)
    rationale: str
    fix: str
    check: Check | None  # None: reported by `saferun verify` only (drift)
    refusal: bool = False  # also refused by `saferun run` unless [allow]ed
    doc: str = "docs/policy.md"  # the page that documents it (image rules: docs/images.md)

    @property
    def references(self) -> tuple[str, ...]:
        return tuple(f"{CIS_NAME} {section}" for section in self.cis)

    @property
    def anchor(self) -> str:
        return f"{self.doc}#{self.id}"


# --- check factories ---------------------------------------------------------------------

def flag_is_false(attribute: str, detail: str, *, unconfined: bool = False) -> Check:
    """Fails when a boolean fact is true (e.g. privileged)."""
    def check(spec: ContainerSpec, policy: Policy) -> list[Hit]:
        return [Hit(detail, unconfined)] if getattr(spec, attribute) else []
    return check


def flag_is_true(attribute: str, detail: str) -> Check:
    """Fails when a protective boolean is off (e.g. read-only root)."""
    def check(spec: ContainerSpec, policy: Policy) -> list[Hit]:
        return [] if getattr(spec, attribute) else [Hit(detail)]
    return check


def value_is_not(attribute: str, bad: frozenset[str], detail: str) -> Check:
    """Fails when a fact takes one of the bad values (e.g. seccomp = unconfined)."""
    def check(spec: ContainerSpec, policy: Policy) -> list[Hit]:
        value = getattr(spec, attribute)
        return [Hit(detail.format(value=value))] if value in bad else []
    return check


def namespace_not_host(attribute: str, flag: str) -> Check:
    return value_is_not(attribute, frozenset({"host"}), f"{flag} host")


def limit_set(*attributes: str, detail: str) -> Check:
    """Fails when none of the limits is set (0 or -1 means unlimited)."""
    def check(spec: ContainerSpec, policy: Policy) -> list[Hit]:
        return [] if any(getattr(spec, a) > 0 for a in attributes) else [Hit(detail)]
    return check


def cap_absent(caps: frozenset[str] | None, detail: str, *,
               escape: frozenset[str] = frozenset()) -> Check:
    """Fails for each explicitly added capability in `caps` (None: outside Docker's default).

    Capabilities in `escape` have known container escapes on their own (mount/cgroup
    release_agent with SYS_ADMIN, kernel modules, open_by_handle_at): such a hit unconfines.
    """
    def check(spec: ContainerSpec, policy: Policy) -> list[Hit]:
        added = sorted(spec.cap_add - {"ALL"})
        bad = [c for c in added
               if (c in caps if caps is not None else c not in DOCKER_DEFAULT_CAPS)]
        return [Hit(detail.format(cap=c[4:]), c in escape) for c in bad]
    return check


# Capabilities with a published escape on their own (docker-bench's community checks C.5.3
# list these with SYS_PTRACE, which needs a host process in reach to escape).
ESCAPE_CAPS = frozenset({"CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_DAC_READ_SEARCH"})


def mount_not_under(rule_id: str) -> Check:
    """Fails for each bind mount whose (resolved) source breaks the refusal rule `rule_id`."""
    def check(spec: ContainerSpec, policy: Policy) -> list[Hit]:
        hits = []
        for mount in spec.mounts:
            if mount.kind != "bind":
                continue
            found = host_path_rule(mount.source, mount.read_only)
            if rule_id == "docker-socket-mount" and found != rule_id:
                found = rule_id if _exposes_socket(mount.source) else None
            if found == rule_id:
                rw = "read-only" if mount.read_only else "read-write"
                hits.append(Hit(f"{_shown_source(mount.source, mount.written_source)} -> "
                                f"{mount.target} ({rw})",
                                unconfined=rule_id == "docker-socket-mount" or
                                (not mount.read_only and _root_like(mount.source))))
        return hits
    return check


def _shown_source(source: str, written: str | None) -> str:
    return f"{written!r} (resolves to {source!r})" if written else repr(source)


def _exposes_socket(path: str) -> bool:
    """The path is an engine API socket or a directory that holds the Docker socket."""
    norm = posixpath.normpath(path)
    if posixpath.basename(norm) in SOCKET_NAMES:
        return True
    return any(sock == norm or sock.startswith(norm.rstrip("/") + "/")
               for sock in ("/run/docker.sock", "/var/run/docker.sock",
                            "/run/containerd/containerd.sock"))


def _root_like(path: str) -> bool:
    """Writing here is writing the host's root-owned configuration or binaries."""
    norm = posixpath.normpath(path)
    return norm in ("/", "/etc", "/usr", "/boot", "/root", "/lib", "/bin", "/sbin", "/var",
                    "/var/lib", "/var/lib/docker", "/proc", "/sys", "/dev")


# --- checks that need more than a factory -----------------------------------------------

def _cap_add_all(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    return [Hit("--cap-add ALL", unconfined=True)] if "ALL" in spec.cap_add else []


def _cap_drop_all(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    if spec.privileged or "ALL" in spec.cap_drop:
        return []
    kept = sorted(DOCKER_DEFAULT_CAPS - spec.cap_drop - spec.cap_add)
    if not kept:
        return []
    return [Hit(f"--cap-drop ALL missing: docker's default capabilities stay "
                f"({', '.join(c[4:] for c in kept)})")]


def _user(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    user = spec.user
    if not user:
        return [Hit("no user given: the image's default user applies, root unless the image "
                    "sets USER")]
    if is_root_user(user):
        return [Hit(f"user {user!r} is root")]
    return []


def _ports_all_interfaces(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    hits = [Hit(f"port {p.container_port}/{p.protocol} is published on "
                f"{p.host_ip or 'every interface'}")
            for p in spec.ports if is_all_addresses(p.host_ip)]
    if spec.publish_all:
        hits.append(Hit("-P publishes every exposed port on every interface"))
    return hits


def _privileged_host_port(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    return [Hit(f"host port {p.host_port} (below 1024) maps to {p.container_port}/{p.protocol}")
            for p in spec.ports if p.host_port is not None and 0 < p.host_port < 1024]


def _restart_unbounded(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    if spec.restart_policy in ("always", "unless-stopped"):
        return [Hit(f"restart policy {spec.restart_policy!r} restarts forever")]
    if spec.restart_policy == "on-failure" and spec.restart_retries <= 0:
        return [Hit("on-failure without a maximum retries forever")]
    return []


def _restart_retries(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    if spec.restart_policy == "on-failure" and spec.restart_retries > 5:
        return [Hit(f"on-failure:{spec.restart_retries} retries more than 5 times")]
    return []


def _propagation(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    return [Hit(f"{m.target}: {m.propagation} propagation")
            for m in spec.mounts if m.propagation in ("shared", "rshared")]


def _devices(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    return [Hit(f"device {d}") for d in spec.devices] + \
        [Hit(f"device cgroup rule {r!r}") for r in spec.device_cgroup_rules]


def _gpus(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    return [Hit(f"--gpus {spec.gpus}")] if spec.gpus else []


def _default_bridge(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    if spec.network in ("bridge", "default"):
        return [Hit("attached to docker's default bridge (docker0), shared by every container "
                    "started without --network")]
    return []


def _has_network(spec: ContainerSpec) -> bool:
    """Whether the app has a network of its own to restrict: host is host-network's matter;
    container:X shares X's, except a stack service, whose sandbox holds its rules."""
    if spec.network.startswith("container:"):
        return dict(spec.labels).get("io.saferun.stack-role") == "service"
    return spec.network not in ("none", "host")


def _egress(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    if spec.egress is None and _has_network(spec):
        return [Hit("the app may connect to any address (no [network] egress)")]
    return []


def _ingress(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    if spec.ingress is None and _has_network(spec):
        return [Hit("any container on its network may connect to the app (no [network] "
                    "ingress)")]
    return []


def _healthcheck(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    if spec.healthcheck is True:
        return []
    if spec.healthcheck is False:
        return [Hit("health checks are turned off (--no-healthcheck or HEALTHCHECK NONE)")]
    return [Hit("no health check is set here (the image may define one)")]


# Ulimits above these are treated as removing the limit (systemd's default for dockerd).
ULIMIT_CEILINGS = {"nofile": 1_048_576, "nproc": 65_536}


def _ulimits(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    hits = []
    for u in spec.ulimits:
        ceiling = ULIMIT_CEILINGS.get(u.name)
        if u.soft < 0 or u.hard < 0:
            hits.append(Hit(f"ulimit {u.name} is unlimited"))
        elif ceiling is not None and u.hard > ceiling:
            hits.append(Hit(f"ulimit {u.name} hard limit {u.hard} is above {ceiling}"))
    return hits


def _cgroup_parent(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    return [Hit(f"--cgroup-parent {spec.cgroup_parent}")] if spec.cgroup_parent else []


def _oom_protected(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    if spec.oom_score_adj < 0:
        return [Hit(f"--oom-score-adj {spec.oom_score_adj}: the host's processes die first")]
    return []


def _sysctls(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    from saferun.model.refusals import SAFE_SYSCTLS

    return [Hit(f"sysctl {k}={v}") for k, v in spec.sysctls if k not in SAFE_SYSCTLS]


__all__ = ["check_image_policy", "image_parts", "image_tag_problem"]  # re-exported: the
# checks live in saferun.policy.digest and saferun.model.refusals


def _image_tag(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    if spec.origin == "container" and re.fullmatch(r"sha256:[0-9a-f]{64}", spec.image):
        return []  # started by image id: pinned
    problem = image_tag_problem(spec.image)
    return [Hit(problem)] if problem else []


def _image_digest(spec: ContainerSpec, policy: Policy) -> list[Hit]:
    if image_parts(spec.image)[2] or re.fullmatch(r"sha256:[0-9a-f]{64}", spec.image):
        return []
    required = policy.digest == "require"
    return [Hit(f"image {spec.image!r} is not pinned by digest"
                + (" ([policy] digest = \"require\")" if required else ""),
                severity=Severity.HIGH if required else None)]


def _warning(rule_id: str, severity: Severity, weight: int, check: Check) -> Rule:
    """A policy rule that `saferun run` warns about (and a `[policy] refuse` refuses): texts
    come from saferun.model.refusals.WARNING_RULES."""
    warning = WARNINGS[rule_id]
    sections = (warning.cis.rsplit(" ", 1)[-1],) if warning.cis else ()
    return Rule(warning.id, warning.title, severity, weight, sections, warning.rationale,
                warning.fix, check)


def _refusal(rule_id: str, severity: Severity, weight: int, check: Check,
             cis: tuple[str, ...] | None = None) -> Rule:
    """A policy rule that is also a refusal of `saferun run`: texts come from that table."""
    refusal = REFUSALS[rule_id]
    sections = cis if cis is not None else \
        ((refusal.cis.rsplit(" ", 1)[-1],) if refusal.cis else ())
    return Rule(refusal.id, refusal.title, severity, weight, sections, refusal.rationale,
                refusal.fix, check, refusal=True)


S = Severity

RULES_TABLE: tuple[Rule, ...] = (
    _refusal("privileged", S.CRITICAL, 20,
             flag_is_false("privileged", "--privileged", unconfined=True)),
    _refusal("cap-add-all", S.CRITICAL, 10, _cap_add_all),
    _refusal("cap-not-allowed", S.HIGH, 25,
             cap_absent(None, "capability {cap} is added (outside docker's default set)",
                        escape=ESCAPE_CAPS)),
    Rule("cap-drop-all", "Default capabilities not dropped", S.MEDIUM, 30, ("5.4",),
         "Docker's 14 default capabilities (CHOWN, DAC_OVERRIDE, SETUID, NET_RAW...) are more "
         "than most apps need; each one is kernel attack surface an intruder inherits.",
         "drop every capability and add back the few the app needs: --cap-drop ALL "
         "--cap-add NET_BIND_SERVICE (a manifest does this by default)", _cap_drop_all),
    _refusal("sensitive-host-mount", S.HIGH, 25, mount_not_under("sensitive-host-mount")),
    _refusal("docker-socket-mount", S.CRITICAL, 20, mount_not_under("docker-socket-mount")),
    _refusal("host-network", S.HIGH, 20, namespace_not_host("network", "--network")),
    _refusal("host-pid", S.HIGH, 20, namespace_not_host("pid", "--pid")),
    _refusal("host-ipc", S.MEDIUM, 10, namespace_not_host("ipc", "--ipc")),
    _refusal("host-uts", S.LOW, 3, namespace_not_host("uts", "--uts")),
    _refusal("host-userns", S.MEDIUM, 10, namespace_not_host("userns", "--userns")),
    _refusal("host-cgroupns", S.LOW, 3, namespace_not_host("cgroupns", "--cgroupns")),
    _refusal("device", S.HIGH, 15, _devices),
    _refusal("gpus", S.MEDIUM, 5, _gpus),
    _refusal("seccomp-unconfined", S.HIGH, 30,
             value_is_not("seccomp", frozenset({"unconfined"}), "seccomp=unconfined")),
    _refusal("apparmor-unconfined", S.MEDIUM, 10,
             value_is_not("apparmor", frozenset({"unconfined"}), "apparmor=unconfined")),
    _refusal("label-disable", S.MEDIUM, 5,
             value_is_not("selinux_label", frozenset({"disable"}), "label=disable")),
    _refusal("systempaths-unconfined", S.HIGH, 15,
             flag_is_false("systempaths_unconfined", "systempaths=unconfined")),
    _refusal("unsafe-sysctl", S.MEDIUM, 8, _sysctls),
    _refusal("shared-propagation", S.HIGH, 10, _propagation),
    _refusal("oom-protected", S.MEDIUM, 5, _oom_protected),
    Rule("no-new-privileges", "Processes may gain privileges", S.HIGH, 35, ("5.26",),
         "Without no-new-privileges a setuid binary or file capability in the image raises "
         "a process's privileges inside the container.",
         "--security-opt no-new-privileges (saferun always sets it)",
         flag_is_true("no_new_privileges", "no-new-privileges is not set")),
    _refusal("run-as-root", S.HIGH, 40, _user, cis=("4.1",)),
    _refusal("writable-root", S.MEDIUM, 20,
             flag_is_true("read_only", "root filesystem is writable")),
    Rule("memory-limit", "No memory limit", S.MEDIUM, 15, ("5.11",),
         "A container without a memory limit can exhaust the host's memory and get other "
         "processes OOM-killed.", "set --memory (manifest: resources.memory; default 512m)",
         limit_set("memory", detail="no memory limit")),
    Rule("cpu-limit", "No CPU limit or priority", S.LOW, 8, ("5.12",),
         "Without a CPU quota or shares a busy container starves the host and its neighbours.",
         "set --cpus (manifest: resources.cpus; default 1.0)",
         limit_set("nano_cpus", "cpu_quota", "cpu_shares", detail="no CPU quota or shares")),
    Rule("pids-limit", "No PIDs limit", S.MEDIUM, 15, ("5.29",),
         "A fork bomb in a container without a PIDs limit exhausts the host's process table.",
         "set --pids-limit (manifest: resources.pids; default 256)",
         limit_set("pids_limit", detail="no PIDs limit")),
    _warning("port-host-ip", S.MEDIUM, 10, _ports_all_interfaces),
    Rule("privileged-host-port", "Privileged host port", S.LOW, 3, ("5.8",),
         "Host ports below 1024 are reserved for services root started; mapping one lets a "
         "container pose as such a service.", "publish on a host port of 1024 or above",
         _privileged_host_port),
    _warning("restart-always", S.LOW, 4, _restart_unbounded),
    _warning("restart-retries", S.LOW, 2, _restart_retries),
    Rule("default-bridge", "Default bridge network", S.LOW, 5, ("5.30",),
         "Every container on docker0 can reach every other by default (inter-container "
         "communication), and docker0 has no name resolution to scope access.",
         "create a user-defined network (docker network create app-net) and set "
         "network.mode = \"app-net\", or \"none\" when the app needs no network",
         _default_bridge),
    Rule("egress-unrestricted", "Unrestricted egress", S.LOW, 5, (),
         "An app that may connect anywhere can reach every other container on its network, "
         "the host's services and the internet: a compromise spreads and data leaves freely.",
         "list what the app may reach in [network] egress (e.g. [\"db:5432\"], or \"none\") "
         "and start it with `saferun up`, which enforces it in the kernel (docs/networks.md)",
         _egress),
    Rule("ingress-unrestricted", "No ingress rules", S.LOW, 4, (),
         "Without ingress rules every container on the app's network may connect to every "
         "port it listens on, not only the services that need it.",
         "list who may connect in [network] ingress (e.g. [\"web\"]; [] for published ports "
         "only) and start it with `saferun up` (docs/networks.md)",
         _ingress),
    Rule("health-check", "No health check", S.LOW, 3, ("5.27", "4.6"),
         "Without a health check a hung or hijacked service still looks 'running' to the "
         "engine and to orchestration.",
         "add a [healthcheck] command (docker: --health-cmd), or a HEALTHCHECK in the image",
         _healthcheck),
    _warning("ulimit-override", S.LOW, 3, _ulimits),
    _warning("cgroup-parent", S.MEDIUM, 5, _cgroup_parent),
    _warning("image-tag-latest", S.MEDIUM, 6, _image_tag),
    Rule("image-digest", "Image not pinned by digest", S.LOW, 3, ("4.2", "4.5"),
         "A tag can be moved to another image; only a digest names exactly the content that "
         "was reviewed. Recommended by default; `[policy] digest = \"require\"` makes it a "
         "high finding and a refusal of saferun run.",
         "run `saferun pin MANIFEST` to resolve the tag to its digest from the local engine",
         _image_digest),
    # Reported by `saferun verify` only: they compare a running container with its manifest.
    Rule("manifest-changed", "Manifest changed since launch", S.MEDIUM, 0, (),
         "The container runs what an earlier version of its manifest said; the committed "
         "manifest is not what is in force.",
         "restart the container with `saferun run` to apply the current manifest", None),
    Rule("runtime-changed", "Runtime differs from the manifest", S.HIGH, 0, (),
         "The manifest asked for a sandboxed runtime (gVisor, Kata) or runc, and the container "
         "runs under another: its kernel isolation is not what was reviewed.",
         "restart the container with `saferun run`", None),
    Rule("manifest-missing", "Manifest not found", S.MEDIUM, 0, (),
         "The container says saferun started it from a manifest that is no longer there, so "
         "nothing can be compared.", "restore the manifest, or restart from the current one",
         None),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in RULES_TABLE}
SPEC_RULES: tuple[Rule, ...] = tuple(r for r in RULES_TABLE if r.check is not None)


class RuleResult(msgspec.Struct, frozen=True):
    """A rule applied to one spec: no hits means it passed."""

    rule: Rule
    hits: tuple[Hit, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.hits

    @property
    def severity(self) -> Severity:
        return max((h.severity for h in self.hits if h.severity is not None),
                   default=self.rule.severity)


def evaluate(spec: ContainerSpec, policy: Policy | None = None) -> tuple[RuleResult, ...]:
    """Every spec rule applied to the spec, in table order."""
    policy = policy or Policy()
    results = []
    for rule in SPEC_RULES:
        assert rule.check is not None
        results.append(RuleResult(rule, tuple(rule.check(spec, policy))))
    return tuple(results)
