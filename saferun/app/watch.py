"""`saferun watch`: report, as they happen, what saferun's containers try and are denied.

The sources (saferun.engine.watch_sources) feed one bounded queue from their threads; this
loop attributes each item to a watched container (its cgroup names the container id; a
process that is already gone is found through the fork events of its ancestors), turns
it into an event (saferun.learn.watch, pure), folds repeats, writes the line, counts it
for Prometheus and applies `--on-denial`. Drift is `verify`'s comparison, repeated.
"""

from __future__ import annotations

import re
import signal
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from saferun.errors import RequirementUnmet
from saferun.learn import watch as core
from saferun.learn.watch import Event, Watched

APP_LABEL = "io.saferun.app"
PID_CACHE = 65536  # pids remembered for attribution: bounded memory on a busy host
UNKNOWN_CACHE = 4096
UNKNOWN_WAIT_S = 2.0  # how long a record of a vanished process waits for its fork event


@dataclass(frozen=True)
class WatchOptions:
    containers: tuple[str, ...] = ()
    app: str | None = None
    every: bool = False
    output_format: str = "text"
    metrics: tuple[str, int] | None = None
    on_denial: Mapping[str, str] = field(default_factory=dict)  # kind -> stop|kill|pause
    window: float = 1.0
    drift_interval: float = 30.0
    duration: float | None = None  # stop after this many seconds (tests, benchmarks)
    syslog: str | None = None  # the local syslog socket lines go to, instead of stdout


def visibility(kernel_logs_errno: bool = False) -> list[str]:
    """What this host lets watch see, said at start (never silently missing)."""
    errno_note = ("errno refusals are logged (the filter carries SECCOMP_FILTER_FLAG_LOG)"
                  if kernel_logs_errno else
                  "a call refused with errno is NOT seen: Docker 20.10 drops the profile's "
                  "SECCOMP_FILTER_FLAG_LOG, so the kernel does not log it; set [seccomp] "
                  "report = \"kill\" (refused-by-name calls kill the caller and are logged) or "
                  "mode = \"log\" (calls outside the list are let through and logged)")
    return [
        "syscall-denied/syscall-unlisted: kernel audit records (type 1326) on the audit "
        f"netlink group; {errno_note}",
        "write-refused/permission-refused/capability-refused: only when the app prints the "
        "error (Read-only file system, Permission denied, Operation not permitted) to its "
        "output; a refusal the app keeps silent is NOT seen (no audit exit rules are loaded: "
        "audit is off on this host and watch does not change it)",
        "exec-unlisted: the kernel's process connector (every exec); judged only for "
        "manifests with [apparmor] executables; a process gone before /proc/PID/exe was read "
        "is reported as '?'",
        "AppArmor denials: NOT seen (this kernel has no AppArmor)" ,
        "oom-kill, restart, docker-exec: the engine's /events stream; drift: verify's "
        "comparison every interval",
    ]


