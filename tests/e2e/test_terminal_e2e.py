"""A real terminal session (tmux): colour and progress on a TTY; plain text through a pipe,
with NO_COLOR=1 and with --no-color.

Each command runs in a detached tmux pane of its own server (`tmux -L`), and the pane is
captured with its escape sequences (`capture-pane -e`) once the command has printed its
end marker. Skipped without tmux outside CI (scripts/engine.sh installs it).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import IN_CI

REPO = Path(__file__).resolve().parents[2]
SAFERUN = str(Path(sys.executable).parent / "saferun")
WEAKENED = str(REPO / "tests" / "data" / "export" / "weakened.toml")
ESC = "\x1b["
DONE = "__ux_done__"


@pytest.fixture(scope="module")
def tmux() -> Iterator[str]:
    if shutil.which("tmux") is None:
        if IN_CI:
            pytest.fail("tmux is missing (CI=true: scripts/engine.sh install adds it)")
        pytest.skip("tmux is not installed")
    server = f"ux-term-{uuid.uuid4().hex[:8]}"
    yield server
    subprocess.run(["tmux", "-L", server, "kill-server"], capture_output=True, check=False)


def in_terminal(server: str, command: str, env: dict[str, str] | None = None) -> str:
    """Run `command` (a shell line) in a fresh 250x60 pane; return what the screen shows."""
    session = uuid.uuid4().hex[:8]
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in {"TERM": "xterm-256color",
                                                            **(env or {})}.items())
    script = f"unset NO_COLOR; export {exports}; {command}; echo {DONE}; sleep 60"
    subprocess.run(["tmux", "-L", server, "new-session", "-d", "-s", session, "-x", "250",
                    "-y", "60", "bash", "--norc", "-c", script], check=True,
                   env={**os.environ, "TERM": "xterm-256color"})
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            screen = subprocess.run(["tmux", "-L", server, "capture-pane", "-p", "-e", "-J",
                                     "-S", "-", "-t", session], capture_output=True, text=True,
                                    check=True).stdout
            if DONE in screen:
                return screen
            time.sleep(0.3)
        raise AssertionError(f"{command!r} did not finish in the terminal:\n{screen}")
    finally:
        subprocess.run(["tmux", "-L", server, "kill-session", "-t", session],
                       capture_output=True, check=False)


_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def text_of(screen: str) -> str:
    return _SGR.sub("", screen)


def coloured(screen: str, word: str) -> set[str]:
    """The colour codes (SGR parameters) in force just before each `word` on the screen."""
    codes = set()
    for match in re.finditer(r"((?:\x1b\[[0-9;]*m)+)" + re.escape(word), screen):
        codes |= {p for seq in _SGR.findall(match.group(1)) for p in seq.split(";") if p}
    return codes


def test_tables_are_coloured_on_a_terminal_only(tmux: str) -> None:
    shown = in_terminal(tmux, f"{SAFERUN} check {WEAKENED}")
    assert {"1", "31"} <= coloured(shown, "HIGH")  # bold red
    assert "36" in coloured(shown, "LOW")  # cyan
    plain = text_of(shown).split(DONE)[0]
    for case, command, env in (
            ("pipe", f"{SAFERUN} check {WEAKENED} | cat", {}),
            ("NO_COLOR", f"{SAFERUN} check {WEAKENED}", {"NO_COLOR": "1"}),
            ("--no-color", f"{SAFERUN} --no-color check {WEAKENED}", {})):
        screen = in_terminal(tmux, command, env)
        assert not _SGR.search(screen.split(DONE)[0]), case
        assert text_of(screen).split(DONE)[0] == plain, case  # the same table, uncoloured
    machine = in_terminal(tmux, f"{SAFERUN} check --format json {WEAKENED}")
    assert '"schema": "saferun.check/2"' in machine and not _SGR.search(machine.split(DONE)[0])


def test_image_layers_show_progress_on_a_terminal_only(tmux: str, busybox_image: str) -> None:
    shown = text_of(in_terminal(tmux, f"{SAFERUN} image check {busybox_image}"))
    assert re.search(rf"reading the layers of {re.escape(busybox_image)} ━+ 1/1 ", shown)
    assert "image-user-root" in shown
    piped = in_terminal(tmux, f"{SAFERUN} image check {busybox_image} 2>&1 | cat")
    assert "image-user-root" in piped and "reading the layers" not in piped
    # A machine format on a terminal: data on stdout, and no progress on stderr either.
    json_out = in_terminal(tmux, f"{SAFERUN} image check --format json {busybox_image}")
    assert "reading the layers" not in json_out and '"schema"' in json_out


def test_stack_start_shows_progress_on_a_terminal_only(tmux: str, busybox_image: str,
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
