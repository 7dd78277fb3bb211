"""The AppArmor edge without the real parser: argv, private files, atomic writes, errors."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from saferun.engine import apparmor_parser as apparmor_host
from saferun.engine.apparmor_parser import (
    compile_argv,
    compile_check,
    load_argv,
    load_profile,
    write_profile_file,
)
from saferun.errors import ProfileError, RequirementUnmet, UsageError

NOISE = "Cache read/write disabled: interface file missing. (Kernel needs AppArmor 2.4 ...)\n"


class FakeParser:
    """Records each argv and what the profile file looked like while the parser ran."""

    def __init__(self, returncode: int = 0, stderr: str = "") -> None:
        self.returncode, self.stderr = returncode, stderr
        self.calls: list[list[str]] = []
        self.seen: list[tuple[str, int, int]] = []  # (text, file mode, directory mode)

    def __call__(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        path = Path(argv[-1])
        self.seen.append((path.read_text(), stat.S_IMODE(path.lstat().st_mode),
                          stat.S_IMODE(path.parent.lstat().st_mode)))
        return subprocess.CompletedProcess(argv, self.returncode, "", self.stderr)


def test_argv_lists() -> None:
    path = Path("/x/profile")
    assert compile_argv(path) == ["apparmor_parser", "-Q", "-K", "-T", "--", "/x/profile"]
    assert load_argv(path) == ["apparmor_parser", "-r", "-K", "--", "/x/profile"]


def test_load_profile_passes_a_private_file_and_cleans_up() -> None:
    fake = FakeParser()
    load_profile("profile x {}\n", runner=fake)
    (argv,) = fake.calls
    assert argv == load_argv(Path(argv[-1]))
    assert fake.seen == [("profile x {}\n", 0o600, 0o700)]
    assert not Path(argv[-1]).parent.exists()


def test_load_failure_is_a_requirement_error_with_the_parser_message() -> None:
    fake = FakeParser(1, NOISE + 'Unable to replace "saferun-web".  Permission denied\n')
    with pytest.raises(RequirementUnmet) as info:
        load_profile("profile x {}\n", runner=fake)
    assert "Permission denied" in info.value.message
    assert "Cache read/write" not in info.value.message
    assert not Path(fake.calls[0][-1]).parent.exists()


def test_compile_check_uses_compile_argv_and_reports_errors() -> None:
    ok = FakeParser()
    compile_check("profile x {}\n", runner=ok)
    assert ok.calls[0] == compile_argv(Path(ok.calls[0][-1]))
    bad = FakeParser(1, NOISE + "AppArmor parser error, line 4: Lexer found unexpected character\n")
    with pytest.raises(ProfileError, match="Lexer found unexpected character"):
        compile_check("garbage", runner=bad)


def test_missing_parser_is_a_requirement_error() -> None:
    with pytest.raises(RequirementUnmet, match="not installed"):
        apparmor_host._run(["saferun-test-no-such-apparmor-parser", "-Q"])


def test_write_profile_file_writes_and_leaves_no_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "app.aa"
    write_profile_file("one\n", dest)
    write_profile_file("two\n", dest)
    assert dest.read_text() == "two\n"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["app.aa"]


def test_write_profile_file_replaces_a_symlink_instead_of_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "app.aa"
    link.symlink_to(victim)
    write_profile_file("profile\n", link)
    assert victim.read_text() == "precious\n"
    assert not link.is_symlink() and link.read_text() == "profile\n"


def test_write_profile_file_errors_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        write_profile_file("x", tmp_path)
    with pytest.raises(UsageError, match="cannot write"):
        write_profile_file("x", tmp_path / "missing-dir" / "app.aa")
    assert os.listdir(tmp_path) == []
