"""Manifests -> Kubernetes Pods or Deployments that pass Pod Security "restricted".

The same protections as `saferun run`, in Kubernetes' words: runAsNonRoot with the
manifest's uid/gid, allowPrivilegeEscalation false (no-new-privileges), capabilities drop
ALL plus the allowlist, readOnlyRootFilesystem, the generated seccomp profile as a
Localhost profile (RuntimeDefault for "docker-default"), AppArmor (the field from 1.30 on,
the annotation before), `hostUsers: false` when user namespaces are required, requests =
limits, memory-backed emptyDirs for tmpfs, probes from the health check, and a
RuntimeClass for gVisor or Kata. Profiles are files to place on the nodes; the notes say
how. Node-level settings (PID limit, ulimits, log rotation) and host bindings have no Pod
field: they are reported, never dropped silently.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from saferun.errors import ExportError
from saferun.export.common import (
    AppArmorKind,
    ExportFile,
    ExportResult,
    KubeKind,
    Prepared,
    SeccompKind,
    Unsupported,
    dropin,
    dump_yaml,
    notes_header,
    plan_notes,
    unexpressed,
)
from saferun.export.netpolicy import network_policies
from saferun.plan.planner import RunPlan

KUBERNETES_FILE = "kubernetes.yaml"
DEFAULT_KUBE_VERSION = "1.30"
MIN_KUBE_MINOR = 25  # hostUsers appears in 1.25; RuntimeClass v1 and seccompProfile are older
APPARMOR_FIELD_MINOR = 30  # securityContext.appArmorProfile is GA from 1.30
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
SECCOMP_DIR = "saferun"  # below the kubelet's seccomp root, /var/lib/kubelet/seccomp
KUBELET_SECCOMP_ROOT = "/var/lib/kubelet/seccomp"
NAME_LABEL = "app.kubernetes.io/name"

# RuntimeClass name and CRI handler for each sandboxed runtime (handlers by convention:
# containerd's runsc shim registers `runsc`, Kata's `kata`).
RUNTIME_CLASSES: dict[str, tuple[str, str]] = {
    "gvisor": ("gvisor", "runsc"),
    "kata": ("kata", "kata"),
}
RESTART_POLICY = {"no": "Never", "on-failure": "OnFailure", "always": "Always",
                  "unless-stopped": "Always"}
PULL_POLICY = {"missing": "IfNotPresent", "never": "Never", "always": "Always"}

# Objects without a namespace (--namespace is not written into them).
CLUSTER_SCOPED = frozenset({"RuntimeClass", "SeccompProfile", "AppArmorProfile", "Namespace"})
HIGH_UID = 10000  # checkov CKV_K8S_40: uids below may collide with a node's own accounts
# Security Profiles Operator (kubernetes-sigs/security-profiles-operator, CRDs v1): profiles
# are cluster-scoped objects the operator writes below the kubelet's seccomp root.
SPO_API = "security-profiles-operator.x-k8s.io/v1"
SPO_SECCOMP_DIR = "operator"
_SPO_SYSCALL_KEYS = ("names", "action", "errnoRet", "args")


class ProfileDelivery(StrEnum):
    FILES = "files"  # profile files beside the YAML, copied to each node by hand
    OPERATOR = "operator"  # Security Profiles Operator objects in the YAML


@dataclass(frozen=True)
class KubeOptions:
    """What the user chose beyond the manifests (--namespace, --pin, --profiles)."""

    namespace: str | None = None
    # image reference as in the manifest -> the same reference with its digest (the lookup
    # is the engine's, in saferun.app.export: the renderer only takes the values)
    pinned: Mapping[str, str] = dataclasses.field(default_factory=dict)
    profiles: ProfileDelivery = ProfileDelivery.FILES


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def parse_kube_version(text: str) -> int:
    """`1.30` -> 30 (the minor version), refusing what the output cannot target."""
    match = re.fullmatch(r"v?1\.(\d{1,3})(?:\.\d+)?", text.strip())
    if not match or int(match.group(1)) < MIN_KUBE_MINOR:
        raise ExportError(
            f"--kube-version '{text}' is not a Kubernetes version saferun can target",
            fix=f"give a version such as {DEFAULT_KUBE_VERSION} (1.{MIN_KUBE_MINOR} or newer)",
        )
    return int(match.group(1))


def render_kubernetes(apps: list[Prepared], *, kind: KubeKind = KubeKind.POD,
                      kube_version: str = DEFAULT_KUBE_VERSION,
                      options: KubeOptions | None = None) -> ExportResult:
    """One multi-document YAML (RuntimeClasses first), plus profile files for the nodes."""
    minor = parse_kube_version(kube_version)
    opts = options or KubeOptions()
    if opts.namespace is not None and not _DNS_LABEL.match(opts.namespace):
        raise ExportError(f"--namespace '{opts.namespace}' is not a Kubernetes namespace name",
                          fix="use lower-case letters, digits and '-' (at most 63 characters)")
    names = [k8s_name(app.name) for app in apps]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ExportError(f"several app names become the Kubernetes name '{clashes[0]}'",
                          fix="give the apps names that differ after lower-casing")
    notes: list[Unsupported] = []
    files: list[ExportFile] = []
    runtime_classes: dict[str, dict[str, Any]] = {}
    workloads = []
    for app in apps:
        workloads.append(_workload(app, kind, minor, files, notes, opts))
        runtime = app.manifest.security.runtime
        if runtime in RUNTIME_CLASSES:
            name, handler = RUNTIME_CLASSES[runtime]
            runtime_classes[name] = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                     "metadata": {"name": name}, "handler": handler}
    k8s_names = dict(zip([a.name for a in apps], names, strict=True))
    # Policies before the workloads: applied in file order, a pod never runs without its own.
    documents = ([runtime_classes[n] for n in sorted(runtime_classes)]
                 + network_policies(apps, k8s_names, notes) + workloads)
    if opts.profiles is ProfileDelivery.OPERATOR:
        documents = _operator_profiles(files) + documents
        files = [f for f in files if not f.path.startswith("seccomp/")]
    documents = [_namespaced(doc, opts.namespace) for doc in documents]
    header = notes_header(notes) + [f"# Target: Kubernetes 1.{minor}, kind {kind.value}."]
    main = ExportFile(KUBERNETES_FILE, dump_yaml(documents, header), mode=0o600)
    return ExportResult((main, *files), tuple(sorted(notes)))


def k8s_name(app_name: str) -> str:
    """App names allow upper case, `_` and `.`; Kubernetes object and container names don't."""
    name = re.sub(r"[^a-z0-9-]+", "-", app_name.lower()).strip("-")[:63].strip("-")
    if not _DNS_LABEL.fullmatch(name):
        raise ExportError(f"app.name '{app_name}' has no usable Kubernetes name",
                          fix="use letters, digits and '-' in app.name")
    return name


