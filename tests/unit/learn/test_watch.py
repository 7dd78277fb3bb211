"""saferun watch's pure core: signals -> events with fix lines, folding repeats, formats."""

from __future__ import annotations

import json

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from saferun.learn import watch as core
from saferun.learn.watch import EVENT_SCHEMA, KINDS, Event, Limiter, Watched

CID = "a" * 64
CTX = Watched(CID, "web", app="web", manifest="/srv/web/saferun.toml",
              allowed=frozenset({"read", "write"}), executables=("/usr/bin/app", "/bin/**"),
              writable=("/tmp",), tmpfs=("/tmp",), user="1000", memory="64m")


def _denied(name: str = "ptrace", when: float = 100.0, action: str = "kill_process") -> Event:
    return core.seccomp_event(CTX, when, syscall=name, action=action, pid=42, comm="app",
                              exe="/usr/bin/app")


def test_a_refused_call_names_the_manifest_change_and_the_capability() -> None:
    event = core.seccomp_event(CTX, 1.0, syscall="mount", action="kill_process", pid=7,
                               comm="sh", exe="/bin/busybox",
                               capability_calls={"CAP_SYS_ADMIN": ("mount",)})
    assert event.kind == core.SYSCALL_DENIED and event.subject == "mount"
    assert event.fix == '[seccomp] allow += ["mount"] (the kernel also requires CAP_SYS_ADMIN)'
    assert "killed by seccomp" in event.detail and event.pid == 7


def test_a_logged_call_outside_a_learned_list_is_unlisted_with_a_learned_fix() -> None:
    learned = Watched(CID, "web", learned=True)
    event = core.seccomp_event(learned, 1.0, syscall="getppid", action="log", pid=1, comm="a",
                               exe="/a")
    assert event.kind == core.SYSCALL_UNLISTED
    assert event.fix == '[seccomp] learned += ["getppid"]'


def test_an_exec_is_judged_against_the_listed_programs() -> None:
    assert core.exec_event(CTX, 1.0, pid=3, exe="/usr/bin/app") is None
    assert core.exec_event(CTX, 1.0, pid=3, exe="/bin/sh") is None  # under /bin/**
    event = core.exec_event(CTX, 1.0, pid=3, exe="/tmp/x")
    assert event is not None and event.kind == core.EXEC_UNLISTED
    assert event.fix == '[apparmor] executables += ["/tmp/x"]'
    gone = core.exec_event(CTX, 1.0, pid=3, exe="")
    assert gone is not None and gone.subject == "?"  # reported, not lost
    assert not core.can_respond(gone) and core.can_respond(event)  # never acted on a guess
    assert core.exec_event(Watched(CID, "web"), 1.0, pid=3, exe="/tmp/x") is None  # no list


def test_output_lines_become_refusal_events_with_the_why_fix() -> None:
    [event] = core.output_events(CTX, 5.0, "sh: can't create /etc/foo: Read-only file system")
    assert event.kind == core.WRITE_REFUSED and event.subject == "/etc"
    assert event.fix == 'add a tmpfs at /etc: [filesystem] tmpfs += [{ target = "/etc" }]'
    [eperm] = core.output_events(CTX, 5.0, "chown: /data: Operation not permitted")
    assert eperm.kind == core.CAPABILITY_REFUSED and '"CHOWN"' in eperm.fix
    assert core.output_events(CTX, 5.0, "listening on :8080") == []


@pytest.mark.parametrize(("action", "kind"), [
    ("oom", core.OOM_KILL), ("die", core.RESTART), ("restart", core.RESTART),
    ("exec_start: sh -c id", core.DOCKER_EXEC)])
def test_engine_events(action: str, kind: str) -> None:
    event = core.docker_event(CTX, {"Action": action, "timeNano": 2_500_000_000,
                                    "Actor": {"ID": CID, "Attributes": {"exitCode": "137"}}})
    assert event is not None and event.kind == kind and event.time == 2.5


def test_exec_create_and_unrelated_engine_events_are_not_reported_twice() -> None:
    assert core.docker_event(CTX, {"Action": "exec_create: sh", "Actor": {}}) is None
    assert core.docker_event(CTX, {"Action": "attach", "Actor": {}}) is None
    start = core.docker_event(CTX, {"Action": "exec_start: sh -c id", "Actor": {}})
    assert start is not None and start.subject == "sh -c id"


def test_drift_is_reported_once_per_finding() -> None:
    found = [("writable-root", "/ is mounted read-write")]
    [event] = core.drift_events(CTX, 1.0, found, frozenset())
    assert event.kind == core.DRIFT and "saferun run --manifest /srv/web/saferun.toml" in event.fix
    assert core.drift_events(CTX, 2.0, found, frozenset(found)) == []


def test_the_limiter_folds_repeats_into_one_counted_line_per_window() -> None:
    limiter = Limiter(window=1.0)
    out: list[Event] = []
    for i in range(3000):
        out += limiter.offer(_denied(when=100.0 + i * 0.001), now=500.0 + i * 0.001)
    out += limiter.flush(0.0, every=True)
    assert sum(e.count for e in out) == 3000
    assert len(out) == 6  # per second: the first, then one line for its repeats
    assert out[1].count == 999 and "repeated 999 more times" in out[1].detail
    assert out[1].time == pytest.approx(100.999)  # the last repeat's own time


