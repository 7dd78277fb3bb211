"""A real terminal session (tmux): colour and progress on a TTY; plain text through a pipe,
with NO_COLOR=1, with --no-color and with `color = false` in the user config.

Each command runs in a detached tmux pane of a private server (the `tmux` fixture, see
tests/e2e/terminal.py), and the pane is captured with its escape sequences once the
command has printed its end marker. Skipped without tmux outside CI (scripts/engine.sh
installs it).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import IN_CI
from tests.e2e.terminal import DONE, Server, coloured, has_colour, in_terminal, text_of

REPO = Path(__file__).resolve().parents[2]
SAFERUN = str(Path(sys.executable).parent / "saferun")
WEAKENED = str(REPO / "tests" / "data" / "export" / "weakened.toml")


def coloured_on_a_terminal_only(tmux: Server, tmp_path: Path, command: str) -> str:
    """`command`'s table (stdout) on a terminal, with its escapes; checks that it is the
    same text, with no escape at all, through a pipe, with NO_COLOR=1, with --no-color and
    with `color = false` in the user config."""
    nothing, off = tmp_path / "no-config", tmp_path / "config"
    (off / "saferun").mkdir(parents=True)
    (off / "saferun" / "config.toml").write_text("color = false\n")
    own = {"XDG_CONFIG_HOME": str(nothing)}  # not the config of whoever runs the tests
    shown = in_terminal(tmux, f"{SAFERUN} {command} 2>/dev/null", own).split(DONE)[0]
    assert has_colour(shown), shown
    for case, line, env in (
            ("pipe", f"{SAFERUN} {command} 2>/dev/null | cat", own),
            ("NO_COLOR", f"{SAFERUN} {command} 2>/dev/null", {**own, "NO_COLOR": "1"}),
            ("--no-color", f"{SAFERUN} --no-color {command} 2>/dev/null", own),
            ("color = false", f"{SAFERUN} {command} 2>/dev/null", {"XDG_CONFIG_HOME": str(off)})):
        screen = in_terminal(tmux, line, env).split(DONE)[0]
        assert "\x1b" not in screen, case
        assert screen == text_of(shown), case  # the same table, uncoloured
    return shown


def test_check_table_is_coloured_on_a_terminal_only(tmux: Server, tmp_path: Path) -> None:
    shown = coloured_on_a_terminal_only(tmux, tmp_path, f"check {WEAKENED}")
    assert {"1", "31"} <= coloured(shown, "HIGH")  # bold red
    assert "36" in coloured(shown, "LOW")  # cyan
    machine = in_terminal(tmux, f"{SAFERUN} check --format json {WEAKENED}")
    assert '"schema": "saferun.check/2"' in machine and not has_colour(machine.split(DONE)[0])


def test_score_table_is_coloured_on_a_terminal_only(tmux: Server, tmp_path: Path) -> None:
    shown = coloured_on_a_terminal_only(tmux, tmp_path, f"score {WEAKENED}")
    assert re.search(r"^\x1b\[31m✗\x1b\[39m run-as-root ", shown, re.M)  # red: it counts
    assert re.search(r"^\x1b\[32m✓\x1b\[39m no-new-privileges ", shown, re.M)  # green
    machine = in_terminal(tmux, f"{SAFERUN} score --format json {WEAKENED}")
    assert not has_colour(machine.split(DONE)[0])


def test_doctor_table_is_coloured_on_a_terminal_only(tmux: Server, tmp_path: Path) -> None:
    shown = coloured_on_a_terminal_only(tmux, tmp_path, "doctor")
    assert "32" in coloured(shown, "PASS")  # green
    severities = {"CRITICAL": {"1", "35"}, "HIGH": {"1", "31"}, "MEDIUM": {"33"}, "LOW": {"36"}}
    found = {word for word in severities if re.search(rf"\b{word.lower()}\b", text_of(shown))}
    assert found, shown
    for word in found:  # bold magenta, bold red, yellow, cyan
        assert severities[word] <= coloured(shown, word.lower()), word


def test_image_check_table_is_coloured_on_a_terminal_only(tmux: Server, tmp_path: Path,
                                                          busybox_image: str) -> None:
    shown = coloured_on_a_terminal_only(tmux, tmp_path, f"image check {busybox_image}")
    assert "33" in coloured(shown, "MEDIUM")  # yellow (image-user-root)
    assert "36" in coloured(shown, "LOW")  # cyan (image-healthcheck)


def test_image_layers_show_progress_on_a_terminal_only(tmux: Server, busybox_image: str) -> None:
    shown = text_of(in_terminal(tmux, f"{SAFERUN} image check {busybox_image}"))
    assert re.search(rf"reading the layers of {re.escape(busybox_image)} ━+ 1/1 ", shown)
    assert "image-user-root" in shown
    piped = in_terminal(tmux, f"{SAFERUN} image check {busybox_image} 2>&1 | cat")
    assert "image-user-root" in piped and "reading the layers" not in piped
    # A machine format on a terminal: data on stdout, and no progress on stderr either.
    json_out = in_terminal(tmux, f"{SAFERUN} image check --format json {busybox_image}")
    assert "reading the layers" not in json_out and '"schema"' in json_out


def test_stack_start_shows_progress_on_a_terminal_only(tmux: Server, busybox_image: str,
                                                       tmp_path: Path) -> None:
    import tomli_w

    stack = f"ux-term-stack-{uuid.uuid4().hex[:6]}"
    for name in ("db", "web"):
        (tmp_path / f"{name}.toml").write_text(tomli_w.dumps(
            {"app": {"name": name, "image": busybox_image, "command": ["sleep", "300"]}}))
    (tmp_path / "saferun.stack.toml").write_text(tomli_w.dumps(
        {"stack": {"name": stack, "sandbox_image": busybox_image},
         "services": {"db": {"manifest": "db.toml"},
                      "web": {"manifest": "web.toml", "depends_on": ["db"]}}}))
    path = shlex.quote(str(tmp_path / "saferun.stack.toml"))
    try:
        shown = text_of(in_terminal(tmux, f"{SAFERUN} up {path}; {SAFERUN} down {path}"))
        # the spinner ends on the last step, with its elapsed time
        assert re.search(rf"stack {stack}: starting web\s+\d+:\d\d:\d\d", shown), shown
        piped = in_terminal(tmux, f"{SAFERUN} up {path} 2>&1 | cat; {SAFERUN} down {path}")
        assert f"{stack}-web" in piped and f"stack {stack}: starting" not in piped
    finally:
        subprocess.run([SAFERUN, "down", str(tmp_path / "saferun.stack.toml")],
                       capture_output=True, check=False)


def test_learn_shows_its_runs_and_record_counts_on_a_terminal_only(
        tmux: Server, e2e_manifest: Any, tmp_path: Path) -> None:
    """A spinner with the latest line and the elapsed time, and every line (each run's
    records and calls, the learned list on stdout) on a line of its own above it: the
    lines do not run into the spinner's. Nothing but the lines through a pipe."""
    if os.geteuid() != 0 and not IN_CI:
        pytest.skip("recording system calls needs root")
    manifest = e2e_manifest({"app": {"name": "ux-term-learn"}})
    out = tmp_path / "learned.json"
    learn = (f"{SAFERUN} learn {shlex.quote(str(manifest))} -o {shlex.quote(str(out))} "
             "--runs 2 -- sh -c 'ls / >/dev/null'")
    runs = [re.compile(rf"saferun: run {n}/2: \d+ records, \d+ distinct calls, the app "
                       "exited 0") for n in (1, 2)]
    spinner = re.compile(r"\S learning saferun\.toml: wrote /\S+ \d+:\d\d:\d\d")  # 70 chars
    for case, env in (("tty", {}), ("NO_COLOR", {"NO_COLOR": "1"})):
        shown = in_terminal(tmux, learn, env).split(DONE)[0]
        lines = [line.rstrip() for line in text_of(shown).splitlines() if line.strip()]
        assert all(any(run.fullmatch(line) for line in lines) for run in runs), shown
        assert "+ openat" in lines and f"saferun: wrote {out}" in lines, shown
        assert spinner.fullmatch(lines[-1]), shown  # the spinner ends the output
        assert len([line for line in lines if "learning saferun.toml:" in line]) == 1, shown
        assert has_colour(shown) == (case == "tty"), case  # the progress, uncoloured
    piped = in_terminal(tmux, f"{learn} 2>&1 | cat").split(DONE)[0]
    assert all(run.search(piped) for run in runs) and "+ openat" in piped, piped
    assert "learning saferun.toml:" not in piped and "\x1b" not in piped
