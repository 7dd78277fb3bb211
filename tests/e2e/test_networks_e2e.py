"""Stacks on the real engine: ingress/egress enforced by the kernel, nothing left behind.

A stack (web, db, cache, probe) and an "outside" server on another network, published on that
network's gateway address (an address of this machine). Every check is a bounded TCP connect
from inside a service's container: allowed connects and reads the listener's banner; denied
is refused or times out in under 2 s. Each listener is shown to listen by a connect the rules
allow, so a denied connect is the rules' doing, not an absent server.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.e2e.conftest import (
    BUSYBOX_IMAGE,
    IN_CI,
    REPO,
    SESSION_ID,
    docker,
    inspect,
    saferun,
)
from tests.e2e.host_rules import leftovers, ruleset_lines, snapshot

pytestmark = pytest.mark.usefixtures("docker_engine")

STACK = f"net-{SESSION_ID[:8]}"
OTHER = f"net-{SESSION_ID[:8]}-x"
OUTSIDE_NET = f"net-{SESSION_ID[:8]}-outside"
OUTSIDE = f"net-{SESSION_ID[:8]}-outside-server"
OUTSIDE_PORT = 18150
WEB_HOST_PORT = 18101


def _listener(name: str, port: int) -> list[str]:
    return ["nc", "-ll", "-p", str(port), "-e", "echo", f"banner-{name}"]


def _service(directory: Path, name: str, command: list[str],
             network: dict[str, Any]) -> None:
    document = {"app": {"name": name, "image": BUSYBOX_IMAGE, "command": command},
                "network": network}
    (directory / f"{name}.toml").write_text(tomli_w.dumps(document))


def _stack_file(directory: Path, name: str, services: dict[str, list[str]]) -> Path:
    document = {"stack": {"name": name, "sandbox_image": BUSYBOX_IMAGE},
                "services": {s: {"manifest": f"{s}.toml", "depends_on": deps}
                             for s, deps in services.items()}}
    path = directory / "saferun.stack.toml"
    path.write_text(tomli_w.dumps(document))
    return path


def _connect(container: str, host: str, port: int) -> tuple[bool, float]:
    started = time.monotonic()
    result = docker("exec", container, "nc", "-w", "1", host, str(port), check=False,
                    timeout=30)
    elapsed = time.monotonic() - started
    return "banner-" in result.stdout, elapsed


def _assert_connects(container: str, host: str, port: int) -> None:
    ok, _ = _connect(container, host, port)
    assert ok, f"{container} could not reach {host}:{port}"


def _assert_denied(container: str, host: str, port: int) -> None:
    ok, elapsed = _connect(container, host, port)
    assert not ok, f"{container} reached {host}:{port}"
    assert elapsed < 2.0, f"{container} -> {host}:{port}: denial took {elapsed:.1f} s"


def _gateway(network: str) -> str:
    data = docker("network", "inspect", network).stdout
    match = re.search(r'"Gateway": "([0-9.]+)"', data)
    assert match, data
    return match.group(1)


def _bridge(stack: str) -> frozenset[str]:
    """The stack network's bridge interface, as its rules on the host name it."""
    data = docker("network", "inspect", f"saferun-{stack}").stdout
    network_id = re.search(r'"Id": "([0-9a-f]{12})', data)
    assert network_id, data
    return frozenset({f"br-{network_id.group(1)}"})


@pytest.fixture(scope="module")
def outside() -> Iterator[str]:
    """A server on another network, published on that network's gateway (a host address)."""
    docker("network", "create", OUTSIDE_NET)
    try:
        gateway = _gateway(OUTSIDE_NET)
        docker("run", "-d", "--name", OUTSIDE, "--network", OUTSIDE_NET, "--user", "65534",
               "--cap-drop", "ALL", "-p", f"{gateway}:{OUTSIDE_PORT}:8080", BUSYBOX_IMAGE,
               *_listener("outside", 8080))
        yield gateway
    finally:
        docker("rm", "-f", OUTSIDE, check=False)
        docker("network", "rm", OUTSIDE_NET, check=False)


def _write_stack(directory: Path, gateway: str) -> Path:
    _service(directory, "web", _listener("web", 8080), {
        "egress": ["db:5432", f"{gateway}/32:{OUTSIDE_PORT}"],
        "ports": [{"container": 8080, "host": WEB_HOST_PORT}]})
    _service(directory, "db", _listener("db", 5432), {"egress": "none", "ingress": ["web:5432"]})
    _service(directory, "cache", _listener("cache", 6379),
             {"egress": "none", "ingress": ["probe:6379"]})
    _service(directory, "probe", ["sleep", "3600"], {"ingress": []})
    return _stack_file(directory, STACK, {"web": ["db"], "db": [], "cache": [], "probe": []})


