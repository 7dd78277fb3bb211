"""Issue 19, case 1: what `run` refuses no other command may emit.

A bind source written relative to the manifest (`../../etc`) or through a symlink that
leads to /etc, / or the Docker socket is refused by `run`; `export` (every target) and
`init` refuse it with the same rule, and `check` reports that rule as a finding.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from saferun.app.check import check_manifest
from saferun.app.export import ExportRequest, render_export
from saferun.app.init import from_docker_run_line
from saferun.app.planning import judged_plan
from saferun.cli import cli
from saferun.errors import Refused
from saferun.export import Target
from saferun.inputs.loader import load_manifest
from saferun.model.facts import OFFLINE_FACTS
from saferun.plan.planner import LaunchOptions

LEADS_TO = {"etc": ("/etc", "sensitive-host-mount"), "root": ("/", "sensitive-host-mount"),
            "sock": ("/var/run/docker.sock", "docker-socket-mount")}


def _manifest(directory: Path, source: str, allow: dict[str, str] | None = None) -> Path:
    path = directory / "saferun.toml"
    reasons = "".join(f'{rule} = "{why}"\n' for rule, why in (allow or {}).items())
    path.write_text(f'[app]\nname = "hostile-one"\nimage = "nginx:1.25"\n'
                    f'[[filesystem.mounts]]\ntype = "bind"\nsource = "{source}"\n'
                    'target = "/data"\nread_only = true\n'
                    + (f"[allow]\n{reasons}" if allow else ""))
    return path


def _sources(tmp_path: Path) -> list[tuple[Path, str, str]]:
    """(manifest directory, source as written, the rule `run` refuses it by)."""
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    cases = [(deep, "../" * (len(deep.parts) + 2) + "etc", "sensitive-host-mount")]
    for name, (target, rule) in LEADS_TO.items():
        os.symlink(target, tmp_path / name)
        cases.append((tmp_path, f"./{name}", rule))
    return cases


def test_every_command_refuses_what_run_refuses(tmp_path: Path) -> None:
    for directory, source, rule in _sources(tmp_path):
        path = _manifest(directory, source)
        manifest = load_manifest(path)
        with pytest.raises(Refused, match=rule):  # what `run` and `learn` start from
            judged_plan(manifest, OFFLINE_FACTS, LaunchOptions(manifest_dir=str(directory)))
        for target in Target:
            with pytest.raises(Refused, match=rule):
                render_export(ExportRequest((path,), target))
        report = check_manifest(path)  # INVALID, as run refuses it and as /etc written is
        assert report.error and f"rule '{rule}'" in report.error, (source, report)
        path.unlink()


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, result.output


@pytest.mark.parametrize("allowed", [False, True])
def test_check_and_score_judge_the_resolved_source_as_the_written_one(
        tmp_path: Path, allowed: bool) -> None:
    """Gap 6 of the audit: `../../etc` or a symlink to /etc was a HIGH finding with a SAFE
    score (exit 1, score 0.9) while `/etc` written is INVALID (exit 2); `run` refuses both.
    Now check and score give the written and the resolved form one verdict: INVALID
    without a reason, the same findings and the same score with one."""
    why = "a test of the verdict"
    allow = {"sensitive-host-mount": why, "docker-socket-mount": why}
    for directory, source, rule in _sources(tmp_path):
        written = LEADS_TO.get(source.removeprefix("./"), ("/etc", rule))[0]
        verdicts = []
        for form in (source, written):
            path = _manifest(directory, form, allow if allowed else None)
            check, check_out = _cli("check", "--format", "json", str(path))
            score, score_out = _cli("score", "--format", "json", str(path))
            if not allowed:
                assert (check, score) == (2, 2), (form, check_out, score_out)
                assert rule in check_out and rule in score_out
            else:
                report = json.loads(check_out)["results"][0]
                assert rule in {f["rule"] for f in report["findings"]}, (form, report)
                scored = json.loads(score_out)["results"][0]
                assert scored["score"] == report["score"], scored
                badness = {i["rule"]: i["badness"] for i in scored["score"]["items"]}
                assert badness[rule] == 1.0, (form, scored)  # scored as the sensitive mount
                verdicts.append((check, report["score"]["value"], report["score"]["rating"],
                                 _shape(report["findings"])))
            path.unlink()
        if allowed:
            assert verdicts[0] == verdicts[1], (source, verdicts)


def _shape(findings: list[dict[str, object]]) -> list[tuple[object, ...]]:
    """The findings without their wording of the path (written or resolved)."""
    return sorted((f["rule"], f["severity"], f.get("allowed_by")) for f in findings)


def test_init_refuses_a_line_run_would_refuse(tmp_path: Path) -> None:
    for _directory, source, rule in _sources(tmp_path)[1:]:
        line = f"docker run -v {source}:/data nginx:1.25"
        with pytest.raises(Refused, match=rule):
            from_docker_run_line(line, (), cwd=str(tmp_path), manifest_dir=str(tmp_path))


def test_a_harmless_relative_source_still_exports(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    path = _manifest(tmp_path, "./data")
    rendered = render_export(ExportRequest((path,), Target.COMPOSE))
    assert "data" in rendered.result.files[0].content
