"""A Pod Security Standards "restricted" checker, control by control, for the export tests.

Written from the published standard (kubernetes/pod-security-admission policy/check_*.go,
summarised in shared/reference/cis-docker-defaults-pss.md §7): "restricted" is every
Baseline control plus its own. Each control returns the offending fields, so a test can
assert which control a bad spec breaks. `check(obj, minor)` accepts a Pod, or a workload
with a pod template (Deployment); `minor` is the Kubernetes minor version, for the
controls whose rules changed (1.35 relaxes the non-root checks under hostUsers: false).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Spec = dict[str, Any]

# Baseline "Capabilities": Docker's default set minus NET_RAW.
BASELINE_CAPS = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
                           "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID",
                           "SYS_CHROOT"})
RESTRICTED_VOLUME_TYPES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                     "persistentVolumeClaim", "projected", "secret", "image"})
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t",
                           "container_engine_t"})


def pod_spec(obj: Spec) -> tuple[Spec, Spec]:
    """(pod metadata, pod spec) of a Pod or of a workload's template."""
    if obj["kind"] == "Pod":
        return obj.get("metadata", {}), obj["spec"]
    template = obj["spec"]["template"]
    return template.get("metadata", {}), template["spec"]


def containers(spec: Spec) -> Iterator[tuple[str, Spec]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for index, container in enumerate(spec.get(field) or []):
            yield f"spec.{field}[{index}]", container


# --- Baseline -------------------------------------------------------------------------

def host_process(meta: Spec, spec: Spec, minor: int) -> list[str]:
    found = []
    contexts = [("spec", spec.get("securityContext") or {})]
    contexts += [(where, c.get("securityContext") or {}) for where, c in containers(spec)]
    for where, ctx in contexts:
        if (ctx.get("windowsOptions") or {}).get("hostProcess") is True:
            found.append(f"{where}.securityContext.windowsOptions.hostProcess")
    return found


def host_namespaces(meta: Spec, spec: Spec, minor: int) -> list[str]:
    return [f"spec.{f}" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f) is True]


def privileged(meta: Spec, spec: Spec, minor: int) -> list[str]:
    return [f"{w}.securityContext.privileged" for w, c in containers(spec)
            if (c.get("securityContext") or {}).get("privileged") is True]


def baseline_capabilities(meta: Spec, spec: Spec, minor: int) -> list[str]:
    found = []
    for where, c in containers(spec):
        added = ((c.get("securityContext") or {}).get("capabilities") or {}).get("add") or []
        found += [f"{where}.securityContext.capabilities.add: {cap}" for cap in added
                  if cap not in BASELINE_CAPS]
    return found


def host_path_volumes(meta: Spec, spec: Spec, minor: int) -> list[str]:
    return [f"spec.volumes[{i}].hostPath" for i, v in enumerate(spec.get("volumes") or [])
            if "hostPath" in v]


def host_ports(meta: Spec, spec: Spec, minor: int) -> list[str]:
    return [f"{w}.ports[{i}].hostPort" for w, c in containers(spec)
            for i, p in enumerate(c.get("ports") or []) if p.get("hostPort") not in (None, 0)]


def host_probes(meta: Spec, spec: Spec, minor: int) -> list[str]:
    found = []
    for where, c in containers(spec):
        probes = ("livenessProbe", "readinessProbe", "startupProbe")
        handlers = [(p, c.get(p) or {}) for p in probes]
        lifecycle = c.get("lifecycle") or {}
        handlers += [(f"lifecycle.{k}", lifecycle.get(k) or {}) for k in ("postStart", "preStop")]
        for name, handler in handlers:
            for kind in ("httpGet", "tcpSocket"):
                if (handler.get(kind) or {}).get("host"):
                    found.append(f"{where}.{name}.{kind}.host")
    return found


