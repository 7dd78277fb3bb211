from __future__ import annotations

import pytest

from saferun.errors import ManifestError
from saferun.inputs.compose import read_compose


def _one(service: dict[str, object], **top: object) -> tuple[str, ...]:
    project = read_compose({"services": {"app": service}, **top}, "compose.yaml")
    return project.services[0].words


def test_keys_become_the_docker_run_line_compose_would_send() -> None:
    words = _one({
        "image": "postgres:16", "command": "postgres -c max_connections=50",
        "environment": {"POSTGRES_PASSWORD": "x"}, "env_file": ["db.env"],
        "ports": ["127.0.0.1:5432:5432", {"target": 80, "published": 8080}],
        "volumes": ["data:/var/lib/postgresql/data", {"type": "bind", "source": "./conf",
                                                      "target": "/conf", "read_only": True}],
        "healthcheck": {"test": ["CMD", "pg_isready", "-U", "postgres"], "interval": "5s",
                        "retries": 3},
        "user": "999", "cap_add": ["CHOWN"], "read_only": True, "tmpfs": ["/run"],
        "restart": "on-failure", "deploy": {"resources": {"limits": {"memory": "256m",
                                                                   "cpus": "0.5"}}},
    })
    line = " ".join(words)
    for part in ("-e POSTGRES_PASSWORD=x", "--env-file db.env", "--publish 127.0.0.1:5432:5432",
                 "--publish 8080:80/tcp", "--volume data:/var/lib/postgresql/data",
                 "--mount type=bind,source=./conf,target=/conf,readonly",
                 "--health-cmd pg_isready -U postgres", "--health-interval 5s",
                 "--health-retries 3", "--user 999", "--cap-add CHOWN", "--read-only",
                 "--tmpfs /run", "--restart on-failure", "--memory 256m", "--cpus 0.5"):
        assert part in line
    assert words[-4:] == ("postgres:16", "postgres", "-c", "max_connections=50")


def test_dangerous_keys_pass_through_to_the_drop_in_judgement() -> None:
    words = _one({"image": "x", "privileged": True, "network_mode": "host", "pid": "host"})
    assert "--privileged" in words and ("--network", "host") == words[0:2]


@pytest.mark.parametrize(("service", "needle"), [
    ({"image": "x", "build": "."}, "build"),
    ({"image": "x", "frobnicate": 1}, "frobnicate"),
    ({"image": "x", "environment": {"A": "${HOME}"}}, "variable"),
    ({"build": {}}, "build"),
    ({"image": "x", "deploy": {"replicas": 3}}, "replicas"),
    ({"image": "x", "depends_on": ["nope"]}, "nope"),
])
def test_refused_by_name(service: dict[str, object], needle: str) -> None:
    with pytest.raises(ManifestError, match=needle):
        _one(service)


def test_networks_become_ingress_and_egress() -> None:
    project = read_compose({
        "services": {"web": {"image": "w", "networks": ["front", "back"]},
                     "db": {"image": "d", "networks": ["back"]},
                     "edge": {"image": "e", "networks": ["front"]}},
        "networks": {"front": {}, "back": {"internal": True}}}, "compose.yaml")
    rules = {s.name: s.network for s in project.services}
    assert rules["db"] == {"ingress": ["web"], "egress": ["web"]}
    assert rules["web"] == {"ingress": ["db", "edge"]}
    assert rules["edge"] == {"ingress": ["web"]}


def test_one_default_network_stays_open() -> None:
    project = read_compose({"services": {"a": {"image": "a"}, "b": {"image": "b"}}}, "c.yaml")
    assert all(s.network == {} for s in project.services)


def test_not_compose() -> None:
    with pytest.raises(ManifestError, match="not a Compose file"):
        read_compose({"foo": 1}, "c.yaml")
