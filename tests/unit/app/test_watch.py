"""saferun watch's options, its systemd unit and its start-up notes (no engine needed)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from saferun.app.watch import (
    Metrics,
    parse_metrics_address,
    parse_on_denial,
    systemd_unit,
    visibility,
)
from saferun.cli import cli
from saferun.errors import UsageError
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
