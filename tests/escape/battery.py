"""The escape battery: build the probe image, run it three ways, parse and tabulate.

Shared by the CI test (tests/escape/test_escape_battery.py) and the script that writes the
docs page (tests/escape/run_battery.py), so the table users read is produced by the code CI
runs. The probe (escape_probe.c) only ever runs inside a container: every function here
starts it through `docker run` or `saferun run`, never directly.

The three ways:
- `docker`: plain `docker run` with docker's defaults (root in the container, docker's
  default capabilities and seccomp profile, no PIDs/memory limit).
- `saferun`: `saferun run` of a manifest holding only app.name, app.image and app.command.
- `saferun-gvisor`: the same manifest with `[security] runtime = "gvisor"`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BASE_IMAGE = "saferun-test/busybox:1"
HOST_TOKEN = b"saferun-escape-host-listener\n"
LINE = re.compile(r"^(?P<name>[a-z0-9_]+): (?P<verdict>blocked|ALLOWED) \((?P<detail>.*)\)$")

# The attempts, in the probe's order, with what each one tries (the table's second column).
# The probe's own --list must give exactly these names (checked by the test).
ATTEMPTS: Mapping[str, str] = {
    "write_root": "create a file in /",
    "remount_root_rw": "`mount -o remount,rw /`",
    "mount_tmpfs": "mount a tmpfs",
    "mount_proc": "mount a new proc",
    "unshare_user": "`unshare(CLONE_NEWUSER)`",
    "unshare_mount": "`unshare(CLONE_NEWNS)`",
    "unshare_net": "`unshare(CLONE_NEWNET)`",
    "ptrace_other": "`PTRACE_ATTACH` to another process",
    "setuid_root": "run a setuid-root binary as a non-root user: euid 0?",
    "chown_other": "chown a file of another user",
    "chmod_other": "chmod 6777 a file of another user",
    "raw_socket": "`socket(AF_INET, SOCK_RAW)`",
    "packet_socket": "`socket(AF_PACKET, SOCK_RAW)`",
    "init_module": "load a kernel module (`init_module`)",
    "finit_module": "load a kernel module (`finit_module`)",
    "keyctl": "`keyctl(JOIN_SESSION_KEYRING)`",
    "bpf": "load a BPF program",
    "perf_event_open": "`perf_event_open` (software counter)",
    "dev_mem": "read /dev/mem",
    "dev_kmsg": "read /dev/kmsg",
    "proc_kcore": "read /proc/kcore",
    "dmesg": "read the kernel log (`syslog(2)`)",
    "proc_sys_hostname": "write /proc/sys/kernel/hostname",
    "proc_sys_core_pattern": "open /proc/sys/kernel/core_pattern for writing",
    "sysrq_trigger": "open /proc/sysrq-trigger for writing",
    "sys_uevent_helper": "open /sys/kernel/uevent_helper for writing",
    "sethostname": "`sethostname`",
    "reboot": "`reboot(LINUX_REBOOT_CMD_CAD_OFF)`",
    "clock_settime": "`clock_settime(CLOCK_REALTIME)`",
    "mknod_block": "mknod a block device (8:0)",
    "docker_socket": "find and connect to docker.sock / containerd.sock",
    "fork_bomb": "fork 1000 processes (PIDs limit)",
    "memory_bomb": "allocate and touch 1 GiB (memory limit, OOM kill)",
    "fd_exhaustion": "open 16384 descriptors (nofile limit)",
    "host_loopback": "reach a listener on the host's 127.0.0.1",
    "gateway_localport": "reach that 127.0.0.1-only port through the bridge gateway",
    "host_interfaces": "see the host's network interfaces",
    "arp_gateway": "raw ARP on the host's bridge",
}

CONFIGS: Mapping[str, str] = {
    "docker": "`docker run` (defaults)",
    "saferun": "`saferun run` (defaults)",
    "saferun-gvisor": "`saferun run`, gVisor",
}

# Where gVisor's column differs from runc's, and why. GVISOR_ALLOWED lists the attempts
# gVisor lets through (the test requires exactly these); GVISOR_NOTES explains blocked
# attempts that end differently. Both are printed on the docs page.
GVISOR_ALLOWED: Mapping[str, str] = {
    "mknod_block": (
        "gVisor's own kernel (the Sentry) creates the block-device node in its in-memory "
        "/tmp although the container holds no CAP_MKNOD (the runsc release measured "
        "here does not refuse it); the node leads nowhere: opening it fails with ENXIO, "
        "because the Sentry has no device 8:0 and never passes device nodes to the host "
        "kernel."
    ),
    "fork_bomb": (
        "gVisor does not apply resources.pids to the app's own processes: guest tasks live "
        "in the Sentry, and the host's PIDs limit only counts the sandbox's host threads and "
        "stub processes. saferun sets that host limit to resources.pids x 4 (a smaller one "
        "killed the sandbox after a few dozen exec'd processes), so the 1000 forks succeed "
        "inside the sandbox. The host stays protected: the host PIDs limit bounds the "
        "sandbox's threads and the memory limit bounds the sandbox as a whole; the "
        "container then exits with 2. Use runc where an exact process limit matters."
    ),
}
GVISOR_NOTES: Mapping[str, str] = {
    "memory_bomb": (
        "the memory limit applies to the whole sandbox on the host, so the kernel's OOM "
        "killer ends the sandbox (exit 137, OOMKilled) rather than the allocating process "
        "inside it."
    ),
}


@dataclass(frozen=True)
class Result:
    verdict: str  # "blocked" or "ALLOWED"
    detail: str

    @property
    def blocked(self) -> bool:
        return self.verdict == "blocked"


@dataclass
class BatteryRun:
    """The whole battery in one configuration, with what the host saw meanwhile."""

    config: str
    argvs: list[list[str]]
    exit_codes: dict[str, int]  # per container group: its first attempt -> exit code
    stdout: str
    stderr: str
    results: dict[str, Result]
    mem_available_before: int  # kB, the host's /proc/meminfo MemAvailable
    mem_available_min: int
    mem_available_after: int
    host_tasks_before: int  # the host's task count (/proc/loadavg), before and at most
    host_tasks_max: int
    listener_connections: int  # connections the host's 127.0.0.1 listener accepted
    seconds: float = 0.0
    malformed: list[str] = field(default_factory=list)


def parse(output: str) -> tuple[dict[str, Result], list[str]]:
    """{name: Result} from the probe's lines, and the lines that are not result lines.

    A name printed twice is a malformed line (each attempt prints exactly one).
    """
    results: dict[str, Result] = {}
    malformed = []
    for line in output.splitlines():
        match = LINE.match(line)
        if match is None or match["name"] in results:
            malformed.append(line)
            continue
        results[match["name"]] = Result(match["verdict"], match["detail"])
    return results, malformed


def build_image(tag: str) -> str:
    """gcc -static the probe and the setuid helper, then `docker build` the image."""
    if shutil.which("gcc") is None:
        raise RuntimeError("gcc is needed to build the escape probe")
    with tempfile.TemporaryDirectory(prefix="saferun-escape-") as work:
        context = Path(work)
        for source in ("escape_probe.c", "suid_helper.c"):
            subprocess.run(
                ["gcc", "-static", "-O2", "-Wall", "-o", str(context / Path(source).stem),
                 str(HERE / source)],
                check=True, capture_output=True,
            )
        shutil.copy(HERE / "Dockerfile", context / "Dockerfile")
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # the classic builder needs no buildx
        result = subprocess.run(["docker", "build", "-q", "-t", tag, str(context)],
                                capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"docker build of {tag} failed: {result.stderr}")
    return tag


def remove_image(tag: str) -> None:
    subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)


def probe_names(image: str, label: tuple[str, str]) -> list[str]:
    """The attempt names the probe in `image` knows (`escape_probe --list`, in a container)."""
    result = subprocess.run(
        ["docker", "run", "--rm", "--label", f"{label[0]}={label[1]}", "--network", "none",
         image, "/bin/escape_probe", "--list"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return result.stdout.split()


@contextmanager
def host_listener() -> Iterator[tuple[int, list[int]]]:
    """A TCP listener on the HOST's 127.0.0.1 that greets each connection with HOST_TOKEN.

    Yields (port, [connections accepted]); the container must not be able to reach it.
    """
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    accepted = [0]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted[0] += 1
            with conn:
                conn.sendall(HOST_TOKEN)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def mem_available_kb() -> int:
    """The host's MemAvailable, read from the host's /proc/meminfo (a read, not a probe)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


