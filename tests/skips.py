"""The one-line summary scripts/test ends with: which test groups were skipped, and how to
enable each (README "Tests"). Reasons are matched by the words the skip messages use."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

# What .ci/run runs for checkov: a venv of its own (its pinned dependencies clash with ours),
# where tests/integration/test_export_checkov.py looks first.
CHECKOV_INSTALL = ("python3 -m venv .venv-checkov && "
                   ".venv-checkov/bin/pip install 'checkov>=3.2,<4'")

# (words in the skip reason, group, the command that enables the group), first match wins.
SKIP_GROUPS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("no docker engine",), "engine", "scripts/engine.sh install && scripts/engine.sh up"),
    (("runsc",), "gvisor",
     "apt-get install runsc and register it in /etc/docker/daemon.json (docs/runtimes.md)"),
    (("kata",), "kata", "install Kata Containers on a host with /dev/kvm (docs/runtimes.md)"),
    (("docker-compose",), "compose", "apt-get install docker-compose"),
    (("debootstrap", "cannot build"), "debian-images",
     "apt-get install debootstrap && scripts/build-preset-images.sh && "
     "scripts/build-official-images.sh"),
    (("apparmor_parser",), "apparmor", "apt-get install apparmor"),
    (("openssl",), "tls", "apt-get install openssl"),
    (("checkov",), "checkov", CHECKOV_INSTALL),
    (("tmux",), "terminal", "apt-get install tmux"),
    (("need root", "needs root", "extra dockerd"), "root", "run scripts/test as root"),
)


def group_of(reason: str) -> tuple[str, str]:
    """(group, enabling command) of one skip reason; ("other", "") when none matches."""
    lowered = reason.lower()
    for words, group, command in SKIP_GROUPS:
        if any(word in lowered for word in words):
            return group, command
    return "other", ""


def skip_summary(reasons: Iterable[str]) -> str:
    counts: Counter[str] = Counter()
    commands: dict[str, str] = {}
    for reason in reasons:
        group, command = group_of(reason)
        counts[group] += 1
        commands[group] = command
    if not counts:
        return "skipped groups: none"
    parts = []
    for group in sorted(counts, key=lambda g: (g == "other", g)):
        how = f": {commands[group]}" if commands[group] else " (not enabled by a command)"
        parts.append(f"{group} ({counts[group]}){how}")
    return "skipped groups: " + "; ".join(parts)
