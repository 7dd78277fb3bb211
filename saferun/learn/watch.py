"""`saferun watch`'s core: raw signals in, events with the manifest change that allows them out.

Pure: the edge (saferun.engine.watch_sources) hands in plain values (a seccomp audit
record's fields, an exec seen by the process connector, a line the container printed, a
docker event, drift findings) together with the container's `Watched` context; this module
turns each into an `Event`, counts and folds repeats (`Limiter`), and formats events as
text or JSON lines (`EVENT_SCHEMA`). The fix lines reuse `saferun why`'s explanations.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from saferun.learn.why import Context, explain_output, explain_syscalls

SCHEMA_VERSION = 1

# Event kinds (stable ids: JSON `kind`, the metrics label, `--on-denial KIND=ACTION`).
SYSCALL_DENIED = "syscall-denied"
SYSCALL_UNLISTED = "syscall-unlisted"
WRITE_REFUSED = "write-refused"
PERMISSION_REFUSED = "permission-refused"
CAPABILITY_REFUSED = "capability-refused"
EXEC_UNLISTED = "exec-unlisted"
OOM_KILL = "oom-kill"
RESTART = "restart"
DOCKER_EXEC = "docker-exec"
DRIFT = "drift"
DROPPED = "dropped"
RESPONSE = "response"
NOTICE = "notice"

KINDS: dict[str, str] = {
    SYSCALL_DENIED: "a system call the seccomp profile refuses (logged by the kernel)",
    SYSCALL_UNLISTED: "a system call outside the listed or learned calls (log mode: let through)",
    WRITE_REFUSED: "a write refused by the read-only root or a read-only mount (EROFS)",
    PERMISSION_REFUSED: "a file access refused to the app's user (EACCES)",
    CAPABILITY_REFUSED: "an operation refused for a missing capability (EPERM)",
    EXEC_UNLISTED: "a program executed that [apparmor] executables does not list",
    OOM_KILL: "the kernel's OOM killer ended a process of the container",
    RESTART: "the container exited or was restarted",
    DOCKER_EXEC: "someone ran `docker exec` into the container",
    DRIFT: "the container's live controls no longer match its manifest",
    DROPPED: "events lost before watch could read them, with their count",
    RESPONSE: "what --on-denial did to the container",
    NOTICE: "watch's own notes: what it can and cannot see, containers coming and going",
}
# What `--on-denial ACTION` (without KIND=) applies to.
DENIAL_KINDS = (SYSCALL_DENIED, WRITE_REFUSED, PERMISSION_REFUSED, CAPABILITY_REFUSED,
                EXEC_UNLISTED)
ACTIONS = ("stop", "kill", "pause")
# syslog severities (RFC 5424): a denial, an OOM kill or drift is a warning; a loss of
# events an error; watch's own notes and responses informational or a notice.
SYSLOG_SEVERITY: dict[str, int] = {
    **dict.fromkeys(KINDS, 4), DROPPED: 3, RESPONSE: 5, NOTICE: 6, RESTART: 5, DOCKER_EXEC: 5}


@dataclass(frozen=True)
class Watched:
    """What watch knows of one container: who it is and what its manifest allows."""

    container_id: str
    name: str
    app: str = ""
    manifest: str = ""  # the manifest file it was started from, "" if none is known
    allowed: frozenset[str] = frozenset()  # calls the profile allows by name
    learned: bool = False  # the allow list is `[seccomp] learned`
    executables: tuple[str, ...] | None = None  # [apparmor] executables, None: not listed
    writable: tuple[str, ...] = ()
    tmpfs: tuple[str, ...] = ()
    user: str = ""
    memory: str = ""  # the memory limit as the manifest writes it


@dataclass(frozen=True)
class Event:
    """One thing a container tried (or that happened to it), and what would allow it."""

    time: float
    kind: str
    container: str
    container_id: str
    app: str
    manifest: str
    subject: str
    detail: str
    fix: str = ""
    count: int = 1  # attempts this event stands for (repeats folded in by the Limiter)
    pid: int | None = None
    source: str = ""
    reported: float = 0.0  # when watch wrote it; `time` is when it happened (kernel/engine)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema"] = SCHEMA_VERSION
        data["time"] = round(self.time, 6)
        data["reported"] = round(self.reported, 6)
        return data


def _event(ctx: Watched, now: float, kind: str, subject: str, detail: str, fix: str = "",
           pid: int | None = None, source: str = "") -> Event:
    return Event(now, kind, ctx.name, ctx.container_id, ctx.app, ctx.manifest, subject, detail,
                 fix, 1, pid, source)


def notice(now: float, detail: str, ctx: Watched | None = None, subject: str = "") -> Event:
    ctx = ctx or Watched("", "")
    return _event(ctx, now, NOTICE, subject, detail, source="watch")


# --- signals -> events ---------------------------------------------------------------------

DENYING_ACTIONS = frozenset({"kill_process", "kill_thread", "errno", "trap"})


def seccomp_event(ctx: Watched, now: float, *, syscall: str, action: str, pid: int, comm: str,
                  exe: str, capability_calls: Mapping[str, Iterable[str]] | None = None) -> Event:
    """A type-1326 audit record: `log` is a call outside the list let through, the rest refuse."""
    findings = explain_syscalls([syscall], capability_calls=capability_calls,
                                learned=ctx.learned, allowed=ctx.allowed)
    finding = findings[0]
    fix = finding.change + (f" ({finding.note})" if finding.note else "")
    who = f"{comm or '?'} (pid {pid}, {exe or '?'})"
    if action == "log":
        listed = "learned" if ctx.learned else "allowed"
        return _event(ctx, now, SYSCALL_UNLISTED, syscall,
                      f"{who} called {syscall}, which the {listed} list does not hold "
                      "(log mode: let through)", fix, pid, "audit")
    outcome = "killed by seccomp" if action.startswith("kill") else f"refused ({action})"
    return _event(ctx, now, SYSCALL_DENIED, syscall, f"{who} called {syscall}: {outcome}", fix,
                  pid, "audit")


def exec_event(ctx: Watched, now: float, *, pid: int, exe: str) -> Event | None:
    """A program started in the container: an event only when a list exists and lacks it.

    `exe` is /proc/PID/exe as read when the kernel reported the exec; "" when the process
    was already gone (it is still reported: an exec watch could not name).
    """
    if ctx.executables is None:
        return None
    if exe and _listed(exe, ctx.executables):
        return None
    path = exe or "?"
    fix = (f"[apparmor] executables += [{json.dumps(exe)}]" if exe else
           "the process exited before its program could be read; run `saferun learn` to "
           "list what the app executes")
    return _event(ctx, now, EXEC_UNLISTED, path,
                  f"pid {pid} executed {path}, which [apparmor] executables does not list", fix,
                  pid, "proc-connector")


def can_respond(event: Event) -> bool:
    """Whether --on-denial may act on this event: not on an exec whose program is unknown
    (it may well be listed; stopping an app on a guess is worse than reporting it)."""
    return not (event.kind == EXEC_UNLISTED and event.subject == "?")


def _listed(path: str, listed: Sequence[str]) -> bool:
    return any(path == entry or (entry.endswith("/**") and path.startswith(entry[:-2]))
               for entry in listed)


_OUTPUT_KINDS = {"read-only": WRITE_REFUSED, "permission": PERMISSION_REFUSED,
                 "pid-file": WRITE_REFUSED, "capability": CAPABILITY_REFUSED}


def output_events(ctx: Watched, now: float, line: str) -> list[Event]:
    """A line the container printed that names a refusal (EROFS, EACCES, EPERM)."""
    context = Context(writable=ctx.writable, tmpfs=ctx.tmpfs, user=ctx.user)
    events = []
    for finding in explain_output(line, ctx.writable, context):
        kind = _OUTPUT_KINDS.get(finding.kind)
        if kind is None:
            continue
        fix = finding.change + (f" ({finding.note})" if finding.note else "")
        events.append(_event(ctx, now, kind, finding.subject,
                             f"{finding.cause}: {line.strip()[:200]}", fix, None, "output"))
    return events


def docker_event(ctx: Watched, message: Mapping[str, Any]) -> Event | None:
    """A container event from the engine's /events stream -> an event, or None (not ours)."""
    action = str(message.get("Action") or message.get("status") or "")
    attributes = (message.get("Actor") or {}).get("Attributes") or {}
    now = float(message.get("timeNano") or 0) / 1e9 or float(message.get("time") or 0)
    if action == "oom":
        memory = f" (limit {ctx.memory})" if ctx.memory else ""
        return _event(ctx, now, OOM_KILL, "memory",
                      f"the OOM killer ended a process of the container{memory}",
                      "raise [resources] memory (or find what grows: `docker stats`)",
                      None, "docker-events")
    if action == "die":
        code = attributes.get("exitCode", "?")
        return _event(ctx, now, RESTART, "exit", f"the container exited with code {code}",
                      "exit code 137 with an oom event: raise [resources] memory; 159: killed "
                      "by seccomp (see the syscall-denied event); else `docker logs "
                      f"{ctx.name}`", None, "docker-events")
    if action == "restart":
        return _event(ctx, now, RESTART, "restart", "the engine restarted the container", "",
                      None, "docker-events")
    if action.startswith("exec_create") or action.startswith("exec_start"):
        command = action.split(":", 1)[1].strip() if ":" in action else ""
        stage = "exec_start" if action.startswith("exec_start") else "exec_create"
        if stage != "exec_start":
            return None  # one event per exec: docker sends create, then start
        return _event(ctx, now, DOCKER_EXEC, command or "?",
                      f"docker exec into the container: {command or '?'}",
                      "none in the manifest: an operator or tool on the host ran docker exec",
                      None, "docker-events")
    return None