@contextmanager
def mem_sampler() -> Iterator[list[int]]:
    """Samples the host's MemAvailable every 50 ms while the battery runs."""
    samples = [mem_available_kb()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            samples.append(mem_available_kb())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join(timeout=5)


def write_manifest(path: Path, image: str, command: list[str], labels: Mapping[str, str],
                   runtime: str | None = None) -> Path:
    """A manifest with only app.name/image/command (plus clean-up labels, which weaken
    nothing) and, for gVisor, `[security] runtime`."""
    document: dict[str, object] = {
        "app": {
            "name": "escape-battery",
            "image": image,
            "command": command,
            "labels": dict(labels),
        }
    }
    if runtime:
        document["security"] = {"runtime": runtime}
    path.write_text(tomli_w.dumps(document))
    return path


def config_argv(config: str, image: str, port: int, labels: Mapping[str, str],
                workdir: Path, names: tuple[str, ...], python: str = sys.executable) -> list[str]:
    """The command that runs the attempts `names` in `config` (see the module docstring).

    No --rm: the runner inspects the container afterwards (exit code, OOMKilled) and
    removes it itself.
    """
    probe = ["/bin/escape_probe", "--port", str(port), *names]
    if config == "docker":
        flags = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
        return ["docker", "run", *flags, image, *probe]
    runtime = "gvisor" if config == "saferun-gvisor" else None
    manifest = write_manifest(workdir / f"{config}.toml", image, probe, labels, runtime)
    return [python, "-m", "saferun", "run", str(manifest)]


# The bombs run in containers of their own: under gVisor they end the whole sandbox, and a
# battery that lost its container would lose every later line with it.
GROUPS: tuple[tuple[str, ...], ...] = (
    tuple(name for name in ATTEMPTS if name not in ("fork_bomb", "memory_bomb")),
    ("fork_bomb",),
    ("memory_bomb",),
)


def _host_tasks() -> int:
    """Threads on the host right now (the total in /proc/loadavg's fourth field)."""
    return int(Path("/proc/loadavg").read_text().split()[3].split("/")[1])


def _no_line(name: str, state: Mapping[str, object], tasks_rise: int) -> Result:
    """The verdict for an attempt whose container ended without printing its line.

    Only two endings count as blocked, and only with evidence from the host: the kernel's
    OOM killer ended the container (docker's OOMKilled, or the kernel log's record of an
    OOM kill in the container's memory cgroup), or a fork bomb's container died while the
    host's task count rose by less than the bomb's size. Anything else is ALLOWED: an
    attempt that could not be judged must never pass as blocked.
    """
    code = state.get("ExitCode")
    if state.get("OOMKilled"):
        return Result("blocked", f"no line: the whole container was OOM-killed (exit {code})")
    if memcg_oom_killed(str(state.get("Id", ""))):
        # dockerd 20.10 learns of an OOM kill from an event that can lose the race with the
        # task's exit under load, leaving OOMKilled false; the kernel's own record cannot.
        return Result("blocked", f"no line: the whole container was OOM-killed (exit {code}; "
                                 f"kernel log: oom_memcg of the container)")
    if name == "fork_bomb" and tasks_rise < FORK_BOUND:
        return Result("blocked", f"no line: the whole container died at the PIDs limit "
                                 f"(exit {code}); host tasks rose by {tasks_rise} at most")
    return Result("ALLOWED", f"no verdict: the container ended with exit {code}")


FORK_BOUND = 1000  # escape_probe.c's FORK_BOUND


def memcg_oom_killed(container_id: str) -> bool:
    """Whether the kernel log records an OOM kill in this container's memory cgroup.

    The kernel prints `oom_memcg=/docker/<id>` (cgroup v1, cgroupfs driver) or
    `oom_memcg=/system.slice/docker-<id>.scope` (systemd driver) for each memcg OOM kill.
    An unreadable log is no evidence.
    """
    if not re.fullmatch(r"[0-9a-f]{64}", container_id):
        return False
    done = subprocess.run(["dmesg"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return False
    return re.search(rf"oom_memcg=\S*docker[/-]{container_id}\b", done.stdout) is not None


def run_config(config: str, image: str, label: tuple[str, str], workdir: Path,
               python: str = sys.executable, timeout: float = 600) -> BatteryRun:
    """Run the whole battery once in `config`, with the host listener and samplers."""
    argvs, stdout, stderr = [], [], []
    results: dict[str, Result] = {}
    malformed: list[str] = []
    exit_codes: dict[str, int] = {}
    tasks_before = _host_tasks()
    tasks_max = tasks_before
    start = time.monotonic()
    with host_listener() as (port, accepted), mem_sampler() as samples:
        for group in GROUPS:
            run_id = uuid.uuid4().hex[:12]
            labels = {label[0]: label[1], "saferun-escape-run": run_id}
            argv = config_argv(config, image, port, labels, workdir, group, python)
            argvs.append(argv)
            group_tasks = [tasks_before]
            with _task_sampler(group_tasks):
                done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                      check=False)
            tasks_max = max(tasks_max, *group_tasks)
            stdout.append(done.stdout)
            stderr.append(done.stderr)
            found, bad = parse(done.stdout)
            malformed += bad
            state = _container_state(run_id)
            code = state.get("ExitCode")
            exit_codes[group[0]] = code if isinstance(code, int) else done.returncode
            for name in group:
                results[name] = found.get(name) or _no_line(
                    name, state, max(group_tasks) - group_tasks[0])
    seconds = time.monotonic() - start
    return BatteryRun(config=config, argvs=argvs, exit_codes=exit_codes,
                      stdout="".join(stdout), stderr="".join(stderr), results=results,
                      mem_available_before=samples[0], mem_available_min=min(samples),
                      mem_available_after=mem_available_kb(), host_tasks_before=tasks_before,
                      host_tasks_max=tasks_max, listener_connections=accepted[0],
                      seconds=seconds, malformed=malformed)


@contextmanager
def _task_sampler(samples: list[int]) -> Iterator[None]:
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.01):
            samples.append(_host_tasks())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _container_state(run_id: str) -> dict[str, object]:
    """The State of the container labelled `run_id` (plus its Id), which is then removed."""
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=saferun-escape-run={run_id}"],
                         capture_output=True, text=True, check=False).stdout.split()
    if not ids:
        return {}
    inspected = subprocess.run(["docker", "inspect", "--format", "{{json .}}", ids[0]],
                               capture_output=True, text=True, check=False)
    subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)
    try:
        container = json.loads(inspected.stdout)
    except json.JSONDecodeError:
        return {}
    if not isinstance(container, dict) or not isinstance(container.get("State"), dict):
        return {}
    return {**container["State"], "Id": container.get("Id", "")}


