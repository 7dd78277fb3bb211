"""Every policy rule has a failing and a passing case, asserted by rule id."""

from __future__ import annotations

from dataclasses import replace

import pytest

from saferun.policy.catalogue import explain
from saferun.policy.rules import (
    RULES,
    RULES_TABLE,
    SPEC_RULES,
    Policy,
    evaluate,
    image_parts,
    image_tag_problem,
)
from saferun.policy.severity import Severity
from saferun.policy.spec import ContainerSpec, MountSpec, PortSpec, UlimitSpec

# What `saferun run` starts by default, plus a user network, a health check and a digest.
HARDENED = ContainerSpec(
    image="registry.example/app:1.2@sha256:" + "a" * 64, user="65534:65534",
    cap_drop=frozenset({"ALL"}), network="app-net", memory=512 << 20, nano_cpus=10**9,
    pids_limit=256, read_only=True, restart_policy="on-failure", restart_retries=5,
    no_new_privileges=True, seccomp="custom", healthcheck=True,
    ingress=("web:8080",), egress=("db:5432",),
    ulimits=(UlimitSpec("nofile", 1024, 4096),),
    ports=(PortSpec("127.0.0.1", 8080, 80),),
    mounts=(MountSpec("bind", "/srv/app/data", "/data", True),
            MountSpec("volume", "cache", "/c", False)),
)

# rule id -> (changes that make the hardened spec fail it, changes that still pass it)
CASES: dict[str, tuple[dict[str, object], dict[str, object]]] = {
    "privileged": ({"privileged": True}, {"privileged": False}),
    "cap-add-all": ({"cap_add": frozenset({"ALL"})}, {"cap_add": frozenset({"CAP_CHOWN"})}),
    "cap-not-allowed": ({"cap_add": frozenset({"CAP_NET_ADMIN"})},
                        {"cap_add": frozenset({"CAP_NET_BIND_SERVICE"})}),
    "cap-drop-all": ({"cap_drop": frozenset({"CAP_NET_RAW"})}, {"cap_drop": frozenset({"ALL"})}),
    "sensitive-host-mount": ({"mounts": (MountSpec("bind", "/etc", "/host-etc", True),)},
                             {"mounts": (MountSpec("bind", "/etc/localtime", "/etc/localtime",
                                                   True),)}),
    "docker-socket-mount": ({"mounts": (MountSpec("bind", "/var/run/docker.sock", "/s", True),)},
                            {"mounts": (MountSpec("bind", "/srv/sockets/app.sock", "/s", True),)}),
    "host-network": ({"network": "host"}, {"network": "none"}),
    "host-pid": ({"pid": "host"}, {"pid": "container:other"}),
    "host-ipc": ({"ipc": "host"}, {"ipc": None}),
    "host-uts": ({"uts": "host"}, {"uts": None}),
    "host-userns": ({"userns": "host"}, {"userns": None}),
    "host-cgroupns": ({"cgroupns": "host"}, {"cgroupns": None}),
    "device": ({"devices": ("/dev/fuse",)}, {"devices": ()}),
    "gpus": ({"gpus": "all"}, {"gpus": None}),
    "seccomp-unconfined": ({"seccomp": "unconfined"}, {"seccomp": "default"}),
    "apparmor-unconfined": ({"apparmor": "unconfined"}, {"apparmor": "my-profile"}),
    "label-disable": ({"selinux_label": "disable"}, {"selinux_label": "type:svirt_lxc_net_t"}),
    "systempaths-unconfined": ({"systempaths_unconfined": True}, {"systempaths_unconfined": False}),
    "unsafe-sysctl": ({"sysctls": (("kernel.msgmax", "65536"),)},
                      {"sysctls": (("net.ipv4.ip_unprivileged_port_start", "0"),)}),
    "shared-propagation": ({"mounts": (MountSpec("bind", "/srv/x", "/x", True, "rshared"),)},
                           {"mounts": (MountSpec("bind", "/srv/x", "/x", True, "rslave"),)}),
    "no-new-privileges": ({"no_new_privileges": False}, {"no_new_privileges": True}),
    "run-as-root": ({"user": "0:0"}, {"user": "1000"}),
    "writable-root": ({"read_only": False}, {"read_only": True}),
    "memory-limit": ({"memory": 0}, {"memory": 64 << 20}),
    "cpu-limit": ({"nano_cpus": 0}, {"nano_cpus": 0, "cpu_shares": 512}),
    "pids-limit": ({"pids_limit": -1}, {"pids_limit": 100}),
    "port-host-ip": ({"ports": (PortSpec("", 8080, 80),)},
                     {"ports": (PortSpec("10.0.0.5", 8080, 80),)}),
    "privileged-host-port": ({"ports": (PortSpec("127.0.0.1", 80, 80),)},
                             {"ports": (PortSpec("127.0.0.1", 1024, 80),)}),
    "restart-always": ({"restart_policy": "always"}, {"restart_policy": "no"}),
    "restart-retries": ({"restart_retries": 10}, {"restart_retries": 3}),
    "default-bridge": ({"network": "bridge"}, {"network": "backend"}),
    "health-check": ({"healthcheck": None}, {"healthcheck": True}),
    "egress-unrestricted": ({"egress": None}, {"egress": None, "network": "none"}),
    "ingress-unrestricted": ({"ingress": None}, {"ingress": ()}),
    "ulimit-override": ({"ulimits": (UlimitSpec("nproc", -1, -1),)},
                        {"ulimits": (UlimitSpec("nofile", 1024, 1024),)}),
    "cgroup-parent": ({"cgroup_parent": "/custom"}, {"cgroup_parent": ""}),
    "oom-protected": ({"oom_score_adj": -500}, {"oom_score_adj": 500}),
    "image-tag-latest": ({"image": "nginx"}, {"image": "nginx:1.27"}),
    "image-digest": ({"image": "nginx:1.27"}, {"image": "nginx@sha256:" + "b" * 64}),
}


