"""The official images' own README lines, run as typed and typed as `saferun run` (issue 15).

tests/data/official_readme_lines.toml lists, per image, the basic `docker run` lines of its
Docker Hub README. Each line starts the local imitation of that image
(tests/data/official-images/NAME, built by scripts/build-official-images.sh: same users,
directories, volumes and entrypoint logic as the official image, server from Debian), in two
modes:

- `docker`: the line as typed. It must work: a real client reads and writes (RESP, pg8000,
  the image's own mariadb client, memcached's text protocol, HTTP, MQTT) and, where the
  image has a VOLUME, the data survives a stop and start of the container.
- `saferun`: the same words typed as `saferun run ...`. The same client checks, plus what is
  in force on every process of the container, read from the host's /proc and from
  `docker inspect`: no uid 0, CapEff within the capabilities the container was given,
  NoNewPrivs 1, Seccomp 2, a read-only root.

The READMEs type the image without a tag (`redis`, meaning redis:latest): one test types the
redis imitation so, under a local name of this session, and proves that saferun warns, runs
the local image pinned by its id with the digest label, and that it serves and keeps its data.

A saferun case that fails today is marked xfail(strict=True) with the error it showed
(SAFERUN_XFAIL below), so it turns red the day saferun starts it correctly: then remove its
entry. The line rewriting (ports, names, host paths, -d) is described in the data file.
"""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import official_clients as oc
from tests.e2e.conftest import E2E_LABEL, IN_CI, REPO, docker, inspect, saferun

LINES_FILE = REPO / "tests" / "data" / "official_readme_lines.toml"
IMAGES: dict[str, Any] = tomllib.loads(LINES_FILE.read_text())
EXPECTED_IMAGES = {"nginx", "redis", "postgres", "memcached", "httpd", "mariadb", "haproxy",
                   "mosquitto"}

# (image, line index) -> the error `saferun run` shows for that README line. Each is
# xfail(strict=True): when saferun is fixed the case passes, turns red, and its entry goes.
# (At 5d94edf 15 of the 18 lines failed here; the image-derived user and directories, the
# presets found by name and the writable-mount fixes made 17 pass.)
# docker: the line as typed; saferun: the same words as `saferun run`; init-line: the manifest
# `saferun init --from-docker-run` writes for the line, run alone; init-image: the manifest
# `saferun init --image` writes, with the line's flags over it (`saferun run -f`).
MODES = ("docker", "saferun", "init-line", "init-image")
SAFERUN_XFAIL: dict[tuple[str, int], str] = {}


def test_every_image_has_lines_and_a_build_context() -> None:
    assert set(IMAGES) == EXPECTED_IMAGES
    for name, spec in IMAGES.items():
        assert spec["lines"] and spec["source"].startswith("https://")
        assert spec["tag"] == f"saferun-test/official-{name}:1"
        dockerfile = REPO / "tests" / "data" / "official-images" / name / "Dockerfile"
        assert dockerfile.is_file()
        assert "imitates the official Docker Hub image" in dockerfile.read_text()
        for line in spec["lines"]:
            words = shlex.split(line)
            assert words[:2] == ["docker", "run"]
            assert any(w in spec["image_words"] for w in words), line


@pytest.fixture(scope="session")
def official_images(docker_engine: None) -> Iterator[None]:
    built = subprocess.run(["bash", str(REPO / "scripts" / "build-official-images.sh")],
                           capture_output=True, text=True, check=False, timeout=1200)
    if built.returncode != 0:
        message = f"cannot build the official-image imitations: {built.stderr[-3000:]}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    # The lines name the images as Docker Hub does, and saferun finds presets by that name:
    # each imitation is also tagged with its Docker Hub name, for this module only.
    for spec in IMAGES.values():
        docker("tag", spec["tag"], hub_tag(spec))
    yield
    for spec in IMAGES.values():
        docker("rmi", hub_tag(spec), check=False)


