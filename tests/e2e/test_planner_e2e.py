"""The planning server on the real engine: a start it plans is the start the full path
makes (same entry, same protections in force), refusals stay the full path's, fifty
concurrent starts are all planned, and the server leaves nothing behind."""

from __future__ import annotations

import marshal
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import docker, saferun
from tests.e2e.test_first_start_e2e import _protections

pytestmark = pytest.mark.e2e


class Cache:
    """A cache directory of its own (short: the socket path must fit in 108 bytes), with
    the planning server turned on; stops the server it started."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, "SAFERUN_DEBUG": "1", "XDG_CACHE_HOME": str(root),
                    "SAFERUN_SERVER_IDLE": "120"}
        for key in ("SAFERUN_NO_SERVER", "SAFERUN_NO_CACHE"):
            self.env.pop(key, None)

    @property
    def sockets(self) -> list[Path]:
        return sorted((self.root / "saferun").glob("planner-*.sock"))

    def wait_for_server(self) -> Path:
        deadline = time.monotonic() + 30
        while not [s for s in self.sockets if Path(f"{s}.pid").exists()]:
            assert time.monotonic() < deadline, "no planning server came up"
            time.sleep(0.05)
        return self.sockets[0]

    def server_pids(self) -> list[int]:
        return [int(Path(f"{s}.pid").read_text()) for s in self.sockets
                if Path(f"{s}.pid").exists()]

    def stop(self) -> None:
        for pid in self.server_pids():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 10
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"server {pid} still runs"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture
def cache() -> Iterator[Cache]:
    with tempfile.TemporaryDirectory(prefix="srv-", dir="/tmp") as name:
        cache = Cache(Path(name))
        try:
            yield cache
        finally:
            cache.stop()
        assert not cache.sockets, "the server left its socket behind"


@pytest.fixture
def fake_docker(tmp_path: Path) -> dict[str, str]:
    """`docker` on PATH replaced by `true`: saferun's decision without a container."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").symlink_to("/bin/true")
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def _start_server(cache: Cache, manifest: Path, extra: dict[str, str] | None = None) -> None:
    first = saferun("run", "--rm", "--label", f"t={uuid.uuid4().hex}", str(manifest), "true",
                    env={**cache.env, **(extra or {})})
    assert first.returncode == 0, first.stderr
    assert "no planning server: starting one" in first.stderr
    cache.wait_for_server()


def test_a_start_the_server_planned_applies_every_protection(
        cache: Cache, e2e_manifest: Any) -> None:
    manifest = e2e_manifest({"app": {"name": "planned"}, "resources": {"memory": "64m"}})
    name = f"planned-{uuid.uuid4().hex[:8]}"
    _start_server(cache, manifest)
    try:
        run = saferun("run", "-d", "--name", name, "--label", f"token={uuid.uuid4().hex}",
                      str(manifest), "sleep", "60", env=cache.env)
        assert run.returncode == 0, run.stderr
        assert "plan cache miss: no entry" in run.stderr  # never seen: not a reuse
        assert "planned by the planning server" in run.stderr
        assert "plan cache hit" in run.stderr  # then served, with every re-check of a hit
        planned = _protections(name)
        assert planned["NoNewPrivs"] == ("1", "1") and planned["Seccomp"] == ("2", "2")
        assert planned["CapEff"] == ("0000000000000000", "0000000000000000")
        assert planned["uid"] == "65534" and planned["id -u"] == "65534"
        assert planned["ReadonlyRootfs"] is True and planned["root writable"] is False
        assert planned["CapDrop"] == ["ALL"] and "no-new-privileges" in planned["SecurityOpt"]
        assert any(opt.startswith("seccomp=") and '"defaultAction"' in opt
                   for opt in planned["SecurityOpt"])
        assert planned["Memory"] == 64 * 1024 * 1024 and planned["PidsLimit"] == 256
        docker("rm", "-f", name)

        # The same start planned in process (no server): the same container configuration.
        alone = saferun("run", "-d", "--name", name, "--label", f"token={uuid.uuid4().hex}",
                        str(manifest), "sleep", "60",
                        env={**cache.env, "SAFERUN_NO_SERVER": "1"})
        assert alone.returncode == 0, alone.stderr
        assert "planned by the planning server" not in alone.stderr
        assert _protections(name) == planned
    finally:
        docker("rm", "-f", name, check=False)


