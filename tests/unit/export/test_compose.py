"""Compose export: the service carries every protection of `saferun run`."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from saferun.errors import ExportError
from saferun.export import ExportInput, Target, export
from saferun.export.common import EXPORT_FACTS
from saferun.model.manifest import Manifest
from saferun.plan.planner import build_plan
from saferun.profiles.apparmor import render_apparmor


def manifest(**sections: Any) -> Manifest:
    app = {"name": "web", "image": "busybox:1", **sections.pop("app", {})}
    return Manifest.from_data({"app": app, **sections})


def service(**sections: Any) -> dict[str, Any]:
    result = export([ExportInput(manifest(**sections))], Target.COMPOSE)
    return dict(yaml.safe_load(result.main.content)["services"]["web"])


def test_default_service_is_hardened() -> None:
    svc = service()
    assert svc["user"] == "65534:65534"
    assert svc["cap_drop"] == ["ALL"] and "cap_add" not in svc
    assert svc["read_only"] is True
    assert svc["tmpfs"] == ["/tmp:rw,noexec,nosuid,nodev,size=67108864,mode=1777"]
    assert svc["security_opt"] == ["no-new-privileges:true", "apparmor=saferun-web",
                                   "seccomp=./web.seccomp.json"]
    assert (svc["mem_limit"], svc["memswap_limit"], svc["cpus"], svc["pids_limit"]) == (
        "512m", "512m", 1.0, 256)
    assert svc["ulimits"] == {"nofile": {"soft": 1024, "hard": 4096}}
    assert svc["runtime"] == "runc" and svc["restart"] == "no"
    assert svc["logging"] == {"driver": "json-file",
                              "options": {"max-file": "3", "max-size": "10m"}}


def test_profiles_are_the_ones_saferun_run_uses() -> None:
    m = manifest(capabilities={"add": ["NET_BIND_SERVICE"]})
    result = export([ExportInput(m)], Target.COMPOSE)
    files = {f.path: f.content for f in result.files}
    profile = build_plan(m, EXPORT_FACTS).seccomp_profile
    assert profile and files["web.seccomp.json"].rstrip("\n") == profile.rstrip("\n")
    assert files["web.apparmor"] == render_apparmor(m, profile_name="saferun-web")


def test_ports_bind_as_in_the_manifest() -> None:
    svc = service(network={"ports": [{"container": 80, "host": 8080},
                                     {"container": 53, "protocol": "udp"},
                                     {"container": 443, "host": 8443, "host_ip": "::1"},
                                     {"container": 9, "host": 9, "host_ip": "0.0.0.0"}]})
    assert svc["ports"] == ["127.0.0.1:8080:80/tcp", "127.0.0.1::53/udp", "[::1]:8443:443/tcp",
                            "0.0.0.0:9:9/tcp"]


def test_dollar_signs_survive_compose_interpolation() -> None:
    svc = service(app={"command": ["sh", "-c", "echo $HOME"], "env": {"P": "$5"}})
    assert svc["command"] == ["sh", "-c", "echo $$HOME"]
    assert svc["environment"] == {"P": "$$5"}


def test_health_restart_and_weakenings() -> None:
    svc = service(healthcheck={"command": ["wget", "-q", "http://x/"], "interval": "90s",
                               "start_period": "1500ms"},
                  restart={"policy": "on-failure", "max_retries": 2})
    # Unset timings stay the engine's defaults, as docker run --health-cmd leaves them.
    assert svc["healthcheck"] == {"test": ["CMD", "wget", "-q", "http://x/"], "interval": "1m30s",
                                  "start_period": "1s500ms"}
    assert svc["restart"] == "on-failure:2"
    weak = service(app={"user": "0"}, seccomp={"profile": "unconfined"}, apparmor={"mode": "off"},
                   exceptions={"run_as_root": "needed by this test", "seccomp_unconfined":
                               "needed by this test", "apparmor_off": "needed by this test"})
    assert weak["security_opt"] == ["no-new-privileges:true", "apparmor=unconfined",
                                    "seccomp=unconfined"]
    assert weak["user"] == "0"


def test_runtime_userns_and_notes() -> None:
    result = export([ExportInput(manifest(security={"runtime": "gvisor", "userns": "required"}))],
                    Target.COMPOSE)
    assert yaml.safe_load(result.main.content)["services"]["web"]["runtime"] == "runsc"
    assert any(n.key == "security.userns" for n in result.notes)
    for note in result.notes:
        assert note.render() in result.main.content


def test_several_manifests_give_one_file_and_names_must_differ() -> None:
    apps = [manifest(app={"name": n}) for n in ("a", "b")]
    result = export([ExportInput(m) for m in apps], Target.COMPOSE)
    assert list(yaml.safe_load(result.main.content)["services"]) == ["a", "b"]
    assert [f.path for f in result.files] == ["compose.yaml", "a.apparmor", "a.seccomp.json",
                                              "b.apparmor", "b.seccomp.json"]
    with pytest.raises(ExportError, match="app.name 'a'"):
        export([ExportInput(apps[0]), ExportInput(apps[0])], Target.COMPOSE)


def test_volumes_and_networks_are_declared() -> None:
    doc = yaml.safe_load(export([ExportInput(manifest(
        network={"mode": "backend"},
        filesystem={"mounts": [{"type": "volume", "source": "data", "target": "/data"},
                               {"type": "bind", "source": "conf", "target": "/conf"}]}))],
        Target.COMPOSE).main.content)
    assert doc["volumes"] == {"data": {"name": "data"}}
    assert doc["networks"] == {"backend": {"name": "backend", "external": True}}
    assert doc["services"]["web"]["volumes"][1] == {"type": "bind", "source": "./conf",
                                                   "target": "/conf", "read_only": True}
