from __future__ import annotations

import ipaddress

import pytest

from saferun.model.manifest import NetworkSection
from saferun.model.netpolicy import parse_peer
from saferun.model.stack import StackFile, start_order


@pytest.mark.parametrize(("text", "service", "network", "port", "protocol"), [
    ("db", "db", None, None, "tcp"),
    ("db:5432", "db", None, 5432, "tcp"),
    ("dns:53/udp", "dns", None, 53, "udp"),
    ("10.20.0.0/16:443", None, "10.20.0.0/16", 443, "tcp"),
    ("192.0.2.7", None, "192.0.2.7/32", None, "tcp"),
    ("[fd00::/8]:443", None, "fd00::/8", 443, "tcp"),
    ("fd00::/8", None, "fd00::/8", None, "tcp"),
])
def test_entries_parse_to_typed_values(text: str, service: str | None, network: str | None,
                                       port: int | None, protocol: str) -> None:
    peer = parse_peer(text)
    assert peer.service == service
    assert peer.network == (ipaddress.ip_network(network) if network else None)
    assert (peer.port, peer.protocol) == (port, protocol)
    assert parse_peer(str(peer)) == peer


@pytest.mark.parametrize("text", ["Web", "db:0", "db:70000", "db/udp", "10.0.0.1/8",
                                  "a b", "db;drop", "$(id)", "db:53/icmp", "x" * 70, ""])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_peer(text)


def test_manifest_keys() -> None:
    assert not NetworkSection().restricted
    assert NetworkSection(egress="none").restricted
    assert NetworkSection(ingress=[]).restricted
    with pytest.raises(ValueError, match="neither a service"):
        NetworkSection(egress=["db;accept"])
    with pytest.raises(ValueError):
        NetworkSection.from_data({"egress": "all"})


def test_start_order_and_cycles() -> None:
    assert start_order({"web": ("db", "cache"), "db": (), "cache": ("db",)}) == (
        "db", "cache", "web")
    with pytest.raises(ValueError, match="cycle"):
        start_order({"a": ("b",), "b": ("a",)})


def test_stack_file_checks_names_and_dependencies() -> None:
    ok = {"stack": {"name": "shop"}, "services": {"web": {"manifest": "w.toml"}}}
    assert StackFile.from_data(ok).stack.name == "shop"
    with pytest.raises(ValueError, match="not a service"):
        StackFile.from_data({**ok, "services": {"web": {"manifest": "w.toml",
                                                            "depends_on": ["db"]}}})
    with pytest.raises(ValueError):
        StackFile.from_data({**ok, "services": {"Web!": {"manifest": "w.toml"}}})
    with pytest.raises(ValueError, match="not a service name"):
        StackFile.from_data({**ok, "services": {"web\n": {"manifest": "w.toml"}}})
    with pytest.raises(ValueError):
        StackFile.from_data({**ok, "stack": {"name": "Shop Name"}})
