from __future__ import annotations

import pytest

from saferun.model.capabilities import (
    CAPABILITY_BITS,
    DOCKER_DEFAULT_CAPS,
    capability_mask,
    normalize_capability,
)


@pytest.mark.parametrize(
    "name", ["net_bind_service", "NET_BIND_SERVICE", "CAP_NET_BIND_SERVICE", "cap_net_bind_service"]
)
def test_names_with_or_without_prefix(name: str) -> None:
    assert normalize_capability(name) == "CAP_NET_BIND_SERVICE"


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(ValueError, match="did you mean SYS_ADMIN"):
        normalize_capability("SYS_ADMINN")


def test_all_is_refused() -> None:
    with pytest.raises(ValueError, match="ALL"):
        normalize_capability("all")


def test_masks_match_the_kernel_bits() -> None:
    assert capability_mask(("CHOWN",)) == 1
    assert capability_mask(("NET_BIND_SERVICE", "KILL")) == (1 << 10) | (1 << 5)
    assert len(set(CAPABILITY_BITS.values())) == len(CAPABILITY_BITS) == 41
    assert DOCKER_DEFAULT_CAPS <= set(CAPABILITY_BITS)
