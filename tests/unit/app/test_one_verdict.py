"""Issue 19, case 1: what `run` refuses no other command may emit.

A bind source written relative to the manifest (`../../etc`) or through a symlink that
leads to /etc, / or the Docker socket is refused by `run`; `export` (every target) and
`init` refuse it with the same rule, and `check` reports that rule as a finding.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from saferun.app.check import check_manifest
from saferun.app.export import ExportRequest, render_export
from saferun.app.init import from_docker_run_line
from saferun.app.planning import judged_plan
from saferun.errors import Refused
from saferun.export import Target
from saferun.inputs.loader import load_manifest
from saferun.model.facts import OFFLINE_FACTS
from saferun.plan.planner import LaunchOptions

LEADS_TO = {"etc": ("/etc", "sensitive-host-mount"), "root": ("/", "sensitive-host-mount"),
            "sock": ("/var/run/docker.sock", "docker-socket-mount")}


def _manifest(directory: Path, source: str) -> Path:
    path = directory / "saferun.toml"
    path.write_text(f'[app]\nname = "hostile-one"\nimage = "nginx:1.25"\n'
                    f'[[filesystem.mounts]]\ntype = "bind"\nsource = "{source}"\n'
                    'target = "/data"\nread_only = true\n')
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
        report = check_manifest(path)
        assert rule in {f.rule for f in report.findings}, (source, report)
        path.unlink()


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
