"""The core claim, proven on a real engine: `saferun run` starts a container whose hardening
is really in force, read from inside the container and from `docker inspect` on the host."""

from __future__ import annotations

import http.client
import json
import shlex
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from saferun.model.capabilities import capability_mask
from tests.e2e.conftest import E2E_LABEL, docker, inspect, saferun

pytestmark = pytest.mark.e2e

# Printed from inside the container: identity, capability sets, no_new_privs, seccomp mode,
# whether / and /tmp are writable, and the cgroup limits (v1 or v2 layout).
PROBE = r"""
echo "uid=$(id -u) gid=$(id -g)"
grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status
if touch /probe-root 2>/dev/null; then echo root_write=ok; else echo root_write=denied; fi
if echo x > /tmp/probe 2>/dev/null; then echo tmp_write=ok; else echo tmp_write=denied; fi
for f in /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max; do
  [ -f "$f" ] && echo "pids_max=$(cat "$f")" && break; done
for f in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes; do
  [ -f "$f" ] && echo "memory_max=$(cat "$f")" && break; done
echo "nofile=$(ulimit -n)"
"""

SECURITY_FIELDS = (
    "CapAdd",
    "CapDrop",
    "Privileged",
    "ReadonlyRootfs",
    "SecurityOpt",
    "UsernsMode",
    "PidMode",
    "IpcMode",
    "UTSMode",
    "NetworkMode",
    "Memory",
    "MemorySwap",
    "NanoCpus",
    "PidsLimit",
    "Ulimits",
    "Tmpfs",
    "PortBindings",
    "Runtime",
    "RestartPolicy",
    "LogConfig",
)


def _parse_probe(output: str) -> dict[str, str]:
    values = {}
    for line in output.splitlines():
        if ":" in line and "=" not in line.split(":")[0]:
            key, _, value = line.partition(":")
            values[key.strip()] = value.strip()
        elif "=" in line:
            for pair in line.split():
                key, _, value = pair.partition("=")
                values[key] = value
    return values


def _name() -> str:
    return f"saferun-e2e-{uuid.uuid4().hex[:10]}"


def _hardened_document(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "app": {"user": "1000:1000", "command": ["sh", "-c", PROBE]},
        "resources": {"memory": "96m", "pids": 64, "nofile": {"soft": 512, "hard": 1024}},
        "network": {"ports": [{"container": 8080}]},
    }
    for section, values in overrides.items():
        document.setdefault(section, {}).update(values)
    return document


def test_hardening_in_force_inside_and_in_inspect(e2e_manifest: Any) -> None:
    manifest = e2e_manifest(_hardened_document())
    name = _name()
    result = saferun("run", "--name", name, str(manifest))
    assert result.returncode == 0, result.stderr
    seen = _parse_probe(result.stdout)

    assert seen["uid"] == "1000" and seen["gid"] == "1000"
    assert seen["CapEff"] == seen["CapPrm"] == seen["CapBnd"] == "0000000000000000"
    assert seen["NoNewPrivs"] == "1"
    assert seen["Seccomp"] == "2"
    assert seen["root_write"] == "denied"
    assert seen["tmp_write"] == "ok"
    assert seen["pids_max"] == "64"
    assert int(seen["memory_max"]) == 96 * 1024 * 1024
    assert seen["nofile"] == "512"

    host = inspect(name)["HostConfig"]
    assert inspect(name)["Config"]["User"] == "1000:1000"
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert host["Privileged"] is False
    assert host["ReadonlyRootfs"] is True
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Memory"] == host["MemorySwap"] == 96 * 1024 * 1024
    assert host["PidsLimit"] == 64
    assert host["NanoCpus"] == 1_000_000_000
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 512, "Hard": 1024}]
    assert host["Tmpfs"] == {"/tmp": "rw,noexec,nosuid,nodev,size=67108864,mode=1777"}
    assert host["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert host["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-file": "3", "max-size": "10m"},
    }
    docker("rm", "-f", name)


