"""Drift: a running container compared with its manifest, and with the kernel's view of it.

`config_drift` compares the spec `saferun run` would start for the manifest with the spec
docker recorded for the container; `runtime_drift` compares a spec with what /proc says
about the container's init process. Every difference is a Finding that names the rule
governing that control, so `verify` output reads like `check` output.

Pure: specs and ProcFacts in, findings out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from saferun.model.capabilities import DOCKER_DEFAULT_CAPS
from saferun.model.normalise import is_root_user
from saferun.model.process import SECCOMP_MODES, ProcFacts, cap_names
from saferun.policy.report import Finding
from saferun.policy.rules import RULES
from saferun.policy.severity import Severity
from saferun.policy.spec import ContainerSpec


@dataclass(frozen=True)
class Field:
    attribute: str
    rule: str
    label: str
    only_if_expected: bool = False  # None expected = daemon default: compare only when set


FIELDS: tuple[Field, ...] = (
    Field("image", "image-tag-latest", "image"),
    Field("user", "run-as-root", "user"),
    Field("privileged", "privileged", "privileged"),
    Field("read_only", "writable-root", "read-only root"),
    Field("memory", "memory-limit", "memory limit"),
    Field("nano_cpus", "cpu-limit", "CPU quota"),
    Field("pids_limit", "pids-limit", "PIDs limit"),
    Field("network", "host-network", "network"),
    Field("pid", "host-pid", "PID namespace"),
    Field("ipc", "host-ipc", "IPC namespace"),
    Field("uts", "host-uts", "UTS namespace"),
    Field("userns", "host-userns", "user namespace"),
    Field("cgroupns", "host-cgroupns", "cgroup namespace", only_if_expected=True),
    Field("devices", "device", "devices"),
    Field("device_cgroup_rules", "device", "device cgroup rules"),
    Field("gpus", "gpus", "GPUs"),
    Field("no_new_privileges", "no-new-privileges", "no-new-privileges"),
    Field("seccomp", "seccomp-unconfined", "seccomp"),
    Field("seccomp_sha256", "seccomp-unconfined", "seccomp profile (sha256)"),
    Field("systempaths_unconfined", "systempaths-unconfined", "systempaths"),
    Field("selinux_label", "label-disable", "SELinux label"),
    Field("restart_policy", "restart-always", "restart policy"),
    Field("restart_retries", "restart-retries", "restart retries"),
    Field("ulimits", "ulimit-override", "ulimits"),
    Field("cgroup_parent", "cgroup-parent", "cgroup parent"),
    Field("sysctls", "unsafe-sysctl", "sysctls"),
    Field("runtime", "runtime-changed", "runtime"),
)


def _severity(rule: str) -> Severity:
    """Drift is at least medium: what runs is not what was reviewed."""
    return max(RULES[rule].severity, Severity.MEDIUM)


def _drift(rule: str, message: str) -> Finding:
    return Finding(rule, _severity(rule), message, kind="drift")


def _show(value: object) -> str:
    if isinstance(value, tuple | frozenset):
        return "[" + ", ".join(sorted(str(v) for v in value)) + "]"
    return repr(value)


def config_drift(expected: ContainerSpec, actual: ContainerSpec) -> list[Finding]:
    """Every control whose recorded value differs from what the manifest plans."""
    found = []
    if actual.label_map.get("io.saferun.image-reference") == expected.image:
        # saferun run started a floating reference by its local image id (image-tag-latest)
        actual = replace(actual, image=expected.image)
    for item in FIELDS:
        want, have = getattr(expected, item.attribute), getattr(actual, item.attribute)
        if item.only_if_expected and want is None:
            continue
        if want != have:
            found.append(_drift(item.rule, f"{item.label}: manifest says {_show(want)}, "
                                           f"container has {_show(have)}"))
    found += _caps_drift(expected.effective_caps, actual.effective_caps, "container config")
    want_mounts = {(m.kind, m.source, m.target, m.read_only) for m in expected.mounts}
    have_mounts = {(m.kind, m.source, m.target, m.read_only) for m in actual.mounts}
    for kind, source, target, read_only in sorted(have_mounts - want_mounts):
        if kind == "volume" and not source and target not in {m.target for m in
                                                               expected.mounts}:
            continue  # docker's anonymous volume for an image VOLUME: no host path, as planned
        rw = "ro" if read_only else "rw"
        found.append(_drift("sensitive-host-mount",
                            f"mount not in the manifest: {kind} {source or '(anonymous)'} -> "
                            f"{target} ({rw})"))
    for kind, source, target, _ in sorted(want_mounts - have_mounts):
        found.append(_drift("sensitive-host-mount",
                            f"mount missing or changed: {kind} {source or '(anonymous)'} -> "
                            f"{target}"))
    if set(expected.ports) != set(actual.ports):
        found.append(_drift("port-host-ip", f"published ports: manifest says "
                            f"{_ports(expected)}, container has {_ports(actual)}"))
    if expected.healthcheck is True and actual.healthcheck is not True:
        found.append(_drift("health-check", "health check: the manifest sets one, the container "
                                            "has none"))
    if (expected.apparmor == "unconfined") != (actual.apparmor == "unconfined"):
        found.append(_drift("apparmor-unconfined", f"AppArmor: manifest says "
                            f"{expected.apparmor or 'default'}, container has "
                            f"{actual.apparmor or 'default'}"))
    return found


def _ports(spec: ContainerSpec) -> str:
    return "[" + ", ".join(f"{p.host_ip or '*'}:{p.host_port or ''}:{p.container_port}/"
                           f"{p.protocol}" for p in sorted(spec.ports, key=str)) + "]"


def _caps_drift(want: frozenset[str], have: frozenset[str], where: str) -> list[Finding]:
    added, removed = sorted(have - want), sorted(want - have)
    found = []
    if added:
        rule = "cap-not-allowed" if any(c not in DOCKER_DEFAULT_CAPS for c in added) \
            else "cap-drop-all"
        found.append(_drift(rule, f"capabilities ({where}): "
                                  + ", ".join(f"+{c[4:]}" for c in added)))
    if removed:
        found.append(_drift("cap-drop-all", f"capabilities ({where}): "
                                            + ", ".join(f"-{c[4:]}" for c in removed)))
    return found


def runtime_drift(spec: ContainerSpec, proc: ProcFacts) -> list[Finding]:
    """What the kernel enforces on the init process, against what `spec` promises."""
    found: list[Finding] = []

    def runtime(rule: str, message: str) -> None:
        found.append(Finding(rule, _severity(rule), f"{message} (/proc/{proc.pid})",
                             kind="runtime"))

    extra = sorted(cap_names(proc.cap_bnd) - spec.effective_caps)
    if extra:
        rule = "cap-not-allowed" if any(c not in DOCKER_DEFAULT_CAPS for c in extra) \
            else "cap-drop-all"
        runtime(rule, "CapBnd holds capabilities the spec does not grant: "
                + ", ".join(c[4:] for c in extra))
    if spec.no_new_privileges and not proc.no_new_privs:
        runtime("no-new-privileges", "NoNewPrivs is 0 although no-new-privileges was asked for")
    if spec.seccomp != "unconfined" and not spec.privileged and proc.seccomp != 2:
        mode = SECCOMP_MODES.get(proc.seccomp, str(proc.seccomp))
        runtime("seccomp-unconfined", f"Seccomp is {mode}, not filter")
    if spec.user and not is_root_user(spec.user) and proc.uids and proc.uids[0] == 0:
        runtime("run-as-root",
                f"the process runs as uid 0 although user {spec.user!r} was asked for")
    root = proc.mount("/")
    if spec.read_only and root is not None and not root.read_only:
        runtime("writable-root", "/ is mounted read-write although --read-only was asked for")
    for mount in spec.mounts:
        info = proc.mount(mount.target)
        if info is None:
            continue
        if mount.read_only and not info.read_only:
            runtime("sensitive-host-mount", f"{mount.target} is mounted read-write although "
                                            "read-only was asked for")
        if info.shared and mount.propagation not in ("shared", "rshared"):
            runtime("shared-propagation", f"{mount.target} has shared propagation")
    return found


def proof(proc: ProcFacts) -> str:
    """One line of what /proc shows, for the report's notes."""
    caps = sorted(c[4:] for c in cap_names(proc.cap_bnd))
    root = proc.mount("/")
    root_mode = "?" if root is None else ("ro" if root.read_only else "rw")
    return (f"/proc/{proc.pid}: CapEff={proc.cap_eff:#x} CapBnd={proc.cap_bnd:#x} "
            f"({', '.join(caps) or 'no capabilities'}), NoNewPrivs={int(proc.no_new_privs)}, "
            f"Seccomp={SECCOMP_MODES.get(proc.seccomp, proc.seccomp)}, uid "
            f"{proc.uids[0] if proc.uids else '?'} -> host uid {proc.host_uid}"
            f"{' (user namespace)' if proc.remapped else ''}, / {root_mode}")