def _namespaced(document: dict[str, Any], namespace: str | None) -> dict[str, Any]:
    """The object with metadata.namespace right after its name (cluster-scoped ones as is)."""
    if namespace is None or document.get("kind") in CLUSTER_SCOPED:
        return document
    metadata: dict[str, Any] = {}
    for key, value in document["metadata"].items():
        metadata[key] = value
        if key == "name":
            metadata["namespace"] = namespace
    return {**document, "metadata": metadata}


def _operator_profiles(files: list[ExportFile]) -> list[dict[str, Any]]:
    """Each seccomp profile file as a SeccompProfile object (its name is the file's stem)."""
    documents = []
    for item in files:
        if not item.path.startswith(f"seccomp/{SPO_SECCOMP_DIR}/"):
            continue
        profile = json.loads(item.content)
        if profile.get("defaultErrnoRet", 1) != 1:
            # The CRD has no defaultErrnoRet: the runtime's default (EPERM, 1) applies.
            raise ExportError(f"{item.path}: defaultErrnoRet {profile['defaultErrnoRet']} "
                              "cannot be expressed as a SeccompProfile object",
                              fix="export with --profiles files")
        spec: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
        if profile.get("architectures"):
            spec["architectures"] = list(profile["architectures"])
        spec["syscalls"] = [{k: rule[k] for k in _SPO_SYSCALL_KEYS if k in rule}
                            for rule in profile.get("syscalls", ())]
        name = item.path.rsplit("/", 1)[1].removesuffix(".json")
        documents.append({"apiVersion": SPO_API, "kind": "SeccompProfile",
                          "metadata": {"name": name,
                                       "labels": {"app.kubernetes.io/managed-by": "saferun"}},
                          "spec": spec})
    return documents