def test_published_port_listens_on_loopback_only(e2e_manifest: Any) -> None:
    manifest = e2e_manifest(
        {"app": {"command": ["sleep", "30"]}, "network": {"ports": [{"container": 8080}]}}
    )
    name = _name()
    started = saferun("run", "-d", "--rm", "--name", name, str(manifest))
    assert started.returncode == 0, started.stderr
    try:
        mapping = docker("port", name, "8080/tcp").stdout.split()
        assert mapping and all(m.startswith("127.0.0.1:") for m in mapping), mapping
    finally:
        docker("rm", "-f", name)


@pytest.mark.parametrize("added", [["NET_BIND_SERVICE"], ["CHOWN", "KILL", "SETUID"]])
def test_added_capabilities_are_exactly_the_allowlist(e2e_manifest: Any, added: list[str]) -> None:
    mask = f"{capability_mask(tuple(added)):016x}"
    # As root (with a reasoned exception) the added caps are effective...
    as_root = e2e_manifest(
        _hardened_document(
            app={"user": "0:0"},
            capabilities={"add": added},
            exceptions={"run_as_root": "the probe needs effective capabilities to show them"},
        )
    )
    seen = _parse_probe(saferun("run", "--rm", str(as_root)).stdout)
    assert seen["CapEff"] == seen["CapPrm"] == seen["CapBnd"] == mask
    # ...and for a non-root user they bound what the process could ever regain.
    as_user = e2e_manifest(_hardened_document(capabilities={"add": added}), name="user.toml")
    seen = _parse_probe(saferun("run", "--rm", str(as_user)).stdout)
    assert seen["CapBnd"] == mask
    assert seen["CapEff"] == seen["CapPrm"] == "0000000000000000"


def _security_fields(container: str) -> dict[str, Any]:
    host = inspect(container)["HostConfig"]
    fields = {key: host.get(key) for key in SECURITY_FIELDS}
    # docker stores a seccomp profile inline; compare it as parsed JSON.
    fields["SecurityOpt"] = sorted(
        json.dumps(json.loads(o[len("seccomp=") :]), sort_keys=True)
        if o.startswith("seccomp=")
        else o
        for o in fields["SecurityOpt"] or []
    )
    return fields


def _unix_post(path: str, body: dict[str, Any]) -> dict[str, Any]:
    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect("/var/run/docker.sock")

    conn = Conn("localhost", timeout=30)
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    assert response.status == 201, data
    return json.loads(data)


