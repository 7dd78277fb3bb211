"""`saferun profile seccomp|apparmor`: a manifest's profiles, generated, checked and written.

The generators are pure (saferun.profiles); this module reads the manifest, compiles the
AppArmor profile with apparmor_parser when asked, reads the old profile of `--against`
and writes the -o files. Generating (and writing) comes before the report, so a report
that fails (an unreadable --against file) still leaves the profile printed or written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saferun.engine.apparmor_parser import compile_check, write_profile_file
from saferun.engine.files import write_atomic
from saferun.errors import ProfileError, UsageError
from saferun.inputs.loader import load_manifest
from saferun.profiles.apparmor import profile_name_for, render_apparmor
from saferun.profiles.seccomp import render_seccomp_json
from saferun.profiles.seccomp_check import (
    CheckResult,
    diff_profiles,
    generate_checked,
    names_by_source,
    verify_high_risk,
)

# --- seccomp ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SeccompProfile:
    profile: dict[str, Any]
    check: CheckResult  # names, rules and BPF instruction counts
    text: str  # the JSON docker reads; the same manifest gives the same bytes


@dataclass(frozen=True)
class SeccompReport:
    lines: list[str]  # stats:, against ...:, high-risk: lines, in that order
    risky: list[str]  # the high-risk syscalls still allowed (only with verify)


def seccomp_profile(manifest_path: Path, *, native_arch: str,
                    output: Path | None = None) -> SeccompProfile:
    """Generate and check MANIFEST's seccomp profile; write it to `output` when given."""
    loaded = load_manifest(manifest_path)
    if loaded.seccomp.profile in ("docker-default", "unconfined"):
        raise UsageError(
            f'seccomp.profile = "{loaded.seccomp.profile}": saferun generates no profile for it',
            fix='use profile "default" or "strict"',
        )
    profile, result = generate_checked(
        loaded.seccomp,
        capabilities=frozenset(loaded.capabilities.add),
        native_arch=native_arch,
        runtime=loaded.security.runtime,
    )
    generated = SeccompProfile(profile, result, render_seccomp_json(profile))
    if output is not None:
        write_atomic(output, generated.text.encode(), mode=0o644)
    return generated


def seccomp_report(generated: SeccompProfile, *, stats: bool = False, verify: bool = False,
                   against: Path | None = None) -> SeccompReport:
    """--stats, --against OLD.json and --verify about a generated profile."""
    lines = []
    if stats:
        summary = {**generated.check.as_dict(), "by_source": names_by_source(generated.profile)}
        lines.append("stats: " + json.dumps(summary, sort_keys=True))
    if against is not None:
        diff = diff_profiles(_read_profile(against), generated.profile)
        lines += [f"against {against}: {line}" for line in diff.lines()] or [
            f"against {against}: no change"
        ]
    risky = verify_high_risk(generated.profile) if verify else []
    lines += [f"high-risk: {line}" for line in risky]
    if verify and not risky:
        lines.append("high-risk: none allowed")
    return SeccompReport(lines, risky)


def _read_profile(path: Path) -> dict[str, Any]:
    try:
        old: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ProfileError(f"{path}: cannot read the old profile: {exc}") from None
    return old


# --- AppArmor ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AppArmorProfile:
    name: str  # what `--security-opt apparmor=NAME` names
    text: str
    mode: str  # the manifest's apparmor.mode

    @property
    def warning(self) -> str | None:
        if self.mode == "generate":
            return None
        return f"apparmor.mode = \"{self.mode}\": `saferun run` will not load this profile"


def apparmor_profile(manifest_path: Path, *, check: bool = False) -> AppArmorProfile:
    """Render MANIFEST's AppArmor profile; with `check`, compile it with apparmor_parser."""
    loaded = load_manifest(manifest_path)
    name = profile_name_for(loaded)
    text = render_apparmor(loaded, profile_name=name)
    if check:
        compile_check(text)
    return AppArmorProfile(name, text, loaded.apparmor.mode)


def write_apparmor(profile: AppArmorProfile, output: Path) -> None:
    """Write the profile atomically (a rename, never through a symlink)."""
    write_profile_file(profile.text, output)
