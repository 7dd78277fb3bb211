"""Images decide: official-like images typed as `saferun run IMAGE` serve, with no root.

The images (tests/data/official-images, built by scripts/build-official-images.sh) follow
the official Dockerfiles: their users, VOLUMEs, entrypoints that chown and drop to a user
with gosu, and (nginx, httpd) masters that expect root. saferun starts each hardened:
redis and postgres as the user their entrypoint drops to, nginx and httpd through the
presets found by their names; every process ends non-root with CapEff 0, no-new-privileges
and seccomp in force, on a read-only root. A mount the user could not write is refused
before the start instead of failing in the app's log.
"""

from __future__ import annotations

import socket
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import official_clients as oc
from tests.e2e.conftest import E2E_LABEL, docker, saferun
from tests.e2e.preset_clients import Resp

pytestmark = pytest.mark.e2e

IMAGES = {name: f"saferun-test/official-{name}:1" for name in ("redis", "postgres", "nginx",
                                                                "httpd")}


@pytest.fixture(scope="module")
def official_images(docker_engine: None) -> Iterator[dict[str, str]]:
    missing = [image for image in IMAGES.values()
               if docker("image", "inspect", image, check=False).returncode != 0]
    if missing:
        pytest.fail(f"missing {missing}: run scripts/build-official-images.sh")
    # The presets are found by the Docker Hub name: tag the imitations with it, for this
    # module only (a tag that no real image of that name uses).
    tags = {"nginx": "nginx:saferun-e2e", "httpd": "httpd:saferun-e2e"}
    for name, tag in tags.items():
        docker("tag", IMAGES[name], tag)
    yield {**IMAGES, **{f"{name}-by-name": tag for name, tag in tags.items()}}
    for tag in tags.values():
        docker("rmi", tag, check=False)


@pytest.fixture
def names() -> Iterator[list[str]]:
    created: list[str] = []
    yield created
    for name in created:
        docker("rm", "-f", "-v", name, check=False)


def _name(names: list[str], kind: str) -> str:
    name = f"srtest-{kind}-{uuid.uuid4().hex[:8]}"
    names.append(name)
    return name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(*words: str) -> None:
    label = f"--label={E2E_LABEL[0]}={E2E_LABEL[1]}"
    result = saferun("run", "-d", label, *words, timeout=120)
    assert result.returncode == 0, result.stderr


def _processes_are_confined(container: str, uid: int) -> None:
    """Every process of the container: the uid, no capability, no-new-privileges, seccomp."""
    assert oc.container_state(container)["Running"]
    assert docker("inspect", "-f", "{{.HostConfig.ReadonlyRootfs}}", container).stdout.strip() \
        == "true"
    pids = oc.container_pids(container)
    assert pids
    for pid in pids:
        status = oc.read_status(pid)
        assert status.uids[:2] == (uid, uid), (pid, status.uids)
        assert status.cap_eff == 0, (pid, status.cap_eff)
        assert status.no_new_privs == 1 and status.seccomp == 2, pid


def _redis(port: int, *command: str) -> object:
    with Resp(port) as client:
        return client.call(*command)


def test_redis_runs_as_its_own_user_and_saves_to_its_volume(
        official_images: dict[str, str], names: list[str]) -> None:
    port, name = _free_port(), _name(names, "redis")
    volume = f"{name}-data"
    names.append(volume)  # removed with the container's volumes (-v) or below
    _start("--name", name, "-p", f"127.0.0.1:{port}:6379", "-v", f"{volume}:/data",
           official_images["redis"])
    oc.wait_for(lambda: _redis(port, "PING"), name)
    assert _redis(port, "SET", "k", "persisted") == "OK" and _redis(port, "SAVE") == "OK"
    _processes_are_confined(name, 999)
    docker("rm", "-f", name)
    second = _name(names, "redis")
    _start("--name", second, "-p", f"127.0.0.1:{port}:6379", "-v", f"{volume}:/data",
           official_images["redis"])
    assert oc.wait_for(lambda: _redis(port, "GET", "k"), second) == "persisted"
    docker("rm", "-f", second)
    docker("volume", "rm", volume, check=False)


