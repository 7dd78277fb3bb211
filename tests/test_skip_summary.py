"""scripts/test's last line names each skipped group and the command that enables it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.skips import CHECKOV_INSTALL, group_of, skip_summary

REPO = Path(__file__).resolve().parents[1]


def test_each_known_reason_has_a_group_and_a_command() -> None:
    assert group_of("the engine has no runsc runtime (see scripts/engine.sh)")[0] == "gvisor"
    assert group_of("docker-compose is not installed") == ("compose",
                                                           "apt-get install docker-compose")
    assert group_of("cannot build the preset images: debootstrap: not found")[0] == (
        "debian-images")


def test_the_checkov_command_is_what_ci_runs() -> None:
    """Run from the repository, the command gives the checkov the test looks for first."""
    ci = (REPO / ".ci" / "run").read_text()
    venv, _, install = CHECKOV_INSTALL.partition(" && ")
    assert venv == "python3 -m venv .venv-checkov" and venv in ci
    spec = install.rpartition(" ")[2]
    assert re.search(r"^\.venv-checkov/bin/pip install .*" + re.escape(spec) + "$", ci, re.M)
    assert group_of("checkov is not installed: " + CHECKOV_INSTALL) == ("checkov",
                                                                      CHECKOV_INSTALL)
    assert ".venv-checkov/bin/checkov" in (
        REPO / "tests" / "integration" / "test_export_checkov.py").read_text()


def test_summary_is_one_line_with_counts_and_commands() -> None:
    line = skip_summary(["docker-compose is not installed", "docker-compose is not installed",
                         "runsc is not registered with this engine", "this host has no findings"])
    assert "\n" not in line
    assert line.startswith(
        "skipped groups: compose (2): apt-get install docker-compose; gvisor (1)")
    assert line.endswith("other (1) (not enabled by a command)")
    assert skip_summary([]) == "skipped groups: none"


def test_the_summary_is_the_last_line_of_the_output(tmp_path: Path) -> None:
    """pytest with this suite's hooks (tests/conftest.py) and -ra, as scripts/test runs it:
    after the failures, the short summary of every skip and the counts, the last line is
    the skip summary."""
    (tmp_path / "test_some.py").write_text(
        "import pytest\n"
        "def test_passes(): pass\n"
        "def test_fails(): assert False\n"
        "def test_compose(): pytest.skip('docker-compose is not installed')\n"
        "def test_gvisor(): pytest.skip('runsc is not registered with this engine')\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider",
         "-p", "tests.conftest", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.rstrip("\n").splitlines()
    assert "short test summary info" in result.stdout and "1 failed, 1 passed, 2 skipped" in (
        result.stdout)
    assert lines[-1] == ("skipped groups: compose (1): apt-get install docker-compose; "
                         "gvisor (1): apt-get install runsc and register it in "
                         "/etc/docker/daemon.json (docs/runtimes.md)"), result.stdout