def run_all(image: str, label: tuple[str, str], python: str = sys.executable,
            configs: tuple[str, ...] = tuple(CONFIGS)) -> dict[str, BatteryRun]:
    with tempfile.TemporaryDirectory(prefix="saferun-escape-") as work:
        return {config: run_config(config, image, label, Path(work), python)
                for config in configs}


# ---- the docs table -------------------------------------------------------------------

_ERRNO = re.compile(r"\b(E[A-Z0-9]{2,})\b")
_SIGNAL = re.compile(r"signal \d+ \(([A-Z0-9]+)\)")
_PHRASES = (
    ("no docker.sock", "no socket present"),
    ("reads 0 bytes (masked)", "masked"),
    ("own interfaces only", "own interfaces only"),
    ("returned nothing", "empty"),
    ("but not to the host", "not the host's"),
    ("euid=65534", "euid stays 65534"),
    ("whole container was OOM-killed", "whole container OOM-killed"),
    ("whole container died at the PIDs limit", "whole container died at the limit"),
)


def reason(result: Result) -> str:
    """A stable short reason for a table cell: the errno or signal, never a pid or a count."""
    signal = _SIGNAL.search(result.detail)
    if signal:
        return f"SIG{signal.group(1)}"
    errnos = _ERRNO.findall(result.detail)
    if errnos:
        return errnos[-1]
    for needle, phrase in _PHRASES:
        if needle in result.detail:
            return phrase
    return ""


