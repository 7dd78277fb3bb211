from __future__ import annotations

import json

import pytest

from saferun.errors import UsageError
from saferun.policy.daemon_config import (
    HARDENED,
    hardened_config,
    merge_config,
    parse_config,
    render,
)
from saferun.policy.host_checks import CHECKS


def test_fresh_config_holds_every_hardened_key() -> None:
    config = hardened_config()
    assert config["icc"] is False and config["userns-remap"] == "default"
    assert config["live-restore"] is True and config["no-new-privileges"] is True
    assert config["log-driver"] == "local" and config["log-opts"]["max-size"] == "10m"
    assert "runtimes" not in config
    check_ids = {c.id for c in CHECKS}
    assert all(check in check_ids for _, check, _ in HARDENED.values() if check)


def test_merge_keeps_unrelated_and_stricter_settings() -> None:
    existing = {"data-root": "/srv/docker", "userns-remap": "builder", "icc": True,
                "log-driver": "json-file", "log-opts": {"max-size": "5m"},
                "default-ulimits": {"nproc": {"Name": "nproc", "Soft": 64, "Hard": 64}},
                "runtimes": {"runsc": {"path": "/opt/runsc", "runtimeArgs": ["--network=host"]}}}
    merged, changes = merge_config(existing, ("gvisor", "kata"))
    assert merged["data-root"] == "/srv/docker"
    assert merged["userns-remap"] == "builder"  # their remap user is kept
    assert merged["icc"] is False
    assert merged["log-driver"] == "json-file"  # already rotated with max-size
    assert merged["log-opts"] == {"max-size": "5m", "max-file": "3"}
    assert set(merged["default-ulimits"]) == {"nproc", "nofile"}
    assert merged["runtimes"]["runsc"]["path"] == "/opt/runsc"  # existing registration wins
    assert merged["runtimes"]["kata"] == {"runtimeType": "io.containerd.kata.v2"}
    changed = {c.key for c in changes}
    assert "userns-remap" not in changed and "icc" in changed and "runtimes" in changed
    assert existing["icc"] is True  # input untouched


def test_merge_is_idempotent() -> None:
    once, _ = merge_config({"debug": True}, ("gvisor",))
    twice, changes = merge_config(once, ("gvisor",))
    assert twice == once and changes == []


def test_other_log_drivers_are_left_alone() -> None:
    merged, _ = merge_config({"log-driver": "journald", "log-opts": {"tag": "x"}})
    assert merged["log-driver"] == "journald" and merged["log-opts"] == {"tag": "x"}


def test_change_descriptions_carry_restart_notes() -> None:
    _, changes = merge_config({})
    text = {c.key: c.describe() for c in changes}
    assert "existing images must be pulled or loaded again" in text["userns-remap"]
    assert text["icc"].startswith("icc: unset -> false")


def test_parse_config_errors() -> None:
    assert parse_config("  ", "x") == {}
    with pytest.raises(UsageError, match="not valid JSON"):
        parse_config("{", "/etc/docker/daemon.json")
    with pytest.raises(UsageError, match="not an object"):
        parse_config("[]", "f")
    with pytest.raises(UsageError, match="unknown"):
        merge_config({}, ("crun",))


def test_render_is_stable_json() -> None:
    text = render(hardened_config())
    assert json.loads(text) == hardened_config() and text.endswith("\n")
