from __future__ import annotations

from saferun.model.manifest import NetworkSection
from saferun.render.engine_api import render_create_body
from saferun.render.sandbox import sandbox_argv, sandbox_plan, service_network


def _plan():  # type: ignore[no-untyped-def]
    network = NetworkSection.from_data(dict(ports=[{"container": 80, "host": 8080}],
                                            aliases=["www"], dns=["192.0.2.53"], egress="none"))
    return sandbox_plan(stack="shop", service="web", image="busybox:1.36", network=network,
                        hostname=None, labels={"io.saferun.network-egress": "none"})


def test_sandbox_is_hardened_and_owns_the_endpoint() -> None:
    argv = sandbox_argv(_plan())
    joined = " ".join(argv)
    for flag in ("--cap-drop ALL", "--security-opt no-new-privileges", "--read-only",
                 "--user 65534:65534", "--network saferun-shop", "--network-alias web",
                 "--network-alias www", "--publish 127.0.0.1:8080:80/tcp", "--dns 192.0.2.53",
                 "--name shop-web-sandbox", "--label io.saferun.stack=shop",
                 "--label io.saferun.stack-role=sandbox", "--memory 16m", "--pids-limit 4",
                 "--restart no", "--log-driver none", "--no-healthcheck", "--hostname web"):
        assert flag in joined, flag
    assert argv[:2] == ["docker", "create"]
    assert argv[-4:] == ["--entrypoint", "sleep", "busybox:1.36", "2147483647"]
    assert "NET_ADMIN" not in joined and "--detach" not in argv


def test_the_api_body_says_the_same() -> None:
    body = render_create_body(_plan())
    host = body["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert host["ReadonlyRootfs"] and host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Memory"] == 16 << 20 and host["PidsLimit"] == 4
    assert host["NetworkMode"] == "saferun-shop" and host["Dns"] == ["192.0.2.53"]
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
    assert host["RestartPolicy"]["Name"] == "no" and host["LogConfig"]["Type"] == "none"
    assert body["NetworkingConfig"]["EndpointsConfig"]["saferun-shop"]["Aliases"] == ["web",
                                                                                      "www"]
    assert body["User"] == "65534:65534" and body["Hostname"] == "web"
    assert body["Entrypoint"] == ["sleep"] and body["Cmd"] == ["2147483647"]
    assert body["Healthcheck"] == {"Test": ["NONE"]}
    assert body["Labels"]["io.saferun.stack-service"] == "web"


def test_service_joins_the_sandbox() -> None:
    network = NetworkSection.from_data(dict(ports=[{"container": 80}], aliases=["www"],
                                            egress=["db"]))
    joined = service_network(network, "shop-web-sandbox")
    assert joined.mode == "container:shop-web-sandbox"
    assert joined.ports == [] and joined.aliases == []
    assert joined.egress == ["db"]
