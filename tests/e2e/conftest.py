"""Shared fixtures for end-to-end tests against a real Docker engine.

Without an engine these tests skip, except in CI (CI=true), where a missing engine fails.
Every container a test creates carries the label `saferun-e2e=<session id>` (use
`e2e_manifest` or `E2E_LABEL`) and is removed at the end of the session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.e2e.terminal import Server, tmux_server

REPO = Path(__file__).resolve().parents[2]
BUSYBOX_IMAGE = "saferun-test/busybox:1"
SESSION_ID = uuid.uuid4().hex[:12]
E2E_LABEL = ("saferun-e2e", SESSION_ID)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _engine_answers() -> bool:
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[None]:
    """A reachable Docker engine; skip locally without one, fail in CI."""
    if not _engine_answers():
        message = "no Docker engine answers `docker info`"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: .ci/run must start dockerd)")
        pytest.skip(message)
    yield
    ids = docker("ps", "-aq", "--filter", f"label={E2E_LABEL[0]}={E2E_LABEL[1]}").stdout.split()
    if ids:
        docker("rm", "-f", *ids)


def _link_index(name: str) -> int | None:
    try:
        return int(Path(f"/sys/class/net/{name}/ifindex").read_text())
    except (OSError, ValueError):
        return None


@pytest.fixture(scope="module", autouse=True)
def main_bridge_kept() -> Iterator[None]:
    """No test module may remove the main engine's bridge (a second dockerd can: see
    tests/e2e/extra_daemons.py); every later container start would fail."""
    before = _link_index("docker0")
    yield
    if before is not None:
        assert _link_index("docker0") == before, "docker0, the main engine's bridge, was removed"


@pytest.fixture(scope="session")
def busybox_image(docker_engine: None) -> str:
    """The local busybox image, built without a registry if it is missing."""
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-test-images.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"cannot build {BUSYBOX_IMAGE}: {result.stderr}")
    return BUSYBOX_IMAGE


@pytest.fixture(scope="module")
def tmux(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A private tmux server for this module's terminal tests (tests/e2e/terminal.py)."""
    if shutil.which("tmux") is None:
        if IN_CI:
            pytest.fail("tmux is missing (CI=true: scripts/engine.sh install adds it)")
        pytest.skip("tmux is not installed")
    with tmux_server(tmp_path_factory.mktemp("tmux")) as server:
        yield server


def docker(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} failed ({result.returncode}): {result.stderr}"
        )
    return result


def saferun(
    *args: str,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the saferun CLI as a user would, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "saferun", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        check=False,
    )


def inspect(container: str) -> dict[str, Any]:
    return json.loads(docker("inspect", container).stdout)[0]


def write_manifest(directory: Path, document: dict[str, Any], name: str = "saferun.toml") -> Path:
    """Write a manifest that carries this session's clean-up label."""
    document = json.loads(json.dumps(document))
    labels = document.setdefault("app", {}).setdefault("labels", {})
    labels[E2E_LABEL[0]] = E2E_LABEL[1]
    path = directory / name
    path.write_text(tomli_w.dumps(document))
    return path


@pytest.fixture
def e2e_manifest(tmp_path: Path, busybox_image: str) -> Any:
    """`e2e_manifest({...sections...})` -> path of a manifest for the busybox image."""

    def make(document: dict[str, Any] | None = None, name: str = "saferun.toml") -> Path:
        document = json.loads(json.dumps(document or {}))
        app = document.setdefault("app", {})
        app.setdefault("name", "e2e")
        app.setdefault("image", busybox_image)
        return write_manifest(tmp_path, document, name)

    return make
