"""A plain (non-editable) install carries the data folders: profiles/, seccomp/, apparmor/."""

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
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "saferun = saferun.__main__:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