class Metrics:
    """Prometheus counters per container and kind (prometheus_client)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry()
        self.events = Counter("saferun_watch_events", "Events seen, by container and kind "
                              "(each attempt counted, repeats included)",
                              ["container", "app", "kind"], registry=self.registry)
        self.dropped = Counter("saferun_watch_dropped", "Records lost before watch read them",
                               ["source"], registry=self.registry)
        self.watched = Gauge("saferun_watch_containers", "Containers being watched",
                             registry=self.registry)

    def count(self, event: Event) -> None:
        if event.kind == core.DROPPED:
            self.dropped.labels(event.source).inc(event.count)
        elif event.kind != core.NOTICE:
            self.events.labels(event.container, event.app, event.kind).inc(event.count)


def _watched_from(data: dict[str, Any], facts: Any) -> Watched:
    """A container's context from `docker inspect` and, when found, its manifest."""
    from saferun.app.verify import DIR_LABEL, SHA_LABEL, find_manifest

    labels = (data.get("Config") or {}).get("Labels") or {}
    host = data.get("HostConfig") or {}
    writable = tuple(sorted({*(host.get("Tmpfs") or {}),
                             *(m.get("Destination", "") for m in data.get("Mounts") or []
                               if m.get("RW"))}))
    memory = int(host.get("Memory") or 0)
    watched = Watched(
        container_id=str(data.get("Id", "")), name=str(data.get("Name", "")).lstrip("/"),
        app=labels.get(APP_LABEL, ""), writable=writable,
        tmpfs=tuple(sorted(host.get("Tmpfs") or {})),
        user=str((data.get("Config") or {}).get("User") or ""),
        memory=f"{memory // (1 << 20)}m" if memory else "")
    if SHA_LABEL not in labels or DIR_LABEL not in labels:
        return watched
    path, _ = find_manifest(labels[DIR_LABEL], labels[SHA_LABEL])
    if path is None:
        return watched
    from saferun.errors import SaferunError
    from saferun.inputs.loader import load_manifest
    from saferun.profiles.seccomp import listed_names

    try:
        manifest = load_manifest(path)
        allowed = listed_names(manifest.seccomp, capabilities=frozenset(manifest.capabilities.add),
                               native_arch=facts.architecture, runtime=manifest.security.runtime)
    except SaferunError:
        return Watched(**{**watched.__dict__, "manifest": str(path)})
    executables = manifest.apparmor.executables
    return Watched(**{**watched.__dict__, "manifest": str(path), "allowed": allowed,
                      "learned": manifest.seccomp.learned is not None,
                      "executables": tuple(executables) if executables is not None else None})


