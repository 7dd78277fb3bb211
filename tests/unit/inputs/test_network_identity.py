"""Issue 19, case 11: a network is judged by what the engine says it is, not by its name.

`--network <ID of the host network>` (or an ID prefix, or another name for a network with
the host driver) is host-network, exactly as `--network host` is. The engine is asked at the
edge (saferun.app.run.check_named_networks); the verdict here is pure.
"""

from __future__ import annotations

import pytest

from saferun.errors import Refused
from saferun.inputs.dockerrun import check_networks
from saferun.model.manifest import Manifest
from saferun.policy.spec import from_inspect

HOST_ID = "1a352c1714dfe1fb9b9a582e900900cf2e424115ca2aa331432f04ccbeaae231"
HOST = {"Name": "host", "Id": HOST_ID, "Driver": "host"}
BRIDGE = {"Name": "hostile-net", "Id": "ab" * 32, "Driver": "bridge"}


def _manifest(mode: str, **allow: str) -> Manifest:
    return Manifest.from_data({"app": {"name": "hostile-net", "image": "nginx:1.25"},
                                    "network": {"mode": mode}, "allow": allow})


@pytest.mark.parametrize("mode", [HOST_ID, HOST_ID[:12], "my-host-alias"])
def test_the_host_network_by_another_name_is_refused(mode: str) -> None:
    with pytest.raises(Refused, match="host-network") as caught:
        check_networks(_manifest(mode), {mode: HOST})
    assert caught.value.rule_ids == ["host-network"]


def test_allowed_with_a_reason_and_other_networks_pass() -> None:
    check_networks(_manifest(HOST_ID[:12], **{"host-network": "a measured exception here"}),
                   {HOST_ID[:12]: HOST})
    check_networks(_manifest("hostile-net"), {"hostile-net": BRIDGE})
    check_networks(_manifest("unknown"), {})  # docker itself reports a missing network


def test_inspect_of_a_container_on_the_host_network_by_id() -> None:
    data = {"HostConfig": {"NetworkMode": HOST_ID}, "Config": {"Image": "nginx:1.25"},
            "NetworkSettings": {"Networks": {"host": {"NetworkID": HOST_ID}}}}
    assert from_inspect(data).network == "host"
