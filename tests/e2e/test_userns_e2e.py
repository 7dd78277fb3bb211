"""`security.userns = "required"`: refused by the main engine (no remapping), started by a
second engine with userns-remap, where the host sees container processes under an
unprivileged uid (/proc/PID/status, /proc/PID/uid_map)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import saferun
from tests.e2e.extra_daemons import ExtraDaemon, running

pytestmark = pytest.mark.e2e

USERNS_SOCKET = "unix:///run/docker-userns.sock"


@pytest.fixture(scope="session")
def userns_engine(busybox_image: str) -> Iterator[ExtraDaemon]:
    """A second dockerd with --userns-remap=default, exactly as ../shared/ENGINE.md starts it."""
    daemon = ExtraDaemon(
        name="dockerd-userns",
        bridge="br-userns",
        bridge_cidr="172.31.250.1/24",
        data_root=Path("/var/lib/docker-userns"),
        exec_root=Path("/run/docker-userns"),
        pidfile=Path("/run/docker-userns/dockerd.pid"),
        hosts=[USERNS_SOCKET],
        extra_args=["--userns-remap=default"],
        client_env={"DOCKER_HOST": USERNS_SOCKET},
        log=Path("/var/log/dockerd-userns.log"),
    )
    with running(daemon, busybox_image):
        yield daemon


def _status_ids(pid: int) -> tuple[list[int], list[int]]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    return [int(v) for v in fields["Uid"]], [int(v) for v in fields["Gid"]]


def _document(user: str, **extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"app": {"user": user, "command": ["sleep", "60"]},
                                "security": {"userns": "required"}}
    document.update(extra)
    return document


def test_main_engine_refuses_userns_required(e2e_manifest: Any) -> None:
    manifest = e2e_manifest(_document("1000:1000"))
    result = saferun("run", "--rm", str(manifest))
    assert result.returncode == 125, result.stderr
    assert 'security.userns = "required"' in result.stderr
    assert "fix:" in result.stderr and "--userns-remap=default" in result.stderr


@pytest.mark.parametrize(("user", "exceptions", "offset"), [
    ("1000:1000", {}, 1000),
    ("0:0", {"run_as_root": "the userns e2e test shows container root is unprivileged"}, 0),
])
def test_remapped_engine_runs_container_root_as_unprivileged_host_uid(
        userns_engine: ExtraDaemon, e2e_manifest: Any, user: str, exceptions: dict[str, str],
        offset: int) -> None:
    document = _document(user, **({"exceptions": exceptions} if exceptions else {}))
    manifest = e2e_manifest(document)
    env = userns_engine.env()

    dry = saferun("run", "--dry-run", str(manifest), env=env)
    assert dry.returncode == 0, dry.stderr
    assert "--userns" not in dry.stdout
    start = 100000  # dockremap's first subordinate id on Debian (see ENGINE.md)
    assert (f"note: user namespace remapping: container uid 0 is host uid {start}; "
            f"the app's uid {offset} is host uid {start + offset}") in dry.stderr

    name = f"saferun-e2e-userns-{uuid.uuid4().hex[:8]}"
    started = saferun("run", "-d", "--name", name, str(manifest), env=env)
    assert started.returncode == 0, started.stderr
    try:
        pid = int(userns_engine.docker("inspect", "--format", "{{.State.Pid}}", name).stdout)
        assert pid > 0
        uids, gids = _status_ids(pid)
        assert uids == [start + offset] * 4, uids
        assert gids == [start + offset] * 4, gids
        assert Path(f"/proc/{pid}/uid_map").read_text().split() == ["0", str(start), "65536"]
        assert Path(f"/proc/{pid}/gid_map").read_text().split() == ["0", str(start), "65536"]
        # An unprivileged host uid: no login account, no capability in the host namespace.
        assert start + offset >= 100000 and os.stat(f"/proc/{pid}").st_uid == start + offset
        mode = userns_engine.docker("inspect", "--format", "{{.HostConfig.UsernsMode}}", name)
        assert mode.stdout.strip() == ""  # never --userns=host
    finally:
        userns_engine.docker("rm", "-f", name, check=False)
