"""Refusal rules as data: every request saferun refuses unless a written reason allows it.

One table, shared by `saferun run` (manifest or command line), `saferun init`, the docs
and the policy layer. A rule's id is stable kebab-case: it is what `--allow RULE="reason"`
and a manifest's `[allow]` table name, what error messages print and the anchor of the
rule in docs/drop-in.md. Rules that predate the `[allow]` table also keep their old
`[exceptions]` key (`legacy_key`), which is accepted as the same permission.

The checks themselves are pure functions of validated values (a manifest, or host paths
the caller already resolved): no rule touches the filesystem or the engine.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

import msgspec

from saferun.errors import Refused

CIS = "CIS Docker Benchmark v1.6.0"


class Refusal(msgspec.Struct, frozen=True):
    id: str
    title: str
    cis: str | None  # section of the CIS Docker Benchmark (v1.6.0), when one covers it
    rationale: str
    fix: str
    legacy_key: str | None = None  # the [exceptions] key that already meant the same


REFUSALS: tuple[Refusal, ...] = (
    Refusal("privileged", "Privileged container", f"{CIS} 5.5",
            "--privileged gives every capability, every device and no seccomp/AppArmor "
            "confinement: root in the container is root on the host.",
            "add only the capabilities and devices the app needs"),
    Refusal("cap-add-all", "All capabilities added", f"{CIS} 5.4",
            "--cap-add ALL restores every capability, including SYS_ADMIN and SYS_MODULE.",
            "list the few capabilities the app needs"),
    Refusal("cap-not-allowed", "Capability outside the allowed set", f"{CIS} 5.4",
            "Capabilities beyond Docker's default set (e.g. SYS_ADMIN, NET_ADMIN, SYS_PTRACE) "
            "widen the kernel attack surface and often allow escapes.",
            "remove it, or use one of Docker's default capabilities"),
    Refusal("host-pid", "Host PID namespace", f"{CIS} 5.16",
            "--pid host lets the container see and signal every host process.",
            "remove --pid host"),
    Refusal("host-ipc", "Host IPC namespace", f"{CIS} 5.17",
            "--ipc host shares the host's System V IPC and /dev/shm.",
            "remove --ipc host (use --ipc shareable between containers)"),
    Refusal("host-uts", "Host UTS namespace", f"{CIS} 5.21",
            "--uts host lets the container change the host's hostname.",
            "remove --uts host; set --hostname instead"),
    Refusal("host-network", "Host network namespace", f"{CIS} 5.10",
            "--network host puts the container on the host's network stack: every host "
            "interface, loopback service and port.",
            "use a bridge network and publish the ports the app serves"),
    Refusal("host-userns", "Host user namespace", f"{CIS} 5.31",
            "--userns host turns off the daemon's user-namespace remapping for this container.",
            "remove --userns host", legacy_key="userns_host"),
    Refusal("host-cgroupns", "Host cgroup namespace", None,
            "--cgroupns host shows the host's whole cgroup tree to the container.",
            "remove --cgroupns host"),
    Refusal("seccomp-unconfined", "Seccomp disabled", f"{CIS} 5.22",
            "seccomp=unconfined removes the system-call filter that blocks most kernel "
            "exploits' entry points.",
            "keep the default profile, or allow the needed syscalls in [seccomp] allow",
            legacy_key="seccomp_unconfined"),
    Refusal("apparmor-unconfined", "AppArmor disabled", f"{CIS} 5.2",
            "apparmor=unconfined removes the mandatory access control profile.",
            "keep the generated profile or name a profile with apparmor=NAME",
            legacy_key="apparmor_off"),
    Refusal("systempaths-unconfined", "Masked /proc and /sys paths unmasked", None,
            "systempaths=unconfined exposes /proc/kcore, /proc/sysrq-trigger, /sys/firmware "
            "and the other paths docker masks.",
            "remove --security-opt systempaths=unconfined"),
    Refusal("label-disable", "SELinux labelling disabled", f"{CIS} 5.3",
            "label=disable runs the container without SELinux separation.",
            "remove --security-opt label=disable; relabel bind mounts with :z or :Z"),
    Refusal("docker-socket-mount", "Docker socket mounted", f"{CIS} 5.32",
            "The Docker (or containerd) API socket inside a container is root on the host: "
            "it can start a privileged container.",
            "use a socket proxy that exposes only the calls the app needs"),
    Refusal("sensitive-host-mount", "Sensitive host path mounted", f"{CIS} 5.6",
            "Mounting /, /etc, /proc, /sys, /dev, /boot, /root, /usr, /lib, the engine's "
            "state (/var/lib/docker, /run/containerd) or a parent of them exposes the host's "
            "configuration, credentials or kernel interfaces (checked after resolving symlinks).",
            "mount only the app's own data directory, or a named volume"),
    Refusal("device", "Host device exposed", f"{CIS} 5.18",
            "--device and --device-cgroup-rule give the container direct access to host "
            "hardware.",
            "remove the device, or allow it with a reason"),
    Refusal("gpus", "GPUs exposed", f"{CIS} 5.18",
            "--gpus passes GPU device nodes and driver libraries into the container.",
            "allow it with a reason on hosts meant for GPU work"),
    Refusal("unsafe-sysctl", "Sysctl outside the safe namespaced set", None,
            "Only the namespaced sysctls Kubernetes calls safe are isolated per container; "
            "others can affect the host or other containers.",
            "remove the sysctl, or allow it with a reason"),
    Refusal("shared-propagation", "Shared mount propagation", f"{CIS} 5.20",
            "shared/rshared propagation lets mounts made in the container appear on the host.",
            "use the default (rprivate) or rslave"),
    Refusal("run-as-root", "Runs as root", f"{CIS} 4.1",
            "uid 0 in the container is uid 0 on the host unless user namespaces are remapped.",
            "run as a numeric non-root uid (-u 1000:1000)", legacy_key="run_as_root"),
    Refusal("writable-root", "Writable root filesystem", f"{CIS} 5.13",
            "A writable root filesystem lets an intruder change the app's binaries.",
            "keep --read-only and mount tmpfs or volumes where the app writes",
            legacy_key="writable_root"),
    Refusal("oom-protected", "Protected from the OOM killer", None,
            "A negative --oom-score-adj makes the kernel kill the host's own processes "
            "(sshd, dockerd, other containers) before this container when memory runs out.",
            "remove --oom-score-adj, or use a value of 0 or above"),
)


class PolicyWarning(msgspec.Struct, frozen=True):
    """A request saferun honours with docker's semantics but warns about, because a CIS
    rule recommends otherwise. A team policy file turns it into a refusal (`[policy]
    refuse = [ID]`); an `[allow]` entry (or `--allow ID=REASON`) with a reason silences it
    and lets it through such a policy."""

    id: str
    title: str
    cis: str | None
    rationale: str
    fix: str
    legacy_key: str | None = None


WARNING_RULES: tuple[PolicyWarning, ...] = (
    PolicyWarning("restart-always", "Unbounded restart policy", f"{CIS} 5.15",
                  "always/unless-stopped restart a crashing or compromised container forever.",
                  "use --restart on-failure:5", legacy_key="restart_always"),
    PolicyWarning("restart-retries", "Restart retries above 5 or unlimited", f"{CIS} 5.15",
                  "A container that keeps failing should stop after a few tries instead of "
                  "burning resources (and hiding an attack) in a crash loop.",
                  "use --restart on-failure:5 or fewer"),
    PolicyWarning("image-tag-latest", "Image not pinned to a version", f"{CIS} 4.2",
                  "`latest` or no tag means a different image whenever it is pulled: what was "
                  "reviewed is not what runs. saferun run starts the local image by its id "
                  "and records the digest in the io.saferun.image-digest label.",
                  "name a version tag (nginx:1.27) or pin a digest (saferun pin MANIFEST)"),
    PolicyWarning("port-host-ip", "Port published on every interface", f"{CIS} 5.14",
                  "`-p 0.0.0.0:80:80` or `-P` listens on every host address, including public "
                  "ones, and Docker's iptables rules bypass the host firewall.",
                  "bind a specific address: -p 127.0.0.1:8080:80 (manifest: network.ports "
                  "host_ip, 127.0.0.1 by default)"),
    PolicyWarning("cgroup-parent", "Custom cgroup parent", f"{CIS} 5.25",
                  "A container under another cgroup parent is accounted (and may be limited) "
                  "outside the tree docker sets up for containers; its own limits still apply, "
                  "because a cgroup parent can only lower them, never raise them.",
                  "remove --cgroup-parent"),
    PolicyWarning("ulimit-override", "Ulimit raised or removed", f"{CIS} 5.19",
                  "Ulimits are the last per-process brake on descriptors and processes; "
                  "overriding the daemon's default to unlimited removes it.",
                  "only lower ulimits per container (manifest: resources.nofile, "
                  "resources.nproc, resources.ulimits)"),
)
WARNINGS: dict[str, PolicyWarning] = {w.id: w for w in WARNING_RULES}
WARNING_IDS: tuple[str, ...] = tuple(WARNINGS)

RULES: dict[str, Refusal] = {rule.id: rule for rule in REFUSALS}
LEGACY_KEYS: dict[str, str] = {
    **{r.legacy_key: r.id for r in REFUSALS if r.legacy_key},
    **{w.legacy_key: w.id for w in WARNING_RULES if w.legacy_key},
}
RULE_IDS: tuple[str, ...] = tuple(RULES)
# What `--allow` and `[allow]` may name: every refusal rule and every policy warning.
ALLOWABLE_IDS: tuple[str, ...] = (*RULE_IDS, *WARNING_IDS)


def rule_text(rule_id: str) -> Refusal | PolicyWarning:
    """The refusal or the policy warning with this id (a warning a policy turned into a
    refusal is reported like one)."""
    return RULES[rule_id] if rule_id in RULES else WARNINGS[rule_id]

# Capabilities that may be added back without a reason: Docker's own default set.
ALLOWED_CAPABILITIES = frozenset({
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
})

# Kubernetes' "safe" sysctls: namespaced and unable to affect the host or other pods.
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
})

# Host directories that may not be mounted, nor anything below them, nor any parent of them.
SENSITIVE_HOST_DIRS: tuple[str, ...] = (
    "/etc", "/proc", "/sys", "/dev", "/boot", "/root", "/usr", "/lib", "/lib32", "/lib64",
    "/bin", "/sbin", "/var/lib/docker", "/var/lib/containerd", "/run/containerd",
    "/var/run/containerd", "/var/lib/kubelet", "/run/docker", "/var/run/docker",
)
# API sockets: mounting one hands out control of the engine.
SOCKET_NAMES = frozenset({"docker.sock", "containerd.sock", "podman.sock", "crio.sock",
                          "dockershim.sock", "buildkitd.sock"})
# Read-only exceptions that are common and harmless: the host's time zone.
READONLY_SAFE_HOST_PATHS: tuple[str, ...] = ("/etc/localtime", "/etc/timezone",
                                             "/usr/share/zoneinfo")


class Violation(msgspec.Struct, frozen=True):
    """One refused request: which rule, where it came from, what was asked."""

    rule: str
    where: str
    what: str

    def message(self) -> str:
        rule = rule_text(self.rule)
        return f"{self.where}: {self.what} is refused by rule '{self.rule}' ({rule.title})"


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def host_path_rule(path: str, read_only: bool) -> str | None:
    """The rule a bind mount of this absolute host path breaks, or None. Pure."""
    norm = posixpath.normpath(path)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    if posixpath.basename(norm) in SOCKET_NAMES:
        return "docker-socket-mount"
    if read_only and any(_under(norm, safe) for safe in READONLY_SAFE_HOST_PATHS):
        return None
    if norm == "/":
        return "sensitive-host-mount"
    for directory in SENSITIVE_HOST_DIRS:
        if _under(norm, directory) or _under(directory, norm):
            # Parents count too: /var exposes /var/lib/docker, /run exposes docker.sock.
            return "sensitive-host-mount"
    if _under("/var/run/docker.sock", norm) or _under("/run/docker.sock", norm):
        return "docker-socket-mount"
    return None


def refusal_help(rule_id: str) -> str:
    """The fix line of an error: how to stop asking, or how to allow it deliberately."""
    rule = rule_text(rule_id)
    return (f"{rule.fix}; or allow it deliberately: "
            f"`saferun run --allow {rule.id}=\"<reason>\" ...` or [allow] {rule.id} = "
            f"\"<reason>\" in the manifest (see docs/drop-in.md#{rule.id})")


def refused(violations: list[Violation], *, hints: dict[str, str] | None = None) -> Refused:
    """The error for broken refusal rules: each rule, what asked for it, and how to allow it."""
    hints = hints or {}
    lines = []
    for v in violations:
        rule = rule_text(v.rule)
        asked = hints.get(v.rule)
        origin = f"{asked} ({v.where} = {v.what})" if asked else f"{v.where} = {v.what}"
        lines.append(f"refused by rule '{v.rule}' ({rule.title}): {origin}. {rule.rationale}")
    rules = list(dict.fromkeys(v.rule for v in violations))
    fix = "; ".join(f"{rule_text(r).fix}" for r in rules)
    allow = " ".join(f'--allow {r}="<reason>"' for r in rules)
    table = ", ".join(f'[allow] {r} = "<reason>"' for r in rules)
    legacy = [f'[exceptions] {rule_text(r).legacy_key} = "<reason>"' for r in rules
              if rule_text(r).legacy_key]
    in_manifest = table + (f" (or {', '.join(legacy)})" if legacy else "")
    return Refused(
        "\n  ".join(lines),
        fix=f"{fix}; or allow it deliberately with {allow}, or {in_manifest} in the "
        f"manifest; see docs/drop-in.md#{rules[0]}",
        rule_ids=tuple(v.rule for v in violations),
    )


def resolved_mount_violations(mounts: Iterable[tuple[str, str, str, bool]]) -> list[Violation]:
    """Bind mounts judged by where their source really leads, symlinks resolved (pure).

    Each item is (where, source as written, resolved source, read_only); the caller did the
    resolving at the edge. A symlink such as ./data -> /etc is caught here even though the
    path as written looked harmless.
    """
    found = []
    for where, source, resolved, read_only in mounts:
        rule = host_path_rule(resolved, read_only)
        if rule is not None:
            shown = repr(source) if source == resolved else f"{source!r} (resolves to {resolved!r})"
            found.append(Violation(rule, where, shown))
    return found


def image_tag_problem(image: str) -> str | None:
    """Why an image reference floats (no tag, or `latest`), or None. A digest pins it."""
    name, _, digest = image.partition("@")
    if digest:
        return None
    last = name.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else None
    if tag is None:
        return f"image {image!r} has no tag, so it means whatever 'latest' is at pull time"
    if tag == "latest":
        return f"image {image!r} uses the 'latest' tag, which moves"
    return None
