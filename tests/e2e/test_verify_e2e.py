"""saferun verify against a real engine: a loose plain-docker container, a saferun container,
and drift (a container started by hand from saferun's command with an extra capability)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from tests.e2e.conftest import E2E_LABEL, SESSION_ID, docker, saferun

SLEEP = ["sleep", "300"]


def verify(*args: str) -> tuple[int, dict[str, Any]]:
    result = saferun("verify", "--format", "json", *args)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)["results"][0]


def rules(report: dict[str, Any], kind: str | None = None) -> set[str]:
    return {f["rule"] for f in report["findings"] if kind is None or f["kind"] == kind}


def test_loose_plain_docker_container(busybox_image: str) -> None:
    name = f"verify-loose-{SESSION_ID}"
    docker("run", "-d", "--name", name, "--label", f"{E2E_LABEL[0]}={E2E_LABEL[1]}",
           "--cap-add", "SYS_ADMIN", "-v", "/etc:/hostetc:ro", busybox_image, *SLEEP)
    code, report = verify(name)
    assert code == 1
    assert {"cap-not-allowed", "sensitive-host-mount", "run-as-root", "no-new-privileges",
            "writable-root", "memory-limit", "pids-limit"} <= rules(report)
    assert report["score"]["value"] == 10.0  # SYS_ADMIN alone is root-equivalent
    proof = next(n for n in report["notes"] if n.startswith("in force:"))
    assert "SYS_ADMIN" in proof and "NoNewPrivs=0" in proof and "host uid 0" in proof
    assert not rules(report, "runtime")  # the kernel enforces exactly the (loose) config
    check = saferun("check", "--container", name)
    assert check.returncode == 1 and "cap-not-allowed" in check.stdout


def test_saferun_container_verifies_clean_and_proves_its_controls(e2e_manifest: Any) -> None:
    name = f"verify-safe-{SESSION_ID}"
    manifest: Path = e2e_manifest({"app": {"command": SLEEP}})
    started = saferun("run", "-d", "--name", name, str(manifest))
    assert started.returncode == 0, started.stderr
    code, report = verify(name)
    assert code == 0, report
    assert not rules(report, "drift") and not rules(report, "runtime")
    assert f"manifest: {manifest}" in report["notes"]
    proof = next(n for n in report["notes"] if n.startswith("in force:"))
    assert "CapBnd=0x0" in proof and "NoNewPrivs=1" in proof and "Seccomp=filter" in proof
    assert "uid 65534" in proof and proof.endswith("/ ro")
    assert report["score"]["value"] < 2
    manifest.write_text(manifest.read_text() + "\n[restart]\npolicy = \"on-failure\"\n")
    code, report = verify(name)
    assert code == 1
    assert {"manifest-changed", "restart-always"} <= rules(report, "drift")


def test_drift_an_extra_capability_started_by_hand(e2e_manifest: Any) -> None:
    name = f"verify-drift-{SESSION_ID}"
    manifest: Path = e2e_manifest({"app": {"command": SLEEP}})
    dry = saferun("run", "--dry-run", "--name", name, str(manifest))
    assert dry.returncode == 0, dry.stderr
    argv = shlex.split(dry.stdout.strip().splitlines()[-1])
    assert argv[:4] == ["docker", "run", "--name", name]
    docker(*argv[1:2], "-d", "--cap-add", "NET_ADMIN", *argv[2:])
    code, report = verify(name)
    assert code == 1
    drift = [f for f in report["findings"] if f["kind"] == "drift"]
    assert [(f["rule"], f["message"]) for f in drift] == [
        ("cap-not-allowed", "capabilities (container config): +NET_ADMIN")]
    runtime = [f for f in report["findings"] if f["kind"] == "runtime"]
    assert [f["rule"] for f in runtime] == ["cap-not-allowed"]
    assert "NET_ADMIN" in runtime[0]["message"]


def test_verify_unknown_container_and_all(docker_engine: None) -> None:
    result = saferun("verify", f"no-such-{SESSION_ID}")
    assert result.returncode == 2 and "no such container" in result.stdout
    assert saferun("verify").returncode == 2
