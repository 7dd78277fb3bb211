"""Every doctor check, with a host that passes it and one that fails it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from saferun.policy.host_checks import (
    CHECKS,
    DOCTOR_FORMATS,
    SCHEMA,
    FileStat,
    HostAudit,
    OutputFormat,
    Severity,
    Status,
    daemon_flag_values,
    exit_code,
    option,
    run_checks,
)

HARDENED_INFO: dict[str, Any] = {
    "ServerVersion": "29.1.0", "CgroupVersion": "2", "LiveRestoreEnabled": True,
    "LoggingDriver": "syslog", "DefaultRuntime": "runc",
    "SecurityOptions": ["name=apparmor", "name=seccomp,profile=default", "name=userns"],
    "Runtimes": {"runc": {}, "runsc": {"path": "/usr/bin/runsc"}},
}
TLS_ARGS = ("dockerd", "-H", "unix:///var/run/docker.sock", "-H", "tcp://0.0.0.0:2376",
            "--tlsverify", "--tlscacert=/etc/docker/ca.pem", "--tlscert", "/etc/docker/cert.pem",
            "--tlskey", "/etc/docker/key.pem")
GOOD = HostAudit(
    info=HARDENED_INFO,
    socket=FileStat("/var/run/docker.sock", 0, 998, 0o660, "root", "docker"),
    daemon_args=TLS_ARGS,
    daemon_json=FileStat("/etc/docker/daemon.json", 0, 0, 0o644, "root", "root"),
    daemon_config={"icc": False, "no-new-privileges": True, "live-restore": True,
                   "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 4096}}},
    tls_files={"ca": FileStat("/etc/docker/ca.pem", 0, 0, 0o444),
               "cert": FileStat("/etc/docker/cert.pem", 0, 0, 0o444),
               "key": FileStat("/etc/docker/key.pem", 0, 0, 0o400)},
    kernel_lsms=("lockdown", "capability", "apparmor"),
    apparmor_enabled=True,
    selinux_enabled=False,
    kernel_seccomp=True,
)


def with_info(**changes: Any) -> Callable[[HostAudit], HostAudit]:
    return lambda a: dataclasses.replace(a, info={**a.info, **changes})


def with_config(**changes: Any) -> Callable[[HostAudit], HostAudit]:
    return lambda a: dataclasses.replace(a, daemon_config={**a.daemon_config, **changes})


def without_config(*keys: str) -> Callable[[HostAudit], HostAudit]:
    return lambda a: dataclasses.replace(
        a, daemon_config={k: v for k, v in a.daemon_config.items() if k not in keys})


def with_tls(role: str, **changes: Any) -> Callable[[HostAudit], HostAudit]:
    def change(a: HostAudit) -> HostAudit:
        stat = a.tls_files[role]
        assert stat is not None
        return dataclasses.replace(a, tls_files={**a.tls_files,
                                                 role: dataclasses.replace(stat, **changes)})
    return change


FAILING: dict[str, Callable[[HostAudit], HostAudit]] = {
    "docker-socket-ownership": lambda a: dataclasses.replace(
        a, socket=FileStat("/var/run/docker.sock", 1000, 1000, 0o660, "alice", "alice")),
    "docker-socket-mode": lambda a: dataclasses.replace(
        a, socket=FileStat("/var/run/docker.sock", 0, 998, 0o666, "root", "docker")),
    "daemon-json-valid": lambda a: dataclasses.replace(a, daemon_config_error="invalid JSON"),
    "daemon-json-ownership": lambda a: dataclasses.replace(
        a, daemon_json=FileStat("/etc/docker/daemon.json", 1000, 0, 0o644, "alice", "root")),
    "daemon-json-mode": lambda a: dataclasses.replace(
        a, daemon_json=FileStat("/etc/docker/daemon.json", 0, 0, 0o666, "root", "root")),
    "tls-ca-cert-file": with_tls("ca", mode=0o644),
    "tls-server-cert-file": with_tls("cert", uid=1000),
    "tls-server-key-file": with_tls("key", mode=0o440),
    "tcp-without-tls": lambda a: dataclasses.replace(
        a, daemon_args=("dockerd", "-H", "tcp://0.0.0.0:2375")),
    "userns-remap": with_info(SecurityOptions=["name=apparmor", "name=seccomp,profile=default"]),
    "live-restore": with_info(LiveRestoreEnabled=False),
    "icc-disabled": without_config("icc"),
    "no-new-privileges-default": with_config(**{"no-new-privileges": False}),
    "default-ulimits": without_config("default-ulimits"),
    "log-rotation": with_info(LoggingDriver="json-file"),
    "remote-logging": with_info(LoggingDriver="local"),
    "seccomp-support": lambda a: dataclasses.replace(a, kernel_seccomp=False),
    "mac-lsm-support": lambda a: dataclasses.replace(
        with_info(SecurityOptions=["name=seccomp,profile=default"])(a),
        kernel_lsms=("lockdown", "capability", "landlock", "bpf"), apparmor_enabled=False),
    "sandboxed-runtime": with_info(Runtimes={"runc": {}}),
    "engine-version": with_info(ServerVersion="20.10.24+dfsg1"),
    "cgroup-v2": with_info(CgroupVersion="1"),
}


def outcome(audit: HostAudit, check_id: str) -> Any:
    return next(f.outcome for f in run_checks(audit) if f.check.id == check_id)


def test_every_check_has_a_failing_fixture_and_unique_kebab_id() -> None:
    ids = [c.id for c in CHECKS]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(FAILING)
    for check in CHECKS:
        assert check.id == check.id.lower() and " " not in check.id and check.title and check.fix
        assert all(section[0] in "1235" for section in check.cis)


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_check_passes_on_the_hardened_host(check_id: str) -> None:
    result = outcome(GOOD, check_id)
    assert result.status is Status.PASS, result.detail


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_check_fails_on_the_weak_host(check_id: str) -> None:
    result = outcome(FAILING[check_id](GOOD), check_id)
    assert result.status is Status.FAIL, result.detail


def test_specific_failure_details() -> None:
    tcp = FAILING["tcp-without-tls"](GOOD)
    assert "without TLS" in outcome(tcp, "tcp-without-tls").detail
    tls_only = dataclasses.replace(
        GOOD, daemon_args=("dockerd", "-H", "tcp://0.0.0.0:2376", "--tls"))
    assert "without --tlsverify" in outcome(tls_only, "tcp-without-tls").detail
    unconfined = with_info(SecurityOptions=["name=seccomp,profile=unconfined"])(GOOD)
    assert outcome(unconfined, "seccomp-support").status is Status.FAIL
    no_lsm = FAILING["mac-lsm-support"](GOOD)
    assert "no AppArmor and no SELinux in this kernel" in outcome(no_lsm, "mac-lsm-support").detail
    unused = with_info(SecurityOptions=["name=seccomp"])(GOOD)
    assert "does not use it" in outcome(unused, "mac-lsm-support").detail


def test_other_passing_variants() -> None:
    rootless = with_info(SecurityOptions=["name=seccomp", "name=rootless"])(GOOD)
    assert outcome(rootless, "userns-remap").status is Status.PASS
    swarm = with_info(LiveRestoreEnabled=False, Swarm={"LocalNodeState": "active"})(GOOD)
    assert outcome(swarm, "live-restore").status is Status.PASS
    rotated = dataclasses.replace(with_info(LoggingDriver="json-file")(GOOD),
                                  daemon_config={"log-opts": {"max-size": "10m"}})
    assert outcome(rotated, "log-rotation").status is Status.PASS
    flags = dataclasses.replace(GOOD, daemon_config={},
                                daemon_args=("dockerd", "--icc=false", "--no-new-privileges",
                                             "--default-ulimit", "nofile=1024:4096"))
    for check_id in ("icc-disabled", "no-new-privileges-default", "default-ulimits"):
        assert outcome(flags, check_id).status is Status.PASS
    unix_only = dataclasses.replace(GOOD, daemon_args=("dockerd",))
    assert outcome(unix_only, "tcp-without-tls").status is Status.PASS
    no_tls = dataclasses.replace(GOOD, tls_files={})
    assert outcome(no_tls, "tls-server-key-file").status is Status.SKIP


def test_remote_engine_skips_host_file_checks() -> None:
    remote = HostAudit(info=HARDENED_INFO, local=False, endpoint="tcp://10.0.0.5:2376")
    results = {f.check.id: f.outcome.status for f in run_checks(remote)}
    for check_id in ("docker-socket-mode", "daemon-json-mode", "tls-server-key-file",
                     "tcp-without-tls"):
        assert results[check_id] is Status.SKIP
    assert results["engine-version"] is Status.PASS


def test_command_line_wins_over_daemon_json() -> None:
    audit = dataclasses.replace(GOOD, daemon_args=("dockerd", "--icc=true"),
                                daemon_config={"icc": False})
    assert option(audit, "icc") is True
    assert daemon_flag_values(("dockerd", "-H", "a", "--host=b", "--host", "c"), "host") == \
        ["a", "b", "c"]
    assert daemon_flag_values(("dockerd", "--live-restore"), "live-restore") == ["true"]


def test_exit_code_follows_fail_on() -> None:
    findings = run_checks(with_info(CgroupVersion="1")(GOOD))  # one low finding
    assert exit_code(findings, Severity.LOW) == 1
    assert exit_code(findings, Severity.MEDIUM) == 0
    assert exit_code(run_checks(GOOD), Severity.INFO) == 0


def test_every_output_format_renders() -> None:
    findings = run_checks(FAILING["userns-remap"](GOOD))
    assert DOCTOR_FORMATS.supported == (OutputFormat.TABLE, OutputFormat.JSON)
    for fmt in DOCTOR_FORMATS.supported:
        text = DOCTOR_FORMATS.formatter(fmt)(findings, GOOD)
        assert "userns-remap" in text
    report = json.loads(DOCTOR_FORMATS.formatter(OutputFormat.JSON)(findings, GOOD))
    assert report["schema"] == SCHEMA
    entry = next(c for c in report["checks"] if c["id"] == "userns-remap")
    assert entry["status"] == "fail" and entry["cis"] == ["2.9"] and "userns-remap" in entry["fix"]
    assert report["summary"]["fail"] == 1
    assert entry["severity"] == "medium"
    table = DOCTOR_FORMATS.formatter(OutputFormat.TABLE)(findings, GOOD)
    assert "fixes:" in table and "FAIL" in table


def test_docs_list_every_check() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "doctor.md").read_text()
    for check in CHECKS:
        assert f"| `{check.id}` |" in doc, f"docs/doctor.md lacks {check.id}"