class Watcher:
    """The loop: items in, events out. `write` gets each formatted line and its kind."""

    def __init__(self, options: WatchOptions, write: Callable[[str, str], None]) -> None:
        from saferun.engine import watch_sources as sources
        from saferun.engine.api import EngineSession, local_socket_path
        from saferun.engine.host import probe_host_facts
        from saferun.profiles.seccomp import load_data

        socket_path = local_socket_path()
        if socket_path is None:
            raise RequirementUnmet(
                "saferun watch reads the kernel's records of the containers' processes, so it "
                "runs on the Docker host itself, against its local socket",
                fix="unset DOCKER_HOST/DOCKER_CONTEXT and run watch on the engine's host")
        sources.check_watch_possible()
        self.options = options
        self._sources = sources
        self._socket = socket_path
        self._write = write
        self._format = core.FORMATTERS[options.output_format]
        self.session = EngineSession()
        self.facts, _ = probe_host_facts(self.session)
        self._capability_calls = load_data().capabilities
        self.feed = sources.Feed()
        self.limiter = core.Limiter(window=options.window)
        self.metrics = Metrics()
        self.watched: dict[str, Watched] = {}
        self._pids: OrderedDict[int, str | None] = OrderedDict()  # pid -> container id
        self._parents: OrderedDict[int, int] = OrderedDict()
        self._not_ours: OrderedDict[str, None] = OrderedDict()
        self._responded: set[str] = set()
        self._following: set[str] = set()  # containers whose output is being read
        self._drift_seen: dict[str, frozenset[tuple[str, str]]] = {}
        self.counts: dict[str, int] = {}
        self._unattributed: list[tuple[Any, float, int, float]] = []
        self._lost_unattributed = 0
        self.started = time.time()
        self._engine_up = False  # the event stream is connected
        self._engine_lost = False  # it was lost at least once

    # --- targets ---------------------------------------------------------------------------

    def _wanted(self, data: dict[str, Any]) -> bool:
        labels = (data.get("Config") or {}).get("Labels") or {}
        name = str(data.get("Name", "")).lstrip("/")
        cid = str(data.get("Id", ""))
        if self.options.containers and (name in self.options.containers or
                                        any(cid.startswith(c) for c in self.options.containers)):
            return True
        if self.options.app is not None:
            return labels.get(APP_LABEL) == self.options.app
        return self.options.every and APP_LABEL in labels

    def _add(self, data: dict[str, Any], now: float) -> Watched | None:
        if not self._wanted(data):
            return None
        watched = _watched_from(data, self.facts)
        fresh = watched.container_id not in self.watched
        self.watched[watched.container_id] = watched
        self.metrics.watched.set(len(self.watched))
        if fresh:
            how = f"manifest {watched.manifest}" if watched.manifest else "no manifest found"
            self._emit(core.notice(now, f"watching {watched.name} ({how})", watched, "watching"))
        self._follow(data, now)
        return watched

    def _follow(self, data: dict[str, Any], now: float) -> None:
        """Read a running container's output, once: one log stream per container at a time."""
        cid = str(data.get("Id", ""))
        if cid in self._following or not (data.get("State") or {}).get("Running"):
            return
        self._following.add(cid)
        self._sources.follow_logs(self.feed, self._socket, cid, now,
                                  bool((data.get("Config") or {}).get("Tty")))

    def _inspect(self, cid: str) -> dict[str, Any] | None:
        """`docker inspect`, or None while the engine does not answer (it is restarting:
        when its event stream is back, `discover` finds the running containers again)."""
        from saferun.errors import EngineUnavailable

        try:
            return self.session.container_inspect(cid)
        except EngineUnavailable:
            return None

    def discover(self, quiet: bool = False) -> None:
        """Add the running containers wanted; `quiet`: no notice for those not running."""
        from saferun.errors import EngineUnavailable

        now = time.time()
        try:
            names = self.session.running_containers()
        except EngineUnavailable:
            return  # down again: the next reconnection discovers
        for name in names:
            data = self._inspect(name)
            if data is not None:
                self._add(data, now)
        if quiet:
            return
        for name in self.options.containers:
            if not any(w.name == name or w.container_id.startswith(name)
                       for w in self.watched.values()):
                self._emit(core.notice(now, f"{name} is not running (yet): it is watched once "
                                            "it starts", subject="waiting"))

    def _lookup(self, cid: str | None) -> Watched | None:
        if cid is None:
            return None
        if cid in self.watched:
            return self.watched[cid]
        if cid in self._not_ours:
            return None
        data = self._inspect(cid)  # a container newer than its start event
        watched = self._add(data, time.time()) if data is not None else None
        if watched is None and data is not None:
            self._not_ours[cid] = None
            if len(self._not_ours) > UNKNOWN_CACHE:
                self._not_ours.popitem(last=False)
        return watched

    def _owner(self, pid: int, cid: str | None) -> Watched | None:
        """The container a pid belongs to: its cgroup, or else what its ancestry says."""
        current: int | None = pid
        for _ in range(64):
            if cid is not None or current is None:
                break
            cid = self._pids.get(current)
            current = self._parents.get(current)
        return self._lookup(cid)

    def _remember(self, pid: int, cid: str | None, parent: int | None = None) -> None:
        self._pids[pid] = cid
        self._pids.move_to_end(pid)
        if parent is not None:
            self._parents[pid] = parent
            if len(self._parents) > PID_CACHE:
                self._parents.popitem(last=False)
        if len(self._pids) > PID_CACHE:
            self._pids.popitem(last=False)

    # --- the loop --------------------------------------------------------------------------

    def start(self) -> None:
        now = time.time()
        for line in visibility():
            self._emit(core.notice(now, line, subject="visibility"))
        if self.options.metrics is not None:
            host, port = self.options.metrics
            self._sources.serve_metrics(host, port, self.metrics.registry)
            self._emit(core.notice(now, f"metrics at http://{host}:{port}/metrics",
                                   subject="metrics"))
        self._sources.AuditSource(self.feed).start()
        self._sources.ProcSource(self.feed).start()
        self._sources.follow_events(self.feed, self._socket, now)
        self.discover()
        if self.options.drift_interval > 0:
            threading.Thread(target=self._drift_loop, name="watch-drift", daemon=True).start()

    def run(self) -> None:
        import queue

        self.start()
        deadline = (time.monotonic() + self.options.duration
                    if self.options.duration is not None else None)
        try:
            while deadline is None or time.monotonic() < deadline:
                try:
                    item = self.feed.queue.get(timeout=0.1)
                except queue.Empty:
                    item = None
                if item is not None:
                    self.handle(item)
                    for _ in range(4096):  # drain what is there before the next flush
                        try:
                            self.handle(self.feed.queue.get_nowait())
                        except queue.Empty:
                            break
                self.tick(time.time())
        finally:
            self.feed.stopping.set()
            self._drain_rest()
            self.tick(time.time(), final=True)
            for record, when, count, _ in self._unattributed:  # no fork event came
                self._seccomp(record, None, when, count, give_up=0.0)
            self._unattributed = []
            self.tick(time.time(), final=True)

    def _drain_rest(self) -> None:
        import queue

        while True:
            try:
                self.handle(self.feed.queue.get_nowait())
            except queue.Empty:
                return

    def tick(self, now: float, final: bool = False) -> None:
        self._retry_unattributed(now)
        dropped = self.feed.take_dropped()
        if dropped:
            self._emit(core.dropped_event(now, dropped, "queue"))
        for event in self.limiter.flush(now, every=final):
            self._out(event)

    def handle(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        now = time.time()
        if kind == "seccomp":
            self._seccomp(item[1], item[2], item[3], item[4])
        elif kind == "fork":
            self._remember(item[1], item[3], item[2])
        elif kind == "exec":
            pid, exe, cid, now = item[1], item[2], item[3], item[4]
            self._remember(pid, cid)
            owner = self._owner(pid, cid)
            if owner is not None:
                event = core.exec_event(owner, now, pid=pid, exe=exe)
                if event is not None:
                    self._emit(event)
        elif kind == "output":
            owner = self.watched.get(item[1])
            if owner is not None:
                for event in core.output_events(owner, item[3], item[2]):
                    self._emit(event)
        elif kind == "docker":
            self._docker(item[1], now)
        elif kind == "dropped":
            self._emit(core.dropped_event(now, item[2], item[1]))
        elif kind == "engine":
            self._engine(item[1], item[2], now)
        elif kind == "drift":
            owner = self.watched.get(item[1])
            if owner is not None:
                seen = self._drift_seen.get(owner.container_id, frozenset())
                for event in core.drift_events(owner, now, item[2], seen):
                    self._emit(event)
                self._drift_seen[owner.container_id] = frozenset(item[2])
        elif kind == "response":
            self._emit(item[1])
        elif kind == "logs-ended":
            self._following.discard(item[1])
            data = self._inspect(item[1]) if item[1] in self.watched else None
            if data is not None:  # restarted before its old stream ended: follow the new one
                self._follow(data, now)

    def _engine(self, state: str, detail: str, now: float) -> None:
        """The engine's event stream broke ("down") or connected again ("up"): said once each.

        Back after a loss (the engine restarted), the running containers are looked up
        again: the engine's events while it was away are gone, and a container that kept
        running (live-restore) or was started meanwhile has no start event to be found by.
        """
        if state == "down" and self._engine_up:
            self._engine_up = False
            self._emit(core.notice(now, f"engine event stream lost ({detail}); reconnecting "
                                        "every second", subject="engine"))
        elif state == "up" and not self._engine_up:
            self._engine_up = True
            if self._engine_lost:
                self._emit(core.notice(now, "engine event stream back (the engine restarted?): "
                                            "asked for the events since the last one seen, "
                                            "and looked up the running containers again",
                                       subject="engine"))
                self.discover(quiet=True)
        if state == "down":
            self._engine_lost = True

    def _seccomp(self, record: Any, cid: str | None, when: float, count: int = 1,
                 give_up: float | None = None) -> None:
        """`count` consecutive identical records (folded by the reader)."""
        if cid == "":
            return  # a host process, not a container's
        owner = self._owner(record.pid, cid)
        if owner is None:
            if cid is None and (give_up is None or time.monotonic() < give_up):
                # Gone before its cgroup was read, and its fork event may still be queued
                # behind this record (another socket, another thread): ask again later.
                deadline = give_up if give_up is not None else time.monotonic() + UNKNOWN_WAIT_S
                self._unattributed.append((record, when, count, deadline))
            elif cid is None:
                self._lost_unattributed += count
            return
        action = record.action
        kind = core.SYSCALL_UNLISTED if action == "log" else core.SYSCALL_DENIED
        key = (owner.container_id, kind, record.name)
        now = time.time()
        if not self.limiter.absorb(key, now, when, count):
            self._emit(core.seccomp_event(owner, when, syscall=record.name, action=action,
                                          pid=record.pid, comm=record.comm, exe=record.exe,
                                          capability_calls=self._capability_calls))
            count -= 1  # the rest fall into the window the event just opened
            if not count or not self.limiter.absorb(key, now, when, count):
                return
        # repeats in an open window: counted, written at the window's end
        self.metrics.events.labels(owner.name, owner.app, kind).inc(count)
        self.counts[kind] = self.counts.get(kind, 0) + count

    def _retry_unattributed(self, now: float) -> None:
        pending, self._unattributed = self._unattributed, []
        for record, when, count, deadline in pending:
            self._seccomp(record, None, when, count, give_up=deadline)
        if self._lost_unattributed:
            self._emit(core.dropped_event(now, self._lost_unattributed, "unattributed"))
            self._lost_unattributed = 0

    def _docker(self, message: dict[str, Any], now: float) -> None:
        cid = str((message.get("Actor") or {}).get("ID") or message.get("id") or "")
        action = str(message.get("Action") or "")
        if action == "start":
            data = self._inspect(cid)
            if data is not None:
                self._not_ours.pop(cid, None)
                self._add(data, now)  # new, or restarted: its log stream is followed again
            return
        owner = self.watched.get(cid)
        if owner is None:
            return
        event = core.docker_event(owner, message)
        if event is not None:
            self._emit(event)
        if action == "destroy":
            self.watched.pop(cid, None)
            self._drift_seen.pop(cid, None)
            self.metrics.watched.set(len(self.watched))
            self._emit(core.notice(now, f"{owner.name} was removed", owner, "removed"))

    def _drift_loop(self) -> None:
        from saferun.app.verify import verify_container

        while not self.feed.stopping.wait(self.options.drift_interval):
            for cid in list(self.watched):
                try:
                    report = verify_container(cid, self.session, self.facts, local=True)
                except Exception as exc:  # noqa: BLE001 - one container's failure is a note
                    note = core.notice(time.time(), f"drift check of {cid[:12]} failed: {exc}",
                                       subject="drift")
                    self.feed.put(("response", note))
                    continue
                drift = tuple((f.rule, f.message) for f in report.findings
                              if f.kind in ("drift", "runtime"))
                self.feed.put(("drift", cid, drift))

    # --- output and response ---------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        self.metrics.count(event)
        self.counts[event.kind] = self.counts.get(event.kind, 0) + event.count
        for out in self.limiter.offer(event, time.time()):
            self._out(out)
        self._respond(event)

    def _out(self, event: Event) -> None:
        self._write(self._format(replace(event, reported=time.time())), event.kind)

    def _respond(self, event: Event) -> None:
        action = self.options.on_denial.get(event.kind)
        if (action is None or not event.container_id or event.container_id in self._responded
                or not core.can_respond(event)):
            return
        self._responded.add(event.container_id)
        owner = self.watched.get(event.container_id)
        if owner is None:
            return

        def act() -> None:
            try:
                outcome = self._sources.container_action(self._socket, owner.container_id,
                                                         action)
            except OSError as exc:
                outcome = f"failed: {exc}"
            self.feed.put(("response", core.response_event(owner, time.time(), action, event,
                                                           outcome)))

        threading.Thread(target=act, name="watch-response", daemon=True).start()


def systemd_unit(executable: tuple[str, ...], arguments: tuple[str, ...]) -> str:
    """A unit that runs watch as a service; its lines go to the journal.

    `executable` is absolute (systemd requires it): this Python and `-m saferun`. Each
    word is written so systemd reads it back exactly (`systemd_word`).
    """
    command = " ".join(systemd_word(word) for word in (*executable, "watch", *arguments))
    return f"""[Unit]
Description=saferun watch: report what hardened containers try and are denied
After=docker.service
Requires=docker.service

[Service]
ExecStart={command}
Restart=always
RestartSec=2
StandardOutput=journal
StandardError=journal
SyslogIdentifier=saferun-watch
MemoryMax=200M

[Install]
WantedBy=multi-user.target
"""


_SYSTEMD_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./$-]+")


