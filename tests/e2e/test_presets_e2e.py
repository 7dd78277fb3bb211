"""Each preset in profiles/ runs its real server and answers a real client (issue 10).

For every preset, a manifest that only says `extends = "<preset>"` plus the app's name,
image and a published 127.0.0.1 port is started with `saferun run`. The test then proves
from the host what is in force on the server's process: seccomp filter mode with exactly the
profile generated from the preset's learned list, no_new_privs, a read-only root, and no
capability beyond the ones the preset documents; and it talks to the server with a real
client (tests/e2e/preset_clients.py: HTTP with urllib, RESP for redis, pg8000 for
PostgreSQL). Every process of the container is checked too (official_clients.
hardening_problems: non-root, CapEff within the preset's capabilities, NoNewPrivs 1,
Seccomp 2, a read-only root in its own mountinfo). The data presets (redis, postgres) keep
their data in a volume across a restart of the same container, and are refused before the
start on an image without their data directory. The manifests give no --name: the
container is named by app.name. The images come from Debian packages:
scripts/build-preset-images.sh and scripts/build-official-images.sh.
"""

from __future__ import annotations

import json
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from saferun.engine.proc import read_process
from saferun.inputs.loader import load_manifest, preset_names, preset_path
from saferun.model.capabilities import CAPABILITY_BITS
from tests.e2e import official_clients as oc
from tests.e2e import preset_clients
from tests.e2e.conftest import IN_CI, REPO, docker, inspect, saferun, write_manifest


@dataclass(frozen=True)
class Server:
    image: str
    port: int
    env: dict[str, str] = field(default_factory=dict)


SERVERS = {
    "nginx": Server("saferun-test/nginx:1", 80),
    "official-nginx": Server("saferun-test/official-nginx:1", 80),
    "official-httpd": Server("saferun-test/official-httpd:1", 80),
    "redis": Server("saferun-test/official-redis:1", 6379),
    "postgres": Server("saferun-test/official-postgres:1", 5432,
                       {"POSTGRES_PASSWORD": preset_clients.PG_PASSWORD}),
    "python-web": Server("saferun-test/pyweb:1", 8000),
}


def test_every_preset_has_a_server_here() -> None:
    assert sorted(SERVERS) == preset_names()


@pytest.fixture(scope="session")
def preset_images(docker_engine: None) -> None:
    built = subprocess.run(["bash", "-c", "scripts/build-preset-images.sh && "
                            "scripts/build-official-images.sh"], cwd=REPO,
                           capture_output=True, text=True, check=False, timeout=1800)
    if built.returncode != 0:
        message = f"cannot build the preset images: {built.stderr[-2000:]}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _allowed(profile: dict[str, Any]) -> set[str]:
    return {n for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW"
            for n in rule["names"]}


def _start(tmp_path: Path, preset: str, extra: dict[str, Any] | None = None) -> tuple[str, int,
                                                                                       Path]:
    server, host_port = SERVERS[preset], _free_port()
    name = f"preset-{preset}-{host_port}"
    document: dict[str, Any] = {
        "extends": preset,
        "app": {"name": name, "image": server.image, **({"env": server.env} if server.env else {})},
        "network": {"ports": [{"container": server.port, "host": host_port}]},
        **(extra or {}),
    }
    manifest = write_manifest(tmp_path, document)
    started = saferun("run", "-d", str(manifest), timeout=180)  # named by app.name
    assert started.returncode == 0, started.stderr
    assert inspect(name)["Name"] == f"/{name}"
    return name, host_port, manifest


def _remove(name: str) -> None:
    """The container and its anonymous volumes (the data presets' volume included)."""
    docker("rm", "-f", "-v", name, check=False)


def _restart(name: str) -> None:
    """The same container stopped and started again, as `docker restart` or a reboot does."""
    docker("stop", "-t", "30", name, timeout=90)
    assert not inspect(name)["State"]["Running"]
    docker("start", name, timeout=90)


def _data_volume(name: str, target: str) -> str:
    """The volume docker mounted at the preset's data directory; no tmpfs hides it."""
    data = inspect(name)
    assert target not in (data["HostConfig"].get("Tmpfs") or {})
    found = [m for m in data["Mounts"] if m["Destination"] == target]
    assert len(found) == 1 and found[0]["Type"] == "volume" and found[0]["RW"], data["Mounts"]
    return str(found[0]["Name"])