def _workload(app: Prepared, kind: KubeKind, minor: int, files: list[ExportFile],
              notes: list[Unsupported], opts: KubeOptions) -> dict[str, Any]:
    name = k8s_name(app.name)
    if name != app.name:
        notes.append(Unsupported(app.name, "app.name", (
            f"Kubernetes names are lower-case DNS labels: the pod and container are named "
            f"'{name}'")))
    labels = {NAME_LABEL: name, "app.kubernetes.io/managed-by": "saferun"}
    annotations = _annotations(app, notes)
    spec = _pod_spec(app, name, kind, minor, annotations, files, notes, opts)
    _node_level_notes(app, notes)
    metadata: dict[str, Any] = {"name": name, "labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    if kind is KubeKind.POD:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": {NAME_LABEL: name}},
                 "template": {"metadata": {k: v for k, v in metadata.items() if k != "name"},
                              "spec": spec}},
    }


def _annotations(app: Prepared, notes: list[Unsupported]) -> dict[str, str]:
    """Docker labels are free-form metadata: annotations, where the key is a valid one."""
    result = {}
    for key, value in app.plan.labels:
        if _annotation_key_ok(key):
            result[key] = value
        else:
            notes.append(Unsupported(app.name, f"app.labels.{key}", (
                "not a valid Kubernetes annotation key ([prefix/]name, name at most 63 "
                "characters): not exported")))
    return result


def _annotation_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return bool(_QUALIFIED_NAME.fullmatch(name))


def _pod_spec(app: Prepared, name: str, kind: KubeKind, minor: int, annotations: dict[str, str],
              files: list[ExportFile], notes: list[Unsupported],
              opts: KubeOptions) -> dict[str, Any]:
    plan = app.plan
    spec: dict[str, Any] = {"automountServiceAccountToken": False, "enableServiceLinks": False}
    if app.manifest.security.userns == "required" and dropin(plan, "userns_mode") != "host":
        spec["hostUsers"] = False
        gate = " and, before 1.33, the UserNamespacesSupport feature gate" if minor < 33 else ""
        notes.append(Unsupported(app.name, "security.userns", (
            "hostUsers: false needs user-namespace support on the nodes (Linux 6.3+, runc 1.2+ "
            f"or crun 1.9+, containerd 2.0+ or CRI-O 1.25+){gate}")))
    if app.manifest.security.runtime in RUNTIME_CLASSES:
        spec["runtimeClassName"] = RUNTIME_CLASSES[app.manifest.security.runtime][0]
    spec["restartPolicy"] = _restart_policy(app, kind, notes)
    if plan.hostname:
        spec["hostname"] = plan.hostname
    spec["securityContext"] = _pod_security_context(app, name, files, notes, opts)
    _high_uid_note(app, spec, notes)
    volumes, mounts = _volumes(app, notes)
    container = _container(app, name, minor, annotations, files, notes, opts)
    handled = _dropins(app, spec, container, volumes, mounts) | {"mount.anonymous"}
    if mounts:
        container["volumeMounts"] = mounts
    spec["containers"] = [container]
    if volumes:
        spec["volumes"] = volumes
    notes += unexpressed(app, handled, "a Pod spec") + plan_notes(app)
    return spec


