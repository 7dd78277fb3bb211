"""A classic Compose file (web + postgres + redis) imported, started with `saferun up`, used.

The official-like images are tagged with their Docker Hub names for this module, so the
import finds their presets as `saferun run nginx` would. Real clients talk to the published
ports (HTTP, PostgreSQL through pg8000, Redis); the Compose networks became rules: the
backend network is internal, so db reaches its peers and nothing outside.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import official_clients as oc
from tests.e2e.conftest import BUSYBOX_IMAGE, SESSION_ID, docker, saferun

pytestmark = pytest.mark.usefixtures("docker_engine")

TAG = "net-e2e"
STACK = f"net-c{SESSION_ID[:6]}"
VOLUME = f"net-{SESSION_ID[:6]}-dbdata"
WEB, DB, CACHE, OUTSIDE = 18102, 18103, 18104, 18105
PASSWORD = "net-e2e-secret"
ANONYMOUS_SEEN: list[str] = []  # the redis preset's /data volume, removed by the fixture too

COMPOSE = f"""\
name: {STACK}
services:
  web:
    image: nginx:{TAG}
    ports: ["127.0.0.1:{WEB}:80"]
    depends_on: [db, cache]
    networks: [front, back]
  db:
    image: postgres:{TAG}
    environment:
      POSTGRES_PASSWORD: {PASSWORD}
    ports:
      - target: 5432
        published: {DB}
        host_ip: 127.0.0.1
    volumes: ["{VOLUME}:/var/lib/postgresql/data"]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
      interval: 1s
      timeout: 5s
      retries: 60
    networks: [back]
    deploy:
      resources:
        limits: {{memory: 256m, cpus: "0.5"}}
  cache:
    image: redis:{TAG}
    command: redis-server --save "" --appendonly no
    ports: ["127.0.0.1:{CACHE}:6379"]
    networks: [back]
networks:
  front: {{}}
  back: {{internal: true}}
volumes:
  {VOLUME}: {{}}
"""


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    for name in ("nginx", "postgres", "redis"):
        docker("tag", f"saferun-test/official-{name}:1", f"{name}:{TAG}")
    directory = tmp_path_factory.mktemp("compose")
    (directory / "compose.yaml").write_text(COMPOSE)
    try:
        result = saferun("init", "--from-compose", "compose.yaml", cwd=directory)
        assert result.returncode == 0, result.stderr
        yield directory
    finally:
        saferun("down", "--volumes", STACK, timeout=300)
        docker("volume", "rm", "-f", VOLUME, *ANONYMOUS_SEEN, check=False)
        for name in ("nginx", "postgres", "redis"):
            docker("rmi", f"{name}:{TAG}", check=False)


def test_import_writes_a_manifest_per_service_and_the_stack(imported: Path) -> None:
    import tomllib

    stack = tomllib.loads((imported / "saferun.stack.toml").read_text())
    assert stack["stack"]["name"] == STACK
    assert stack["services"]["web"]["depends_on"] == ["db", "cache"]
    db = tomllib.loads((imported / "db.toml").read_text())
    assert db["network"] == {"ingress": ["cache", "web"], "egress": ["cache", "web"],
                             "ports": [{"container": 5432, "host": DB}]}
    assert db["resources"]["memory"] == "256m"
    assert db["healthcheck"]["command"] == "pg_isready -U postgres"
    assert "AUDIT" in (imported / "db.toml").read_text()
    web = tomllib.loads((imported / "web.toml").read_text())
    assert web["network"]["ingress"] == ["cache", "db"] and "egress" not in web["network"]


def test_up_serves_real_clients(imported: Path) -> None:
    path = imported / "saferun.stack.toml"
    path.write_text(path.read_text().replace(
        f'name = "{STACK}"\n', f'name = "{STACK}"\nsandbox_image = "{BUSYBOX_IMAGE}"\n'))
    result = saferun("up", str(path), timeout=600)
    assert result.returncode == 0, result.stderr
    status, body = oc.wait_for(lambda: oc.http_get("127.0.0.1", WEB), f"{STACK}-web")
    assert status == 200 and b"nginx" in body
    rows = oc.wait_for(lambda: oc.postgres_write("127.0.0.1", DB, PASSWORD, "net"),
                       f"{STACK}-db", timeout=60)
    assert rows == [[50, "net 42"]]
    oc.wait_for(lambda: oc.redis_ping("127.0.0.1", CACHE), f"{STACK}-cache")
    assert oc.redis_write("127.0.0.1", CACHE, "k", "v")["get"] == "v"
    ps = saferun("ps", str(path))
    assert ps.returncode == 0, ps.stderr
    assert ps.stdout.count("enforced") == 3, ps.stdout


def _bash_connect(container: str, host: str, port: int) -> bool:
    result = docker("exec", container, "bash", "-c", f"echo > /dev/tcp/{host}/{port}",
                    check=False, timeout=30)
    return result.returncode == 0


def test_compose_networks_became_rules(imported: Path) -> None:
    data = json.loads(docker("inspect", f"{STACK}-db-sandbox", f"{STACK}-web-sandbox",
                             f"{STACK}-cache-sandbox").stdout)
    address = {d["Name"].strip("/"): d["NetworkSettings"]["Networks"][f"saferun-{STACK}"]
               for d in data}
    db_ip = address[f"{STACK}-db-sandbox"]["IPAddress"]
    web_ip = address[f"{STACK}-web-sandbox"]["IPAddress"]
    gateway = address[f"{STACK}-db-sandbox"]["Gateway"]
    assert _bash_connect(f"{STACK}-web", db_ip, 5432)  # web shares `back` with db
    assert _bash_connect(f"{STACK}-db", web_ip, 80)
    # `back` is internal: db gets no way out, not even to a listener on the host's side of
    # the stack network; web (also on `front`) has open egress and reaches it.
    with socket.create_server((gateway, OUTSIDE)) as listener:
        listener.settimeout(5)
        assert not _bash_connect(f"{STACK}-db", gateway, OUTSIDE)
        assert _bash_connect(f"{STACK}-web", gateway, OUTSIDE)
        listener.accept()[0].close()


def _anonymous_volumes(container: str) -> list[str]:
    mounts = json.loads(docker("inspect", container).stdout)[0]["Mounts"]
    return [m["Name"] for m in mounts if m["Type"] == "volume" and m["Name"] != VOLUME]


def test_down_names_the_kept_volumes_and_removes_anonymous_ones_when_asked(
        imported: Path) -> None:
    # The redis preset keeps /data on an anonymous volume, as the image's VOLUME does under
    # docker; `down` keeps it (it may hold data) unless --volumes, and says which.
    anonymous = _anonymous_volumes(f"{STACK}-cache")
    ANONYMOUS_SEEN.extend(anonymous)
    assert len(anonymous) == 1, anonymous
    result = saferun("down", "--volumes", str(imported / "saferun.stack.toml"), timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"removed volume {anonymous[0]}" in result.stdout, result.stdout
    assert docker("volume", "inspect", anonymous[0], check=False).returncode != 0
    assert docker("volume", "inspect", VOLUME, check=False).returncode == 0  # named: kept
    assert not docker("ps", "-aq", "--filter", f"label=io.saferun.stack={STACK}").stdout.strip()