def cell(result: Result | None) -> str:
    if result is None:
        return "no result"
    if not result.blocked:
        return "**ALLOWED**"
    why = reason(result)
    return f"blocked ({why})" if why else "blocked"


TABLE_BEGIN = "<!-- escape-battery:table:begin (generated; compared by the test) -->"
TABLE_END = "<!-- escape-battery:table:end -->"


def render_table(runs: Mapping[str, BatteryRun]) -> str:
    """The Markdown table (between the markers), a pure function of the verdicts."""
    head = ["attempt", "what it tries", *(CONFIGS[c] for c in runs)]
    lines = [TABLE_BEGIN, "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, what in ATTEMPTS.items():
        cells = [cell(run.results.get(name)) for run in runs.values()]
        lines.append("| " + " | ".join([f"`{name}`", what, *cells]) + " |")
    totals = ["**allowed**", ""]
    for run in runs.values():
        allowed = sum(1 for r in run.results.values() if not r.blocked)
        totals.append(f"**{allowed} of {len(ATTEMPTS)}**")
    lines.append("| " + " | ".join(totals) + " |")
    lines.append(TABLE_END)
    return "\n".join(lines)


def extract_table(page: str) -> str:
    start = page.index(TABLE_BEGIN)
    end = page.index(TABLE_END) + len(TABLE_END)
    return page[start:end]


def host_summary(runs: Mapping[str, BatteryRun]) -> list[str]:
    """What the host saw during each configuration's run (memory, tasks, the listener)."""
    lines = []
    for config, run in runs.items():
        dip = (run.mem_available_before - run.mem_available_min) / 1024
        lines.append(
            f"- {CONFIGS[config]}: host MemAvailable {run.mem_available_before / 1024:.0f} MiB "
            f"before, lowest {run.mem_available_min / 1024:.0f} MiB during the run "
            f"(dip {dip:.0f} MiB), {run.mem_available_after / 1024:.0f} MiB after; host tasks "
            f"{run.host_tasks_before} before, at most {run.host_tasks_max} "
            f"(+{run.host_tasks_max - run.host_tasks_before}); connections to the host's "
            f"127.0.0.1 listener: {run.listener_connections}; container exit codes "
            f"{', '.join(f'{k}={v}' for k, v in run.exit_codes.items())}; {run.seconds:.1f} s"
        )
    return lines
