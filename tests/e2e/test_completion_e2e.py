"""Completion asks the real engine for image and container names; a real bash, TAB
pressed in a terminal, goes on typing after a rule id's `=` and a folder's `/`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import E2E_LABEL, SESSION_ID, docker
from tests.e2e.terminal import Server, interactive_bash, prompt_line, wait_for

BIN = Path(sys.executable).parent


def complete(words: str, tmp_path: Path) -> list[str]:
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1),
           "_SAFERUN_COMPLETE": "bash_complete"}
    result = subprocess.run([str(BIN / "saferun")], capture_output=True, text=True, timeout=60,
                            check=False, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    return [line.partition(",")[2] for line in result.stdout.splitlines() if line]


def test_images_and_containers_come_from_the_engine(busybox_image: str, tmp_path: Path) -> None:
    assert busybox_image in complete("saferun run saferun-test/bu", tmp_path)
    assert busybox_image in complete("saferun image check saferun-test/", tmp_path)
    assert busybox_image in complete("saferun init --image saferun-test/", tmp_path)
    stopped, running = f"ux-complete-stopped-{SESSION_ID}", f"ux-complete-up-{SESSION_ID}"
    label = f"{E2E_LABEL[0]}={E2E_LABEL[1]}"
    try:
        docker("create", "--name", stopped, "--label", label, busybox_image, "true")
        docker("run", "-d", "--name", running, "--label", label, busybox_image, "sleep", "60")
        assert complete(f"saferun why ux-complete-stopped-{SESSION_ID[:4]}", tmp_path) == [stopped]
        # verify judges running containers: the stopped one is not offered.
        assert complete("saferun verify ux-complete-", tmp_path) == [running]
        assert complete("saferun watch ux-complete-", tmp_path) == [running]
        assert set(complete("saferun check --container ux-complete-", tmp_path)) == {stopped,
                                                                                    running}
    finally:
        docker("rm", "-f", stopped, running, check=False)


def test_bash_adds_no_space_after_a_rule_id_or_a_folder(tmux: Server, tmp_path: Path) -> None:
    """What a user sees: the line after TAB, then a typed X. click's own script added a
    space after `host-pid=` (the reason became a separate word) and after `apps/`."""
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "web.toml").write_text("")
    session = interactive_bash(tmux, tmp_path, {
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})  # no image names to offer
    try:
        tmux.tmux("send-keys", "-t", session, 'eval "$(_SAFERUN_COMPLETE=bash_source saferun)"',
                  "Enter", "complete -p saferun", "Enter")
        wait_for(tmux, session, lambda screen: "-F _saferun_completion saferun" in screen)
        for typed, tabs, expected in (
                ("saferun run --allow host-p", 1, "saferun run --allow host-pid=X"),
                ("saferun run --allow=host-p", 1, "saferun run --allow=host-pid=X"),
                ("saferun init --allow privi", 1, "saferun init --allow privileged=X"),
                ("saferun run ap", 1, "saferun run apps/X"),
                # into the folder; a manifest file ends the word: a space after it
                ("saferun run ap", 2, "saferun run apps/web.toml X")):
            tmux.tmux("send-keys", "-t", session, "C-u", typed)
            wait_for(tmux, session, lambda screen, t=typed: prompt_line(screen) == f"$ {t}")
            for _ in range(tabs):
                before = prompt_line(wait_for(tmux, session, lambda _: True))
                tmux.tmux("send-keys", "-t", session, "Tab")
                wait_for(tmux, session, lambda screen, b=before: prompt_line(screen) != b)
            tmux.tmux("send-keys", "-t", session, "X")
            shown = wait_for(tmux, session, lambda screen: prompt_line(screen).endswith("X"))
            assert prompt_line(shown) == f"$ {expected}", typed
    finally:
        tmux.kill_session(session)
