"""The user config model: host warnings by id, reasons required, unknown keys refused."""

from __future__ import annotations

import typing

import pytest

from saferun.model.strict import ValidationError, field_types
from saferun.model.user_config import HOST_WARNINGS, UserConfig, host_warning_id

APPARMOR = ("AppArmor is absent on this host; the generated AppArmor profile 'saferun-web' is "
            "not applied")


def test_host_warnings_have_ids_and_others_none() -> None:
    assert host_warning_id(APPARMOR) == "apparmor-absent"
    assert host_warning_id("swap accounting is off on this host: ...") == "swap-accounting-off"
    assert host_warning_id("image 'x' is not in the local engine") is None
    acknowledge = typing.get_args(field_types(UserConfig)["acknowledge"])[0]  # Annotated
    key = typing.get_args(acknowledge)[0]
    assert set(HOST_WARNINGS) == set(typing.get_args(key))  # the Literal lists every id


def test_acknowledged_warnings_are_hidden_only_by_their_id() -> None:
    config = UserConfig(acknowledge={"apparmor-absent": "no AppArmor on this dev VM"})
    assert config.hides(APPARMOR) == "apparmor-absent"
    assert config.hides("swap accounting is off on this host") is None
    assert UserConfig().hides(APPARMOR) is None


def test_a_reason_is_required_and_ids_are_a_closed_set() -> None:
    with pytest.raises(ValidationError, match="written reason"):
        UserConfig.from_data({"acknowledge": {"apparmor-absent": "ok"}})
    with pytest.raises(ValidationError):
        UserConfig.from_data({"acknowledge": {"privileged": "I really want it"}})
    with pytest.raises(ValidationError):
        UserConfig.from_data({"colour": False})
