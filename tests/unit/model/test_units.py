from __future__ import annotations

import pytest

from saferun.model.units import format_size, parse_cpus, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512m", 512 << 20),
        ("1g", 1 << 30),
        ("1G", 1 << 30),
        ("64MB", 64 << 20),
        ("2gib", 2 << 30),
        ("100", 100),
        ("1.5g", int(1.5 * (1 << 30))),
        ("10 k", 10 << 10),
        (4096, 4096),
    ],
)
def test_sizes_parse_like_docker(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["-1g", "lots", "", "1x", "1.2.3m", "m"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


def test_format_size_round_trips() -> None:
    for size in (512 << 20, 1 << 30, 6 << 20, 12345):
        assert parse_size(format_size(size)) == size
    assert format_size(512 << 20) == "512m"


@pytest.mark.parametrize(
    ("text", "nano"),
    [("0.5", 500_000_000), (2, 2 * 10**9), (1.25, 1_250_000_000), ("0.000000001", 1)],
)
def test_cpus(text: str | float, nano: int) -> None:
    assert parse_cpus(text) == nano


@pytest.mark.parametrize("text", ["0", "-1", "abc", "0.0000000001", "nan"])
def test_bad_cpus(text: str) -> None:
    with pytest.raises(ValueError):
        parse_cpus(text)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("30s", 30 * 10**9),
        ("1m30s", 90 * 10**9),
        ("500ms", 5 * 10**8),
        ("1h", 3600 * 10**9),
        ("0", 0),
        ("1.5s", 15 * 10**8),
    ],
)
def test_durations(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["30", "s", "1d", "", "-5s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
