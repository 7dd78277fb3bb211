from __future__ import annotations

from saferun.model.manifest import NetworkSection
from saferun.render.sandbox import sandbox_argv, service_network


def test_sandbox_is_hardened_and_owns_the_endpoint() -> None:
    network = NetworkSection(ports=[{"container": 80, "host": 8080}], aliases=["www"],
                             dns=["192.0.2.53"], egress="none")
    argv = sandbox_argv(stack="shop", service="web", image="busybox:1.36", network=network,
                        hostname=None, labels={"io.saferun.network-egress": "none"})
    joined = " ".join(argv)
    for flag in ("--cap-drop ALL", "--security-opt no-new-privileges", "--read-only",
                 "--user 65534:65534", "--network saferun-shop", "--network-alias web",
                 "--network-alias www", "--publish 127.0.0.1:8080:80/tcp", "--dns 192.0.2.53",
                 "--name shop-web-sandbox", "--label io.saferun.stack=shop"):
        assert flag in joined
    assert argv[:2] == ["docker", "create"] and "--no-healthcheck" in argv
    assert argv[-4:] == ["--entrypoint", "sleep", "busybox:1.36", "2147483647"]
    assert "NET_ADMIN" not in joined


def test_service_joins_the_sandbox() -> None:
    network = NetworkSection(ports=[{"container": 80}], aliases=["www"], egress=["db"])
    joined = service_network(network, "shop-web-sandbox")
    assert joined.mode == "container:shop-web-sandbox"
    assert joined.ports == [] and joined.aliases == []
    assert joined.egress == ["db"]