def test_a_backlog_handled_late_folds_as_if_it_were_live() -> None:
    # 3 s of events worked off within 0.3 s (watch behind a burst): one window
    limiter = Limiter(window=1.0)
    out: list[Event] = []
    for i in range(3000):
        out += limiter.offer(_denied(when=100.0 + i * 0.001), now=110.0 + i * 0.0001)
    out += limiter.flush(111.0)
    assert [e.count for e in out] == [1, 2999]


def test_absorb_counts_a_repeat_only_inside_an_open_window() -> None:
    limiter = Limiter(window=1.0)
    key = (CID, core.SYSCALL_DENIED, "ptrace")
    assert not limiter.absorb(key, 100.0, 100.0)  # nothing open yet
    limiter.offer(_denied(when=90.0), now=100.0)
    assert limiter.absorb(key, 100.5, 99.0)
    assert not limiter.absorb(key, 101.5, 99.5)  # the window is over: a new first event
    [summary] = limiter.flush(200.0)
    assert summary.count == 1


def test_the_limiter_is_bounded_and_flushes_what_it_evicts() -> None:
    limiter = Limiter(window=10.0, max_keys=4)
    out: list[Event] = []
    for name in ("a", "b", "c", "d", "e"):
        out += limiter.offer(_denied(name, 1.0), now=1.0)
        out += limiter.offer(_denied(name, 1.1), now=1.1)
    out += limiter.flush(0.0, every=True)
    assert sum(e.count for e in out) == 10
    assert len(limiter._keys) == 0


@given(st.lists(st.tuples(st.sampled_from(["ptrace", "mount", "bpf"]),
                          st.floats(min_value=0, max_value=5)), max_size=200),
       st.floats(min_value=0.01, max_value=3))
def test_no_attempt_is_lost_whatever_the_order_and_window(
        calls: list[tuple[str, float]], window: float) -> None:
    limiter = Limiter(window=window, max_keys=2)
    out: list[Event] = []
    for name, when in calls:
        out += limiter.offer(_denied(name, when), now=when)
    out += limiter.flush(0.0, every=True)
    assert sum(e.count for e in out) == len(calls)


def test_notices_and_drops_pass_unfolded() -> None:
    limiter = Limiter()
    drop = core.dropped_event(1.0, 5, "queue")
    assert limiter.offer(drop, 1.0) == [drop] and limiter.offer(drop, 1.0) == [drop]


def _every_kind() -> list[Event]:
    base = _denied()
    events = [Event(1.0, kind, "web", CID, "web", "", "s", "d") for kind in KINDS]
    return [base, core.dropped_event(1.0, 3, "audit-socket"), core.notice(1.0, "hello"),
            core.response_event(CTX, 1.0, "stop", base, "204 No Content"), *events]


@pytest.mark.parametrize("event", _every_kind(), ids=lambda e: e.kind)
def test_every_event_validates_against_the_schema(event: Event) -> None:
    jsonschema.Draft202012Validator.check_schema(EVENT_SCHEMA)
    data = json.loads(core.format_json(event))
    jsonschema.validate(data, EVENT_SCHEMA)
    assert data["schema"] == core.SCHEMA_VERSION


def test_the_schema_refuses_a_wrong_line() -> None:
    data = _denied().to_json()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "kind": "nope"}, EVENT_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "count": 0}, EVENT_SCHEMA)


@pytest.mark.parametrize("name", sorted(core.FORMATTERS))
def test_every_format_writes_one_line_per_event_with_the_fix(name: str) -> None:
    text = core.FORMATTERS[name](_denied())
    assert '[seccomp] allow += [\\"ptrace\\"]' in text or '[seccomp] allow += ["ptrace"]' in text
    if name == "json":
        assert "\n" not in text


def test_text_shows_the_count_of_a_folded_line() -> None:
    line = core.format_text(Event(1.0, core.SYSCALL_DENIED, "web", CID, "shop", "", "ptrace",
                                  "called ptrace", "fix it", count=7))
    assert "web (shop) syscall-denied x7: called ptrace" in line and "fix: fix it" in line


def test_docs_name_every_kind_and_the_schema_command() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "docs" / "watch.md").read_text()
    missing = [kind for kind in KINDS if f"`{kind}`" not in text]
    assert not missing, f"docs/watch.md does not name {missing}"
    assert "--print-schema" in text


def test_every_place_records_are_lost_is_a_source_the_schema_allows() -> None:
    """A `dropped` event names where its records were lost; the JSON output must stay
    valid for each (an `unattributed` loss under load once failed the schema)."""
    import re
    from pathlib import Path

    package = Path(core.__file__).resolve().parents[1]
    text = ((package / "app" / "watch.py").read_text()
            + (package / "engine" / "watch_sources.py").read_text())
    written = set(re.findall(r'\("dropped", "([a-z-]+)"', text))
    written |= set(re.findall(r'dropped_event\([^()]*, "([a-z-]+)"\)', text))
    assert {"audit-socket", "audit-kernel", "proc-socket", "queue", "unattributed"} <= written
    assert written | {core.OVERFLOW} == set(core.DROPPED_SOURCES)
    for where in core.DROPPED_SOURCES:
        jsonschema.validate(core.dropped_event(1.0, 3, where).to_json(),
                            EVENT_SCHEMA)
