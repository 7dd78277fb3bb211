"""A real terminal session (tmux): colour and progress on a TTY; plain text through a pipe,
with NO_COLOR=1 and with --no-color.

Each command runs in a detached tmux pane of a private server (the `tmux` fixture, see
tests/e2e/terminal.py), and the pane is captured with its escape sequences once the
command has printed its end marker. Skipped without tmux outside CI (scripts/engine.sh
installs it).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

from tests.e2e.terminal import DONE, Server, coloured, has_colour, in_terminal, text_of

REPO = Path(__file__).resolve().parents[2]
SAFERUN = str(Path(sys.executable).parent / "saferun")
WEAKENED = str(REPO / "tests" / "data" / "export" / "weakened.toml")


def test_tables_are_coloured_on_a_terminal_only(tmux: Server) -> None:
    shown = in_terminal(tmux, f"{SAFERUN} check {WEAKENED}")
    assert {"1", "31"} <= coloured(shown, "HIGH")  # bold red
    assert "36" in coloured(shown, "LOW")  # cyan
    plain = text_of(shown).split(DONE)[0]
    for case, command, env in (
            ("pipe", f"{SAFERUN} check {WEAKENED} | cat", {}),
            ("NO_COLOR", f"{SAFERUN} check {WEAKENED}", {"NO_COLOR": "1"}),
            ("--no-color", f"{SAFERUN} --no-color check {WEAKENED}", {})):
        screen = in_terminal(tmux, command, env)
        assert not has_colour(screen.split(DONE)[0]), case
        assert text_of(screen).split(DONE)[0] == plain, case  # the same table, uncoloured
    machine = in_terminal(tmux, f"{SAFERUN} check --format json {WEAKENED}")
    assert '"schema": "saferun.check/2"' in machine and not has_colour(machine.split(DONE)[0])


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
