from __future__ import annotations

import csv
from typing import Any

import pytest

from saferun.model.facts import HostFacts
from saferun.model.manifest import Manifest
from saferun.plan.planner import LaunchOptions, build_plan
from saferun.render.argv import render_argv, shell_quote

FACTS = HostFacts(security_options=frozenset({"seccomp", "apparmor"}), runtimes=frozenset({"runc"}))


def argv(document: dict[str, Any], **options: Any) -> list[str]:
    document = {"app": {"name": "web", "image": "busybox:1", **document.pop("app", {})}, **document}
    plan = build_plan(Manifest.from_data(document), FACTS, LaunchOptions(**options))
    return render_argv(plan, seccomp_path="/profiles/app.json")


def pairs(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_default_argv_is_hardened() -> None:
    args = argv({})
    assert args[:2] == ["docker", "run"]
    assert pairs(args, "--cap-drop") == ["ALL"]
    assert pairs(args, "--user") == ["65534:65534"]
    assert "--read-only" in args
    assert pairs(args, "--security-opt") == [
        "no-new-privileges",
        "apparmor=saferun-web",
        "seccomp=/profiles/app.json",
    ]
    assert pairs(args, "--memory") == ["512m"] and pairs(args, "--memory-swap") == ["512m"]
    assert pairs(args, "--pids-limit") == ["256"]
    assert pairs(args, "--ulimit") == ["nofile=1024:4096"]
    assert args[-1] == "busybox:1"


def test_user_strings_stay_single_arguments() -> None:
    args = argv(
        {"app": {"command": ["sh", "-c", "echo $HOME; rm -rf /"], "env": {"A": "--privileged"}}}
    )
    assert args[-3:] == ["sh", "-c", "echo $HOME; rm -rf /"]
    assert pairs(args, "--env") == ["A=--privileged"]
    assert "--privileged" not in args


def test_ports_mounts_caps_restart_health() -> None:
    args = argv(
        {
            "capabilities": {"add": ["NET_BIND_SERVICE"]},
            "network": {
                "ports": [
                    {"container": 80, "host": 8080},
                    {"container": 53, "protocol": "udp", "host_ip": "::1"},
                ]
            },
            "filesystem": {
                "mounts": [
                    {"type": "volume", "source": "data", "target": "/data", "read_only": False}
                ]
            },
            "restart": {"policy": "on-failure", "max_retries": 2},
            "healthcheck": {"command": ["wget", "-q", "http://127.0.0.1/"], "interval": "5s"},
        }
    )
    assert pairs(args, "--cap-add") == ["CAP_NET_BIND_SERVICE"]
    assert pairs(args, "--publish") == ["127.0.0.1:8080:80/tcp", "[::1]::53/udp"]
    assert pairs(args, "--mount") == ["type=volume,source=data,target=/data"]
    assert pairs(args, "--restart") == ["on-failure:2"]
    assert pairs(args, "--health-cmd") == ["wget -q http://127.0.0.1/"]
    assert pairs(args, "--health-interval") == ["5000000000ns"]


def test_entrypoint_splits_into_flag_and_command() -> None:
    args = argv({"app": {"entrypoint": ["/bin/app", "--serve"], "command": ["-v"]}})
    assert pairs(args, "--entrypoint") == ["/bin/app"]
    assert args[-3:] == ["busybox:1", "--serve", "-v"]


def test_session_flags() -> None:
    args = argv({}, detach=True, remove=True, interactive=True, tty=True, name="web-1")
    assert {"--detach", "--rm", "--interactive", "--tty"} <= set(args)
    assert pairs(args, "--name") == ["web-1"]


def test_seccomp_profile_needs_a_path() -> None:
    import msgspec

    plan = msgspec.structs.replace(
        build_plan(Manifest.from_data({"app": {"name": "a", "image": "b"}}), FACTS),
        seccomp_profile="{}",
    )
    with pytest.raises(ValueError):
        render_argv(plan)
    assert "seccomp=/x.json" in render_argv(plan, seccomp_path="/x.json")


def test_shell_quote_round_trips() -> None:
    import shlex

    args = argv({"app": {"command": ["sh", "-c", "echo 'a b' \"$X\""]}})
    assert shlex.split(shell_quote(args)) == args


def test_a_driver_option_with_a_comma_stays_one_csv_field() -> None:
    """docker reads `--network name=...,driver-opt=...` as CSV: a value with a comma (or a
    quote) is quoted, or docker would split it into a field it does not know."""
    sysctls = 'net.ipv4.conf.IFNAME.log_martians=1,net.ipv4.conf.IFNAME.forwarding="0"'
    args = argv({"network": {"mode": "front", "driver_opts": {"com.docker.sysctls": sysctls},
                             "extra_networks": [{"name": "back", "driver_opts": {"k": "a,b"}}]}})
    assert pairs(args, "--network") == [
        'name=front,"driver-opt=com.docker.sysctls=net.ipv4.conf.IFNAME.log_martians=1,'
        'net.ipv4.conf.IFNAME.forwarding=""0"""',
        'name=back,"driver-opt=k=a,b"',
    ]
    fields = next(csv.reader([pairs(args, "--network")[0]]))
    assert fields == ["name=front", f"driver-opt=com.docker.sysctls={sysctls}"]
