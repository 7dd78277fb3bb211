"""app.profiles: seccomp and AppArmor profiles generated, reported on and written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from saferun.app import profiles
from saferun.errors import ProfileError, UsageError

MANIFEST = '[app]\nname = "web"\nimage = "busybox:1"\n'


def write(tmp_path: Path, text: str = MANIFEST) -> Path:
    path = tmp_path / "saferun.toml"
    path.write_text(text)
    return path


def test_seccomp_profile_is_deterministic_and_written_when_asked(tmp_path: Path) -> None:
    manifest = write(tmp_path)
    first = profiles.seccomp_profile(manifest, native_arch="x86_64")
    out = tmp_path / "p.json"
    second = profiles.seccomp_profile(manifest, native_arch="x86_64", output=out)
    assert first.text == second.text == out.read_text()
    assert json.loads(first.text)["defaultAction"] == "SCMP_ACT_ERRNO"


def test_seccomp_refuses_builtin_profiles(tmp_path: Path) -> None:
    manifest = write(tmp_path, MANIFEST + '[seccomp]\nprofile = "docker-default"\n')
    with pytest.raises(UsageError, match="generates no profile"):
        profiles.seccomp_profile(manifest, native_arch="x86_64")


def test_seccomp_report_stats_verify_and_against(tmp_path: Path) -> None:
    generated = profiles.seccomp_profile(write(tmp_path), native_arch="x86_64")
    assert profiles.seccomp_report(generated).lines == []
    report = profiles.seccomp_report(generated, stats=True, verify=True)
    assert report.lines[0].startswith("stats: ") and report.risky == []
    assert report.lines[-1] == "high-risk: none allowed"
    old = tmp_path / "old.json"
    old.write_text(generated.text)
    same = profiles.seccomp_report(generated, against=old)
    assert same.lines == [f"against {old}: no change"]
    old.write_text("{")
    with pytest.raises(ProfileError, match="cannot read the old profile"):
        profiles.seccomp_report(generated, against=old)


def test_apparmor_profile_check_and_warning(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str] = []
    monkeypatch.setattr(profiles, "compile_check", compiled.append)
    profile = profiles.apparmor_profile(write(tmp_path), check=True)
    assert profile.name == "saferun-web" and compiled == [profile.text]
    assert profile.warning is None
    builtin = MANIFEST + '[apparmor]\nmode = "profile"\nprofile = "docker-default"\n'
    off = profiles.apparmor_profile(write(tmp_path, builtin))
    assert off.warning is not None and "will not load" in off.warning
    out = tmp_path / "web.aa"
    profiles.write_apparmor(profile, out)
    assert out.read_text() == profile.text