@pytest.fixture(scope="module")
def stack(outside: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("stack")
    path = _write_stack(directory, outside)
    before = snapshot()
    result = saferun("up", str(path), timeout=300)
    try:
        assert result.returncode == 0, result.stderr
        yield {"path": path, "before": before, "gateway": outside, "ours": _bridge(STACK),
               "up": result.stdout}
    finally:
        saferun("down", str(path), timeout=300)


def test_allowed_connects(stack: dict[str, Any]) -> None:
    _assert_connects(f"{STACK}-web", "db", 5432)
    _assert_connects(f"{STACK}-web", stack["gateway"], OUTSIDE_PORT)
    _assert_connects(f"{STACK}-probe", "cache", 6379)  # cache listens: probe may reach it
    _assert_connects(f"{STACK}-probe", "web", 8080)  # web's ingress is open
    _assert_connects(f"{STACK}-probe", stack["gateway"], OUTSIDE_PORT)  # probe's egress too


def test_denied_by_egress(stack: dict[str, Any]) -> None:
    _assert_denied(f"{STACK}-web", "cache", 6379)  # not in web's egress (nor cache's ingress)
    _assert_denied(f"{STACK}-web", stack["gateway"], 22)  # only the outside server's port
    for target, port in (("web", 8080), ("cache", 6379), (stack["gateway"], OUTSIDE_PORT)):
        _assert_denied(f"{STACK}-db", target, port)  # db reaches nothing


def test_denied_by_ingress(stack: dict[str, Any]) -> None:
    _assert_denied(f"{STACK}-probe", "db", 5432)  # db lets only web in
    _assert_denied(f"{STACK}-web", "probe", 8080)  # probe lets nobody in (open egress of web
    # would allow it, so it is probe's ingress that refuses; nothing listens there either)


def test_published_port_reaches_web(stack: dict[str, Any]) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", WEB_HOST_PORT), timeout=5) as conn:
        conn.settimeout(5)
        assert b"banner-web" in conn.recv(100)


def test_app_cannot_touch_its_rules(stack: dict[str, Any]) -> None:
    data = inspect(f"{STACK}-web")
    assert data["HostConfig"]["NetworkMode"].startswith("container:")
    assert "NET_ADMIN" not in (data["HostConfig"]["CapAdd"] or [])
    status = (Path("/proc") / str(data["State"]["Pid"]) / "status").read_text()
    cap_eff = int(re.search(r"CapEff:\s*([0-9a-f]+)", status).group(1), 16)  # type: ignore[union-attr]
    assert not cap_eff & (1 << 12), "the app holds CAP_NET_ADMIN"


def test_rules_live_in_the_namespace_not_on_the_host(stack: dict[str, Any]) -> None:
    assert "table inet saferun" not in ruleset_lines()
    pid = inspect(f"{STACK}-web")["State"]["Pid"]
    inside = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "nft", "list", "ruleset"],
                            capture_output=True, text=True, check=True).stdout
    assert "table inet saferun" in inside
    ps = saferun("ps", str(stack["path"]))
    assert ps.returncode == 0, ps.stderr
    rows = {line.split("\t")[0]: line for line in ps.stdout.splitlines()[1:]}
    assert set(rows) == {"web", "db", "cache", "probe"}
    assert all("running" in row and "enforced" in row for row in rows.values()), ps.stdout


def test_verify_compares_a_service_with_its_manifest_as_started(stack: dict[str, Any]) -> None:
    result = saferun("verify", f"{STACK}-web", f"{STACK}-db")
    assert "[drift]" not in result.stdout, result.stdout
    assert "manifest: " in result.stdout


def test_other_stack_reaches_none(stack: dict[str, Any], tmp_path: Path) -> None:
    _service(tmp_path, "intruder", ["sleep", "3600"], {})
    path = _stack_file(tmp_path, OTHER, {"intruder": []})
    result = saferun("up", str(path), timeout=300)
    try:
        assert result.returncode == 0, result.stderr
        intruder = f"{OTHER}-intruder"
        _assert_connects(intruder, stack["gateway"], OUTSIDE_PORT)  # it has a network
        for service, port in (("web", 8080), ("db", 5432), ("cache", 6379)):
            address = inspect(f"{STACK}-{service}-sandbox")["NetworkSettings"]["Networks"][
                f"saferun-{STACK}"]["IPAddress"]
            _assert_denied(intruder, address, port)
            _assert_denied(intruder, service, port)
    finally:
        saferun("down", str(path), timeout=300)


