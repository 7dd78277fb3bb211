"""A private tmux server for terminal tests: commands run in panes with a real TTY, and the
panes are captured with their escape sequences (`capture-pane -e`).

The server listens on a socket of its own (`tmux -S`, in the test's temporary directory)
and reads no tmux.conf. A placeholder session keeps it alive from the first pane to the
last: tmux exits when its last session ends, and a `new-session` sent while it exits fails
with "server exited unexpectedly" (the terminal tests failed about one run in five so).
`exit-empty off` says the same to tmux. At the end the server is killed and its process
must be gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

DONE = "__ux_done__"
WIDTH, HEIGHT = "250", "60"
_SGR = re.compile(r"\x1b\[([0-9;]*)m")


@dataclass(frozen=True)
class Server:
    socket: Path

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-S", str(self.socket), "-f", "/dev/null", *args],
                              capture_output=True, text=True, timeout=30, check=check,
                              env={**os.environ, "TERM": "xterm-256color"})

    def screen(self, session: str) -> str:
        return self.tmux("capture-pane", "-p", "-e", "-J", "-S", "-", "-t", session).stdout

    def new_session(self, *command: str) -> str:
        session = uuid.uuid4().hex[:8]
        self.tmux("new-session", "-d", "-s", session, "-x", WIDTH, "-y", HEIGHT, *command)
        return session

    def kill_session(self, session: str) -> None:
        self.tmux("kill-session", "-t", session, check=False)


@contextlib.contextmanager
def tmux_server(directory: Path) -> Iterator[Server]:
    """A tmux server on a socket in `directory`, killed (and checked gone) at the end."""
    server = Server(directory / "tmux.sock")
    server.tmux("new-session", "-d", "-s", "placeholder", "-x", WIDTH, "-y", HEIGHT,
                "tail -f /dev/null", ";", "set-option", "-g", "exit-empty", "off")
    pid = int(server.tmux("display-message", "-p", "-t", "placeholder", "#{pid}").stdout)
    try:
        yield server
    finally:
        server.tmux("kill-server", check=False)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{pid}").exists(), f"tmux server {pid} outlived kill-server"


def in_terminal(server: Server, command: str, env: dict[str, str] | None = None,
                timeout: float = 90) -> str:
    """Run `command` (a shell line) in a fresh 250x60 pane; return what the screen shows
    (everything printed, with its escape sequences, then the end marker)."""
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in {"TERM": "xterm-256color",
                                                            **(env or {})}.items())
    script = f"unset NO_COLOR; export {exports}; {command}; echo {DONE}; sleep 60"
    session = server.new_session("bash", "--norc", "-c", script)
    try:
        screen = ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = server.screen(session)
            if DONE in screen:
                return screen
            time.sleep(0.3)
        raise AssertionError(f"{command!r} did not finish in the terminal:\n{screen}")
    finally:
        server.kill_session(session)


def text_of(screen: str) -> str:
    return _SGR.sub("", screen)


def has_colour(text: str) -> bool:
    return _SGR.search(text) is not None


def coloured(screen: str, word: str) -> set[str]:
    """The colour codes (SGR parameters) in force just before each `word` on the screen."""
    codes = set()
    for match in re.finditer(r"((?:\x1b\[[0-9;]*m)+)" + re.escape(word), screen):
        codes |= {p for seq in _SGR.findall(match.group(1)) for p in seq.split(";") if p}
    return codes


def interactive_bash(server: Server, cwd: Path, env: dict[str, str]) -> str:
    """A session running an interactive bash (no rc files, no history file) at the `$ `
    prompt in `cwd`, with `env` added; returns the session name."""
    exports = [f"{k}={v}" for k, v in {"TERM": "xterm-256color", "PS1": "$ ", "HISTFILE": "",
                                       **env}.items()]
    session = server.new_session("-c", str(cwd), "env", *exports, "bash", "--norc",
                                 "--noprofile", "-i")
    wait_for(server, session, lambda screen: screen.rstrip().endswith("$"))
    return session


def wait_for(server: Server, session: str, ready: Callable[[str], bool],
             timeout: float = 30) -> str:
    """The pane's text (no escapes) once `ready` holds for it."""
    screen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = text_of(server.screen(session))
        if ready(screen):
            return screen
        time.sleep(0.1)
    raise AssertionError(f"the terminal never got there:\n{screen}")


def prompt_line(screen: str) -> str:
    """The last line that starts at the `$ ` prompt, without trailing blanks (`-J` keeps
    those a shorter line did not overwrite; a test looks at the space before a typed X)."""
    return [line.rstrip() for line in screen.splitlines() if line.startswith("$ ")][-1]