def _dropins(app: Prepared, spec: dict[str, Any], container: dict[str, Any],
             volumes: list[dict[str, Any]], mounts: list[dict[str, Any]]) -> set[str]:
    """Drop-in `docker run` settings with a Pod field; returns the plan fields written."""
    plan = app.plan
    handled: set[str] = set()
    if dropin(plan, "privileged"):
        # The API server rejects privileged together with allowPrivilegeEscalation false.
        container["securityContext"].update(privileged=True, allowPrivilegeEscalation=True)
        handled.add("privileged")
    host_namespaces = {"pid_mode": "hostPID", "ipc_mode": "hostIPC"}
    for field, key in host_namespaces.items():
        value = dropin(plan, field)
        if value == "host":
            spec[key] = True
        if value in ("host", "private"):  # a Pod's IPC namespace is private by default
            handled.add(field)
    if plan.network == "host":
        spec["hostNetwork"] = True
        handled.add("network.host")
    if dropin(plan, "userns_mode") == "host":
        handled.add("userns_mode")  # Pods share the host's user namespace unless hostUsers false
    sysctls = dropin(plan, "sysctls")
    if isinstance(sysctls, tuple):
        spec["securityContext"]["sysctls"] = [{"name": k, "value": v} for k, v in sysctls]
        handled.add("sysctls")
    timeout = dropin(plan, "stop_timeout")
    if isinstance(timeout, int):
        spec["terminationGracePeriodSeconds"] = timeout
        handled.add("stop_timeout")
    aliases: dict[str, list[str]] = {}
    for entry in dropin(plan, "extra_hosts") or ():
        host, _, address = str(entry).partition(":")
        if address != "host-gateway":
            aliases.setdefault(address, []).append(host)
    if aliases:
        spec["hostAliases"] = [{"ip": ip, "hostnames": names} for ip, names in aliases.items()]
    if all(not str(e).endswith(":host-gateway") for e in dropin(plan, "extra_hosts") or ()):
        handled.add("extra_hosts")
    dns = _dns_config(plan)
    if dns:
        if "nameservers" in dns:
            spec["dnsPolicy"] = "None"  # docker --dns replaces the resolver list
        spec["dnsConfig"] = dns
        handled.update({"dns", "dns_search", "dns_options"})
    shm = dropin(plan, "shm_size")
    if isinstance(shm, int):
        volumes.append({"name": "shm", "emptyDir": {"medium": "Memory",
                                                    "sizeLimit": _bytes_quantity(shm)}})
        mounts.append({"name": "shm", "mountPath": "/dev/shm"})
        handled.add("shm_size")
    return handled


def _dns_config(plan: RunPlan) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if dropin(plan, "dns"):
        config["nameservers"] = list(plan.dns)
    if dropin(plan, "dns_search"):
        config["searches"] = list(plan.dns_search)
    if dropin(plan, "dns_options"):
        config["options"] = [dict(zip(("name", "value"), o.split(":", 1), strict=False))
                             for o in plan.dns_options]
    return config


def _restart_policy(app: Prepared, kind: KubeKind, notes: list[Unsupported]) -> str:
    policy = app.manifest.restart.policy
    if kind is KubeKind.DEPLOYMENT:
        if RESTART_POLICY[policy] != "Always":
            notes.append(Unsupported(app.name, "restart.policy", (
                f"'{policy}': a Deployment always restarts its pod (restartPolicy Always); "
                "export with --kind pod to keep the manifest's policy")))
        return "Always"
    if policy == "on-failure":
        notes.append(Unsupported(app.name, "restart.max_retries", (
            f"{app.manifest.restart.max_retries}: the kubelet retries a failing container with "
            "back-off and no limit")))
    return RESTART_POLICY[policy]


def _user_ids(plan: RunPlan) -> tuple[int | None, int | None]:
    """Numeric ids; a name (resolved by docker in the image) has none here: None."""
    uid, _, gid = plan.user.partition(":")
    return (int(uid) if uid.isdigit() else None), (int(gid) if gid.isdigit() else None)


def _high_uid_note(app: Prepared, spec: dict[str, Any], notes: list[Unsupported]) -> None:
    """A uid below 10000 is kept (the image's files belong to it): said, with the remedy."""
    uid = _user_ids(app.plan)[0]
    if uid is None or uid == 0 or uid >= HIGH_UID or spec.get("hostUsers") is False:
        return
    notes.append(Unsupported(app.name, "app.user", (
        f"uid {uid} is below {HIGH_UID} and kept, since the image's files belong to it: on "
        "the node it is the uid of any host account with that number (checkov CKV_K8S_40); "
        "security.userns = \"required\" maps it to an unprivileged range (hostUsers: false)")))


def _pod_security_context(app: Prepared, name: str, files: list[ExportFile],
                          notes: list[Unsupported], opts: KubeOptions) -> dict[str, Any]:
    uid, gid = _user_ids(app.plan)
    context: dict[str, Any] = {}
    if uid != 0:
        context["runAsNonRoot"] = True  # the kubelet checks a named user's uid in the image
    if uid is not None:
        context["runAsUser"] = uid
    else:
        notes.append(Unsupported(app.name, "app.user", (
            f"'{app.plan.user}' is a name: a Pod takes numeric ids (runAsUser); runAsNonRoot "
            "is set and the image's USER applies, or write the uid in app.user")))
    if gid is not None:
        context["runAsGroup"] = gid
    context["seccompProfile"] = _seccomp_profile(app, name, files, notes, opts.profiles)
    return context


