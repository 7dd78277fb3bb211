"""The hardened daemon.json, and how to merge it into an existing one. Pure: dicts in, dicts out.

Each key answers a `saferun doctor` check (named beside it), so a host that takes this
file passes them. Merging never weakens what is there: a key the operator already set
to something at least as strict (their own userns-remap user, a smaller max-size, extra
ulimits, other runtimes) is kept, and every change is reported with its reason.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from saferun.errors import UsageError

# key -> (hardened value, doctor check id it satisfies, why)
HARDENED: dict[str, tuple[Any, str, str]] = {
    "icc": (False, "icc-disabled",
            "containers on the default bridge cannot reach each other"),
    "userns-remap": ("default", "userns-remap",
                     "container root is an unprivileged host user (dockremap's range)"),
    "live-restore": (True, "live-restore", "containers keep running while dockerd restarts"),
    "no-new-privileges": (True, "no-new-privileges-default",
                          "setuid binaries cannot raise privileges, even without saferun"),
    "default-ulimits": ({"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 4096}},
                        "default-ulimits", "containers do not inherit dockerd's huge nofile"),
    "log-driver": ("local", "log-rotation", "the local driver rotates and compresses logs"),
    "log-opts": ({"max-size": "10m", "max-file": "3"}, "log-rotation",
                 "bounded log files per container"),
    "userland-proxy": (False, "",
                       "published ports use iptables NAT instead of a proxy process per port"),
}

# How each sandboxed runtime is registered (the `runtimes` key), for --runtime.
RUNTIME_REGISTRATION: dict[str, tuple[str, dict[str, Any]]] = {
    "gvisor": ("runsc", {"path": "/usr/bin/runsc"}),
    "kata": ("kata", {"runtimeType": "io.containerd.kata.v2"}),
}

# Changing these makes existing containers and images invisible or needs a full restart.
RESTART_NOTES: dict[str, str] = {
    "userns-remap": "dockerd keeps remapped images and containers in a new <data-root>/"
                    "<uid>.<gid> directory: existing images must be pulled or loaded again",
    "live-restore": "live-restore cannot be combined with swarm mode",
    "log-driver": "the log driver applies to containers created after the restart",
}


@dataclass(frozen=True)
class Change:
    key: str
    old: Any
    new: Any
    reason: str

    def describe(self) -> str:
        old = "unset" if self.old is None else json.dumps(self.old)
        text = f"{self.key}: {old} -> {json.dumps(self.new)} ({self.reason})"
        if self.key in RESTART_NOTES:
            text += f"; note: {RESTART_NOTES[self.key]}"
        return text


def hardened_config(runtimes: tuple[str, ...] = ()) -> dict[str, Any]:
    """A fresh hardened daemon.json."""
    merged, _ = merge_config({}, runtimes)
    return merged


def merge_config(existing: dict[str, Any],
                 runtimes: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[Change]]:
    """Merge the hardened settings into `existing` (unchanged); return (result, changes)."""
    result = copy.deepcopy(existing)
    changes: list[Change] = []
    for key, (value, _check, why) in HARDENED.items():
        current = existing.get(key)
        merged = _merge_value(key, current, value, existing)
        if merged != current:
            result[key] = merged
            changes.append(Change(key, current, merged, why))
    if runtimes:
        current_runtimes = existing.get("runtimes") or {}
        new_runtimes = dict(copy.deepcopy(current_runtimes))
        for runtime in runtimes:
            if runtime not in RUNTIME_REGISTRATION:
                raise UsageError(f"--runtime {runtime!r}: unknown; choose from "
                                 f"{', '.join(RUNTIME_REGISTRATION)}")
            name, spec = RUNTIME_REGISTRATION[runtime]
            new_runtimes.setdefault(name, spec)  # an existing registration wins (its args)
        if new_runtimes != current_runtimes:
            result["runtimes"] = new_runtimes
            changes.append(Change("runtimes", existing.get("runtimes"), new_runtimes,
                                  f"registers {', '.join(runtimes)} for security.runtime"))
    return result, changes


def _merge_value(key: str, current: Any, hardened: Any, existing: dict[str, Any]) -> Any:
    if current is None:
        if key == "log-opts" and existing.get("log-driver") not in (None, "json-file", "local"):
            return None  # other drivers have other options: leave them alone
        return copy.deepcopy(hardened)
    if key == "userns-remap":
        return current if str(current).strip() else hardened  # their own remap user is fine
    if key == "log-driver":
        # A driver that ships or rotates logs elsewhere is already fine; only plain json-file
        # without rotation is replaced, and only when no max-size is configured for it.
        if current == "json-file" and "max-size" in (existing.get("log-opts") or {}):
            return current
        return hardened if current in ("json-file", "none") else current
    if key == "log-opts" and isinstance(current, dict):
        if existing.get("log-driver") not in (None, "json-file", "local"):
            return current
        merged = dict(current)
        for opt, value in hardened.items():
            merged.setdefault(opt, value)
        return merged
    if key == "default-ulimits" and isinstance(current, dict):
        merged = dict(current)
        for name, value in hardened.items():
            merged.setdefault(name, value)
        return merged
    return hardened


def parse_config(text: str, path: str) -> dict[str, Any]:
    """Parse an existing daemon.json; an empty file is an empty object."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc}); dockerd would not start with it "
                         "either",
                         fix=f"fix {path} by hand, then run daemon-config again") from None
    if not isinstance(value, dict):
        raise UsageError(f"{path} holds a JSON {type(value).__name__}, not an object")
    return value


def render(config: dict[str, Any]) -> str:
    return json.dumps(config, indent=2, sort_keys=True) + "\n"
