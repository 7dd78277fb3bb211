"""Issue 15: the docker run flags saferun refused before, now honoured with docker's meaning.

Each flag lands in a manifest field, is planned, rendered in the argv and the API body, and
`saferun init` writes it back (the manifest reads back to the same model).
"""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from saferun.errors import DockerArgsError, Refused, RequirementUnmet
from saferun.inputs.dockerargs import split_command_line
from saferun.inputs.dockerrun import (
    base_for_image,
    build_manifest,
    check_shared_sources,
    from_docker_run,
    merge_document,
    parse_run_args,
)
from saferun.inputs.manifest_writer import render_manifest
from saferun.model.facts import HostFacts
from saferun.model.manifest import Manifest
from saferun.model.strict import to_document
from saferun.plan.planner import LaunchOptions, build_plan
from saferun.render.argv import render_argv
from saferun.render.engine_api import render_create_body

NEW = HostFacts(server_version="27.3.1", security_options=frozenset({"seccomp"}))
OLD = HostFacts(server_version="20.10.24+dfsg1", security_options=frozenset({"seccomp"}))


def manifest(line: str) -> Any:
    parsed = parse_run_args(split_command_line(f"docker run {line}"))
    dropin = from_docker_run(parsed, cwd="/srv/app")
    return build_manifest(merge_document(base_for_image(parsed.image or "img:1", None), dropin))


def rendered(line: str, facts: HostFacts = NEW) -> tuple[list[str], dict[str, Any]]:
    plan = build_plan(manifest(line), facts)
    return render_argv(plan, seccomp_path="/p.json"), render_create_body(plan)


