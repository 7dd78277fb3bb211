"""saferun.app.learn without an engine: workloads, repetition on loss, the report it writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from saferun.app import learn as app_learn
from saferun.app.learn import (
    LearnOutcome,
    RunResult,
    Workload,
    allowed_names,
    check_runtime,
    output_tail,
    recorded_run,
    report,
)
from saferun.errors import RecordingIncomplete, UsageError, WorkloadFailed
from saferun.learn.learning import LossSigns
from saferun.model.manifest import Manifest

MANIFEST = '[app]\nname = "web"\nimage = "nginx:1"\n'


def _manifest(**sections: object) -> Manifest:
    return Manifest.from_data({"app": {"name": "web", "image": "nginx:1"}, **sections})


def _outcome(**changes: Any) -> LearnOutcome:
    profile = {"syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                            {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO"}]}
    values: dict[str, Any] = {"learned": ("read", "write"), "tmpfs": (), "notes": (),
                              "capabilities": None, "enforcing": _manifest(), "profile": profile}
    return LearnOutcome(**{**values, **changes})


class Lines:
    def __init__(self) -> None:
        self.said: list[str] = []
        self.shown: list[str] = []

    def say(self, line: str) -> None:
        self.said.append(line)

    def show(self, text: str) -> None:
        self.shown.append(text)


def test_workload_describes_itself() -> None:
    assert Workload().describe() == "the app's own command"
    spec = Workload(command=("sh", "-c", "echo hi"), exec_argv=("ls",), duration=2.5)
    assert spec.describe() == "command sh -c 'echo hi', exec ls, 2.5 s"


def test_only_runc_can_be_recorded() -> None:
    check_runtime(_manifest())
    with pytest.raises(UsageError, match="own kernel"):
        check_runtime(_manifest(security={"runtime": "gvisor"}))


def test_allowed_names_and_output_tail() -> None:
    assert allowed_names(_outcome().profile) == {"read", "write"}
    assert output_tail("") == "the container printed nothing"
    assert output_tail("a\n\nb\nc\n", lines=2) == "the container said: b | c"


def test_a_run_that_lost_records_is_repeated_with_a_larger_buffer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    lost = LossSigns(overflows=1, missing=0, kernel_lost=0)
    clean = LossSigns(overflows=0, missing=0, kernel_lost=0)
    buffers: list[int | None] = []
    signs = [lost, clean]

    def fake_run(*_: Any, rcvbuf: int | None = None, **__: Any) -> RunResult:
        buffers.append(rcvbuf)
        return RunResult(True, "ok", frozenset({"read"}), signs.pop(0), records=3)

    monkeypatch.setattr(app_learn, "run_once", fake_run)
    lines = Lines()
    result = recorded_run(_manifest(), None, Workload(), rcvbuf=None, label="run 1/1",
                          say=lines.say)
    assert result.calls == {"read"}
    assert buffers[0] is None and isinstance(buffers[1], int)
    assert lines.said[0].startswith("warning: run 1/1: records were lost")
    assert lines.said[1] == "run 1/1: 3 records, 1 distinct calls, ok"


def test_records_lost_every_time_write_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    lost = LossSigns(overflows=1, missing=0, kernel_lost=0)
    monkeypatch.setattr(app_learn, "run_once",
                        lambda *_, **__: RunResult(True, "ok", frozenset(), lost))
    lines = Lines()
    with pytest.raises(RecordingIncomplete, match="nothing was written"):
        recorded_run(_manifest(), None, Workload(), rcvbuf=None, label="run", say=lines.say)
    assert lines.said[-1].endswith("giving up")


def test_report_shows_the_manifest_diff_and_writes_it_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "saferun.toml"
    path.write_text(MANIFEST)
    lines = Lines()
    report(path, _manifest(), _outcome(notes=("a note",)), write_manifest=False, output=None,
           say=lines.say, show=lines.show)
    assert lines.said == ["learned 2 calls; the enforcing profile allows 2 names (with the "
                          "runtime's own)", "warning: a note"]
    assert lines.shown[0].startswith(f"--- {path} (before)")
    assert '+learned = [\n+    "read",\n+    "write",\n+]\n' in lines.shown[0]
    assert path.read_text() == MANIFEST
    report(path, _manifest(), _outcome(), write_manifest=True, output=None, say=lines.say,
           show=lines.show)
    assert lines.said[-1] == f"wrote {path}" and "learned" in path.read_text()


def test_report_writes_the_profile_to_output(tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    lines = Lines()
    report(tmp_path / "unread.toml", _manifest(seccomp={"learned": ["read", "close"]}),
           _outcome(), write_manifest=False, output=out, say=lines.say, show=lines.show)
    assert lines.shown == ["+ write\n", "- close\n"]
    assert lines.said[-1] == f"wrote {out}"
    assert json.loads(out.read_text())["syscalls"][0]["names"] == ["read", "write"]


def test_a_failed_verification_names_the_denials(tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    verified = RunResult(False, "the app exited 1", output="boom\n")
    lines = Lines()
    with pytest.raises(WorkloadFailed, match="verification failed") as info:
        report(tmp_path / "x.toml", _manifest(), _outcome(verified=verified, denied=("ptrace",)),
               write_manifest=False, output=out, say=lines.say, show=lines.show)
    assert info.value.fix == "the container said: boom"
    assert any(line.startswith("denied: ") and "ptrace" in line for line in lines.said)
    passed = _outcome(verified=RunResult(True, "the app exited 0"))
    report(tmp_path / "x.toml", _manifest(), passed, write_manifest=False, output=out,
           say=lines.say, show=lines.show)
    assert lines.said[-1] == ("verified: the workload passed under the learned profile "
                              "(the app exited 0)")