def test_kill_and_down_leave_nothing(stack: dict[str, Any]) -> None:
    """The host's rules: unchanged by a crash (the rules are in the namespaces), and as
    before `up` once `down` ran. Compared strictly (tests/e2e/host_rules.py): only lines
    provably of other users of the shared engine are set aside."""
    after_up = snapshot()
    docker("kill", f"{STACK}-db")
    docker("kill", f"{STACK}-cache-sandbox")
    assert leftovers(after_up, snapshot(), stack["ours"]) == []  # no rule appeared or vanished
    # cache still runs in its namespace, and its rules are still there with it.
    pid = inspect(f"{STACK}-cache")["State"]["Pid"]
    inside = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "nft", "list", "ruleset"],
                            capture_output=True, text=True, check=True).stdout
    assert "table inet saferun" in inside
    result = saferun("down", str(stack["path"]), timeout=300)
    assert result.returncode == 0, result.stderr
    assert docker("ps", "-aq", "--filter", f"label=io.saferun.stack={STACK}").stdout == ""
    assert leftovers(stack["before"], snapshot(), stack["ours"]) == []


def test_sigkill_during_up_leaves_nothing(outside: str, tmp_path: Path) -> None:
    path = _write_stack(tmp_path, outside)
    text = path.read_text().replace(STACK, f"{STACK}-k")
    path.write_text(text)
    before = snapshot()
    process = subprocess.Popen([sys.executable, "-m", "saferun", "up", str(path)], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ})
    ours: frozenset[str] = frozenset()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        # Mid-start: once a sandbox exists, before every service does.
        found = docker("ps", "-aq", "--filter", f"label=io.saferun.stack={STACK}-k").stdout
        if found.split():
            ours = _bridge(f"{STACK}-k")
            break
        time.sleep(0.05)
    assert process.poll() is None, "up finished before it could be interrupted"
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline, clean = time.monotonic() + 150, 0
    while time.monotonic() < deadline and clean < 3:  # the guard sweeps until stable
        left = docker("ps", "-aq", "--filter", f"label=io.saferun.stack={STACK}-k").stdout
        networks = docker("network", "ls", "-q", "--filter",
                          f"label=io.saferun.stack={STACK}-k").stdout
        clean = clean + 1 if not left.strip() and not networks.strip() else 0
        time.sleep(1)
    try:
        assert not left.strip() and not networks.strip(), "the interrupted up left containers"
        assert leftovers(before, snapshot(), ours) == []
    finally:
        saferun("down", f"{STACK}-k", timeout=300)


