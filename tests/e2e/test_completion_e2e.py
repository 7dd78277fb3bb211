"""Completion asks the real engine for image and container names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import E2E_LABEL, SESSION_ID, docker

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