def drift_events(ctx: Watched, now: float, messages: Iterable[tuple[str, str]],
                 already: frozenset[tuple[str, str]]) -> list[Event]:
    """Drift findings (rule, message) not reported before for this container."""
    fix = (f"start it again from its manifest (`saferun run --manifest {ctx.manifest}`)"
           if ctx.manifest else "start it again with saferun run")
    return [_event(ctx, now, DRIFT, rule, message, fix, None, "verify")
            for rule, message in messages if (rule, message) not in already]


OVERFLOW = "audit-socket-overflow"  # ENOBUFS: how many is known only from a later serial
# Where a `dropped` event's records were lost (its source; docs/watch.md "Every loss").
DROPPED_SOURCES = ("audit-socket", OVERFLOW, "audit-kernel", "queue", "proc-socket",
                   "unattributed")


def dropped_event(now: float, count: int, where: str) -> Event:
    detail = (f"{count} records lost before watch read them ({where})" if where != OVERFLOW
              else "at least one record lost: watch's socket overflowed (ENOBUFS); a later "
                   "gap in the audit serial numbers adds the rest as audit-socket")
    return Event(now, DROPPED, "", "", "", "", where, detail, count=count, source=where)


def response_event(ctx: Watched, now: float, action: str, cause: Event, outcome: str) -> Event:
    return _event(ctx, now, RESPONSE, action,
                  f"--on-denial {cause.kind}={action}: {outcome} (after {cause.kind} "
                  f"{cause.subject})", "", None, "watch")