def apparmor(meta: Spec, spec: Spec, minor: int) -> list[str]:
    found = []
    for key, value in (meta.get("annotations") or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/"):
            if not (value in ("", "runtime/default") or value.startswith("localhost/")):
                found.append(f"metadata.annotations[{key}]={value}")
    contexts = [("spec", spec.get("securityContext") or {})]
    contexts += [(where, c.get("securityContext") or {}) for where, c in containers(spec)]
    for where, ctx in contexts:
        kind = (ctx.get("appArmorProfile") or {}).get("type")
        if kind not in (None, "RuntimeDefault", "Localhost"):
            found.append(f"{where}.securityContext.appArmorProfile.type={kind}")
    return found


def selinux(meta: Spec, spec: Spec, minor: int) -> list[str]:
    found = []
    contexts = [("spec", spec.get("securityContext") or {})]
    contexts += [(where, c.get("securityContext") or {}) for where, c in containers(spec)]
    for where, ctx in contexts:
        options = ctx.get("seLinuxOptions") or {}
        if options.get("type", "") not in SELINUX_TYPES:
            found.append(f"{where}.securityContext.seLinuxOptions.type")
        found += [f"{where}.securityContext.seLinuxOptions.{k}" for k in ("user", "role")
                  if options.get(k)]
    return found


def proc_mount(meta: Spec, spec: Spec, minor: int) -> list[str]:
    # Restricted (1.35+) no longer relaxes this under hostUsers: false; always checked here.
    return [f"{w}.securityContext.procMount" for w, c in containers(spec)
            if (c.get("securityContext") or {}).get("procMount") not in (None, "Default")]


def seccomp_baseline(meta: Spec, spec: Spec, minor: int) -> list[str]:
    found = []
    contexts = [("spec", spec.get("securityContext") or {})]
    contexts += [(where, c.get("securityContext") or {}) for where, c in containers(spec)]
    for where, ctx in contexts:
        kind = (ctx.get("seccompProfile") or {}).get("type")
        if kind not in (None, "RuntimeDefault", "Localhost"):
            found.append(f"{where}.securityContext.seccompProfile.type={kind}")
    return found


def sysctls(meta: Spec, spec: Spec, minor: int) -> list[str]:
    values = (spec.get("securityContext") or {}).get("sysctls") or []
    return [f"spec.securityContext.sysctls: {s['name']}" for s in values
            if s["name"] not in SAFE_SYSCTLS]


# --- Restricted -----------------------------------------------------------------------

def volume_types(meta: Spec, spec: Spec, minor: int) -> list[str]:
    found = []
    for index, volume in enumerate(spec.get("volumes") or []):
        kinds = [k for k in volume if k != "name"]
        found += [f"spec.volumes[{index}].{k}" for k in kinds if k not in RESTRICTED_VOLUME_TYPES]
    return found


def privilege_escalation(meta: Spec, spec: Spec, minor: int) -> list[str]:
    return [f"{w}.securityContext.allowPrivilegeEscalation" for w, c in containers(spec)
            if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False]


def _userns(spec: Spec, minor: int) -> bool:
    return minor >= 35 and spec.get("hostUsers") is False


def run_as_non_root(meta: Spec, spec: Spec, minor: int) -> list[str]:
    if _userns(spec, minor):
        return []
    pod = (spec.get("securityContext") or {}).get("runAsNonRoot")
    found = []
    if pod is False:
        found.append("spec.securityContext.runAsNonRoot=false")
    for where, c in containers(spec):
        value = (c.get("securityContext") or {}).get("runAsNonRoot")
        if value is False or (value is None and pod is not True):
            found.append(f"{where}.securityContext.runAsNonRoot")
    return found


def run_as_user(meta: Spec, spec: Spec, minor: int) -> list[str]:
    if _userns(spec, minor):
        return []
    found = []
    if (spec.get("securityContext") or {}).get("runAsUser") == 0:
        found.append("spec.securityContext.runAsUser=0")
    found += [f"{w}.securityContext.runAsUser=0" for w, c in containers(spec)
              if (c.get("securityContext") or {}).get("runAsUser") == 0]
    return found


def seccomp_restricted(meta: Spec, spec: Spec, minor: int) -> list[str]:
    pod = ((spec.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
    found = []
    for where, c in containers(spec):
        kind = ((c.get("securityContext") or {}).get("seccompProfile") or {}).get("type") or pod
        if kind not in ("RuntimeDefault", "Localhost"):
            found.append(f"{where}.securityContext.seccompProfile (effective: {kind})")
    return found


def restricted_capabilities(meta: Spec, spec: Spec, minor: int) -> list[str]:
    found = []
    for where, c in containers(spec):
        caps = (c.get("securityContext") or {}).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            found.append(f"{where}.securityContext.capabilities.drop lacks ALL")
        found += [f"{where}.securityContext.capabilities.add: {cap}"
                  for cap in caps.get("add") or [] if cap != "NET_BIND_SERVICE"]
    return found


Control = Callable[[Spec, Spec, int], list[str]]
BASELINE: dict[str, Control] = {
    "host-process": host_process, "host-namespaces": host_namespaces,
    "privileged": privileged, "capabilities-baseline": baseline_capabilities,
    "host-path-volumes": host_path_volumes, "host-ports": host_ports,
    "host-probes": host_probes, "apparmor": apparmor, "selinux": selinux,
    "proc-mount": proc_mount, "seccomp-baseline": seccomp_baseline, "sysctls": sysctls,
}
RESTRICTED: dict[str, Control] = {
    **BASELINE,
    "volume-types": volume_types, "privilege-escalation": privilege_escalation,
    "running-as-non-root": run_as_non_root, "running-as-non-root-user": run_as_user,
    "seccomp": seccomp_restricted, "capabilities-restricted": restricted_capabilities,
}


def check(obj: Spec, minor: int = 30) -> dict[str, list[str]]:
    """{control id: offending fields} for every restricted control `obj` fails."""
    meta, spec = pod_spec(obj)
    failures = {name: control(meta, spec, minor) for name, control in RESTRICTED.items()}
    return {name: found for name, found in failures.items() if found}
