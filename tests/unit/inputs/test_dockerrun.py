"""Command line -> the one Manifest model: mappings, hardened defaults, refusals, merging."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from saferun.errors import DockerArgsError, ManifestError, Refused, UnsupportedFlag, UsageError
from saferun.inputs.dockerargs import split_command_line
from saferun.inputs.dockerrun import (
    DropIn,
    base_for_image,
    build_manifest,
    check_resolved_mounts,
    from_docker_run,
    merge_document,
    parse_publish,
    parse_run_args,
)
from saferun.model.facts import HostFacts
from saferun.model.manifest import Manifest
from saferun.model.refusals import RULE_IDS
from saferun.model.strict import to_document
from saferun.plan.planner import build_plan
from saferun.render.argv import render_argv
from saferun.render.engine_api import render_create_body

CWD = "/srv/app"
FACTS = HostFacts(security_options=frozenset({"seccomp"}), runtimes=frozenset({"runc", "runsc"}))


def dropin(line: str) -> DropIn:
    return from_docker_run(parse_run_args(split_command_line("docker run " + line)), cwd=CWD)


def manifest(line: str, base: dict[str, Any] | None = None) -> Any:
    d = dropin(line)
    document = base if base is not None else base_for_image(str(d.image), d.options.name)
    return build_manifest(merge_document(document, d))


def argv(line: str) -> list[str]:
    d = dropin(line)
    m = build_manifest(merge_document(base_for_image(str(d.image), d.options.name), d))
    plan = build_plan(m, FACTS, d.options)
    return render_argv(plan, seccomp_path="/p.json" if plan.seccomp_profile else None)


def refused(line: str, base: dict[str, Any] | None = None) -> list[str]:
    with pytest.raises(Refused) as info:
        manifest(line, base)
    return info.value.rule_ids


def test_bare_command_line_gets_the_manifest_defaults() -> None:
    assert manifest("busybox:1") == Manifest.from_data(
        {"app": {"name": "busybox", "image": "busybox:1"}}
    )
    words = argv("-p 8080:80 nginx:1.27")
    assert words[words.index("--user") + 1] == "65534:65534"
    assert "--read-only" in words and words[words.index("--cap-drop") + 1] == "ALL"
    assert words[words.index("--publish") + 1] == "127.0.0.1:8080:80/tcp"


def test_session_options_and_command() -> None:
    d = dropin(
        "-it --rm=false --name web --cidfile /tmp/c.id --sig-proxy=false -a stdout "
        "img:1 sh -c 'x y'"
    )
    o = d.options
    assert (o.detach, o.interactive, o.tty, o.remove, o.name) == (False, True, True, False, "web")
    with pytest.raises(DockerArgsError, match="-a and -d"):
        dropin("-d -a stdout img:1")
    assert o.command == ("sh", "-c", "x y")
    assert o.client_flags == ("--attach", "stdout", "--cidfile", "/tmp/c.id", "--sig-proxy=false")
    assert "--cidfile" in argv("--cidfile /tmp/c.id img:1")


MAPPINGS: list[tuple[str, str, Any]] = [
    ("-e A=1 -eB=2 img:1", "app.env", {"A": "1", "B": "2"}),
    ("-e HOME img:1", "app.env_from_host", ["HOME"]),
    ("--env-file ./x.env img:1", "app.env_files", ["/srv/app/x.env"]),
    ("-l a=b -l c img:1", "app.labels", {"a": "b", "c": ""}),
    ("-u 1000:1000 img:1", "app.user", "1000:1000"),
    ("--entrypoint= img:1", "app.entrypoint", []),
    ("--entrypoint /bin/sh img:1", "app.entrypoint", ["/bin/sh"]),
    ("-w /work -h box --init --pull never img:1", "app.workdir", "/work"),
    ("--stop-signal SIGINT --stop-timeout 30 img:1", "app.stop_timeout", 30),
    ("--platform linux/arm64 img:1", "app.platform", "linux/arm64"),
    (
        "-m 256m --memory-swap 512m --cpus 0.5 --pids-limit 64 img:1",
        "resources.memory_swap",
        "512m",
    ),
    ("--shm-size 1g img:1", "resources.shm_size", "1g"),
    (
        "--ulimit nofile=100:200 --ulimit nproc=50 img:1",
        "resources.nproc",
        {"soft": 50, "hard": 50},
    ),
    ("--restart on-failure:3 img:1", "restart.max_retries", 3),
    ("--log-driver local --log-opt max-size=1m img:1", "logging.options", {"max-size": "1m"}),
    (
        "--network mynet --network-alias db --dns 1.1.1.1 --dns-search example.com img:1",
        "network.aliases",
        ["db"],
    ),
    ("--add-host=docker:93.184.216.34 img:1", "network.extra_hosts", ["docker:93.184.216.34"]),
    ("--add-host h=10.0.0.1 img:1", "network.extra_hosts", ["h:10.0.0.1"]),
    (
        "--tmpfs /run:rw,noexec,nosuid,size=65536k img:1",
        "filesystem.tmpfs",
        [{"target": "/tmp"}, {"target": "/run", "size": "65536k"}],
    ),
    (
        "--mount type=tmpfs,dst=/x,tmpfs-size=32m,tmpfs-mode=0700 img:1",
        "filesystem.tmpfs",
        [{"target": "/tmp"}, {"target": "/x", "size": "32m", "mode": "700"}],
    ),
    (
        "-v name:/d:ro,z img:1",
        "filesystem.mounts",
        [{"type": "volume", "source": "name", "target": "/d", "relabel": "z"}],
    ),
    (
        "-v ./data:/data img:1",
        "filesystem.mounts",
        [{"type": "bind", "source": "/srv/app/data", "target": "/data", "read_only": False,
          "create_source": True}],
    ),
    (
        "--mount type=bind,src=/data,dst=/data,readonly,bind-propagation=rslave img:1",
        "filesystem.mounts",
        [{"type": "bind", "source": "/data", "target": "/data", "propagation": "rslave"}],
    ),
    (
        "--cap-add net_bind_service --cap-add CAP_CHOWN img:1",
        "capabilities.add",
        ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
    ),
    (
        "--sysctl net.ipv4.ip_unprivileged_port_start=0 img:1",
        "security.sysctls",
        {"net.ipv4.ip_unprivileged_port_start": "0"},
    ),
    ("--runtime runsc img:1", "security.runtime", "gvisor"),
    (
        "--security-opt no-new-privileges:true --security-opt apparmor=myprof img:1",
        "apparmor.profile",
        "myprof",
    ),
    ("--ipc shareable img:1", "security.ipc", "shareable"),
    (
        "--tmpfs /run:exec,mode=1770,size=1m img:1",
        "filesystem.tmpfs",
        [{"target": "/tmp"}, {"target": "/run", "exec": True, "mode": "1770", "size": "1m"}],
    ),
    (
        "--health-cmd 'curl -f http://localhost/ || exit 1' --health-interval 5s img:1",
        "healthcheck.command",
        "curl -f http://localhost/ || exit 1",  # CMD-SHELL, as docker sends it
    ),
    (
        "--health-cmd 'pg_isready -U postgres' img:1",
        "healthcheck.command",
        "pg_isready -U postgres",
    ),
]


@pytest.mark.parametrize(("line", "path", "expected"), MAPPINGS)
def test_flag_maps_onto_the_manifest(line: str, path: str, expected: Any) -> None:
    value: Any = to_document(manifest(line), exclude_defaults=True)
    for key in path.split("."):
        value = value[key]
    assert value == expected


@pytest.mark.parametrize(
    ("value", "ports"),
    [
        ("80", [(80, None, "127.0.0.1", "tcp")]),
        ("8080:80", [(80, 8080, "127.0.0.1", "tcp")]),
        ("127.0.0.1:80:80/udp", [(80, 80, "127.0.0.1", "udp")]),
        ("0.0.0.0::53/udp", [(53, None, "0.0.0.0", "udp")]),
        ("[::1]:8080:80", [(80, 8080, "::1", "tcp")]),
        (
            "8000-8002:9000-9002",
            [
                (9000, 8000, "127.0.0.1", "tcp"),
                (9001, 8001, "127.0.0.1", "tcp"),
                (9002, 8002, "127.0.0.1", "tcp"),
            ],
        ),
    ],
)
def test_publish_grammar(value: str, ports: list[tuple[int, int | None, str, str]]) -> None:
    got = [
        (p["container"], p.get("host"), p["host_ip"], p["protocol"]) for p in parse_publish(value)
    ]
    assert got == ports


def test_port_range_of_eleven() -> None:
    assert len(manifest("-p 8000-8010:8000-8010 img:1").network.ports) == 11


REFUSALS = [
    ("--privileged img:1", "privileged"),
    ("--cap-add ALL img:1", "cap-add-all"),
    ("--cap-add SYS_ADMIN img:1", "cap-not-allowed"),
    ("--pid host img:1", "host-pid"),
    ("--ipc=host img:1", "host-ipc"),
    ("--uts host img:1", "host-uts"),
    ("--net=host img:1", "host-network"),
    ("--userns host img:1", "host-userns"),
    ("--cgroupns host img:1", "host-cgroupns"),
    ("--security-opt seccomp=unconfined img:1", "seccomp-unconfined"),
    ("--security-opt apparmor=unconfined img:1", "apparmor-unconfined"),
    ("--security-opt systempaths=unconfined img:1", "systempaths-unconfined"),
    ("--security-opt label:disable img:1", "label-disable"),
    ("-v /var/run/docker.sock:/var/run/docker.sock img:1", "docker-socket-mount"),
    (
        "--mount type=bind,src=/run/containerd/containerd.sock,dst=/c.sock img:1",
        "docker-socket-mount",
    ),
    ("--use-api-socket img:1", "docker-socket-mount"),
    ("-v /:/host:ro img:1", "sensitive-host-mount"),
    ("-v /etc:/host-etc img:1", "sensitive-host-mount"),
    ("-v /var:/var-host img:1", "sensitive-host-mount"),
    ("-v /proc:/p:ro img:1", "sensitive-host-mount"),
    ("-v /var/lib/docker/volumes:/v img:1", "sensitive-host-mount"),
    ("--device /dev/fuse img:1", "device"),
    ("--device-cgroup-rule 'c 189:* rmw' img:1", "device"),
    ("--gpus all img:1", "gpus"),
    ("--sysctl kernel.msgmax=65536 img:1", "unsafe-sysctl"),
    ("-v /srv/x:/x:rshared img:1", "shared-propagation"),
    ("-u 0 img:1", "run-as-root"),
    ("-u root:root img:1", "run-as-root"),
    ("--read-only=false img:1", "writable-root"),
    ("--oom-score-adj -500 img:1", "oom-protected"),
]


@pytest.mark.parametrize(("line", "rule"), REFUSALS)
def test_dangerous_requests_are_refused_by_rule(line: str, rule: str) -> None:
    assert rule in refused(line)


def test_every_rule_has_a_refusal_case() -> None:
    assert {rule for _, rule in REFUSALS} == set(RULE_IDS)


@pytest.mark.parametrize(("line", "rule"), REFUSALS)
def test_each_refusal_can_be_allowed_with_a_reason_kept_as_label(line: str, rule: str) -> None:
    if rule == "docker-socket-mount" and "--use-api-socket" in line:
        with pytest.raises(UnsupportedFlag):  # allowed, but still has no manifest field
            manifest(f"--allow {rule}='reviewed in SEC-1234' {line}")
        return
    m = manifest(f"--allow {rule}='reviewed in SEC-1234' {line}")
    assert m.allowed(rule)
    plan = build_plan(m, FACTS)
    assert dict(plan.labels)["io.saferun.exceptions"] == f'{{"{rule}": "reviewed in SEC-1234"}}'


def test_allowed_requests_reach_argv_and_api_body() -> None:
    words = argv(
        "--allow privileged='dind needs it, SEC-1' --allow device='fuse for sshfs, SEC-2' "
        "--allow host-pid='htop of the host, SEC-3' --allow unsafe-sysctl='router, SEC-4' "
        "--privileged --device /dev/fuse --pid host --sysctl net.ipv4.ip_forward=1 img:1"
    )
    for flag, value in (
        ("--device", "/dev/fuse"),
        ("--pid", "host"),
        ("--sysctl", "net.ipv4.ip_forward=1"),
    ):
        assert words[words.index(flag) + 1] == value
    assert "--privileged" in words
    d = dropin("--allow gpus='ml box, SEC-5' --gpus all --shm-size 1g --add-host a:10.0.0.1 img:1")
    plan = build_plan(build_manifest(merge_document(base_for_image("img:1", None), d)), FACTS)
    body = render_create_body(plan)
    assert body["HostConfig"]["DeviceRequests"][0]["Count"] == -1
    assert body["HostConfig"]["ShmSize"] == 1 << 30
    assert body["HostConfig"]["ExtraHosts"] == ["a:10.0.0.1"]


def test_allow_needs_a_known_rule_and_a_reason() -> None:
    with pytest.raises(UsageError, match="unknown rule"):
        dropin("--allow nope=because-of-reasons img:1")
    with pytest.raises(UsageError, match="written reason"):
        dropin("--allow privileged img:1")
    with pytest.raises(ManifestError, match="at least 10"):
        manifest("--allow privileged=short --privileged img:1")


def test_refusal_message_names_rule_flag_and_both_ways_to_allow() -> None:
    with pytest.raises(Refused) as info:
        manifest("--privileged img:1")
    text = info.value.render()
    assert "refused by rule 'privileged'" in text and "--privileged" in text
    assert '--allow privileged="<reason>"' in text and '[allow] privileged = "<reason>"' in text
    assert info.value.run_exit_code == 125


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("--cpu-count 2 img:1", "--cpu-count is not supported"),
        ("--kernel-memory 64m img:1", "--kernel-memory is not supported"),
        ("--volume-driver local img:1", "--volume-driver is not supported"),
        ("--security-opt seccomp=/p.json img:1", "generates the seccomp profile"),
        ("-p 8000-8010:80 img:1", "host port range"),
    ],
)
def test_flags_without_a_home_are_refused_by_name(line: str, needle: str) -> None:
    with pytest.raises((UsageError, ManifestError)) as info:
        manifest(line)
    assert needle in info.value.render()


def test_user_names_pass_through_but_root_is_refused() -> None:
    assert manifest("-u postgres img:1").app.user == "postgres"
    assert manifest("-u www-data:www-data img:1").app.user == "www-data:www-data"
    assert manifest("-u 1000:1000 img:1").app.user == "1000:1000"
    assert refused("-u root img:1") == ["run-as-root"]
    assert refused("-u 0:0 img:1") == ["run-as-root"]


def test_security_opt_errors() -> None:
    with pytest.raises(UsageError, match="always"):
        dropin("--security-opt no-new-privileges=false img:1")
    with pytest.raises(DockerArgsError, match="invalid --security-opt"):
        dropin("--security-opt bogus img:1")


MANIFEST_BASE = {
    "app": {"name": "web", "image": "nginx:1.27", "env": {"A": "1"}},
    "capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN"]},
    "resources": {"memory": "256m"},
    "filesystem": {"mounts": [{"type": "volume", "source": "data", "target": "/data"}]},
}


def test_cap_add_all_then_drop_one() -> None:
    reason = "--allow cap-not-allowed='legacy appliance, SEC-3' "
    caps = manifest(reason + "--cap-add=ALL --cap-drop=MKNOD img:1").capabilities.add
    assert "CAP_MKNOD" not in caps and "CAP_SYS_ADMIN" in caps and len(caps) == 40


def test_read_only_flag_keeps_the_default() -> None:
    assert manifest("--read-only img:1").filesystem.read_only is True


def test_merge_flags_tighten_freely() -> None:
    m = manifest(
        "--cap-drop CHOWN -m 128m -e B=2 --read-only -v cache:/data:ro img:2", base=MANIFEST_BASE
    )
    assert m.capabilities.add == ["CAP_NET_BIND_SERVICE"]
    assert m.resources.memory == "128m"
    assert m.app.env == {"A": "1", "B": "2"} and m.app.image == "img:2" and m.app.name == "web"
    assert [(x.source, x.read_only) for x in m.filesystem.mounts] == [("cache", True)]
    assert manifest("--cap-drop ALL img:1", base=MANIFEST_BASE).capabilities.add == []


def test_merge_loosening_needs_an_allow() -> None:
    assert refused("--network host img:1", base=MANIFEST_BASE) == ["host-network"]
    assert refused("-u 0 img:1", base=MANIFEST_BASE) == ["run-as-root"]
    base = {**MANIFEST_BASE, "allow": {"host-network": "metrics scraper, reviewed SEC-9"}}
    assert manifest("--network host img:1", base=base).network.mode == "host"


def test_flag_mount_replaces_the_default_tmp_tmpfs() -> None:
    m = manifest("-v scratch:/tmp img:1")
    assert m.filesystem.tmpfs == [] and m.filesystem.mounts[0].target == "/tmp"


def test_symlinked_source_is_judged_by_its_real_path(tmp_path: Path) -> None:
    link = tmp_path / "data"
    link.symlink_to("/etc")
    m = manifest(f"-v {link}:/data:ro img:1")  # looks harmless as written
    with pytest.raises(Refused) as info:
        check_resolved_mounts(m, [(str(link), os.path.realpath(link))])
    assert (
        info.value.rule_ids == ["sensitive-host-mount"]
        and "resolves to '/etc'" in info.value.render()
    )
    harmless = tmp_path / "real"
    harmless.mkdir()
    check_resolved_mounts(m, [(str(link), str(harmless))])
    allowed = manifest(
        f"--allow sensitive-host-mount='read host config, SEC-7' -v {link}:/data:ro img:1"
    )
    check_resolved_mounts(allowed, [(str(link), "/etc")])


def test_timezone_files_are_allowed_read_only() -> None:
    assert manifest("-v /etc/localtime:/etc/localtime:ro img:1").filesystem.mounts
    assert refused("-v /etc/localtime:/etc/localtime img:1") == ["sensitive-host-mount"]


def test_expose_and_storage_quota_map_to_manifest_fields() -> None:
    args = argv("--expose 80 --expose 9000-9001/udp --storage-opt size=1G busybox:1")
    assert [args[i + 1] for i, a in enumerate(args) if a == "--expose"] == ["80", "9000-9001/udp"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--storage-opt"] == [
        f"size={1 << 30}"]
    m = manifest("--expose 80 --expose 9000-9001/udp busybox:1")
    plan = build_plan(m, HostFacts(runtimes=frozenset({"runc"})))
    body = render_create_body(plan)
    assert set(body["ExposedPorts"]) == {"80/tcp", "9000/udp", "9001/udp"}


def test_storage_opt_other_than_size_is_refused_by_name() -> None:
    from saferun.errors import UnsupportedFlag

    with pytest.raises(UnsupportedFlag, match="only size"):
        dropin("--storage-opt dm.basesize=20G busybox:1")


def test_apparmor_docker_default_keeps_the_generated_profile_and_says_so() -> None:
    result = dropin("--security-opt apparmor=docker-default busybox:1")
    assert any("docker-default" in note for note in result.notes)
    assert "apparmor" not in result.overrides  # the generated profile stays in force
