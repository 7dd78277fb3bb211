from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path

import pytest

from saferun.model.netpolicy import parse_peers
from saferun.plan.netrules import ServiceRules, UnknownService, render_ruleset

ADDRESSES = {name: (ipaddress.ip_address(address),) for name, address in
             (("web", "172.30.0.2"), ("db", "172.30.0.3"), ("cache", "172.30.0.4"))}


def _rules(ingress: list[str] | None, egress: list[str] | None,
           published: tuple[tuple[int, str], ...] = ()) -> ServiceRules:
    return ServiceRules(None if ingress is None else parse_peers(ingress),
                        None if egress is None else parse_peers(egress), published)


def test_open_by_default_renders_nothing() -> None:
    assert render_ruleset(_rules(None, None), ADDRESSES) == ""


def test_egress_allowlist() -> None:
    text = render_ruleset(_rules(None, ["db:5432", "10.20.0.0/16:443", "db:53/udp"]), ADDRESSES)
    assert "chain ingress" not in text
    assert "hook output priority filter; policy drop;" in text
    assert 'oif "lo" accept' in text  # docker's embedded DNS at 127.0.0.11
    assert "ip daddr 172.30.0.3/32 tcp dport 5432 accept" in text
    assert "ip daddr 10.20.0.0/16 tcp dport 443 accept" in text
    assert "ip daddr 172.30.0.3/32 udp dport 53 accept" in text
    assert text.rstrip().endswith("}")


def test_egress_none_and_ingress() -> None:
    text = render_ruleset(_rules(["web:5432", "fd00::/8"], [], ((5432, "tcp"),)), ADDRESSES)
    assert "ip saddr 172.30.0.2/32 tcp dport 5432 accept" in text
    assert "ip6 saddr fd00::/8 accept" in text
    assert "tcp dport 5432 accept" in text  # the published port
    egress = text[text.index("chain egress"):]
    assert "daddr" not in egress


def test_unknown_service() -> None:
    with pytest.raises(UnknownService, match="'mail'"):
        render_ruleset(_rules(None, ["mail:25"]), ADDRESSES)


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft is not installed")
def test_nft_accepts_the_rulesets(tmp_path: Path) -> None:
    for rules in (_rules(["web:5432", "fd00::/8", "10.0.0.0/8"], ["db:5432", "cache"],
                         ((80, "tcp"), (53, "udp"))),
                  _rules([], []), _rules(None, ["[2001:db8::/32]:443", "dns:53/udp"])):
        addresses = {**ADDRESSES, "dns": (ipaddress.ip_address("172.30.0.9"),)}
        path = tmp_path / "rules.nft"
        path.write_text(render_ruleset(rules, addresses))
        result = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True,
                                check=False)
        if "Operation not permitted" in result.stderr:
            pytest.skip("nft -c needs CAP_NET_ADMIN here")
        assert result.returncode == 0, result.stderr