def test_fails_closed_without_nft(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    docker_path = subprocess.run(["which", "docker"], capture_output=True, text=True,
                                 check=True).stdout.strip()
    (tmp_path / "bin" / "docker").symlink_to(docker_path)
    _service(tmp_path, "lonely", ["sleep", "60"], {"egress": "none"})
    path = _stack_file(tmp_path, f"{STACK}-n", {"lonely": []})
    env = {**os.environ, "PATH": str(tmp_path / "bin")}
    result = saferun("up", str(path), env=env, timeout=120)
    assert result.returncode == 125, result.stderr
    assert "nft" in result.stderr and "nsenter" in result.stderr
    assert docker("ps", "-aq", "--filter", f"label=io.saferun.stack={STACK}-n").stdout == ""
    assert docker("network", "ls", "-q", "--filter",
                  f"label=io.saferun.stack={STACK}-n").stdout == ""


def _unprivileged(directory: Path) -> tuple[list[str], dict[str, str]]:
    """argv prefix and environment that run saferun as nobody in the docker group (so it
    can reach the engine's socket) with a Python it may execute: the system's, same minor
    version, reading this checkout and its venv's packages."""
    import grp
    import shutil
    import sysconfig

    python = Path("/usr/bin/python3")
    version = subprocess.run([str(python), "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=False).stdout.strip()
    reasons = []
    if shutil.which("setpriv") is None:
        reasons.append("setpriv is not installed")
    if version != str(tuple(sys.version_info[:2])):
        reasons.append(f"no system Python {sys.version_info[:2]} at {python}")
    try:
        gid = grp.getgrnam("docker").gr_gid
    except KeyError:
        reasons.append("no docker group")
        gid = -1
    if reasons:
        if IN_CI:
            pytest.fail("; ".join(reasons))
        pytest.skip("; ".join(reasons))
    home = directory / "home"
    home.mkdir()
    os.chown(home, 65534, 65534)
    env = {"PATH": os.environ["PATH"], "HOME": str(home),
           "PYTHONPATH": f"{REPO}:{sysconfig.get_paths()['purelib']}"}
    return ["setpriv", "--reuid", "65534", "--regid", "65534", "--groups", str(gid),
            "--inh-caps=-all", str(python)], env


def test_fails_closed_when_not_root() -> None:
    """As an unprivileged member of the docker group, which may start containers but not
    enter their namespaces: `up` of a stack with rules refuses and creates nothing."""
    import shutil
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="net-e2e-nonroot-"))
    try:
        directory.chmod(0o755)  # pytest's tmp_path is root's alone
        prefix, env = _unprivileged(directory)
        reach = subprocess.run([*prefix[:-1], "docker", "info", "--format", "{{.ID}}"],
                               capture_output=True, text=True, env=env, check=False)
        if reach.returncode != 0:
            if IN_CI:
                pytest.fail(f"the docker group cannot use the socket: {reach.stderr}")
            pytest.skip(f"the docker group cannot use the socket: {reach.stderr}")
        _service(directory, "lonely", ["sleep", "60"], {"egress": "none"})
        path = _stack_file(directory, f"{STACK}-u", {"lonely": []})
        for item in directory.glob("*.toml"):
            item.chmod(0o644)
        result = subprocess.run([*prefix, "-m", "saferun", "up", str(path)], capture_output=True,
                                text=True, env=env, cwd=directory, timeout=120, check=False)
        assert result.returncode == 125, result.stderr
        assert "needs root" in result.stderr and "fix:" in result.stderr, result.stderr
        label = f"label=io.saferun.stack={STACK}-u"
        assert docker("ps", "-aq", "--filter", label).stdout == ""
        assert docker("network", "ls", "-q", "--filter", label).stdout == ""
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_run_refuses_a_manifest_with_rules(tmp_path: Path) -> None:
    _service(tmp_path, "alone", ["true"], {"egress": "none"})
    result = saferun("run", str(tmp_path / "alone.toml"))
    assert result.returncode == 125
    assert "saferun up" in result.stderr


def test_a_service_with_rules_may_not_hold_net_admin(tmp_path: Path) -> None:
    document = {"app": {"name": "admin", "image": BUSYBOX_IMAGE, "command": ["sleep", "60"]},
                "capabilities": {"add": ["NET_ADMIN"]},
                "allow": {"cap-not-allowed": "network tooling for the test, ticket NET-1"},
                "network": {"egress": "none"}}
    (tmp_path / "admin.toml").write_text(tomli_w.dumps(document))
    path = _stack_file(tmp_path, f"{STACK}-a", {"admin": []})
    result = saferun("up", str(path), timeout=120)
    assert result.returncode == 125, result.stderr
    assert "CAP_NET_ADMIN" in result.stderr
    assert docker("ps", "-aq", "--filter", f"label=io.saferun.stack={STACK}-a").stdout == ""


def test_a_failed_up_removes_what_it_created(tmp_path: Path) -> None:
    _service(tmp_path, "lonely", ["sleep", "60"], {"egress": "none"})
    path = _stack_file(tmp_path, f"{STACK}-f", {"lonely": []})
    path.write_text(path.read_text().replace(BUSYBOX_IMAGE, "net-e2e.invalid/none:1", 1))
    result = saferun("up", str(path), timeout=180)
    assert result.returncode == 125, result.stderr
    assert f"docker create {STACK}-f-lonely-sandbox` failed" in result.stderr
    label = f"label=io.saferun.stack={STACK}-f"
    assert docker("ps", "-aq", "--filter", label).stdout == ""
    assert docker("network", "ls", "-q", "--filter", label).stdout == ""


def test_up_with_the_default_sandbox_image_needs_no_registry(outside: str, tmp_path: Path
                                                             ) -> None:
    """No `sandbox_image`: `up` makes saferun-sandbox:1 from this host's static busybox when
    the engine lacks it (no registry here), and a manifest alone is a stack of one. The
    image stays, like Kubernetes' pause image (other sessions' stacks may be using it)."""
    name = f"{STACK}-d"
    document = {"app": {"name": name, "image": BUSYBOX_IMAGE, "command": _listener("d", 8080)},
                "network": {"egress": "none"}}
    (tmp_path / f"{name}.toml").write_text(tomli_w.dumps(document))
    result = saferun("up", str(tmp_path / f"{name}.toml"), timeout=300)
    try:
        assert result.returncode == 0, result.stderr
        sandbox = inspect(f"{name}-{name}-sandbox")
        assert sandbox["Config"]["Image"] == "saferun-sandbox:1"
        assert sandbox["State"]["Running"]
        image = json.loads(docker("image", "inspect", "saferun-sandbox:1").stdout)[0]
        assert image["Config"]["Labels"]["io.saferun.sandbox-image"] == "host-busybox"
        _assert_connects(f"{name}-{name}", "127.0.0.1", 8080)  # its own loopback stays
        _assert_denied(f"{name}-{name}", outside, OUTSIDE_PORT)  # the rules are in
    finally:
        saferun("down", name, timeout=300)
