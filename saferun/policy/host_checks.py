"""`saferun doctor`: judge the host and the daemon the way CIS Docker Benchmark sections 1-3 do.

Pure: every check is a frozen row of a table (stable kebab-case id, title, CIS reference,
severity, fix) with a test function over a `HostAudit`, a plain value gathered once by
saferun.engine.host (the edge: stat, /proc, `GET /info`). No check reads a file or asks the
daemon itself, so each one is unit-tested with a passing and a failing HostAudit.
(docker-bench-security runs a command inside every check: the opposite.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from saferun.policy.formats import UNSUPPORTED, FormatterTable, OutputFormat
from saferun.policy.severity import Severity

SCHEMA = "saferun.doctor/1"
BENCHMARK = "CIS Docker Benchmark v1.6.0"

# The oldest Docker Engine release line still patched upstream. Moby keeps one release
# branch maintained at a time (docker-29.x as of 2026-11) plus a short overlap for the
# previous one; 20.10 reached end of life on 2023-12-10. Update with moby's
# BRANCHES-AND-TAGS.md / https://endoflife.date/docker-engine.
OLDEST_SUPPORTED_ENGINE: tuple[int, int] = (28, 0)
OLDEST_SUPPORTED_AS_OF = "2026-11"


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"  # not applicable, or the fact could not be gathered


@dataclass(frozen=True)
class FileStat:
    """What `stat` says about one file, with the owner and group names resolved at the edge."""

    path: str
    uid: int
    gid: int
    mode: int  # permission bits only (st_mode & 0o7777)
    user: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class HostAudit:
    """Everything the checks judge, gathered once by saferun.engine.host."""

    info: Mapping[str, Any]  # `docker info` (GET /info)
    local: bool = True  # the engine runs on this host, so files and /proc were read
    endpoint: str = "unix:///var/run/docker.sock"
    socket: FileStat | None = None
    daemon_args: tuple[str, ...] | None = None  # dockerd's argv from /proc; None: not found
    daemon_json_path: str = "/etc/docker/daemon.json"
    daemon_json: FileStat | None = None  # None: the file does not exist
    daemon_config: Mapping[str, Any] = field(default_factory=dict)
    daemon_config_error: str | None = None
    tls_files: Mapping[str, FileStat | None] = field(default_factory=dict)  # role -> stat
    kernel_lsms: tuple[str, ...] | None = None  # /sys/kernel/security/lsm; None: unreadable
    apparmor_enabled: bool | None = None  # /sys/module/apparmor/parameters/enabled
    selinux_enabled: bool | None = None  # /sys/fs/selinux/enforce exists
    kernel_seccomp: bool | None = None  # /proc/self/status has a Seccomp: line


@dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str


def passed(detail: str) -> Outcome:
    return Outcome(Status.PASS, detail)


def failed(detail: str) -> Outcome:
    return Outcome(Status.FAIL, detail)


def skipped(detail: str) -> Outcome:
    return Outcome(Status.SKIP, detail)


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    cis: tuple[str, ...]  # section numbers of BENCHMARK; () = a saferun check outside it
    severity: Severity
    fix: str
    test: Callable[[HostAudit], Outcome]


@dataclass(frozen=True)
class Finding:
    check: Check
    outcome: Outcome

    @property
    def failed(self) -> bool:
        return self.outcome.status is Status.FAIL


# --- reading dockerd's effective options (command line wins over daemon.json) -------------

_BOOL_FLAGS = frozenset({"icc", "live-restore", "no-new-privileges", "tls", "tlsverify",
                         "selinux-enabled", "userland-proxy", "iptables"})
_SHORT = {"-H": "host", "-l": "log-level", "-G": "group"}


def daemon_flag_values(args: tuple[str, ...], name: str) -> list[str]:
    """Every value given to --NAME on dockerd's command line, in order.

    Boolean flags given bare read "true". Value flags accept `--name v` and `--name=v`.
    """
    values: list[str] = []
    i = 1 if args and not args[0].startswith("-") else 0  # skip argv[0]
    while i < len(args):
        arg = args[i]
        flag, eq, value = arg.partition("=")
        key = _SHORT.get(flag, flag[2:] if flag.startswith("--") else None)
        if key == name:
            if eq:
                values.append(value)
            elif name in _BOOL_FLAGS:
                values.append("true")
            elif i + 1 < len(args):
                values.append(args[i + 1])
                i += 1
        i += 1
    return values


def option(audit: HostAudit, name: str) -> Any:
    """The effective value of a daemon option: the last command-line value, else daemon.json."""
    values = daemon_flag_values(audit.daemon_args or (), name)
    if values:
        value: Any = values[-1]
        if name in _BOOL_FLAGS:
            return value.lower() not in ("false", "0")
        return value
    return audit.daemon_config.get(name)


def daemon_hosts(audit: HostAudit) -> list[str]:
    hosts = daemon_flag_values(audit.daemon_args or (), "host")
    configured = audit.daemon_config.get("hosts") or []
    return hosts + [str(h) for h in configured]


# --- check factories ----------------------------------------------------------------------

def _needs_local(test: Callable[[HostAudit], Outcome]) -> Callable[[HostAudit], Outcome]:
    def wrapped(audit: HostAudit) -> Outcome:
        if not audit.local:
            return skipped(f"the engine at {audit.endpoint} is not on this host")
        return test(audit)
    return wrapped


def _file_owned(getter: Callable[[HostAudit], FileStat | None], what: str,
                groups: tuple[str, ...] = ("root",)) -> Callable[[HostAudit], Outcome]:
    def test(audit: HostAudit) -> Outcome:
        stat = getter(audit)
        if stat is None:
            return skipped(f"no {what}")
        owner = f"{stat.user or stat.uid}:{stat.group or stat.gid}"
        if stat.uid == 0 and (stat.gid == 0 or (stat.group or "") in groups):
            return passed(f"{stat.path} is owned by {owner}")
        return failed(f"{stat.path} is owned by {owner}")
    return _needs_local(test)


def _file_mode_at_most(getter: Callable[[HostAudit], FileStat | None], what: str,
                       allowed: int) -> Callable[[HostAudit], Outcome]:
    def test(audit: HostAudit) -> Outcome:
        stat = getter(audit)
        if stat is None:
            return skipped(f"no {what}")
        text = f"{stat.path} has mode {stat.mode:04o}"
        if stat.mode & ~allowed:
            return failed(f"{text}, more than {allowed:04o}")
        return passed(text)
    return _needs_local(test)


def _option_is(name: str, wanted: Any, describe: str) -> Callable[[HostAudit], Outcome]:
    def test(audit: HostAudit) -> Outcome:
        value = option(audit, name)
        if audit.daemon_args is None and not audit.daemon_config and value is None:
            return skipped(f"dockerd's command line and daemon.json could not be read ({name})")
        if value == wanted:
            return passed(f"{name} = {json.dumps(wanted)}")
        shown = "not set" if value is None else f"= {json.dumps(value)}"
        return failed(f"{describe}: {name} is {shown}")
    return test


def _tls_file(role: str) -> Callable[[HostAudit], FileStat | None]:
    return lambda audit: audit.tls_files.get(role)


def _both(*tests: Callable[[HostAudit], Outcome]) -> Callable[[HostAudit], Outcome]:
    """Fail if any fails; skip if all skip."""
    def test(audit: HostAudit) -> Outcome:
        outcomes = [t(audit) for t in tests]
        bad = [o.detail for o in outcomes if o.status is Status.FAIL]
        if bad:
            return failed("; ".join(bad))
        good = [o.detail for o in outcomes if o.status is Status.PASS]
        if good:
            return passed("; ".join(good))
        return outcomes[0]
    return test


# --- checks that need more than a factory -------------------------------------------------

def _tcp_tls(audit: HostAudit) -> Outcome:
    if not audit.local:
        return skipped(f"the listeners of the daemon at {audit.endpoint} cannot be seen from "
                       "here (saferun itself refuses tcp:// without mutual TLS)")
    tcp = [h for h in daemon_hosts(audit) if h.startswith("tcp://")]
    if not tcp:
        if audit.daemon_args is None:
            return skipped("dockerd's command line could not be read")
        return passed("dockerd listens on no TCP address")
    if option(audit, "tlsverify"):
        return passed(f"{', '.join(tcp)} with TLS and client-certificate verification")
    if option(audit, "tls"):
        return failed(f"{', '.join(tcp)} uses TLS without --tlsverify: any client may connect")
    return failed(f"{', '.join(tcp)} without TLS: anyone who reaches the port is root on the host")


def _userns(audit: HostAudit) -> Outcome:
    options = _security_options(audit)
    if "userns" in options:
        return passed("userns-remap is on (docker info lists userns)")
    if "rootless" in options:
        return passed("rootless daemon")
    return failed("container root is host root: no userns-remap and not rootless")


def _live_restore(audit: HostAudit) -> Outcome:
    if audit.info.get("LiveRestoreEnabled"):
        return passed("live-restore is enabled")
    swarm = (audit.info.get("Swarm") or {}).get("LocalNodeState")
    if swarm == "active":
        return passed("swarm mode is active (live-restore is incompatible with it)")
    return failed("live-restore is disabled: restarting dockerd stops every container")


def _icc(audit: HostAudit) -> Outcome:
    value = option(audit, "icc")
    if value is False:
        return passed("icc = false: containers on the default bridge cannot talk to each other")
    if audit.daemon_args is None and not audit.daemon_config:
        return skipped("dockerd's command line and daemon.json could not be read (icc)")
    return failed("icc is on (the default): every container on docker0 reaches every other")


def _default_ulimits(audit: HostAudit) -> Outcome:
    if daemon_flag_values(audit.daemon_args or (), "default-ulimit") or \
            audit.daemon_config.get("default-ulimits"):
        return passed("default ulimits are configured")
    if audit.daemon_args is None and not audit.daemon_config:
        return skipped("dockerd's command line and daemon.json could not be read")
    return failed("no default-ulimits: containers inherit dockerd's limits (nofile 1048576)")


def _log_driver(audit: HostAudit) -> str:
    return str(audit.info.get("LoggingDriver") or option(audit, "log-driver") or "json-file")


def _log_rotation(audit: HostAudit) -> Outcome:
    driver = _log_driver(audit)
    if driver == "json-file":
        opts = audit.daemon_config.get("log-opts") or {}
        flags = daemon_flag_values(audit.daemon_args or (), "log-opt")
        if "max-size" in opts or any(f.startswith("max-size=") for f in flags):
            return passed("json-file with max-size")
        if audit.daemon_args is None and not audit.daemon_config and audit.local:
            return skipped("daemon.json could not be read")
        return failed("json-file without max-size: container logs grow until the disk is full")
    if driver == "local":
        return passed("local driver (rotates by default)")
    if driver == "none":
        return failed("log driver 'none': no container logs are kept")
    return passed(f"log driver {driver} (rotation is the log system's)")


def _remote_logging(audit: HostAudit) -> Outcome:
    driver = _log_driver(audit)
    if driver in ("json-file", "local", "none"):
        return failed(f"log driver {driver} keeps logs only on this host")
    return passed(f"log driver {driver}")


def _security_options(audit: HostAudit) -> set[str]:
    names = set()
    for entry in audit.info.get("SecurityOptions") or []:
        for part in str(entry).split(","):
            key, _, value = part.partition("=")
            if key == "name":
                names.add(value)
    return names


def _seccomp(audit: HostAudit) -> Outcome:
    daemon = "seccomp" in _security_options(audit)
    if audit.kernel_seccomp is False:
        return failed("the kernel has no seccomp (no Seccomp: line in /proc/self/status)")
    if not daemon:
        return failed("dockerd does not report seccomp support (built without libseccomp?)")
    profile = next((p.partition("profile=")[2] for e in audit.info.get("SecurityOptions") or []
                    for p in str(e).split(",") if p.startswith("profile=")), "default")
    if profile == "unconfined":
        return failed("dockerd's default seccomp profile is 'unconfined'")
    return passed(f"kernel and daemon support seccomp (daemon profile: {profile})")


def _kernel_lsm_text(audit: HostAudit) -> str:
    if audit.kernel_lsms is not None:
        return "kernel LSMs: " + (",".join(audit.kernel_lsms) or "none")
    return "kernel LSM list unreadable (securityfs not mounted)"


def _mac_lsm(audit: HostAudit) -> Outcome:
    daemon = _security_options(audit)
    kernel: set[str] = set()
    if audit.kernel_lsms is not None:
        kernel |= {lsm for lsm in audit.kernel_lsms if lsm in ("apparmor", "selinux")}
    if audit.apparmor_enabled:
        kernel.add("apparmor")
    if audit.selinux_enabled:
        kernel.add("selinux")
    both = kernel & daemon
    text = f"{_kernel_lsm_text(audit)}; daemon: {', '.join(sorted(daemon)) or 'none'}"
    if both:
        return passed(f"{' and '.join(sorted(both))} active ({text})")
    if kernel:
        return failed(f"the kernel has {', '.join(sorted(kernel))} but dockerd does not use it "
                      f"({text})")
    if not audit.local and "apparmor" not in daemon and "selinux" not in daemon:
        return failed(f"dockerd reports neither AppArmor nor SELinux ({text})")
    return failed(f"no AppArmor and no SELinux in this kernel ({text})")


_SANDBOXES = {"runsc": "gVisor", "gvisor": "gVisor", "kata": "Kata", "kata-runtime": "Kata",
              "io.containerd.kata.v2": "Kata", "kata-qemu": "Kata", "kata-clh": "Kata"}


def _runtimes(audit: HostAudit) -> Outcome:
    names = sorted((audit.info.get("Runtimes") or {}).keys())
    sandboxes = sorted({_SANDBOXES[n] for n in names if n in _SANDBOXES})
    default = audit.info.get("DefaultRuntime", "?")
    text = f"registered: {', '.join(names) or 'none'}; default: {default}"
    if sandboxes:
        return passed(f"{', '.join(sandboxes)} available ({text})")
    return failed(f"no sandboxed runtime (gVisor or Kata) is registered ({text})")


def parse_version(text: str) -> tuple[int, int] | None:
    parts = text.split("+")[0].split("-")[0].split(".")
    if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
        return int(parts[0]), int(parts[1])
    return None


def _engine_version(audit: HostAudit) -> Outcome:
    text = str(audit.info.get("ServerVersion") or "")
    version = parse_version(text)
    oldest = ".".join(map(str, OLDEST_SUPPORTED_ENGINE))
    if version is None:
        return skipped(f"engine version '{text}' not understood")
    if version < OLDEST_SUPPORTED_ENGINE:
        return failed(f"Docker Engine {text} is older than {oldest}, the oldest release line "
                      f"still patched upstream (as of {OLDEST_SUPPORTED_AS_OF})")
    return passed(f"Docker Engine {text} (oldest supported: {oldest})")


def _cgroup_version(audit: HostAudit) -> Outcome:
    version = str(audit.info.get("CgroupVersion") or "1")
    if version == "2":
        return passed("cgroup v2")
    return failed("cgroup v1: no unified hierarchy, weaker delegation and no PSI/memory.high")


def _daemon_json_valid(audit: HostAudit) -> Outcome:
    if audit.daemon_json is None:
        return skipped(f"{audit.daemon_json_path} does not exist")
    if audit.daemon_config_error:
        return failed(f"{audit.daemon_json_path}: {audit.daemon_config_error}")
    return passed(f"{audit.daemon_json_path} parses")


CHECKS: tuple[Check, ...] = (
    Check("docker-socket-ownership", "Docker socket is owned by root:docker", ("3.15",),
          Severity.MEDIUM, "chown root:docker /var/run/docker.sock",
          _file_owned(lambda a: a.socket, "local Docker socket", groups=("docker",))),
    Check("docker-socket-mode", "Docker socket permissions are 660 or stricter", ("3.16",),
          Severity.HIGH, "chmod 660 /var/run/docker.sock",
          _file_mode_at_most(lambda a: a.socket, "local Docker socket", 0o660)),
    Check("daemon-json-valid", "daemon.json is valid JSON", (), Severity.HIGH,
          "fix the syntax error (dockerd refuses to start with it); `saferun daemon-config "
          "--merge` prints a valid file", _needs_local(_daemon_json_valid)),
    Check("daemon-json-ownership", "daemon.json is owned by root:root", ("3.17",),
          Severity.MEDIUM, "chown root:root /etc/docker/daemon.json",
          _file_owned(lambda a: a.daemon_json, "daemon.json")),
    Check("daemon-json-mode", "daemon.json permissions are 644 or stricter", ("3.18",),
          Severity.MEDIUM, "chmod 644 /etc/docker/daemon.json",
          _file_mode_at_most(lambda a: a.daemon_json, "daemon.json", 0o644)),
    Check("tls-ca-cert-file", "TLS CA certificate is root:root and 444 or stricter",
          ("3.9", "3.10"), Severity.MEDIUM,
          "chown root:root CA; chmod 444 CA (the --tlscacert file)",
          _both(_file_owned(_tls_file("ca"), "TLS CA certificate configured"),
                _file_mode_at_most(_tls_file("ca"), "TLS CA certificate configured", 0o444))),
    Check("tls-server-cert-file", "TLS server certificate is root:root and 444 or stricter",
          ("3.11", "3.12"), Severity.MEDIUM, "chown root:root CERT; chmod 444 CERT (--tlscert)",
          _both(_file_owned(_tls_file("cert"), "TLS server certificate configured"),
                _file_mode_at_most(_tls_file("cert"), "TLS server certificate configured", 0o444))),
    Check("tls-server-key-file", "TLS server key is root:root and 400", ("3.13", "3.14"),
          Severity.HIGH, "chown root:root KEY; chmod 400 KEY (--tlskey)",
          _both(_file_owned(_tls_file("key"), "TLS server key configured"),
                _file_mode_at_most(_tls_file("key"), "TLS server key configured", 0o400))),
    Check("tcp-without-tls", "A TCP listener uses TLS with client verification", ("2.7",),
          Severity.CRITICAL, "listen on unix:// only, or add --tlsverify --tlscacert --tlscert "
          "--tlskey (daemon.json: \"tlsverify\": true, ...)", _tcp_tls),
    Check("userns-remap", "User-namespace remapping is enabled", ("2.9",), Severity.MEDIUM,
          "daemon.json: \"userns-remap\": \"default\" (saferun daemon-config), then restart "
          "dockerd; or run Docker rootless", _userns),
    Check("live-restore", "Live restore is enabled", ("2.15",), Severity.LOW,
          "daemon.json: \"live-restore\": true", _live_restore),
    Check("icc-disabled", "Inter-container communication on the default bridge is off", ("2.2",),
          Severity.MEDIUM, "daemon.json: \"icc\": false (user-defined networks are unaffected)",
          _icc),
    Check("no-new-privileges-default", "Containers cannot gain privileges by default", ("2.14",),
          Severity.MEDIUM, "daemon.json: \"no-new-privileges\": true",
          _option_is("no-new-privileges", True, "containers started without saferun may gain "
                     "privileges through setuid binaries")),
    Check("default-ulimits", "Default ulimits are configured", ("2.8",), Severity.LOW,
          "daemon.json: \"default-ulimits\": {\"nofile\": {\"Name\": \"nofile\", \"Soft\": 1024, "
          "\"Hard\": 4096}}", _default_ulimits),
    Check("log-rotation", "Container logs are rotated", ("2.13",), Severity.MEDIUM,
          "daemon.json: \"log-driver\": \"local\", or json-file with \"log-opts\": "
          "{\"max-size\": \"10m\", \"max-file\": \"3\"}", _log_rotation),
    Check("remote-logging", "Logs are shipped off the host", ("2.13",), Severity.LOW,
          "use a remote log driver (syslog, journald forwarding, fluentd, gelf...)",
          _remote_logging),
    Check("seccomp-support", "Kernel and daemon support seccomp", ("2.17",), Severity.HIGH,
          "use a kernel with CONFIG_SECCOMP_FILTER and a dockerd built with libseccomp; do not "
          "set a daemon-wide seccomp-profile of unconfined", _seccomp),
    Check("mac-lsm-support", "AppArmor or SELinux is active in the kernel and the daemon",
          ("1.2.1", "5.2", "5.3"), Severity.MEDIUM,
          "boot a kernel with AppArmor (Debian/Ubuntu: security=apparmor) or SELinux "
          "(dockerd --selinux-enabled); meanwhile saferun's seccomp profile is the only "
          "syscall-level confinement", _mac_lsm),
    Check("sandboxed-runtime", "A sandboxed runtime (gVisor or Kata) is registered", (),
          Severity.LOW, "apt-get install runsc, then saferun daemon-config --runtime gvisor "
          "--merge /etc/docker/daemon.json --write", _runtimes),
    Check("engine-version", "Docker Engine is a supported release", ("1.2.2",), Severity.HIGH,
          "upgrade Docker Engine to a maintained release line", _engine_version),
    Check("cgroup-v2", "The host uses cgroup v2", (), Severity.LOW,
          "boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2)", _cgroup_version),
)


def run_checks(audit: HostAudit) -> list[Finding]:
    return [Finding(check, check.test(audit)) for check in CHECKS]


def exit_code(findings: list[Finding], fail_on: Severity) -> int:
    """0 clean, 1 when a failed check's severity is at or above `fail_on`."""
    return 1 if any(f.failed and f.check.severity >= fail_on for f in findings) else 0