# --- counting, folding repeats --------------------------------------------------------------


@dataclass
class _Pending:
    first: Event
    suppressed: int = 0
    window_end: float = 0.0  # on the clock of `now` (when events are handled)
    last: float = 0.0  # the newest event time folded in


@dataclass
class Limiter:
    """Folds a looping denial into one line a window, keeping every attempt counted.

    The first event of a (container, kind, subject) is let through; repeats handled within
    `window` seconds of it are counted, and at the window's end one event stands for them
    with `count` = their number and the time of the last of them. The sum of `count` over
    everything let out equals the number of events that came in. Windows run on the
    clock of handling (`now`), not on the events' own times: it limits the lines written
    per second, so a backlog that watch works off late (a burst on a busy host) folds into
    as few lines as a burst handled live. At most `max_keys` keys are tracked (bounded
    memory): the oldest is flushed first when a new one arrives.
    """

    window: float = 1.0
    max_keys: int = 4096
    _keys: OrderedDict[tuple[str, str, str], _Pending] = field(default_factory=OrderedDict)

    def absorb(self, key: tuple[str, str, str], now: float, when: float,
               count: int = 1) -> bool:
        """Count a repeat without building its event: True when an open window took it."""
        pending = self._keys.get(key)
        if pending is None or now >= pending.window_end:
            return False
        pending.suppressed += count
        pending.last = max(pending.last, when)
        return True

    def offer(self, event: Event, now: float) -> list[Event]:
        if event.kind in (NOTICE, DROPPED, RESPONSE):
            return [event]
        key = (event.container_id, event.kind, event.subject)
        out = self.flush(now)
        pending = self._keys.get(key)
        if pending is not None:
            pending.suppressed += event.count
            pending.last = max(pending.last, event.time)
            self._keys.move_to_end(key)
            return out
        if len(self._keys) >= self.max_keys:
            _, oldest = self._keys.popitem(last=False)
            out += self._summary(oldest)
        self._keys[key] = _Pending(event, 0, now + self.window, event.time)
        return [*out, event]

    def flush(self, now: float, *, every: bool = False) -> list[Event]:
        """Summaries of the windows that ended by `now` (all of them with every=True)."""
        out: list[Event] = []
        for key in [k for k, p in self._keys.items() if every or p.window_end <= now]:
            out += self._summary(self._keys.pop(key))
        return out

    @staticmethod
    def _summary(pending: _Pending) -> list[Event]:
        if not pending.suppressed:
            return []
        first = pending.first
        return [replace(first, time=pending.last, count=pending.suppressed,
                        detail=f"repeated {pending.suppressed} more times within the window "
                               f"after: {first.detail}")]