def _assert_hardened(name: str, manifest: Path, preset: str, root_processes: int = 0) -> None:
    """What the kernel enforces on the server's init process, read from the host, and on
    every other process of the container (`root_processes`: how many may be root)."""
    loaded, base = load_manifest(manifest), load_manifest(preset_path(preset))
    assert loaded.seccomp.learned and loaded.seccomp.learned == base.seccomp.learned
    data = inspect(name)
    assert data["State"]["Running"], data["State"]
    host = data["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    # The profile docker was given is the one saferun generates from the preset's list.
    given = [opt for opt in host["SecurityOpt"] if opt.startswith("seccomp=")]
    assert len(given) == 1
    expected = saferun("profile", "seccomp", str(manifest))
    assert expected.returncode == 0, expected.stderr
    assert _allowed(json.loads(given[0].removeprefix("seccomp="))) == _allowed(
        json.loads(expected.stdout))
    proc = read_process(int(data["State"]["Pid"]))
    assert proc.seccomp == 2 and proc.no_new_privs
    root = proc.mount("/")
    assert root is not None and root.read_only
    documented = {CAPABILITY_BITS[c] for c in base.capabilities.add}
    bounding = {bit for bit in range(64) if proc.cap_bnd >> bit & 1}
    effective = {bit for bit in range(64) if proc.cap_eff >> bit & 1}
    assert bounding == documented
    assert effective <= documented
    user = base.app.user.split(":")[0]
    assert proc.uids[0] == int(user)
    problems = oc.hardening_problems(name, root_processes=root_processes)
    assert not problems, problems
    # `saferun verify` finds the container as planned (the data presets' anonymous volume too).
    verified = saferun("verify", name)
    assert verified.returncode in (0, 1) and "[drift]" not in verified.stdout, (
        verified.stdout, verified.stderr)


def _health_passes(name: str, manifest: Path) -> None:
    """The preset's health check passes inside the container, under the learned profile."""
    from saferun.app.planning import checked_plan
    from saferun.model.facts import OFFLINE_FACTS
    from saferun.plan.planner import LaunchOptions

    plan = checked_plan(load_manifest(manifest), OFFLINE_FACTS, LaunchOptions())
    assert plan.healthcheck is not None
    result = docker("exec", name, "sh", "-c", plan.healthcheck.shell_command, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.usefixtures("preset_images")
def test_nginx_preset_serves_http(tmp_path: Path) -> None:
    name, port, manifest = _start(tmp_path, "nginx")
    try:
        answer = preset_clients.nginx_check(port)
        assert answer["status"] == 200 and "Welcome to nginx" in answer["body"]
        assert answer["missing"] == 404
        _assert_hardened(name, manifest, "nginx", root_processes=1)  # the master
        # Only the master is root; requests are served by workers running as www-data.
        users = [line.split()[1] for line in docker("top", name, "-o", "pid,user,args").stdout
                 .splitlines()[1:]]
        assert users.count("root") == 1 and users.count("www-data") >= 1, users
        _health_passes(name, manifest)
    finally:
        _remove(name)


@pytest.mark.usefixtures("preset_images")
@pytest.mark.parametrize(("preset", "uid", "page"), [("official-nginx", 101, "Welcome to nginx"),
                                                     ("official-httpd", 33, "It works!")])
def test_official_web_presets_serve_without_root(tmp_path: Path, preset: str, uid: int,
                                                 page: str) -> None:
    name, port, manifest = _start(tmp_path, preset)
    try:
        answer = preset_clients.nginx_check(port)
        assert answer["status"] == 200 and page in answer["body"]
        assert answer["missing"] == 404
        _assert_hardened(name, manifest, preset)
        # No process of the container is root: the master itself runs as the server's user.
        users = {line.split()[1] for line in docker("top", name, "-eo", "pid,uid").stdout
                 .splitlines()[1:]}
        assert users == {str(uid)}, users
        _health_passes(name, manifest)
    finally:
        _remove(name)


@pytest.mark.usefixtures("preset_images")
def test_redis_preset_answers_ping_set_get(tmp_path: Path) -> None:
    # The child overrides a key of the preset: everything else comes from it.
    name, port, manifest = _start(tmp_path, "redis", {"resources": {"memory": "128m"}})
    try:
        answer = preset_clients.redis_check(port)
        assert answer["ping"] == "PONG" and answer["set"] == "OK"
        assert answer["get"] == "hardened" and answer["incr"] == 3
        assert answer["rdb_last_bgsave_status"] == "ok"  # a forked child wrote /data
        _assert_hardened(name, manifest, "redis")
        host = inspect(name)["HostConfig"]
        assert host["Memory"] == 128 * 1024 * 1024
        assert host["PidsLimit"] == load_manifest(preset_path("redis")).resources.pids
        _health_passes(name, manifest)
        # The data outlives a restart of the same container: it is in the volume.
        before = inspect(name)["Mounts"]
        written = oc.redis_write("127.0.0.1", port, "saferun:kept", "across a restart")
        assert written == {"set": "OK", "get": "across a restart", "save": "OK"}, written
        _restart(name)
        assert oc.wait_for(lambda: oc.redis_read("127.0.0.1", port, "saferun:kept"), name,
                           timeout=60) == "across a restart"
        assert oc.redis_read("127.0.0.1", port, "saferun:key") == "hardened"
        assert _data_volume(name, "/data") in {m.get("Name") for m in before}
        _assert_hardened(name, manifest, "redis")
    finally:
        _remove(name)


@pytest.mark.usefixtures("preset_images")
def test_postgres_preset_answers_sql(tmp_path: Path) -> None:
    name, port, manifest = _start(tmp_path, "postgres")
    try:
        answer = preset_clients.postgres_check(port)
        assert answer["version"].startswith("PostgreSQL 15")
        assert answer["count"] == 500 and answer["value"] == "row 42"
        _assert_hardened(name, manifest, "postgres")
        _health_passes(name, manifest)
        with pytest.raises(Exception, match="password authentication failed"):
            preset_clients.postgres_check(port, password="wrong")
        # The cluster outlives a restart of the same container: it is in the volume, and
        # the entrypoint finds it instead of running initdb again.
        before = inspect(name)["Mounts"]
        _restart(name)
        rows = oc.wait_for(lambda: oc.postgres_read("127.0.0.1", port, preset_clients.PG_PASSWORD,
                                                     "saferun_t", "v"), name, timeout=90)
        assert rows == [[500, "row 42"]], rows
        assert "Skipping initialization" in docker("logs", name).stdout
        assert _data_volume(name, "/var/lib/postgresql/data") in {m.get("Name") for m in before}
        _assert_hardened(name, manifest, "postgres")
    finally:
        _remove(name)


@pytest.mark.usefixtures("preset_images")
@pytest.mark.parametrize(("preset", "image", "target"), [
    ("redis", "saferun-test/redis:1", "/data"),
    ("postgres", "saferun-test/postgres:1", "/var/lib/postgresql/data"),
])
def test_a_data_preset_on_an_image_without_its_data_directory_is_refused(
        tmp_path: Path, preset: str, image: str, target: str) -> None:
    """The preset's volume would be created root-owned, and the server (999) could not
    write its data: refused before anything is created, never found out in the log."""
    name = f"preset-{preset}-nodata-{_free_port()}"
    manifest = write_manifest(tmp_path, {"extends": preset, "app": {"name": name,
                                                                     "image": image}})
    refused = saferun("run", "-d", str(manifest), timeout=180)
    try:
        assert refused.returncode == 125, (refused.stdout, refused.stderr)
        assert f"{target}: the container user 999:999 cannot write" in refused.stderr
        assert f"the image has no {target}" in refused.stderr
        assert "mount a named volume there instead" in refused.stderr
        # Nothing was created: no container, so no volume of its either.
        assert name not in docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    finally:
        _remove(name)


@pytest.mark.usefixtures("preset_images")
def test_python_web_preset_serves_the_app(tmp_path: Path) -> None:
    name, port, manifest = _start(tmp_path, "python-web")
    try:
        answer = preset_clients.pyweb_check(port)
        assert answer["status"] == 200 and answer["json"]["uid"] == 65534
        assert answer["health"] == (200, b"ok\n")
        assert answer["echo"] == (200, b"saferun")
        assert answer["tmpfile"] == (200, b"written under a read-only root\n")
        _assert_hardened(name, manifest, "python-web")
        _health_passes(name, manifest)
    finally:
        _remove(name)


@pytest.mark.usefixtures("preset_images")
def test_a_tmpfs_in_place_of_the_redis_volume_is_said(tmp_path: Path) -> None:
    """A manifest that restates the redis preset as an in-memory cache (a tmpfs at /data,
    no volume) runs as docker would, and is told that its data goes with each stop."""
    manifest = write_manifest(tmp_path, {
        "extends": "redis",
        "app": {"name": f"preset-redis-memory-{_free_port()}",
                "image": SERVERS["redis"].image},
        "filesystem": {"mounts": [], "tmpfs": [
            {"target": "/tmp", "size": "16m"},
            {"target": "/data", "size": "64m", "uid": 999, "gid": 999, "mode": "0750"}]},
    })
    planned = saferun("run", "--dry-run", str(manifest))
    assert planned.returncode == 0, planned.stderr
    assert "tmpfs /data replaces the image's VOLUME /data" in planned.stderr
    assert "lost when the container stops" in planned.stderr
    preset_alone = write_manifest(tmp_path, {"extends": "redis", "app": {
        "name": "preset-redis-kept", "image": SERVERS["redis"].image}}, "kept.toml")
    kept = saferun("run", "--dry-run", str(preset_alone))
    assert kept.returncode == 0 and "replaces the image's VOLUME" not in kept.stderr
