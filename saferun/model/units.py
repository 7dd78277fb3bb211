"""Parse sizes, CPU counts and durations exactly the way the docker CLI does.

docker uses go-units `RAMInBytes` for memory (binary multiples, optional `b`/`ib`
suffix, case-insensitive), `big.Rat` for `--cpus` (at most 9 decimal places), and Go's
`time.ParseDuration` for health-check intervals.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp])?(?:i?b)?$", re.IGNORECASE)
_MULTIPLIER = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
                "h": 3600 * 10**9}


def parse_size(value: str | int) -> int:
    """`512m` -> 536870912. Integers are bytes. Raises ValueError with docker's wording."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid size: '{value}' (must not be negative)")
        return value
    match = _SIZE.fullmatch(value.strip())
    if not match:
        raise ValueError(f"invalid size: '{value}' (use a number with b, k, m, g, t or p)")
    number, unit = match.groups()
    return int(Decimal(number) * _MULTIPLIER[unit.lower() if unit else None])


def format_size(size: int) -> str:
    """Shortest exact docker spelling: 536870912 -> `512m`."""
    for unit in ("p", "t", "g", "m", "k"):
        if size and size % _MULTIPLIER[unit] == 0:
            return f"{size // _MULTIPLIER[unit]}{unit}"
    return str(size)


def parse_cpus(value: str | float | int) -> int:
    """`1.5` -> 1500000000 nano-CPUs, refusing more than 9 decimal places like docker."""
    if isinstance(value, bool):
        raise ValueError(f"invalid CPU count: {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"invalid CPU count: '{value}' (use a number such as 0.5 or 2)") from None
    if not number.is_finite() or number <= 0:
        raise ValueError(f"invalid CPU count: '{value}' (must be greater than 0)")
    nano = number * 10**9
    if nano != nano.to_integral_value():
        raise ValueError(f"invalid CPU count: '{value}' (value is too precise)")
    return int(nano)


def parse_duration(value: str) -> int:
    """Go duration (`30s`, `1m30s`, `500ms`) -> nanoseconds."""
    text = value.strip()
    if text == "0":
        return 0
    pos, total = 0, Decimal(0)
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if not match:
            raise ValueError(f"invalid duration: '{value}' (use e.g. 30s, 1m30s, 500ms)")
        total += Decimal(match.group(1)) * _DURATION_NS[match.group(2)]
        pos = match.end()
    if not text:
        raise ValueError("invalid duration: '' (use e.g. 30s)")
    return int(total)
