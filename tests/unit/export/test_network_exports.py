"""[network] ingress/egress in exports: a NetworkPolicy per app with rules (validated against
the official schemas), and Compose networks that follow the rules (docker-compose config)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from saferun.export import ExportInput, Target, export, netpolicy
from saferun.export import kubernetes as kube
from saferun.model.manifest import Manifest


def _apps() -> list[ExportInput]:
    def app(name: str, **network: Any) -> ExportInput:
        return ExportInput(Manifest.from_data(
            {"app": {"name": name, "image": "busybox:1"}, "network": network}))

    return [app("web", egress=["db:5432", "10.20.0.0/16:443"],
                ports=[{"container": 80, "host": 8080}]),
            app("db", ingress=["web:5432"], egress="none"),
            app("cache", ingress=[], egress="none"),
            app("plain")]


def _documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def test_one_policy_per_app() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    result = export(_apps(), Target.KUBERNETES)
    docs = _documents(result.main.content)
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    assert set(policies) == {"web-network", "db-network", "cache-network", "plain-network"}
    assert policies["plain-network"]["ingress"] == policies["plain-network"]["egress"] == [{}]
    kinds = [d["kind"] for d in docs]  # every policy is applied before any pod
    assert max(i for i, k in enumerate(kinds) if k == "NetworkPolicy") < kinds.index("Pod")
    for document in docs:
        kubernetes_validate.validate(document, "1.30.0", strict=True)
    db = policies["db-network"]
    assert db["policyTypes"] == ["Ingress", "Egress"]
    assert db["egress"] == []  # egress = "none": default deny
    assert db["ingress"] == [{"from": [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "web"}}}], "ports": [{"protocol": "TCP", "port": 5432}]}]
    web = policies["web-network"]
    assert web["ingress"] == [{}]  # unset: open, as docker
    assert {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}],
            "ports": [{"protocol": "TCP", "port": 443}]} in web["egress"]
    assert any("kube-dns" in str(rule) for rule in web["egress"])
    assert policies["cache-network"]["ingress"] == []
    assert netpolicy.NAME_LABEL == kube.NAME_LABEL


def test_compose_networks_follow_the_rules(tmp_path: Path) -> None:
    result = export(_apps(), Target.COMPOSE)
    document = yaml.safe_load(result.main.content)
    services = document["services"]
    assert services["db"]["networks"] == ["to-db"]  # internal only: no way out
    assert services["web"]["networks"] == ["default", "to-db"]
    assert services["cache"]["networks"] == ["to-cache"]
    assert "networks" not in services["plain"] or "default" in services["plain"]["networks"]
    assert document["networks"]["to-db"] == {"internal": True}
    assert any("saferun up" in note.message for note in result.notes)
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed")
    result = export(_apps(), Target.COMPOSE, compose_v1=True)  # Debian's docker-compose 1.29
    (tmp_path / "compose.yaml").write_text(result.main.content)
    for extra in result.files[1:]:
        (tmp_path / extra.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / extra.path).write_text(extra.content)
    check = subprocess.run(["docker-compose", "-f", str(tmp_path / "compose.yaml"), "config",
                            "-q"], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert check.returncode == 0, check.stderr


def test_no_rules_stays_open() -> None:
    plain = [ExportInput(Manifest.from_data({"app": {"name": "a", "image": "busybox:1"}}))]
    assert "networks" not in yaml.safe_load(export(plain, Target.COMPOSE).main.content)
    docs = _documents(export(plain, Target.KUBERNETES).main.content)
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy")
    assert policy["spec"]["ingress"] == policy["spec"]["egress"] == [{}]  # as docker: open