def test_postgres_initialises_serves_and_keeps_its_data(
        official_images: dict[str, str], names: list[str]) -> None:
    import pg8000.native

    port, name = _free_port(), _name(names, "postgres")
    volume = f"{name}-data"
    _start("--name", name, "-e", "POSTGRES_PASSWORD=secret", "-p", f"127.0.0.1:{port}:5432",
           "-v", f"{volume}:/var/lib/postgresql/data", official_images["postgres"])

    def connect() -> pg8000.native.Connection:
        return pg8000.native.Connection("postgres", password="secret", host="127.0.0.1",
                                        port=port, timeout=5)

    conn = oc.wait_for(connect, name, timeout=90)
    conn.run("CREATE TABLE t (v text)")
    conn.run("INSERT INTO t VALUES ('kept')")
    conn.close()
    _processes_are_confined(name, 999)
    docker("rm", "-f", name)
    second = _name(names, "postgres")
    _start("--name", second, "-e", "POSTGRES_PASSWORD=secret", "-p", f"127.0.0.1:{port}:5432",
           "-v", f"{volume}:/var/lib/postgresql/data", official_images["postgres"])
    conn = oc.wait_for(connect, second, timeout=90)
    assert conn.run("SELECT v FROM t") == [["kept"]]
    conn.close()
    docker("rm", "-f", second)
    docker("volume", "rm", volume, check=False)


@pytest.mark.parametrize(("image", "uid"), [("nginx-by-name", 101), ("httpd-by-name", 33)])
def test_web_servers_use_their_preset_and_serve_without_root(
        official_images: dict[str, str], names: list[str], image: str, uid: int) -> None:
    port, name = _free_port(), _name(names, image.split("-")[0])
    dry = saferun("run", "--dry-run", "-p", f"127.0.0.1:{port}:80", official_images[image])
    assert dry.returncode == 0 and "uses the preset 'official-" in dry.stderr, dry.stderr
    _start("--name", name, "-p", f"127.0.0.1:{port}:80", official_images[image])

    def get() -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            return int(response.status)

    assert oc.wait_for(get, name) == 200
    _processes_are_confined(name, uid)


def test_a_volume_the_user_cannot_write_is_refused_before_the_start(
        official_images: dict[str, str], names: list[str]) -> None:
    volume = _name(names, "rootvol")
    docker("volume", "create", volume)  # an existing volume: root's, like one made by hand
    try:
        result = saferun("run", "--rm", "-v", f"{volume}:/data", official_images["redis"])
        assert result.returncode == 125, result.stderr
        assert f"/data: the container user 999:999 cannot write volume {volume}" in result.stderr
        assert "chown 999:999" in result.stderr
        # A new volume over a path the image lacks would be created root-owned: refused too.
        fresh = f"{volume}-new"
        result = saferun("run", "--rm", "-v", f"{fresh}:/elsewhere", official_images["redis"])
        assert result.returncode == 125 and "creates it root-owned" in result.stderr
        assert docker("volume", "inspect", fresh, check=False).returncode != 0  # never made
    finally:
        docker("volume", "rm", volume, check=False)


def test_a_bind_the_user_cannot_write_is_said_and_a_missing_one_is_made_for_it(
        official_images: dict[str, str], names: list[str], tmp_path: Path) -> None:
    config = tmp_path / "conf"
    config.mkdir(mode=0o755)  # root's: configuration the server only reads
    dry = saferun("run", "--dry-run", "-v", f"{config}:/usr/local/etc/redis",
                  official_images["redis"])
    assert dry.returncode == 0
    assert "cannot write bind" in dry.stderr and "only reads" in dry.stderr
    missing = tmp_path / "made" / "data"
    port, name = _free_port(), _name(names, "redis")
    _start("--name", name, "-p", f"127.0.0.1:{port}:6379", "-v", f"{missing}:/data",
           official_images["redis"])
    assert (missing.stat().st_uid, missing.stat().st_gid) == (999, 999)
    oc.wait_for(lambda: _redis(port, "PING"), name)
    assert _redis(port, "SET", "k", "v") == "OK" and _redis(port, "SAVE") == "OK"
    assert (missing / "dump.rdb").exists()


def test_init_from_the_image_writes_the_same_user_and_directories(
        official_images: dict[str, str], tmp_path: Path) -> None:
    manifest = tmp_path / "saferun.toml"
    result = saferun("init", "--image", official_images["postgres"], "-o", str(manifest))
    assert result.returncode == 0, result.stderr
    text = manifest.read_text()
    assert 'user = "999:999"' in text and 'target = "/run/postgresql"' in text
    assert "drops root to (postgres)" in text
