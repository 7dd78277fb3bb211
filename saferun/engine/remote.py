"""Policy for remote Docker engines: which endpoints saferun agrees to talk to. Pure.

The Docker API is root on the daemon's host. Over `tcp://` without TLS, anyone on the
network path can read and rewrite every request (and with it the hardening saferun just
planned). So a plain-TCP endpoint is refused unless the operator opts in with
SAFERUN_ALLOW_INSECURE_TCP=1 (e.g. a port forwarded over SSH to 127.0.0.1), and TLS means
mutual TLS: the server is verified against a CA (DOCKER_TLS_VERIFY) and saferun presents a
client certificate (DOCKER_CERT_PATH/{ca,cert,key}.pem), exactly the files the docker CLI
that saferun hands over to will use. `ssh://` endpoints are authenticated and encrypted
by SSH and pass. Docker contexts are judged by their stored endpoint and TLS material.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from saferun.errors import EngineUnavailable

ALLOW_ENV = "SAFERUN_ALLOW_INSECURE_TCP"
TLS_FILES = ("ca.pem", "cert.pem", "key.pem")


@dataclass(frozen=True)
class Endpoint:
    """Where the docker CLI will connect, and with which TLS settings."""

    host: str
    tls_verify: bool
    tls: bool  # TLS without verification (DOCKER_TLS / --tls)
    present_files: frozenset[str]  # of TLS_FILES, those that exist
    cert_dir: str
    source: str  # "DOCKER_HOST" or "docker context NAME"


def endpoint_from_env(env: Mapping[str, str], existing: frozenset[str]) -> Endpoint:
    """The endpoint of DOCKER_HOST with the docker CLI's TLS environment."""
    cert_dir = env.get("DOCKER_CERT_PATH") or os.path.join(env.get("HOME", "~"), ".docker")
    return Endpoint(
        host=env.get("DOCKER_HOST", ""),
        tls_verify=bool(env.get("DOCKER_TLS_VERIFY")),  # the CLI: any non-empty value
        tls=bool(env.get("DOCKER_TLS")),
        present_files=existing,
        cert_dir=cert_dir,
        source="DOCKER_HOST",
    )


def endpoint_from_context(name: str, inspect: Mapping[str, Any]) -> Endpoint:
    """From `docker context inspect` JSON (one object)."""
    docker = (inspect.get("Endpoints") or {}).get("docker") or {}
    material = (inspect.get("TLSMaterial") or {}).get("docker") or []
    storage = (inspect.get("Storage") or {}).get("TLSPath") or "the context's TLS store"
    present = frozenset(str(f) for f in material) & frozenset(TLS_FILES)
    return Endpoint(
        host=str(docker.get("Host") or ""),
        tls_verify=bool(present) and not docker.get("SkipTLSVerify", False),
        tls=bool(present),
        present_files=present,
        cert_dir=str(storage),
        source=f"docker context {name}",
    )


def check_endpoint(endpoint: Endpoint, env: Mapping[str, str]) -> None:
    """Raise EngineUnavailable unless the endpoint is safe to send a container spec to."""
    if not endpoint.host.startswith("tcp://"):
        return
    allowed = env.get(ALLOW_ENV, "") not in ("", "0")
    where = f"{endpoint.host} ({endpoint.source})"
    if not endpoint.tls_verify:
        if allowed:
            return
        what = "TLS without verifying the server" if endpoint.tls else "plain TCP without TLS"
        raise EngineUnavailable(
            f"refusing to use the Docker engine at {where}: {what}. Anyone on the network path "
            "could read or change the container saferun starts, and the Docker API is root on "
            "that host",
            fix="use mutual TLS: DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH=DIR holding ca.pem, "
            "cert.pem and key.pem (or an ssh:// DOCKER_HOST); to accept the risk, e.g. for a port "
            f"forwarded over SSH, set {ALLOW_ENV}=1",
        )
    missing = [f for f in TLS_FILES if f not in endpoint.present_files]
    if missing:
        raise EngineUnavailable(
            f"refusing to use the Docker engine at {where}: TLS verification is on but "
            f"{', '.join(missing)} is missing from {endpoint.cert_dir}, so the server cannot be "
            "verified or saferun cannot present its client certificate",
            fix=f"put the CA certificate (ca.pem), client certificate (cert.pem) and key "
            f"(key.pem) in {endpoint.cert_dir}, or point DOCKER_CERT_PATH at them",
        )


def tls_failure_fix(detail: str) -> str | None:
    """A specific fix when the docker CLI failed a TLS handshake."""
    lowered = detail.lower()
    if "x509" in lowered or "certificate" in lowered or "tls" in lowered:
        return ("the server's certificate did not verify against DOCKER_CERT_PATH/ca.pem (or "
                "the server rejected saferun's client certificate): check that ca.pem is the CA "
                "that signed the daemon's --tlscert and that the certificate names the host in "
                "DOCKER_HOST")
    return None


def unreachable(endpoint: str, detail: str) -> EngineUnavailable:
    """EngineUnavailable for `endpoint`, with the TLS fix when the detail names one."""
    fix = None if endpoint.startswith("unix://") else tls_failure_fix(detail)
    return EngineUnavailable(
        f"cannot reach the Docker engine at {endpoint}: {detail}",
        fix=fix
        or "start the daemon (e.g. `systemctl start docker`, or `dockerd &` as root), "
        "or point DOCKER_HOST at a running engine",
    )
