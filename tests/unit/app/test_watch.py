"""saferun watch's options, its systemd unit and its start-up notes (no engine needed)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from saferun.app.watch import (
    Metrics,
    journal_lines,
    parse_metrics_address,
    parse_on_denial,
    stdout_is_the_journal,
    systemd_unit,
    systemd_word,
    visibility,
)
from saferun.cli import cli
from saferun.engine.watch_sources import SyslogOutput
from saferun.errors import RequirementUnmet, UsageError
from saferun.learn import watch as core


def test_on_denial_without_a_kind_covers_every_denial_kind() -> None:
    assert parse_on_denial(("stop",)) == dict.fromkeys(core.DENIAL_KINDS, "stop")
    assert parse_on_denial(("oom-kill=kill", "exec-unlisted=pause")) == {
        "oom-kill": "kill", "exec-unlisted": "pause"}
    assert parse_on_denial(()) == {}  # off by default


@pytest.mark.parametrize("value", ["halt", "oom-kill=halt", "nope=stop", "=stop"])
def test_on_denial_refuses_unknown_kinds_and_actions(value: str) -> None:
    with pytest.raises(UsageError):
        parse_on_denial((value,))


def test_metrics_address() -> None:
    assert parse_metrics_address("127.0.0.1:18200") == ("127.0.0.1", 18200)
    assert parse_metrics_address("[::1]:9464") == ("::1", 9464)
    for bad in ("18200", "127.0.0.1:", "127.0.0.1:0", ":80", "h:99999"):
        with pytest.raises(UsageError):
            parse_metrics_address(bad)


def test_the_systemd_unit_runs_watch_with_the_options_and_logs_to_the_journal() -> None:
    unit = systemd_unit(("/usr/bin/python3", "-m", "saferun"), ("--all", "--format", "json"))
    assert "ExecStart=/usr/bin/python3 -m saferun watch --all --format json" in unit
    assert "StandardOutput=journal" in unit and "SyslogIdentifier=saferun-watch" in unit
    assert "After=docker.service" in unit


@pytest.mark.parametrize(("word", "written"), [
    ("--all", "--all"),
    ("--app=shop", "--app=shop"),
    ("50%", "50%%"),  # a %specifier otherwise
    ("$HOME", "$$HOME"),  # a variable otherwise
    ("my app", '"my app"'),
    ('a"b\\c', '"a\\"b\\\\c"'),
    ("", '""'),
])
def test_each_unit_word_is_written_as_systemd_reads_it_back(word: str, written: str) -> None:
    assert systemd_word(word) == written


def test_a_control_character_cannot_reach_the_unit() -> None:
    with pytest.raises(UsageError, match="control character"):
        systemd_unit(("/usr/bin/python3",), ("--app", "x\nExecStartPre=/bin/sh"))


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """The real systemd-analyze (systemd 252 here; no systemd runs as init): no error, no
    warning, for a unit whose words need quoting and escaping."""
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is not installed")
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "saferun-watch.service"
    unit.write_text(systemd_unit((sys.executable, "-m", "saferun"),
                                 ("--app", 'my "shop" 100% $USER', "--format", "json")))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    broken = tmp_path / "broken.service"  # the check can fail: a wrong value is a warning
    broken.write_text(unit.read_text().replace("Restart=always", "Restart=sometimes"))
    result = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True,
                            text=True, check=False)
    assert "restart specifier" in result.stderr


def test_lines_carry_a_priority_only_when_stdout_is_the_journal(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with (tmp_path / "out").open("w") as journal, (tmp_path / "other").open("w") as other:
        status = os.fstat(journal.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{status.st_dev}:{status.st_ino}")
        assert stdout_is_the_journal(journal) and not stdout_is_the_journal(other)
        monkeypatch.setenv("JOURNAL_STREAM", "x:1")
        assert not stdout_is_the_journal(journal)
        monkeypatch.delenv("JOURNAL_STREAM")
        assert not stdout_is_the_journal(journal)
    assert journal_lines("12:00 web syscall-denied: ptrace\n    fix: allow", 4) == \
        "<4>12:00 web syscall-denied: ptrace\n<4>    fix: allow"


def _listening(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(5)
    return server


def test_syslog_lines_reach_a_real_socket_as_syslog_3_writes_them(tmp_path: Path) -> None:
    path = tmp_path / "log"
    server = _listening(path)
    out = SyslogOutput(str(path))
    out.send(4, "12:00:00.000 web syscall-denied: ptrace\n    fix: [seccomp] allow")
    message = server.recv(65536).decode()
    head, _, text = message.partition(": ")
    # <28>: facility daemon (3) * 8 + severity warning (4)
    assert head.startswith("<28>") and head.endswith(f" saferun-watch[{os.getpid()}]")
    assert text == "12:00:00.000 web syscall-denied: ptrace     fix: [seccomp] allow"  # one line
    server.close()
    path.unlink()
    out.send(4, "lost")  # the syslog daemon is away: counted, not raised
    assert out.failed == 1
    server = _listening(path)  # and back: the next line gets through
    out.send(6, "back")
    assert server.recv(65536).decode().endswith(": back")
    server.close()


def test_syslog_refuses_to_start_without_a_socket(tmp_path: Path) -> None:
    with pytest.raises(RequirementUnmet, match="cannot send to the syslog socket") as raised:
        SyslogOutput(str(tmp_path / "absent"))
    assert "--syslog-socket" in str(raised.value.fix)


def test_the_start_notes_say_what_cannot_be_seen() -> None:
    notes = " ".join(visibility())
    assert "errno is NOT seen" in notes and "AppArmor denials: NOT seen" in notes
    assert "keeps silent is NOT seen" in notes
    assert "errno refusals are logged" in " ".join(visibility(kernel_logs_errno=True))


def test_metrics_count_every_attempt_per_container_and_kind() -> None:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    metrics = Metrics()
    ctx = core.Watched("b" * 64, "web", app="shop")
    event = core.seccomp_event(ctx, 1.0, syscall="ptrace", action="kill_process", pid=1,
                               comm="a", exe="/a")
    metrics.count(event)
    metrics.count(core.Event(**{**event.__dict__, "count": 4}))
    metrics.count(core.dropped_event(1.0, 3, "queue"))
    metrics.count(core.notice(1.0, "hello"))
    families = {f.name: f for f in text_string_to_metric_families(
        generate_latest(metrics.registry).decode())}
    [sample] = [s for s in families["saferun_watch_events"].samples
                if s.name == "saferun_watch_events_total"]
    assert sample.labels == {"container": "web", "app": "shop", "kind": "syscall-denied"}
    assert sample.value == 5
    [dropped] = [s for s in families["saferun_watch_dropped"].samples
                 if s.name == "saferun_watch_dropped_total"]
    assert dropped.value == 3


def test_the_cli_prints_the_schema_and_needs_a_target() -> None:
    runner = CliRunner()
    schema = runner.invoke(cli, ["watch", "--print-schema"])
    assert schema.exit_code == 0 and '"watch-event-v1.json"' not in schema.output
    assert "saferun watch event" in schema.output
    result = runner.invoke(cli, ["watch"])
    assert result.exit_code == 2 and "--all" in result.output
    bad = runner.invoke(cli, ["watch", "--all", "--on-denial", "halt"])
    assert bad.exit_code == 2 and "stop, kill, pause" in bad.output


def test_the_cli_prints_a_unit_with_the_options_given() -> None:
    import sys

    result = CliRunner().invoke(cli, ["watch", "--app", "shop", "--format", "json",
                                      "--on-denial", "stop", "--print-systemd-unit"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("ExecStart="))
    assert line.startswith(f"ExecStart={sys.executable} -m saferun watch --app shop "
                           "--format json")
    assert "--on-denial=stop" in line and "--print-systemd-unit" not in line


def test_an_engine_restart_is_said_once_each_way_then_the_containers_are_found() -> None:
    from saferun.app.watch import Watcher

    watcher = object.__new__(Watcher)
    said: list[str] = []
    looked_up: list[bool] = []
    watcher._emit = lambda event: said.append(event.detail)  # type: ignore[method-assign]
    watcher.discover = lambda quiet=False: looked_up.append(quiet)  # type: ignore[method-assign]
    watcher._engine_up, watcher._engine_lost = False, False
    watcher._engine("up", "", 1.0)  # the first connection: nothing to say
    assert said == [] and looked_up == []
    for _ in range(5):  # tried every second while the engine is away
        watcher._engine("down", "connection refused", 2.0)
    watcher._engine("up", "", 3.0)
    watcher._engine("up", "", 3.5)
    assert len(said) == 2 and "lost (connection refused)" in said[0] and "back" in said[1]
    assert looked_up == [True]