def _seccomp_profile(app: Prepared, name: str, files: list[ExportFile],
                     notes: list[Unsupported],
                     delivery: ProfileDelivery = ProfileDelivery.FILES) -> dict[str, str]:
    if app.seccomp.kind is SeccompKind.UNCONFINED:
        return {"type": "Unconfined"}
    if app.seccomp.kind is SeccompKind.RUNTIME_DEFAULT or app.seccomp.profile_json is None:
        return {"type": "RuntimeDefault"}
    text = app.seccomp.profile_json
    if delivery is ProfileDelivery.OPERATOR:
        # Turned into a SeccompProfile object by _operator_profiles; the operator writes it
        # to <kubelet seccomp root>/operator/<name>.json on every node.
        relative = f"{SPO_SECCOMP_DIR}/saferun-{name}.json"
        files.append(ExportFile(f"seccomp/{relative}", text))
        notes.append(Unsupported(app.name, "seccomp", (
            f"the profile is the SeccompProfile object saferun-{name}: the Security Profiles "
            "Operator must run in the cluster, and the pod starts once the profile is "
            "installed on its node")))
        return {"type": "Localhost", "localhostProfile": relative}
    relative = f"{SECCOMP_DIR}/{name}.json"
    files.append(ExportFile(f"seccomp/{relative}", text if text.endswith("\n") else text + "\n"))
    notes.append(Unsupported(app.name, "seccomp", (
        f"the Localhost profile must be on every node: copy seccomp/{relative} to "
        f"{KUBELET_SECCOMP_ROOT}/{relative} (or export with --profiles operator); "
        "the kubelet refuses to start the pod where it is missing")))
    return {"type": "Localhost", "localhostProfile": relative}


def _apparmor(app: Prepared, container: str, minor: int, annotations: dict[str, str],
              files: list[ExportFile], notes: list[Unsupported]) -> dict[str, str] | None:
    """The profile for the container's securityContext (1.30+), or an annotation before."""
    choice = app.apparmor
    if choice.kind is AppArmorKind.UNCONFINED:
        field, annotation = {"type": "Unconfined"}, "unconfined"
    else:
        assert choice.name is not None
        field = {"type": "Localhost", "localhostProfile": choice.name}
        annotation = f"localhost/{choice.name}"
        how = "it must be loaded on every node"
        if choice.text is not None:
            files.append(ExportFile(f"apparmor/{choice.name}", choice.text))
            how = f"load apparmor/{choice.name} on every node (apparmor_parser -r)"
        preferred = (" ('preferred' cannot be expressed: the kubelet refuses pods with an "
                     "AppArmor profile on nodes without AppArmor)"
                     if app.manifest.apparmor.enforcement == "preferred" else "")
        notes.append(Unsupported(app.name, "apparmor", (
            f"Localhost profile '{choice.name}': {how}{preferred}")))
    if minor >= APPARMOR_FIELD_MINOR:
        return field
    annotations[APPARMOR_ANNOTATION + container] = annotation
    return None


def _pull_policy(image: str, pull: str) -> str:
    """A digest never moves: the manifest's policy. A tag can: Always, so the kubelet asks
    the registry at each start (checkov CKV_K8S_15); `never` stays Never (air-gapped)."""
    if "@" in image or pull == "never":
        return PULL_POLICY[pull]
    return "Always"


def _container(app: Prepared, name: str, minor: int, annotations: dict[str, str],
               files: list[ExportFile], notes: list[Unsupported],
               opts: KubeOptions) -> dict[str, Any]:
    plan = app.plan
    image = opts.pinned.get(plan.image, plan.image)
    container: dict[str, Any] = {"name": name, "image": image,
                                 "imagePullPolicy": _pull_policy(image, plan.pull)}
    if plan.entrypoint is not None:
        container["command"] = list(plan.entrypoint)
    if plan.command is not None:
        container["args"] = list(plan.command)
    if plan.workdir:
        container["workingDir"] = plan.workdir
    if plan.env:
        container["env"] = [{"name": k, "value": v} for k, v in plan.env]
    if plan.ports:
        container["ports"] = [{"containerPort": p.container_port, "protocol": p.protocol.upper()}
                              for p in plan.ports]
    container["resources"] = _resources(app, notes)
    context: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": plan.read_only,
        "capabilities": {"drop": ["ALL"]},
    }
    if plan.cap_add:
        context["capabilities"]["add"] = [c.removeprefix("CAP_") for c in plan.cap_add]
    apparmor = _apparmor(app, name, minor, annotations, files, notes)
    if opts.profiles is ProfileDelivery.OPERATOR and app.apparmor.text is not None:
        notes.append(Unsupported(app.name, "apparmor", (
            "--profiles operator: the operator's AppArmorProfile (v1) takes an abstract allow "
            "list, not profile text, so saferun's profile stays a file to load on the nodes")))
    if apparmor is not None:
        context["appArmorProfile"] = apparmor
    container["securityContext"] = context
    container.update(_probes(app, notes))
    return container


