from __future__ import annotations

from pathlib import Path

import pytest

from saferun.engine import api as engine
from saferun.engine.remote import (
    check_endpoint,
    endpoint_from_context,
    endpoint_from_env,
    tls_failure_fix,
)
from saferun.errors import EngineUnavailable

ALL = frozenset({"ca.pem", "cert.pem", "key.pem"})


def test_plain_tcp_is_refused_unless_allowed() -> None:
    env = {"DOCKER_HOST": "tcp://10.0.0.5:2375"}
    with pytest.raises(EngineUnavailable, match="plain TCP without TLS") as info:
        check_endpoint(endpoint_from_env(env, frozenset()), env)
    assert "SAFERUN_ALLOW_INSECURE_TCP=1" in (info.value.fix or "")
    allowed = {**env, "SAFERUN_ALLOW_INSECURE_TCP": "1"}
    check_endpoint(endpoint_from_env(allowed, frozenset()), allowed)
    zero = {**env, "SAFERUN_ALLOW_INSECURE_TCP": "0"}
    with pytest.raises(EngineUnavailable):
        check_endpoint(endpoint_from_env(zero, frozenset()), zero)


def test_tls_without_verification_is_refused() -> None:
    env = {"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS": "1"}
    with pytest.raises(EngineUnavailable, match="TLS without verifying the server"):
        check_endpoint(endpoint_from_env(env, ALL), env)


def test_mutual_tls_needs_all_three_files() -> None:
    env = {"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/c"}
    check_endpoint(endpoint_from_env(env, ALL), env)
    with pytest.raises(EngineUnavailable, match="cert.pem, key.pem is missing from /c"):
        check_endpoint(endpoint_from_env(env, frozenset({"ca.pem"})), env)


def test_unix_and_ssh_pass() -> None:
    for host in ("unix:///run/docker.sock", "ssh://user@host"):
        env = {"DOCKER_HOST": host}
        check_endpoint(endpoint_from_env(env, frozenset()), env)


def test_contexts() -> None:
    tls = {"Name": "prod",
           "Endpoints": {"docker": {"Host": "tcp://h:2376", "SkipTLSVerify": False}},
           "TLSMaterial": {"docker": ["ca.pem", "cert.pem", "key.pem"]}}
    check_endpoint(endpoint_from_context("prod", tls), {})
    skip = {**tls, "Endpoints": {"docker": {"Host": "tcp://h:2376", "SkipTLSVerify": True}}}
    with pytest.raises(EngineUnavailable, match="docker context prod"):
        check_endpoint(endpoint_from_context("prod", skip), {})
    plain = {"Endpoints": {"docker": {"Host": "tcp://h:2375"}}, "TLSMaterial": {}}
    with pytest.raises(EngineUnavailable, match="plain TCP"):
        check_endpoint(endpoint_from_context("plain", plain), {})


def test_tls_failure_fix() -> None:
    fix = tls_failure_fix("x509: certificate signed by unknown authority")
    assert fix and "did not verify" in fix
    assert tls_failure_fix("connection refused") is None


def test_engine_session_applies_the_policy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_TLS", "SAFERUN_ALLOW_INSECURE_TCP"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    with pytest.raises(EngineUnavailable, match="plain TCP"):
        engine.EngineSession()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
    engine.EngineSession()  # policy satisfied; nothing is contacted yet
    (tmp_path / "key.pem").unlink()
    with pytest.raises(EngineUnavailable, match="key.pem is missing"):
        engine.EngineSession()
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    engine.EngineSession()  # the unix fast path is untouched