CASES: list[tuple[str, str, Any, list[str], str, Any]] = [
    # line, manifest path, value, argv words, body path, body value
    ("-u daemon img:1", "app.user", "daemon", ["--user", "daemon"], "User", "daemon"),
    ("--group-add audio --group-add 777 img:1", "app.group_add", ["audio", "777"],
     ["--group-add", "audio"], "HostConfig.GroupAdd", ["audio", "777"]),
    ("--domainname example.org img:1", "app.domainname", "example.org",
     ["--domainname", "example.org"], "Domainname", "example.org"),
    ("--annotation a.b=c img:1", "app.annotations", {"a.b": "c"}, ["--annotation", "a.b=c"],
     "HostConfig.Annotations", {"a.b": "c"}),
    ("-v /data img:1", "filesystem.mounts", [{"type": "volume", "target": "/data",
                                               "read_only": False}],
     ["--mount", "type=volume,target=/data"], "HostConfig.Mounts",
     [{"Type": "volume", "Target": "/data", "ReadOnly": False}]),
    ("--mount type=volume,target=/data,volume-nocopy img:1", "filesystem.mounts.0.nocopy", True,
     ["--mount", "type=volume,target=/data,volume-nocopy"], "HostConfig.Mounts.0.VolumeOptions",
     {"NoCopy": True}),
    ("--volumes-from db:ro img:1", "filesystem.volumes_from", ["db:ro"],
     ["--volumes-from", "db:ro"], "HostConfig.VolumesFrom", ["db:ro"]),
    ("--link db:database img:1", "network.links", ["db:database"], ["--link", "db:database"],
     "HostConfig.Links", ["db:database"]),
    ("-P img:1", "network.publish_all", True, ["--publish-all"], "HostConfig.PublishAllPorts",
     True),
    ("--network container:db img:1", "network.mode", "container:db",
     ["--network", "container:db"], "HostConfig.NetworkMode", "container:db"),
    ("--pid container:db img:1", "security.pid", "container:db", ["--pid", "container:db"],
     "HostConfig.PidMode", "container:db"),
    ("--ipc container:db img:1", "security.ipc", "container:db", ["--ipc", "container:db"],
     "HostConfig.IpcMode", "container:db"),
    ("--network n1 --ip 10.1.0.5 img:1", "network.ip", "10.1.0.5", ["--ip", "10.1.0.5"],
     "NetworkingConfig.EndpointsConfig.n1.IPAMConfig.IPv4Address", "10.1.0.5"),
    ("--no-healthcheck img:1", "healthcheck.disable", True, ["--no-healthcheck"],
     "Healthcheck.Test", ["NONE"]),
    ("--ulimit memlock=-1:-1 img:1", "resources.ulimits.memlock", {"soft": -1, "hard": -1},
     ["--ulimit", "memlock=-1:-1"], "HostConfig.Ulimits.1", {"Name": "memlock", "Soft": -1,
                                                               "Hard": -1}),
    ("--cpu-shares 512 img:1", "resources.cpu_shares", 512, ["--cpu-shares", "512"],
     "HostConfig.CpuShares", 512),
    ("--cpuset-cpus 0-2 img:1", "resources.cpuset_cpus", "0-2", ["--cpuset-cpus", "0-2"],
     "HostConfig.CpusetCpus", "0-2"),
    ("--cpu-period 50000 --cpu-quota 25000 img:1", "resources.cpu_quota", 25000,
     ["--cpu-quota", "25000"], "HostConfig.CpuQuota", 25000),
    ("--blkio-weight 300 img:1", "resources.blkio_weight", 300, ["--blkio-weight", "300"],
     "HostConfig.BlkioWeight", 300),
    ("--device-read-bps /dev/sda:1mb img:1", "resources.device_read_bps", ["/dev/sda:1mb"],
     ["--device-read-bps", "/dev/sda:1mb"], "HostConfig.BlkioDeviceReadBps",
     [{"Path": "/dev/sda", "Rate": 1048576}]),
    ("--device-write-iops /dev/sda:1000 img:1", "resources.device_write_iops",
     ["/dev/sda:1000"], ["--device-write-iops", "/dev/sda:1000"],
     "HostConfig.BlkioDeviceWriteIOps", [{"Path": "/dev/sda", "Rate": 1000}]),
    ("-m 500M --memory-reservation 200M img:1", "resources.memory_reservation", "200M",
     ["--memory-reservation", "200m"], "HostConfig.MemoryReservation", 200 * 2**20),
    ("--memory-swappiness 0 img:1", "resources.memory_swappiness", 0,
     ["--memory-swappiness", "0"], "HostConfig.MemorySwappiness", 0),
    ("--oom-kill-disable img:1", "resources.oom_kill_disable", True, ["--oom-kill-disable"],
     "HostConfig.OomKillDisable", True),
    ("--oom-score-adj 500 img:1", "resources.oom_score_adj", 500, ["--oom-score-adj", "500"],
     "HostConfig.OomScoreAdj", 500),
    ("--cgroup-parent /batch img:1", "resources.cgroup_parent", "/batch",
     ["--cgroup-parent", "/batch"], "HostConfig.CgroupParent", "/batch"),
    ("--restart always img:1", "restart.policy", "always", ["--restart", "always"],
     "HostConfig.RestartPolicy.Name", "always"),
]