def to_json(findings: list[Finding], audit: HostAudit) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "benchmark": BENCHMARK,
        "endpoint": audit.endpoint,
        "local": audit.local,
        "summary": {status.value: sum(f.outcome.status is status for f in findings)
                    for status in Status},
        "checks": [
            {"id": f.check.id, "title": f.check.title, "cis": list(f.check.cis),
             "severity": f.check.severity.label, "status": f.outcome.status.value,
             "detail": f.outcome.detail, "fix": f.check.fix if f.failed else None}
            for f in findings
        ],
    }


def format_json(findings: list[Finding], audit: HostAudit) -> str:
    return json.dumps(to_json(findings, audit), indent=2)


def format_table(findings: list[Finding], audit: HostAudit) -> str:
    rows = [("STATUS", "SEVERITY", "CHECK", "CIS", "DETAIL")]
    for f in findings:
        rows.append((f.outcome.status.value.upper(), f.check.severity.label, f.check.id,
                     ",".join(f.check.cis) or "-", f.outcome.detail))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
             for r in rows]
    fixes = [f"  {f.check.id}: {f.check.fix}" for f in findings if f.failed]
    counts = to_json(findings, audit)["summary"]
    lines.append("")
    lines.append(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped "
                 f"({BENCHMARK}; engine {audit.endpoint})")
    if fixes:
        lines += ["", "fixes:", *fixes]
    return "\n".join(lines)


DoctorFormatter = Callable[[list[Finding], HostAudit], str]

# No sarif: a host audit has no source file or container to point a result at.
DOCTOR_FORMATS: FormatterTable[DoctorFormatter] = FormatterTable("the doctor report", {
    OutputFormat.TABLE: format_table,
    OutputFormat.JSON: format_json,
    OutputFormat.SARIF: UNSUPPORTED,
})
