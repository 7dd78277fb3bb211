"""A plain (non-editable) install carries the data folders (profiles/, seccomp/,
apparmor/) and the `saferun` command."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_contains_data_folders_and_console_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    wheel = next(tmp_path.glob("saferun-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in ("seccomp", "apparmor"):
        expected = {
            f"saferun/_data/{kind}/{p.name}" for p in (REPO / kind).iterdir() if p.is_file()
        }
        assert expected and expected <= names, sorted(expected - names)
    # The command is a wheel script whose `#!python` the installer points at its interpreter
    # (bin/saferun: not an entry point, whose generated wrapper imports re on every start).
    script = next(n for n in names if n.endswith(".data/scripts/saferun"))
    text = zipfile.ZipFile(wheel).read(script).decode()
    assert text.startswith("#!python\n")
    assert "import re" not in text
    assert not any(n.endswith("entry_points.txt") and b"saferun" in zipfile.ZipFile(wheel).read(n)
                   for n in names)  # one `saferun` only
    done = subprocess.run([sys.executable, str(REPO / "bin" / "saferun"), "--version"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "saferun, version" in done.stdout, done.stderr