def systemd_word(word: str) -> str:
    """One ExecStart= word: %specifiers and $VARIABLES doubled (systemd expands them),
    quoted when it holds anything else; a control character (a newline would start a new
    directive) is refused."""
    from saferun.errors import UsageError

    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in word):
        raise UsageError(f"{word!r}: a control character cannot be written into a systemd "
                         "unit; remove it from the option's value")
    escaped = word.replace("%", "%%").replace("$", "$$")
    if escaped and _SYSTEMD_PLAIN.fullmatch(escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def watch(options: WatchOptions, out: TextIO | None = None) -> dict[str, int]:
    """Run until interrupted (or `duration`); returns the count of events per kind."""
    stream = out or sys.stdout
    write: Callable[[str, str], None]
    if options.syslog is not None:
        from saferun.engine.watch_sources import SyslogOutput

        syslog = SyslogOutput(options.syslog)

        def write(line: str, kind: str) -> None:
            syslog.send(core.SYSLOG_SEVERITY.get(kind, 6), line)
    elif stdout_is_the_journal(stream):
        def write(line: str, kind: str) -> None:
            stream.write(journal_lines(line, core.SYSLOG_SEVERITY.get(kind, 6)) + "\n")
            stream.flush()
    else:
        def write(line: str, kind: str) -> None:
            stream.write(line + "\n")
            stream.flush()

    watcher = Watcher(options, write)
    # systemd stops a service with SIGTERM: end like Ctrl-C, so the folded windows still
    # open are written out (their counts would be lost otherwise).
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        watcher.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return watcher.counts


def stdout_is_the_journal(stream: TextIO) -> bool:
    """True when systemd connected `stream` to the journal: it then sets JOURNAL_STREAM to
    the stream's DEVICE:INODE (systemd.exec(5)); a copy inherited by a child does not match."""
    import os

    device, sep, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    if not sep or not device.isdigit() or not inode.isdigit():
        return False
    try:
        status = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (status.st_dev, status.st_ino) == (int(device), int(inode))


def journal_lines(line: str, severity: int) -> str:
    """Each line with journald's `<N>` priority prefix (SyslogLevelPrefix=, on by default):
    `journalctl -t saferun-watch -p warning` then shows the denials and findings only."""
    return "\n".join(f"<{severity}>{part}" for part in line.split("\n"))


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def parse_on_denial(values: tuple[str, ...]) -> dict[str, str]:
    """`stop` (every denial kind) or `KIND=ACTION`, repeatable -> {kind: action}."""
    from saferun.errors import UsageError

    found: dict[str, str] = {}
    for value in values:
        kind, sep, action = value.partition("=")
        if not sep:
            kind, action = "", kind
        if action not in core.ACTIONS:
            raise UsageError(f"--on-denial {value!r}: the action must be one of "
                             f"{', '.join(core.ACTIONS)}")
        if (sep and not kind) or (kind and kind not in core.KINDS):
            raise UsageError(f"--on-denial {value!r}: unknown event kind {kind!r} (kinds: "
                             f"{', '.join(sorted(core.KINDS))})")
        for name in ([kind] if kind else core.DENIAL_KINDS):
            found[name] = action
    return found


def parse_metrics_address(value: str) -> tuple[str, int]:
    from saferun.errors import UsageError

    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise UsageError(f"--metrics {value!r}: expected HOST:PORT, e.g. 127.0.0.1:9464")
    return host.strip("[]"), int(port)