# --- output ----------------------------------------------------------------------------------


def format_text(event: Event) -> str:
    millis = int(event.time % 1 * 1000)
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time)) + f".{millis:03d}"
    who = event.container or "-"
    if event.app and event.app != event.container:
        who += f" ({event.app})"
    times = f" x{event.count}" if event.count > 1 else ""
    line = f"{stamp} {who} {event.kind}{times}: {event.detail}"
    return f"{line}\n    fix: {event.fix}" if event.fix else line


def format_json(event: Event) -> str:
    return json.dumps(event.to_json(), sort_keys=True, ensure_ascii=False)


FORMATTERS = {"text": format_text, "json": format_json}

EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://saferun.invalid/schema/watch-event-v1.json",
    "title": "saferun watch event (one JSON object per line)",
    "type": "object",
    "additionalProperties": False,
    "required": ["schema", "time", "reported", "kind", "container", "container_id", "app",
                 "manifest", "subject", "detail", "fix", "count", "pid", "source"],
    "properties": {
        "schema": {"const": SCHEMA_VERSION},
        "time": {"type": "number", "description": "Unix time it happened (the kernel's or "
                 "the engine's timestamp, else when watch received it)"},
        "reported": {"type": "number", "description": "Unix time watch wrote the line"},
        "kind": {"enum": sorted(KINDS)},
        "container": {"type": "string", "description": "container name, '' for watch itself"},
        "container_id": {"type": "string", "pattern": "^([0-9a-f]{64})?$"},
        "app": {"type": "string", "description": "the io.saferun.app label"},
        "manifest": {"type": "string", "description": "manifest path, '' if unknown"},
        "subject": {"type": "string", "description": "syscall, path, program, rule or action"},
        "detail": {"type": "string"},
        "fix": {"type": "string", "description": "the manifest change that would allow it"},
        "count": {"type": "integer", "minimum": 1,
                  "description": "attempts this line stands for (repeats folded together)"},
        "pid": {"type": ["integer", "null"], "description": "host pid, when the kernel gave one"},
        "source": {"type": "string",
                   "enum": ["audit", "proc-connector", "output", "docker-events", "verify",
                            "watch", *DROPPED_SOURCES, ""]},
    },
}