def _resources(app: Prepared, notes: list[Unsupported]) -> dict[str, Any]:
    plan = app.plan
    milli, rest = divmod(plan.nano_cpus, 10**6)
    if rest:
        milli += 1
        notes.append(Unsupported(app.name, "resources.cpus", (
            f"{app.manifest.resources.cpus}: Kubernetes counts CPU in thousandths; rounded up to "
            f"{milli}m")))
    cpu = str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"
    limits = {"cpu": cpu, "memory": _bytes_quantity(plan.memory)}
    # requests = limits: Guaranteed QoS, the scheduler reserves what the manifest allows.
    return {"limits": limits, "requests": dict(limits)}


def _bytes_quantity(size: int) -> str:
    for suffix, unit in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def _volumes(app: Prepared, notes: list[Unsupported]) -> tuple[list[dict[str, Any]],
                                                               list[dict[str, Any]]]:
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    used: set[str] = set()
    for tmpfs, plan_tmpfs in zip(app.manifest.filesystem.tmpfs, app.plan.tmpfs, strict=True):
        volume = _volume_name("tmpfs", tmpfs.target, used)
        size = _bytes_quantity(tmpfs.size_bytes)
        volumes.append({"name": volume, "emptyDir": {"medium": "Memory", "sizeLimit": size}})
        mounts.append({"name": volume, "mountPath": tmpfs.target})
        lost = [o for o in plan_tmpfs.options.split(",") if o in ("noexec", "nosuid", "nodev")]
        lost += [f"mode={tmpfs.mode}"]
        lost += [f"{key}={value}" for key, value in (("uid", tmpfs.uid), ("gid", tmpfs.gid))
                 if value is not None]
        notes.append(Unsupported(app.name, f"filesystem.tmpfs {tmpfs.target}", (
            f"an emptyDir (medium Memory) has no mount options: {','.join(lost)} cannot be "
            "set")))
    for mount in app.plan.mounts:
        if not mount.source:  # an anonymous volume: lives with the pod, as docker's with
            volume = _volume_name("volume", mount.target, used)  # the container
            volumes.append({"name": volume, "emptyDir": {}})
            mounts.append({"name": volume, "mountPath": mount.target,
                           "readOnly": mount.read_only})
            notes.append(Unsupported(app.name, f"filesystem.mounts {mount.target}", (
                "anonymous volume becomes an emptyDir: it survives container restarts and "
                "goes with the pod (docker's goes with the container); the kubelet does not "
                f"copy the image's files at {mount.target} into it, as docker does")))
            continue
        if mount.kind == "bind":
            notes.append(Unsupported(app.name, f"filesystem.mounts {mount.target}", (
                f"bind mount of host path {mount.source} not exported: hostPath volumes are "
                "forbidden by Pod Security baseline and restricted; use a PersistentVolumeClaim "
                "or a ConfigMap")))
            continue
        volume = _volume_name("volume", mount.source, used)
        claim = k8s_name(mount.source)
        volumes.append({"name": volume, "persistentVolumeClaim": {"claimName": claim,
                                                                  "readOnly": mount.read_only}})
        mounts.append({"name": volume, "mountPath": mount.target, "readOnly": mount.read_only})
        notes.append(Unsupported(app.name, f"filesystem.mounts {mount.target}", (
            f"named volume '{mount.source}' becomes PersistentVolumeClaim '{claim}', which "
            "must exist in the namespace")))
    return volumes, mounts


def _volume_name(prefix: str, path: str, used: set[str]) -> str:
    base = f"{prefix}-{re.sub(r'[^a-z0-9]+', '-', path.lower()).strip('-')}"[:55].strip("-")
    name, counter = base, 1
    while name in used:
        counter += 1
        name = f"{base}-{counter}"
    used.add(name)
    return name