def _get(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


@pytest.mark.parametrize(("line", "path", "value", "words", "body_path", "body_value"), CASES)
def test_flag_is_honoured(line: str, path: str, value: Any, words: list[str], body_path: str,
                          body_value: Any) -> None:
    m = manifest(line)
    dumped = to_document(m, exclude_defaults=True)
    assert _get(dumped, path) == value
    argv, body = rendered(line)
    assert any(argv[i:i + len(words)] == words for i in range(len(argv))), argv
    assert _get(body, body_path) == body_value


@pytest.mark.parametrize("line", [c[0] for c in CASES])
def test_init_writes_it_back(line: str) -> None:
    m = manifest(line)
    text = render_manifest(m, origin=f"docker run {line}")
    assert Manifest.from_data(tomllib.loads(text)) == m


def test_several_networks_need_api_1_44_as_docker_run_does() -> None:
    line = "--network n1 --network n2 img:1"
    argv, body = rendered(line)
    assert argv[argv.index("--network") + 1:][:3] == ["n1", "--network", "name=n2"]
    assert sorted(body["NetworkingConfig"]["EndpointsConfig"]) == ["n1", "n2"]
    with pytest.raises(RequirementUnmet, match="Container cannot be connected to network "
                                               "endpoints: n1, n2"):
        rendered(line, OLD)
    for old_only in ("--annotation a=b img:1", "--mac-address 02:42:ac:11:00:99 img:1",
                     "--health-start-interval 1s --health-cmd true img:1"):
        with pytest.raises(RequirementUnmet, match="requires API version"):
            rendered(old_only, OLD)


def test_cpu_period_alone_keeps_the_cpu_limit() -> None:
    argv, body = rendered("--cpu-period 50000 img:1")
    assert "--cpus" not in argv and body["HostConfig"]["NanoCpus"] is None
    assert body["HostConfig"]["CpuQuota"] == 50000  # 1 CPU of the 50ms period
    with pytest.raises(Exception, match="cannot both be set"):
        manifest("--cpus 2 --cpu-quota 25000 img:1")


def test_memory_grows_to_a_larger_reservation() -> None:
    assert manifest("--memory-reservation 1G img:1").resources.memory_bytes == 2**30


def test_negative_oom_score_is_refused_and_root_names_too() -> None:
    for line, rule in (("--oom-score-adj -500 img:1", "oom-protected"),
                       ("-u root img:1", "run-as-root")):
        with pytest.raises(Refused) as info:
            manifest(line)
        assert rule in info.value.rule_ids


def test_warnings_are_rules() -> None:
    m = manifest("-P --restart unless-stopped --cgroup-parent /x --ulimit core=-1 img")
    assert [w.rule for w in m.warnings()] == [
        "restart-always", "image-tag-latest", "port-host-ip", "cgroup-parent",
        "ulimit-override"]
    allowed = manifest("--allow restart-always='needed by the on-call runbook' "
                       "--restart always img:1")
    assert allowed.warnings() == []


def test_docker_conflicts_are_docker_errors() -> None:
    for line, text in (("--no-healthcheck --health-cmd true img:1", "conflicts"),
                       ("--network container:db -p 80:80 img:1", "port publishing"),
                       ("--network host --network n1 img:1", "non-user-defined"),
                       ("--ulimit bogus=1 img:1", "invalid ulimit type")):
        with pytest.raises(Exception, match=text):
            manifest(line)
    with pytest.raises(DockerArgsError, match="--pid"):
        manifest("--pid bogus img:1")


def test_shared_containers_are_judged_by_the_mount_and_namespace_rules() -> None:
    m = manifest("--volumes-from src --network container:net --pid container:net img:1")
    safe = {"src": {"Mounts": [{"Type": "bind", "Source": "/srv/data", "RW": True,
                                "Destination": "/data"}]},
            "net": {"HostConfig": {"NetworkMode": "bridge", "PidMode": ""}}}
    check_shared_sources(m, safe)
    bad = {"src": {"Mounts": [{"Type": "bind", "Source": "/var/run/docker.sock", "RW": True,
                               "Destination": "/s"}]},
           "net": {"HostConfig": {"NetworkMode": "host", "PidMode": "host"}}}
    with pytest.raises(Refused) as info:
        check_shared_sources(m, bad)
    assert set(info.value.rule_ids) == {"docker-socket-mount", "host-network", "host-pid"}


def test_app_name_names_the_container() -> None:
    m = manifest("img:1")
    assert build_plan(m, NEW).container_name == "img"
    assert build_plan(m, NEW, LaunchOptions(name="other")).container_name == "other"
    assert build_plan(m, NEW, LaunchOptions(use_app_name=False)).container_name is None
