from __future__ import annotations

from typing import Any

import pytest

from saferun.model.manifest import Manifest
from saferun.model.strict import ValidationError


def make(**sections: Any) -> Manifest:
    document: dict[str, Any] = {"app": {"name": "web", "image": "busybox:1.36"}}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key] = {**document[key], **value}
        else:
            document[key] = value
    return Manifest.from_data(document)


def test_hardened_defaults() -> None:
    m = make()
    assert m.app.user == "65534:65534"
    assert m.capabilities.add == []
    assert m.filesystem.read_only is True
    assert [t.target for t in m.filesystem.tmpfs] == ["/tmp"]
    assert m.resources.memory_bytes == 512 << 20
    assert m.resources.memory_swap_bytes == m.resources.memory_bytes  # no swap
    assert m.resources.pids == 256
    assert m.security.no_new_privileges is True
    assert m.network.ports == []


def errors(**sections: Any) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        make(**sections)
    return info.value.errors()


def test_unknown_keys_are_errors() -> None:
    assert errors(app={"colour": "red"})[0]["type"] == "extra_forbidden"
    assert errors(extra_section={"a": 1})[0]["loc"] == ("extra_section",)


def test_wrong_types_are_not_coerced() -> None:
    assert errors(resources={"pids": "100"})[0]["loc"] == ("resources", "pids")
    assert errors(filesystem={"read_only": "yes"})[0]["loc"] == ("filesystem", "read_only")


def test_root_needs_a_reasoned_exception() -> None:
    assert "run_as_root" in str(errors(app={"user": "0:0"}))
    assert "at least 10 characters" in str(
        errors(app={"user": "0"}, exceptions={"run_as_root": "why"})
    )
    assert (
        make(
            app={"user": "0"}, exceptions={"run_as_root": "legacy entrypoint chowns files"}
        ).app.user
        == "0"
    )


@pytest.mark.parametrize(
    ("section", "values", "key"),
    [
        ("seccomp", {"profile": "unconfined"}, "seccomp_unconfined"),
        ("apparmor", {"mode": "off"}, "apparmor_off"),
        ("filesystem", {"read_only": False}, "writable_root"),
    ],
)
def test_every_weakening_needs_an_exception(section: str, values: dict[str, Any], key: str) -> None:
    assert key in str(errors(**{section: values}))
    make(**{section: values}, exceptions={key: "reviewed by the security team in TICKET-1"})


def test_capabilities_are_validated_and_canonical() -> None:
    assert make(capabilities={"add": ["net_bind_service", "CAP_CHOWN"]}).capabilities.add == [
        "CAP_CHOWN",
        "CAP_NET_BIND_SERVICE",
    ]
    assert "did you mean" in str(errors(capabilities={"add": ["NET_BIND"]}))


@pytest.mark.parametrize("memory", ["-1g", "1k", "lots", "5m"])
def test_bad_memory(memory: str) -> None:
    assert errors(resources={"memory": memory})[0]["loc"] == ("resources", "memory")


def test_swap_cannot_be_below_memory() -> None:
    assert "memory_swap" in str(errors(resources={"memory": "1g", "memory_swap": "512m"}))


@pytest.mark.parametrize("target", ["data", "../x", "/a,b", "/a b", "/a\nb", "/"])
def test_mount_targets_must_be_clean_absolute_paths(target: str) -> None:
    errors(filesystem={"mounts": [{"type": "bind", "source": "/srv", "target": target}]})


def test_host_network_is_refused() -> None:
    assert "refused" in str(errors(network={"mode": "host"}))


def test_ports_default_to_loopback() -> None:
    port = make(network={"ports": [{"container": 80, "host": 8080}]}).network.ports[0]
    assert port.host_ip == "127.0.0.1"


@pytest.mark.parametrize(
    "image",
    ["busybox", "busybox:1.36", "registry.example:5000/team/app:1.2", "app@sha256:" + "a" * 64],
)
def test_valid_images(image: str) -> None:
    assert make(app={"image": image}).app.image == image


@pytest.mark.parametrize("image", ["", "Busybox", "busybox; rm -rf /", "--privileged", "a b"])
def test_invalid_images(image: str) -> None:
    errors(app={"image": image})


def test_restart_always_and_many_retries_are_warnings_not_errors() -> None:
    m = make(restart={"policy": "always"})
    assert [w.rule for w in m.warnings()] == ["restart-always"]
    m = make(restart={"policy": "on-failure", "max_retries": 10})
    assert [w.rule for w in m.warnings()] == ["restart-retries"]
    assert make(restart={"policy": "always"}, exceptions={
        "restart_always": "a daemon that must come back"}).warnings() == []
    # 0 is docker's "no limit" (what `--restart on-failure` means): kept, and warned.
    unlimited = make(restart={"policy": "on-failure", "max_retries": 0})
    assert [(w.rule, w.what) for w in unlimited.warnings()] == [("restart-retries", "0 (no limit)")]
    errors(restart={"policy": "on-failure", "max_retries": -1})


def test_reserved_label_prefix() -> None:
    assert "reserved" in str(errors(app={"labels": {"io.saferun.app": "x"}}))


def test_json_schema_is_strict() -> None:
    from saferun.model.manifest import manifest_json_schema

    schema = manifest_json_schema()
    assert schema["additionalProperties"] is False
    assert "app" in schema["required"]