def _probes(app: Prepared, notes: list[Unsupported]) -> dict[str, Any]:
    check, plan_check = app.manifest.healthcheck, app.plan.healthcheck
    if check is None and plan_check is None:
        notes.append(Unsupported(app.name, "healthcheck", (
            "the manifest has no health check: no liveness or readiness probe (add "
            "[healthcheck] to get both; checkov CKV_K8S_8, CKV_K8S_9)")))
        return {}
    if check is None or plan_check is None or check.command is None:
        return {}  # --no-healthcheck / image timings only: reported by unexpressed()
    # Unset timings are docker's defaults (30s, 30s, 3 retries).
    period = _seconds(plan_check.interval_ns or 30 * 10**9, app, "healthcheck.interval", notes)
    timeout = _seconds(plan_check.timeout_ns or 30 * 10**9, app, "healthcheck.timeout", notes)
    retries = plan_check.retries or 3
    command = (["/bin/sh", "-c", check.command] if isinstance(check.command, str)
               else list(check.command))
    probe = {"exec": {"command": command}, "periodSeconds": period,
             "timeoutSeconds": timeout, "failureThreshold": retries}
    probes: dict[str, Any] = {"livenessProbe": probe, "readinessProbe": dict(probe)}
    if plan_check.start_period_ns:
        # Docker ignores failures during start_period; a startup probe holds the others off.
        start = math.ceil(plan_check.start_period_ns / 10**9)
        probes["startupProbe"] = {**probe,
                                  "failureThreshold": math.ceil(start / period) + retries}
    return probes


def _seconds(ns: int, app: Prepared, key: str, notes: list[Unsupported]) -> int:
    seconds = max(1, math.ceil(ns / 10**9))
    if seconds * 10**9 != ns:
        notes.append(Unsupported(app.name, key, (
            f"probes count whole seconds (at least 1): {seconds}s is used")))
    return seconds


def _node_level_notes(app: Prepared, notes: list[Unsupported]) -> None:
    """What a Pod spec cannot carry; each note names the node or cluster setting to use."""
    plan, manifest = app.plan, app.manifest
    add = notes.append
    add(Unsupported(app.name, "resources.pids", (
        f"{plan.pids_limit}: a Pod has no PID limit field; set the kubelet's podPidsLimit on "
        "the nodes")))
    if plan.ulimits:
        spelled = ", ".join(f"{u.name}={u.soft}:{u.hard}" for u in plan.ulimits)
        add(Unsupported(app.name, "resources.nofile/nproc", (
            f"{spelled}: a Pod has no ulimit field; the container runtime's defaults apply")))
    if plan.memory_swap > plan.memory:
        add(Unsupported(app.name, "resources.memory_swap", (
            "swap is a node setting (kubelet memorySwap.swapBehavior); pods get none by "
            "default")))
    options = ", ".join(f"{k}={v}" for k, v in plan.log_options)
    add(Unsupported(app.name, "logging", (
        f"driver {plan.log_driver}{' (' + options + ')' if options else ''}: container logs are "
        "node-level (kubelet containerLogMaxSize / containerLogMaxFiles)")))
    if plan.env_files:
        add(Unsupported(app.name, "app.env_files", (
            "not exported: load them into a ConfigMap (kubectl create configmap --from-env-file) "
            "and add it to the container's envFrom")))
    if plan.init:
        add(Unsupported(app.name, "app.init", (
            "Kubernetes has no --init: build an init (tini) into the image, or set "
            "shareProcessNamespace so the pause container reaps zombies")))
    if plan.ports:
        spelled = ", ".join(f"{p.host_ip}:{p.host_port or '(random)'}->{p.container_port}/"
                            f"{p.protocol}" for p in plan.ports)
        add(Unsupported(app.name, "network.ports", (
            f"{spelled}: declared as containerPort only; a Pod has no host binding (hostPort is "
            "forbidden by Pod Security baseline): expose it with a Service or kubectl "
            "port-forward")))
    if plan.network == "none":
        add(Unsupported(app.name, "network.mode", (
            "'none': every Pod has a network; isolate it with a NetworkPolicy that denies all "
            "ingress and egress")))
    elif plan.network != "bridge":
        add(Unsupported(app.name, "network.mode", (
            f"user-defined network '{plan.network}' has no Pod equivalent; use NetworkPolicies")))
    if manifest.security.userns == "preferred" and _user_ids(plan)[0] == 0:
        add(Unsupported(app.name, "security.userns", (
            "'preferred' cannot be expressed: set 'required' to export hostUsers: false")))