def hub_tag(spec: dict[str, Any]) -> str:
    """The image's Docker Hub name with a tag no real image uses, e.g. nginx:saferun-e2e."""
    return f"{spec['image_words'][0].split(':')[0]}:saferun-e2e"


# --- rewriting a README line --------------------------------------------------------------

# Host paths of the README lines -> a folder under the test's tmp_path.
HOST_PATHS = {"/some/content": "content", "/myredis/conf": "myredis-conf",
              "/path/to/etc/haproxy": "haproxy-etc", "$(pwd)": "pwd", "$PWD": "pwd"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Started:
    """A README line, rewritten for this machine and started."""
    image: str
    mode: str
    argv: list[str]            # what followed `docker run` / `saferun run`
    command: list[str]         # the words after the image
    published: dict[int, int]  # container port -> host port on 127.0.0.1
    env: dict[str, str]
    tmp: Path
    token: str
    container: str = ""
    volumes: list[str] = field(default_factory=list)  # named volumes the test made

    def address(self, container_port: int) -> tuple[str, int]:
        """Where a client on this host reaches the server's port."""
        if container_port in self.published:
            return "127.0.0.1", self.published[container_port]
        return oc.container_address(self.container), container_port


def rewrite(image: str, line: str, tmp: Path, mode: str, token: str) -> Started:
    spec = IMAGES[image]
    text = line
    for placeholder, folder in HOST_PATHS.items():
        text = text.replace(placeholder, str(tmp / folder))
    words = shlex.split(text)[2:]
    at = next(i for i, w in enumerate(words) if w in spec["image_words"])
    options, command = words[:at], words[at + 1:]
    out: list[str] = []
    published: dict[int, int] = {}
    env: dict[str, str] = {}
    detached = False
    i = 0
    while i < len(options):
        word = options[i]
        value = options[i + 1] if i + 1 < len(options) else ""
        if word == "--name":
            out += ["--name", f"srtest-{value}-{mode}-{token}"]
            i += 2
            continue
        if word in ("-p", "--publish"):
            container_port = int(value.rsplit(":", 1)[1].split("/")[0])
            published[container_port] = _free_port()
            out += [word, f"127.0.0.1:{published[container_port]}:{container_port}"]
            i += 2
            continue
        if word in ("-e", "--env"):
            key, _, val = value.partition("=")
            env[key] = val
        if word in ("-d", "--detach") or re.fullmatch(r"-[a-z]*d[a-z]*", word):
            detached = True
        out.append(word)
        i += 1
    if not detached:
        out.insert(0, "-d")  # nobody is at the terminal of a test
    out += ["--label", f"{E2E_LABEL[0]}={E2E_LABEL[1]}", hub_tag(spec), *command]
    return Started(image=image, mode=mode, argv=out, command=command, published=published,
                   env=env, tmp=tmp, token=token)


def start(started: Started) -> None:
    if started.mode == "docker":
        result = docker("run", *started.argv, check=False, timeout=120)
    elif started.mode == "saferun":
        result = saferun("run", *started.argv, timeout=120)
    elif started.mode == "init-line":
        # `saferun init --from-docker-run` of the line, then the manifest alone.
        manifest = started.tmp / "from-line.toml"
        written = saferun("init", "--from-docker-run", shlex.join(["docker", "run",
                                                                   *started.argv]),
                          "-o", str(manifest))
        assert written.returncode == 0, written.stderr
        result = saferun("run", "-d", str(manifest), timeout=120)
    else:
        # `saferun init --image`, then the line's own flags over that manifest (-f).
        manifest = started.tmp / "from-image.toml"
        written = saferun("init", "--image", started.argv[-1 - len(started.command)],
                          "-o", str(manifest))
        assert written.returncode == 0, written.stderr
        text = manifest.read_text()
        for name in re.findall(r'source = "([a-z0-9_.-]+)"', text):
            unique = f"srtest-{started.token}-{name}"[:63]
            text = text.replace(f'source = "{name}"', f'source = "{unique}"')
            started.volumes.append(unique)
        manifest.write_text(text)
        result = saferun("run", "-f", str(manifest), *started.argv, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"{started.mode} run exited {result.returncode}: "
                             f"{result.stderr.strip()}")
    started.container = result.stdout.strip().splitlines()[-1]


def restart(started: Started) -> None:
    docker("stop", "-t", "20", started.container, timeout=60)
    docker("start", started.container, timeout=60)


# --- per image: the files its README line mounts, what a client proves --------------------

def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def prepare_nginx(s: Started) -> None:
    _write(s.tmp / "content" / "index.html", f"<h1>srtest nginx content {s.token}</h1>\n")


def check_nginx(s: Started, persist: bool) -> None:
    host, port = s.address(80)
    status, body = oc.wait_for(lambda: oc.http_get(host, port), s.container)
    expected = f"srtest nginx content {s.token}" if "content:" in " ".join(s.argv) \
        else "Welcome to nginx!"
    assert status == 200 and expected in body.decode(), (status, body[:200])
    assert oc.http_get(host, port, "/missing-srtest")[0] == 404
    if s.env.get("NGINX_ENTRYPOINT_QUIET_LOGS"):
        assert "Configuration complete" not in oc.logs_tail(s.container, 200)


def prepare_redis(s: Started) -> None:
    # The README's own config file: no protected-mode line, so the entrypoint turns it off.
    _write(s.tmp / "myredis-conf" / "redis.conf", "save 60 1\nloglevel notice\n")


def check_redis(s: Started, persist: bool) -> None:
    host, port = s.address(6379)
    oc.wait_for(lambda: oc.redis_ping(host, port), s.container)
    answer = oc.redis_write(host, port, "srtest", s.token)
    assert answer == {"set": "OK", "get": s.token, "save": "OK"}, answer
    if persist:
        restart(s)
        host, port = s.address(6379)
        value = oc.wait_for(lambda: oc.redis_read(host, port, "srtest"), s.container)
        assert value == s.token


def check_postgres(s: Started, persist: bool) -> None:
    host, port = s.address(5432)
    password = s.env["POSTGRES_PASSWORD"]
    rows = oc.wait_for(lambda: oc.postgres_write(host, port, password, s.token), s.container,
                       timeout=60)
    assert rows == [[50, f"{s.token} 42"]], rows
    if "max_connections=200" in s.command:
        shown = oc.postgres_connect(host, port, password).run("SHOW max_connections")
        assert shown == [["200"]], shown
    if persist:
        restart(s)
        host, port = s.address(5432)
        rows = oc.wait_for(lambda: oc.postgres_read(host, port, password), s.container,
                           timeout=60)
        assert rows == [[50, f"{s.token} 42"]], rows


def check_memcached(s: Started, persist: bool) -> None:
    host, port = s.address(11211)
    value = f"srtest {s.token}".encode()
    stored, got = oc.wait_for(lambda: oc.memcached_set_get(host, port, "srtest", value),
                              s.container)
    assert (stored, got) == (b"STORED", value)


def prepare_httpd(s: Started) -> None:
    _write(s.tmp / "pwd" / "index.html", f"<h1>srtest httpd content {s.token}</h1>\n")


def check_httpd(s: Started, persist: bool) -> None:
    host, port = s.address(80)
    status, body = oc.wait_for(lambda: oc.http_get(host, port), s.container)
    expected = f"srtest httpd content {s.token}" if "htdocs" in " ".join(s.argv) \
        else "It works!"
    assert status == 200 and expected in body.decode(), (status, body[:200])


def check_mariadb(s: Started, persist: bool) -> None:
    port = int(s.command[s.command.index("--port") + 1]) if "--port" in s.command else 3306
    root_pw = s.env["MARIADB_ROOT_PASSWORD"]
    user, password = s.env.get("MARIADB_USER", "root"), s.env.get("MARIADB_PASSWORD", root_pw)
    database = s.env.get("MARIADB_DATABASE", "srtest")

    def sql(statement: str, db: str = database, as_root: bool = False) -> str:
        who, pw = ("root", root_pw) if as_root else (user, password)
        return oc.mariadb_sql(s.container, statement, who, pw, db, port)

    oc.wait_for(lambda: sql("SELECT 1", db="", as_root=True), s.container, timeout=90)
    if "MARIADB_DATABASE" not in s.env:
        sql("CREATE DATABASE srtest", db="", as_root=True)
    sql("CREATE TABLE notes (id INT PRIMARY KEY, note VARCHAR(64))")
    sql(f"INSERT INTO notes VALUES (1, 'srtest {s.token}'), (2, 'two')")
    assert sql("SELECT note FROM notes WHERE id = 1").strip() == f"srtest {s.token}"
    assert sql("SELECT CURRENT_USER()").strip() == f"{user}@%"
    if persist:
        restart(s)
        oc.wait_for(lambda: sql("SELECT 1", db="", as_root=True), s.container, timeout=90)
        assert sql("SELECT COUNT(*) FROM notes").strip() == "2"
        assert sql("SELECT note FROM notes WHERE id = 1").strip() == f"srtest {s.token}"


HAPROXY_CFG = """\
global
    log stdout format raw local0

defaults
    mode http
    log global
    timeout connect 5s
    timeout client 10s
    timeout server 10s

frontend web
    bind :80
    http-request return status 200 content-type text/plain string "srtest haproxy {token}"
"""


def prepare_haproxy(s: Started) -> None:
    _write(s.tmp / "haproxy-etc" / "haproxy.cfg", HAPROXY_CFG.format(token=s.token))


def check_haproxy(s: Started, persist: bool) -> None:
    host, port = s.address(80)
    status, body = oc.wait_for(lambda: oc.http_get(host, port), s.container)
    assert (status, body.decode()) == (200, f"srtest haproxy {s.token}")


MOSQUITTO_CONF = """\
listener 1883
allow_anonymous true
persistence true
persistence_location /mosquitto/data/
log_dest stdout
"""


def prepare_mosquitto(s: Started) -> None:
    _write(s.tmp / "pwd" / "mosquitto" / "config" / "mosquitto.conf", MOSQUITTO_CONF)


def check_mosquitto(s: Started, persist: bool) -> None:
    host, port = s.address(1883)
    payload = f"srtest {s.token}".encode()
    topic, got = oc.wait_for(lambda: oc.mqtt_roundtrip(host, port, "srtest/topic", payload),
                             s.container)
    assert (topic, got) == ("srtest/topic", payload)
    if persist:  # the retained message is saved in /mosquitto/data on shutdown
        restart(s)
        host, port = s.address(1883)
        retained_now = oc.wait_for(lambda: oc.mqtt_retained(host, port, "srtest/topic"),
                                   s.container)
        assert retained_now == (payload, True), f"after a restart the broker kept {retained_now}"


PREPARE: dict[str, Callable[[Started], None]] = {
    "nginx": prepare_nginx, "redis": prepare_redis, "httpd": prepare_httpd,
    "haproxy": prepare_haproxy, "mosquitto": prepare_mosquitto,
}
CHECK: dict[str, Callable[[Started, bool], None]] = {
    "nginx": check_nginx, "redis": check_redis, "postgres": check_postgres,
    "memcached": check_memcached, "httpd": check_httpd, "mariadb": check_mariadb,
    "haproxy": check_haproxy, "mosquitto": check_mosquitto,
}


def _has_volume(tag: str) -> bool:
    volumes = docker("image", "inspect", "--format", "{{json .Config.Volumes}}", tag).stdout
    return volumes.strip() not in ("", "null", "{}")


def _cases() -> list[Any]:
    cases = []
    for image, spec in IMAGES.items():
        for index, line in enumerate(spec["lines"]):
            for mode in MODES:
                marks = []
                if mode != "docker" and (image, index) in SAFERUN_XFAIL:
                    marks.append(pytest.mark.xfail(strict=True,
                                                   reason=SAFERUN_XFAIL[(image, index)]))
                cases.append(pytest.param(image, index, line, mode, marks=marks,
                                          id=f"{image}-{index}-{mode}"))
    return cases


@pytest.mark.usefixtures("official_images")
@pytest.mark.parametrize(("image", "index", "line", "mode"), _cases())
def test_readme_line(image: str, index: int, line: str, mode: str, tmp_path: Path) -> None:
    started = rewrite(image, line, tmp_path, mode, uuid.uuid4().hex[:8])
    PREPARE.get(image, lambda s: None)(started)
    try:
        start(started)
        try:
            CHECK[image](started, _has_volume(IMAGES[image]["tag"]))
        except oc.ContainerStopped:
            raise
        except Exception as exc:  # a server that answered wrongly: show what it logged
            raise AssertionError(f"{exc!r}; last log lines:\n{oc.logs_tail(started.container)}"
                                 ) from exc
        problems = oc.hardening_problems(started.container)
        if mode != "docker":
            assert not problems, problems
        else:  # the same check sees what plain docker leaves open (it is not vacuous)
            assert any("NoNewPrivs 0" in p for p in problems), problems
    finally:
        if started.container:
            docker("rm", "-f", "-v", started.container, check=False)
        for volume in started.volumes:
            docker("volume", "rm", volume, check=False)


# --- an image typed without a tag, as the READMEs type it ---------------------------------

@pytest.fixture
def untagged_redis(official_images: None) -> Iterator[str]:
    """The redis imitation under a name typed without a tag, as its README types `redis`
    (`docker run --name some-redis -d redis`): the name means NAME:latest. Unique to this
    session and removed after; the image keeps its own tag."""
    name = f"saferun-e2e-redis-{E2E_LABEL[1]}"
    docker("tag", IMAGES["redis"]["tag"], name)
    yield name
    docker("rmi", name, check=False)


def test_an_untagged_image_runs_pinned_by_its_id_and_serves(untagged_redis: str) -> None:
    container = f"srtest-untagged-{uuid.uuid4().hex[:8]}"
    started = saferun("run", "--name", container, "-d", "-l", "=".join(E2E_LABEL),
                      untagged_redis, timeout=180)
    try:
        assert started.returncode == 0, started.stderr
        # Warned (CIS 4.2), and what starts is the local image that was judged, by its id.
        assert f"app.image = '{untagged_redis}': rule 'image-tag-latest'" in started.stderr
        assert f"app.image '{untagged_redis}' floats: saferun runs the local image" \
            in started.stderr
        image_id = docker("image", "inspect", "--format", "{{.Id}}", untagged_redis
                          ).stdout.strip()
        data = inspect(container)
        assert data["Image"] == image_id and data["Config"]["Image"] == image_id
        labels = data["Config"]["Labels"]
        assert labels["io.saferun.image-reference"] == untagged_redis
        assert labels["io.saferun.image-digest"] == image_id  # a local build: no repo digest
        # It serves a real client, hardened, and keeps its data in the image's VOLUME.
        key, value = "saferun:untagged", uuid.uuid4().hex
        address = oc.wait_for(lambda: oc.container_address(container), container)
        oc.wait_for(lambda: oc.redis_ping(address, 6379), container)
        assert oc.redis_write(address, 6379, key, value) == {"set": "OK", "get": value,
                                                             "save": "OK"}
        problems = oc.hardening_problems(container)
        assert not problems, problems
        docker("stop", "-t", "20", container, timeout=60)
        docker("start", container, timeout=60)
        address = oc.wait_for(lambda: oc.container_address(container), container)
        assert oc.wait_for(lambda: oc.redis_read(address, 6379, key), container) == value
    finally:
        docker("rm", "-f", "-v", container, check=False)