def _entries(cache: Cache) -> dict[str, dict[str, Any]]:
    found = {}
    for path in (cache.root / "saferun" / "plans").glob("*.plan"):
        entry = marshal.loads(path.read_bytes())
        found[path.name] = entry
    return found


def test_the_server_stores_exactly_the_entry_the_full_path_stores(
        cache: Cache, e2e_manifest: Any, fake_docker: dict[str, str]) -> None:
    manifest = e2e_manifest({"app": {"name": "same-entry"}})
    _start_server(cache, manifest, fake_docker)
    argv = ("run", "--rm", "--label", "same=entry", "-p", "127.0.0.1:8080:80", str(manifest),
            "true")

    def forget() -> None:
        for path in (cache.root / "saferun" / "plans").glob("*.plan"):
            path.unlink()

    forget()
    via_server = saferun(*argv, env={**cache.env, **fake_docker})
    assert "planned by the planning server" in via_server.stderr, via_server.stderr
    planned = _entries(cache)
    forget()
    alone = saferun(*argv, env={**cache.env, **fake_docker, "SAFERUN_NO_SERVER": "1"})
    assert alone.returncode == via_server.returncode == 0, alone.stderr
    assert "planned by the planning server" not in alone.stderr
    assert _entries(cache) == planned and planned
    assert via_server.stderr.replace("saferun: debug: planned by the planning server\n", "") \
        .replace("saferun: debug: plan cache hit\n", "") == alone.stderr.replace(
            "saferun: debug: plan cache hit\n", "")  # what the user reads is the same


def test_a_refusal_is_the_full_paths_own(cache: Cache, e2e_manifest: Any,
                                          fake_docker: dict[str, str]) -> None:
    manifest = e2e_manifest({"app": {"name": "refused"}})
    _start_server(cache, manifest, fake_docker)
    argv = ("run", "--rm", "--privileged", str(manifest), "true")
    via_server = saferun(*argv, env={**cache.env, **fake_docker})
    alone = saferun(*argv, env={**cache.env, **fake_docker, "SAFERUN_NO_SERVER": "1"})
    assert via_server.returncode == alone.returncode == 125
    assert "privileged" in via_server.stderr
    assert "planned by the planning server" not in via_server.stderr

    def message(text: str) -> str:
        return "\n".join(line for line in text.splitlines() if "debug:" not in line)

    assert message(via_server.stderr) == message(alone.stderr)


def test_fifty_concurrent_starts_are_all_planned(cache: Cache, e2e_manifest: Any,
                                                 fake_docker: dict[str, str]) -> None:
    manifest = e2e_manifest({"app": {"name": "concurrent"}})
    _start_server(cache, manifest, fake_docker)
    env = {**cache.env, **fake_docker}
    command = [sys.executable, "-m", "saferun", "run", "--rm"]

    def one(index: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*command, "--label", f"n={index}", str(manifest), "true"],
                              capture_output=True, text=True, env=env, timeout=120, check=False)

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(50)))
    assert [r.returncode for r in results] == [0] * 50, [r.stderr for r in results if r.returncode]
    planned = sum("planned by the planning server" in r.stderr for r in results)
    assert planned == 50, [r.stderr for r in results if "planned by" not in r.stderr][:2]
    assert all("plan cache hit" in r.stderr for r in results)


def test_no_server_when_turned_off(cache: Cache, e2e_manifest: Any,
                                   fake_docker: dict[str, str]) -> None:
    manifest = e2e_manifest({"app": {"name": "no-server"}})
    for _ in range(2):
        run = saferun("run", "--rm", "--label", f"t={uuid.uuid4().hex}", str(manifest), "true",
                      env={**cache.env, **fake_docker, "SAFERUN_NO_SERVER": "1"})
        assert run.returncode == 0, run.stderr
        assert "planning server" not in run.stderr
    time.sleep(0.5)
    assert not cache.sockets and not cache.server_pids()
