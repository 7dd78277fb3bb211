"""ContainerSpec builders: a manifest, a docker run line and docker inspect agree on facts."""

from __future__ import annotations

import os
from pathlib import Path

from saferun.app.check import IDEAL_FACTS, check_docker_run, check_manifest
from saferun.inputs.dockerargs import parse_docker_run, split_command_line
from saferun.inputs.plain_docker import plain_docker_spec
from saferun.model.manifest import Manifest
from saferun.plan.planner import build_plan
from saferun.policy.spec import (
    ALL_CAPS,
    MountSpec,
    PortSpec,
    from_inspect,
    from_plan,
    with_resolved_sources,
)


def line(text: str):  # type: ignore[no-untyped-def]
    return plain_docker_spec(parse_docker_run(split_command_line(text)), cwd="/work")


def test_docker_run_line_uses_dockers_defaults() -> None:
    spec = line("docker run -p 8080:80 nginx:1.27")
    assert spec.user is None and not spec.read_only and spec.network == "bridge"
    assert spec.ports == (PortSpec("", 8080, 80),)
    assert "CAP_NET_RAW" in spec.effective_caps and spec.memory == 0


def test_docker_run_line_flags() -> None:
    spec = line("docker run --privileged --net=host -v ./data:/d:ro,rshared --mount type=bind,"
                "src=/srv,dst=/s,readonly --cap-add sys_admin --cap-drop ALL -u 1000 "
                "--security-opt seccomp:unconfined --security-opt no-new-privileges "
                "--restart on-failure:7 --memory 64m --pids-limit 10 --ulimit nofile=10:20 "
                "-p [::1]:53:53/udp img:1 sh")
    assert spec.privileged and spec.effective_caps == ALL_CAPS and spec.network == "host"
    assert spec.mounts == (MountSpec("bind", "/work/data", "/d", True, "rshared"),
                           MountSpec("bind", "/srv", "/s", True))
    assert spec.cap_add == frozenset({"CAP_SYS_ADMIN"}) and spec.user == "1000"
    assert spec.seccomp == "unconfined" and spec.no_new_privileges
    assert (spec.restart_policy, spec.restart_retries) == ("on-failure", 7)
    assert spec.memory == 64 << 20 and spec.pids_limit == 10
    assert spec.ports == (PortSpec("::1", 53, 53, "udp"),)


def test_manifest_spec_is_the_hardened_plan() -> None:
    manifest = Manifest.from_data({"app": {"name": "web", "image": "busybox:1"}})
    spec = from_plan(build_plan(manifest, IDEAL_FACTS))
    assert spec.effective_caps == frozenset() and spec.read_only and spec.no_new_privileges
    assert spec.user == "65534:65534" and spec.seccomp == "custom" and spec.seccomp_sha256


def test_inspect_spec() -> None:
    data = {
        "Config": {"Image": "nginx:1.27", "User": "", "Labels": {"a": "b"},
                   "Healthcheck": {"Test": ["NONE"]}},
        "HostConfig": {"Privileged": False, "CapAdd": ["CAP_NET_ADMIN"], "CapDrop": None,
                       "NetworkMode": "default", "PidMode": "", "IpcMode": "private",
                       "CgroupnsMode": "host", "Memory": 0, "PidsLimit": None,
                       "ReadonlyRootfs": False, "SecurityOpt": ["seccomp=unconfined"],
                       "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                       "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
                       "Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 2}], "Runtime": "runc"},
        "Mounts": [{"Type": "bind", "Source": "/etc", "Destination": "/e", "RW": True,
                    "Propagation": "rprivate"},
                   {"Type": "volume", "Name": "v", "Source": "/var/lib/docker/volumes/v/_data",
                    "Destination": "/v", "RW": False}],
    }
    spec = from_inspect(data)
    assert spec.user is None and spec.network == "bridge" and spec.ipc is None
    assert spec.cgroupns == "host" and spec.seccomp == "unconfined" and spec.healthcheck is False
    assert spec.mounts[0] == MountSpec("bind", "/etc", "/e", False, "rprivate")
    assert spec.mounts[1].source == "v" and spec.mounts[1].read_only
    assert spec.ports == (PortSpec("", 8080, 80),) and spec.restart_policy == "always"


def test_resolved_sources_keep_what_was_written() -> None:
    spec = line("docker run -v /srv/link:/x img:1")
    resolved = with_resolved_sources(spec, {"/srv/link": "/etc"})
    assert resolved.mounts[0] == MountSpec("bind", "/etc", "/x", False, None, "/srv/link")


def test_symlink_to_a_sensitive_path_is_caught_in_a_manifest(tmp_path: Path) -> None:
    (tmp_path / "data").symlink_to("/etc")
    manifest = tmp_path / "saferun.toml"
    manifest.write_text('[app]\nname = "web"\nimage = "busybox:1"\n\n[[filesystem.mounts]]\n'
                        'type = "bind"\nsource = "./data"\ntarget = "/data"\n')
    report = check_manifest(manifest)  # refused as run refuses it: the manifest is invalid
    assert report.error and "resolves to '/etc'" in report.error
    with manifest.open("a") as handle:
        handle.write('[allow]\nsensitive-host-mount = "the test reads the host config"\n')
    report = check_manifest(manifest)
    hits = [f for f in report.findings if f.rule == "sensitive-host-mount"]
    assert hits and "resolves to '/etc'" in hits[0].message


def test_symlink_to_the_docker_socket_is_caught_in_a_docker_run_line(tmp_path: Path) -> None:
    link = tmp_path / "engine"
    link.symlink_to("/var/run/docker.sock")
    report = check_docker_run(f"docker run -v {link}:/engine img:1", cwd=os.fspath(tmp_path))
    assert "docker-socket-mount" in {f.rule for f in report.findings}
    relative = check_docker_run("docker run -v ./engine:/engine img:1", cwd=os.fspath(tmp_path))
    assert "docker-socket-mount" in {f.rule for f in relative.findings}


def test_check_reuses_a_compiled_seccomp_outcome_without_changing_results(tmp_path: Path) -> None:
    from saferun.app.check import _SECCOMP_SEEN

    _SECCOMP_SEEN.clear()
    text = '[app]\nname = "a"\nimage = "busybox:1"\n\n[seccomp]\nallow = ["@clock"]\n'
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text(text)
    second.write_text(text.replace('"a"', '"b"'))
    one, two = check_manifest(first), check_manifest(second)
    assert len(_SECCOMP_SEEN) == 1
    assert [f.rule for f in one.findings] == [f.rule for f in two.findings]
    assert one.score == two.score
