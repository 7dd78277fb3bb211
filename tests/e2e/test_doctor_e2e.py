"""`saferun doctor` on the real test host: it must report the host's real findings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.conftest import docker, saferun

pytestmark = pytest.mark.e2e


def _report(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = saferun("doctor", "--format", "json", *args)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_doctor_reports_this_hosts_real_findings(docker_engine: None) -> None:
    code, report = _report()
    assert report["schema"] == "saferun.doctor/1" and report["local"] is True
    by_id = {c["id"]: c for c in report["checks"]}
    info = json.loads(docker("info", "--format", "{{json .}}").stdout)

    # No AppArmor and no SELinux in this kernel (../shared/ENGINE.md): a real finding.
    has_mac = Path("/sys/module/apparmor").exists() or Path("/sys/fs/selinux/enforce").exists()
    assert by_id["mac-lsm-support"]["status"] == ("pass" if has_mac else "fail")
    if not has_mac:
        assert "no AppArmor and no SELinux" in by_id["mac-lsm-support"]["detail"]
        assert code == 1  # a medium finding with the default --fail-on medium
    # The engine's facts, as docker itself reports them.
    assert by_id["userns-remap"]["status"] == (
        "pass" if any("userns" in o or "rootless" in o for o in info["SecurityOptions"])
        else "fail")
    assert by_id["cgroup-v2"]["status"] == ("pass" if info["CgroupVersion"] == "2" else "fail")
    assert by_id["live-restore"]["status"] == ("pass" if info["LiveRestoreEnabled"] else "fail")
    assert by_id["sandboxed-runtime"]["status"] == (
        "pass" if "runsc" in info["Runtimes"] else "fail")
    assert by_id["seccomp-support"]["status"] == "pass"
    if info["ServerVersion"].startswith("20.10"):
        assert by_id["engine-version"]["status"] == "fail"
    # The socket, stat'ed on the host.
    mode = os.stat("/var/run/docker.sock").st_mode & 0o777
    assert by_id["docker-socket-mode"]["status"] == ("pass" if not mode & ~0o660 else "fail")
    assert by_id["docker-socket-mode"]["detail"] == f"/var/run/docker.sock has mode {mode:04o}"
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert all(c["fix"] for c in failed)


def test_doctor_exit_code_follows_fail_on(docker_engine: None) -> None:
    _, report = _report()
    worst = max((c for c in report["checks"] if c["status"] == "fail"),
                key=lambda c: ["info", "low", "medium", "high", "critical"].index(c["severity"]),
                default=None)
    if worst is None:
        pytest.skip("this host has no findings")
    assert _report("--fail-on", worst["severity"])[0] == 1
    table = saferun("doctor")
    assert "mac-lsm-support" in table.stdout and "fixes:" in table.stdout
    assert saferun("doctor", "--fail-on", "critical").returncode == (
        1 if worst["severity"] == "critical" else 0)


def test_doctor_exits_3_without_an_engine(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"}
    result = saferun("doctor", env=env)
    assert result.returncode == 3
    assert "cannot reach the Docker engine" in result.stderr
