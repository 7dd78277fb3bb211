"""Options shared by every test directory."""

from __future__ import annotations

import os
import signal

import pytest

# `saferun run` starts a planning server (saferun.app.planner) that outlives the command;
# the suite turns it off, and the tests of the server turn it on for themselves.
os.environ.setdefault("SAFERUN_NO_SERVER", "1")
_SESSION_START = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="Rewrite golden files from the current output instead of comparing.")


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


_SKIP_SUMMARY = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    """The skipped groups and the command that enables each: the last line of the output,
    written at unconfigure (pytest prints its short summary and the counts after this)."""
    from tests.skips import skip_summary

    reasons = []
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons.append(reason.removeprefix("Skipped: "))
    config.stash[_SKIP_SUMMARY] = skip_summary(reasons)


def pytest_unconfigure(config: pytest.Config) -> None:
    line = config.stash.get(_SKIP_SUMMARY, None)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if line is not None and reporter is not None:
        reporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop every planning server this session started (a test that built its
    environment from scratch may have started one): none outlives the suite."""
    for pid, started in _planning_servers():
        if started >= _SESSION_START:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _planning_servers() -> list[tuple[int, int]]:
    from saferun.engine.host import processes

    found = []
    for pid, argv in processes():
        if not any("saferun.app.planner import serve_main" in word for word in argv):
            continue
        try:
            with open(f"/proc/{pid}/stat") as handle:
                found.append((pid, int(handle.read().rsplit(")", 1)[1].split()[19])))
        except OSError:
            continue
    return found