def test_dry_run_argv_and_api_body_match_saferun_run(e2e_manifest: Any) -> None:
    document = _hardened_document(
        app={"command": ["true"]},
        capabilities={"add": ["CHOWN"]},
        restart={"policy": "on-failure", "max_retries": 3},
    )
    manifest = e2e_manifest(document)

    via_saferun = _name()
    assert saferun("run", "--name", via_saferun, str(manifest)).returncode == 0

    dry = saferun("run", "--dry-run", "--name", _name(), str(manifest))
    assert dry.returncode == 0, dry.stderr
    argv = shlex.split(dry.stdout.strip())
    by_hand = argv[argv.index("--name") + 1]
    subprocess.run(argv, check=True, capture_output=True)

    body = json.loads(saferun("run", "--dry-run", "--format", "json", str(manifest)).stdout)
    via_api = _name()
    created = _unix_post(f"/v1.41/containers/create?name={via_api}", body)
    assert created["Id"]

    expected = _security_fields(via_saferun)
    assert _security_fields(by_hand) == expected
    assert _security_fields(via_api) == expected
    assert expected["CapAdd"] == ["CAP_CHOWN"]
    assert expected["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    docker("rm", "-f", via_saferun, by_hand, via_api)


def test_exit_codes_are_dockers(e2e_manifest: Any) -> None:
    manifest = e2e_manifest({"app": {"command": ["sh", "-c", "exit 7"]}})
    assert saferun("run", "--rm", str(manifest)).returncode == 7
    assert saferun("run", "--rm", str(manifest), "no-such-command").returncode == 127
    assert saferun("run", "--rm", str(manifest), "/etc/passwd").returncode == 126


def test_detach_prints_id_and_rm_removes(e2e_manifest: Any) -> None:
    manifest = e2e_manifest({"app": {"command": ["sleep", "30"]}})
    started = saferun("run", "-d", "--rm", str(manifest))
    assert started.returncode == 0, started.stderr
    container_id = started.stdout.strip()
    assert len(container_id) == 64
    assert inspect(container_id)["State"]["Running"] is True
    docker("stop", "-t", "1", container_id)
    import time

    deadline = time.monotonic() + 15  # the daemon removes it just after the stop returns
    while docker("inspect", container_id, check=False).returncode == 0:
        assert time.monotonic() < deadline, "--rm did not remove the container"
        time.sleep(0.2)


def test_sigterm_reaches_the_container(e2e_manifest: Any) -> None:
    import signal
    import sys
    import time

    script = "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done"
    manifest = e2e_manifest({"app": {"command": ["sh", "-c", script]}})
    proc = subprocess.Popen(
        [sys.executable, "-m", "saferun", "run", "--rm", str(manifest)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while proc.stdout.readline().strip() != "ready":
        assert time.monotonic() < deadline, "container never became ready"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert "got-term" in out
    assert proc.returncode == 42


def test_interactive_tty(e2e_manifest: Any) -> None:
    import os
    import pty
    import sys
    import time

    manifest = e2e_manifest({"app": {"command": ["sh"]}})
    pid, fd = pty.fork()
    if pid == 0:  # child: saferun attached to a real terminal
        os.execv(
            sys.executable, [sys.executable, "-m", "saferun", "run", "-it", "--rm", str(manifest)]
        )
    output = b""
    deadline = time.monotonic() + 30
    os.write(fd, b"tty; echo marker-$((6*7)); exit 3\n")
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert b"marker-42" in output, output
    assert b"/dev/pts/" in output
    assert os.waitstatus_to_exitcode(status) == 3


def _containers_with_label() -> set[str]:
    return set(
        docker("ps", "-aq", "--filter", f"label={E2E_LABEL[0]}={E2E_LABEL[1]}").stdout.split()
    )


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ({"app": {"bogus": 1}}, "unknown key app.bogus"),
        ({"resources": {"pids": "many"}}, "resources.pids"),
        ({"app": {"user": "0"}}, "exceptions] run_as_root"),
        ({"capabilities": {"add": ["SYS_ADMINN"]}}, "did you mean SYS_ADMIN"),
        ({"resources": {"memory": "-1g"}}, "resources.memory"),
        ({"resources": {"memory": "lots"}}, "resources.memory"),
        (
            {"filesystem": {"mounts": [{"type": "bind", "source": ".", "target": "data"}]}},
            "filesystem.mounts.0.target",
        ),
        (
            {"app": {"image": "saferun-test/does-not-exist:1", "pull": "never"}},
            "not in the local engine",
        ),
        ({"security": {"userns": "required"}}, "userns-remap"),
        ({"security": {"runtime": "kata"}}, "no such runtime"),
        ({"apparmor": {"enforcement": "required"}}, "AppArmor"),
    ],
)
def test_bad_input_refused_with_125_and_no_container(
    e2e_manifest: Any, document: dict[str, Any], needle: str
) -> None:
    manifest = e2e_manifest(document)
    before = _containers_with_label()
    result = saferun("run", str(manifest))
    assert result.returncode == 125, (result.stdout, result.stderr)
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert _containers_with_label() == before


def test_missing_image_with_pull_allowed(e2e_manifest: Any) -> None:
    manifest = e2e_manifest({"app": {"image": "saferun-test/does-not-exist:1"}})
    result = saferun("run", str(manifest))
    assert result.returncode == 125
    assert "saferun-test/does-not-exist:1" in result.stderr
    assert "Traceback" not in result.stderr


def test_daemon_unreachable(e2e_manifest: Any, tmp_path: Path) -> None:
    import os

    manifest = e2e_manifest()
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock"}
    result = saferun("run", str(manifest), env=env)
    assert result.returncode == 125
    assert "cannot reach the Docker engine" in result.stderr
    assert "Traceback" not in result.stderr
    assert saferun("check", str(manifest), env=env).returncode == 0  # check needs no daemon
