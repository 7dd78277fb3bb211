from __future__ import annotations

from saferun.model.facts import HostFacts
from saferun.model.manifest import Manifest
from saferun.plan.planner import build_plan
from saferun.render.engine_api import render_create_body

FACTS = HostFacts(security_options=frozenset({"seccomp", "apparmor"}), runtimes=frozenset({"runc"}))


def test_body_carries_the_same_settings_as_argv() -> None:
    m = Manifest.from_data({
        "app": {"name": "web", "image": "busybox:1", "command": ["true"], "env": {"A": "1"}},
        "capabilities": {"add": ["CHOWN"]},
        "network": {"ports": [{"container": 80}]},
    })
    body = render_create_body(build_plan(m, FACTS), env_from_files=("B=2",))
    host = body["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and host["CapAdd"] == ["CAP_CHOWN"]
    assert host["ReadonlyRootfs"] is True
    assert host["SecurityOpt"][0] == "no-new-privileges"
    assert host["SecurityOpt"][1] == "apparmor=saferun-web"
    assert host["SecurityOpt"][2].startswith('seccomp={')
    assert host["Memory"] == host["MemorySwap"] == 512 << 20
    assert host["PidsLimit"] == 256 and host["NanoCpus"] == 10**9
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 4096}]
    assert body["Env"] == ["B=2", "A=1"]
    assert body["User"] == "65534:65534"
    assert body["Cmd"] == ["true"]
    assert body["ExposedPorts"] == {"80/tcp": {}}