def failed(spec: ContainerSpec, policy: Policy | None = None) -> set[str]:
    return {r.rule.id for r in evaluate(spec, policy) if not r.passed}


def test_the_hardened_spec_passes_every_rule() -> None:
    assert failed(HARDENED) == set()


def test_every_spec_rule_has_cases() -> None:
    assert set(CASES) == {rule.id for rule in SPEC_RULES}


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fails_and_passes(rule_id: str) -> None:
    bad, good = CASES[rule_id]
    assert rule_id in failed(replace(HARDENED, **bad))  # type: ignore[arg-type]
    assert rule_id not in failed(replace(HARDENED, **good))  # type: ignore[arg-type]


def test_rules_are_well_formed() -> None:
    ids = [rule.id for rule in RULES_TABLE]
    assert len(ids) == len(set(ids))
    for rule in RULES_TABLE:
        assert rule.id == rule.id.lower() and " " not in rule.id and "_" not in rule.id
        assert rule.title and rule.rationale and rule.fix
        assert all(section[0].isdigit() for section in rule.cis)
        assert all(ref.startswith("CIS Docker Benchmark v1.6.0 ") for ref in rule.references)


def test_refusal_ids_mean_the_same_thing() -> None:
    from saferun.model.refusals import RULES as REFUSALS

    for rule in RULES_TABLE:
        if rule.refusal:
            assert REFUSALS[rule.id].title == rule.title
            assert REFUSALS[rule.id].rationale == rule.rationale


def test_every_section_5_item_that_applies_to_one_container_is_covered() -> None:
    covered = {section for rule in RULES_TABLE for section in rule.cis}
    # 5.1 swarm is daemon-wide; 5.7 sshd, 5.9 and 5.23/5.24 (exec) and 5.28 are not
    # decidable from a container's configuration.
    wanted = {f"5.{n}" for n in range(2, 33)} - {"5.7", "5.9", "5.23", "5.24", "5.28"}
    assert wanted <= covered, sorted(wanted - covered)
    assert {"4.1", "4.6"} <= covered


def test_required_digest_raises_the_severity() -> None:
    spec = replace(HARDENED, image="nginx:1.27")
    required = evaluate(spec, Policy(digest="require"))
    result = next(r for r in required if r.rule.id == "image-digest")
    assert result.severity is Severity.HIGH
    result = next(r for r in evaluate(spec) if r.rule.id == "image-digest")
    assert result.severity is Severity.LOW


def test_writable_host_root_and_escape_caps_unconfine() -> None:
    spec = replace(HARDENED, mounts=(MountSpec("bind", "/", "/host", False),))
    hits = [h for r in evaluate(spec) for h in r.hits]
    assert any(h.unconfined for h in hits)
    spec = replace(HARDENED, cap_add=frozenset({"CAP_SYS_ADMIN"}))
    assert any(h.unconfined for r in evaluate(spec) for h in r.hits)
    spec = replace(HARDENED, cap_add=frozenset({"CAP_NET_ADMIN"}))
    assert not any(h.unconfined for r in evaluate(spec) for h in r.hits)


@pytest.mark.parametrize(("image", "parts", "floating"), [
    ("nginx", ("nginx", None, None), True),
    ("nginx:latest", ("nginx", "latest", None), True),
    ("registry:5000/team/app", ("registry:5000/team/app", None, None), True),
    ("registry:5000/team/app:1.2", ("registry:5000/team/app", "1.2", None), False),
    ("nginx@sha256:" + "c" * 64, ("nginx", None, "sha256:" + "c" * 64), False),
])
def test_image_references(image: str, parts: tuple[str, str | None, str | None],
                          floating: bool) -> None:
    assert image_parts(image) == parts
    assert (image_tag_problem(image) is not None) is floating


def test_explain_names_rationale_fix_and_reference() -> None:
    text = explain("host-network")
    assert "CIS Docker Benchmark v1.6.0 5.10" in text
    assert RULES["host-network"].rationale in text and RULES["host-network"].fix in text
