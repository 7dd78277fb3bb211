"""Remote engines: a third dockerd listening on 127.0.0.1 with mutual TLS (certificates made
here with openssl). saferun connects with the client certificate, refuses plain tcp:// and
refuses a server whose certificate does not verify; docker contexts are judged the same way."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import IN_CI, saferun
from tests.e2e.extra_daemons import ExtraDaemon, running

pytestmark = pytest.mark.e2e


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        pytest.fail(f"openssl {' '.join(args)}: {result.stderr}")


def _ca(directory: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", "-days", "2",
             "-subj", f"/CN=saferun e2e {name}", cwd=directory)


def _signed(directory: Path, name: str, ca: str, extensions: str) -> None:
    (directory / f"{name}.ext").write_text(extensions)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", "-subj", f"/CN={name}",
             cwd=directory)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
             cwd=directory)


def _client_dir(directory: Path, name: str, ca: str | None, with_client_cert: bool) -> Path:
    target = directory / name
    target.mkdir()
    if ca:
        shutil.copy(directory / f"{ca}.pem", target / "ca.pem")
    if with_client_cert:
        shutil.copy(directory / "client.pem", target / "cert.pem")
        shutil.copy(directory / "client-key.pem", target / "key.pem")
        os.chmod(target / "key.pem", 0o600)
    return target


@pytest.fixture(scope="session")
def tls_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        message = "openssl is not installed (Debian package openssl)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    pki = tmp_path_factory.mktemp("pki")
    _ca(pki, "ca")
    _ca(pki, "rogue-ca")
    _signed(pki, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "extendedKeyUsage=serverAuth\n")
    _signed(pki, "client", "ca", "extendedKeyUsage=clientAuth\n")
    os.chmod(pki / "server-key.pem", 0o400)
    _client_dir(pki, "good", "ca", True)
    _client_dir(pki, "wrong-ca", "rogue-ca", True)  # trusts another CA: the server won't verify
    _client_dir(pki, "no-client-cert", "ca", False)
    return pki


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def tls_engine(tls_pki: Path, busybox_image: str) -> Iterator[ExtraDaemon]:
    host = f"tcp://127.0.0.1:{_free_port()}"
    daemon = ExtraDaemon(
        name="dockerd-tls",
        bridge="br-saferun-tls",
        bridge_cidr="172.31.251.1/24",
        data_root=Path("/var/lib/saferun-e2e-tls"),
        exec_root=Path("/run/saferun-e2e-tls"),
        pidfile=Path("/run/saferun-e2e-tls/dockerd.pid"),
        hosts=[host],
        extra_args=["--tlsverify", "--tlscacert", str(tls_pki / "ca.pem"),
                    "--tlscert", str(tls_pki / "server.pem"),
                    "--tlskey", str(tls_pki / "server-key.pem")],
        client_env={"DOCKER_HOST": host, "DOCKER_TLS_VERIFY": "1",
                    "DOCKER_CERT_PATH": str(tls_pki / "good")},
        log=Path("/var/log/saferun-e2e-dockerd-tls.log"),
    )
    with running(daemon, busybox_image):
        yield daemon


def _plain_env(engine: ExtraDaemon, **extra: str) -> dict[str, str]:
    env = engine.env()
    for key in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        env.pop(key, None)
    env.update(extra)
    return env


def test_connects_with_the_client_certificate(tls_engine: ExtraDaemon, e2e_manifest: Any) -> None:
    manifest = e2e_manifest({"app": {"command": ["echo", "hello over mutual TLS"]}})
    result = saferun("run", "--rm", str(manifest), env=tls_engine.env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello over mutual TLS"
    # It was the TLS daemon that ran it (its own data-root), not the main engine.
    root = tls_engine.docker("info", "--format", "{{.DockerRootDir}}").stdout.strip()
    assert root == "/var/lib/saferun-e2e-tls"


def test_refuses_plain_tcp(tls_engine: ExtraDaemon, e2e_manifest: Any) -> None:
    manifest = e2e_manifest({"app": {"command": ["true"]}})
    plain = saferun("run", "--rm", str(manifest), env=_plain_env(tls_engine))
    assert plain.returncode == 125
    assert "plain TCP without TLS" in plain.stderr
    assert "SAFERUN_ALLOW_INSECURE_TCP=1" in plain.stderr and "DOCKER_TLS_VERIFY=1" in plain.stderr
    unverified = saferun("run", "--rm", str(manifest),
                         env=_plain_env(tls_engine, DOCKER_TLS="1"))
    assert unverified.returncode == 125
    assert "TLS without verifying the server" in unverified.stderr
    # The explicit opt-in passes saferun's policy; this daemon then refuses the plain client.
    allowed = saferun("run", "--rm", str(manifest),
                      env=_plain_env(tls_engine, SAFERUN_ALLOW_INSECURE_TCP="1"))
    assert allowed.returncode == 125
    assert "refusing" not in allowed.stderr and "cannot reach the Docker engine" in allowed.stderr


def test_refuses_a_server_whose_certificate_does_not_verify(
        tls_engine: ExtraDaemon, tls_pki: Path, e2e_manifest: Any) -> None:
    manifest = e2e_manifest({"app": {"command": ["true"]}})
    env = tls_engine.env(DOCKER_CERT_PATH=str(tls_pki / "wrong-ca"))
    result = saferun("run", "--rm", str(manifest), env=env)
    assert result.returncode == 125
    assert "x509" in result.stderr or "certificate" in result.stderr
    assert "did not verify against DOCKER_CERT_PATH/ca.pem" in result.stderr


def test_refuses_tls_without_a_client_certificate(
        tls_engine: ExtraDaemon, tls_pki: Path, e2e_manifest: Any) -> None:
    manifest = e2e_manifest({"app": {"command": ["true"]}})
    env = tls_engine.env(DOCKER_CERT_PATH=str(tls_pki / "no-client-cert"))
    result = saferun("run", "--rm", str(manifest), env=env)
    assert result.returncode == 125
    assert "cert.pem, key.pem is missing" in result.stderr


def test_docker_contexts_are_honoured_and_judged(
        tls_engine: ExtraDaemon, tls_pki: Path, e2e_manifest: Any, tmp_path: Path) -> None:
    host = tls_engine.client_env["DOCKER_HOST"]
    config = tmp_path / "docker-config"
    config.mkdir()
    env = _plain_env(tls_engine, DOCKER_CONFIG=str(config))
    env.pop("DOCKER_HOST")
    good = tls_pki / "good"
    for name, spec in (
        ("e2e-tls", f"host={host},ca={good}/ca.pem,cert={good}/cert.pem,key={good}/key.pem"),
        ("e2e-plain", f"host={host}"),
    ):
        created = subprocess.run(["docker", "context", "create", name, "--docker", spec],
                                 env=env, capture_output=True, text=True, check=False)
        assert created.returncode == 0, created.stderr
    manifest = e2e_manifest({"app": {"command": ["echo", "via a docker context"]}})

    via_tls = saferun("run", "--rm", str(manifest), env={**env, "DOCKER_CONTEXT": "e2e-tls"})
    assert via_tls.returncode == 0, via_tls.stderr
    assert via_tls.stdout.strip() == "via a docker context"

    subprocess.run(["docker", "context", "use", "e2e-plain"], env=env, capture_output=True,
                   check=True)  # the current context, as `docker context use` sets it
    via_plain = saferun("run", "--rm", str(manifest), env=env)
    assert via_plain.returncode == 125
    assert f"{host} (docker context e2e-plain)" in via_plain.stderr
    assert "plain TCP without TLS" in via_plain.stderr


def test_doctor_against_the_remote_engine(tls_engine: ExtraDaemon) -> None:
    result = saferun("doctor", "--format", "json", env=tls_engine.env())
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert report["local"] is False and report["endpoint"].startswith("tcp://127.0.0.1:")
    by_id = {c["id"]: c for c in report["checks"]}
    assert by_id["docker-socket-mode"]["status"] == "skip"  # files of another host
    assert by_id["engine-version"]["status"] in ("pass", "fail")
