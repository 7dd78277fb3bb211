"""`saferun profile apparmor`: output, -o, --check and errors, through the real command group."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from saferun.app import profiles as command
from saferun.cli import cli
from saferun.errors import ProfileError
from saferun.inputs.loader import load_manifest
from saferun.profiles.apparmor import profile_name_for, render_apparmor

MANIFEST = """\
[app]
name = "web"
image = "nginx:1.25"

[capabilities]
add = ["NET_BIND_SERVICE"]

[[filesystem.tmpfs]]
target = "/var/cache/nginx"

[apparmor]
network = ["tcp"]
"""


@pytest.fixture
def manifest_file(tmp_path: Path) -> Path:
    path = tmp_path / "saferun.toml"
    path.write_text(MANIFEST)
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["profile", "apparmor", *args])
    return result.exit_code, result.stdout, result.stderr


def test_prints_the_rendered_profile_deterministically(manifest_file: Path) -> None:
    code, out, _ = run(str(manifest_file))
    m = load_manifest(manifest_file)
    assert code == 0
    assert out == render_apparmor(m, profile_name=profile_name_for(m))
    assert run(str(manifest_file))[1] == out


def test_output_file_gets_the_same_bytes(manifest_file: Path, tmp_path: Path) -> None:
    dest = tmp_path / "web.aa"
    code, out, err = run(str(manifest_file), "-o", str(dest))
    assert code == 0 and out == ""
    assert dest.read_text() == run(str(manifest_file))[1]
    assert "apparmor=saferun-web" in err


def test_check_compiles_and_reports_parser_errors(manifest_file: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    monkeypatch.setattr(command, "compile_check", checked.append)
    assert run(str(manifest_file), "--check")[0] == 0
    assert checked and "profile saferun-web " in checked[0]

    def reject(text: str) -> None:
        raise ProfileError("apparmor_parser rejected the profile:\nline 3: bad")

    monkeypatch.setattr(command, "compile_check", reject)
    code, out, err = run(str(manifest_file), "--check")
    assert code == 2 and out == ""
    assert "line 3: bad" in err


def test_invalid_manifest_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(MANIFEST.replace('"/var/cache/nginx"', '"/var/cache/{a,b}"'))
    code, out, err = run(str(path))
    assert code == 2 and out == ""
    assert "filesystem.tmpfs" in err


def test_renderer_refusal_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "dotdot.toml"
    path.write_text(MANIFEST.replace('"/var/cache/nginx"', '"/var/../etc"'))
    code, _, err = run(str(path))
    assert code == 2
    assert "'/var/../etc'" in err


def test_named_profile_mode_warns_that_run_will_not_load_it(tmp_path: Path) -> None:
    path = tmp_path / "named.toml"
    path.write_text(MANIFEST + 'mode = "profile"\nprofile = "my-nginx"\n')
    code, out, err = run(str(path))
    assert code == 0 and "profile saferun-web " in out
    assert "will not load" in err
