"""AppArmor: render a per-app profile from the manifest, and decide how a run applies it.

Pure: a validated Manifest (and, for the decision, whether the host has AppArmor) in,
text and a typed decision out. No subprocess, no environment, no probe of the host; the
only file read is saferun's own template in `apparmor/`. Calling `apparmor_parser` lives
in saferun.engine.apparmor_parser.

Every manifest value that reaches the profile passes through `_aa_value`, which checks it
against a whitelist of AppArmor-safe characters and shapes even though the manifest model
already validated it: the renderer must not depend on every future caller having done so
(bane pastes raw strings into its template, so a crafted path injects rules).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable
from enum import StrEnum
from functools import cache
from typing import Literal

import msgspec

from saferun.data import data_dir
from saferun.errors import ProfileError, RequirementUnmet
from saferun.model.capabilities import CAPABILITY_BITS
from saferun.model.manifest import Manifest

TEMPLATE_FILE = "container.profile.in"
PROFILE_PREFIX = "saferun-"
# AppArmor accepts more in a quoted name; this is the subset that is also safe unquoted in
# `peer=` conditionals and in docker's `--security-opt apparmor=NAME` (no `,` `=` or space).
PROFILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# Names that switch confinement off or belong to someone else: never ours to use or replace.
RESERVED_PROFILE_NAMES = frozenset({"unconfined", "docker-default", "runc", "crun"})
# Patterns are used with fullmatch (never `$`, which also matches before a final newline).
# A literal container path: no AppArmor glob (* ? [ ] { } ^), no variable (@{), no quote,
# backslash, comma, space or control character. `@` and `+` are literal without a brace.
_PATH_RE = re.compile(r"/[A-Za-z0-9_.@+/-]*")
_PATH_MAX = 1024
_COMMENT_RE = re.compile(r"[\x21-\x7e]{1,256}")
# Kernel interfaces the template denies; a writable mount there would be silently overridden.
_DENIED_TREES = ("/proc", "/sys")

# apparmor.network entry -> rules. AppArmor's grammar knows icmp only for inet (IPv4 ping
# sockets); there is no ICMPv6 protocol word, and `inet6 dgram` would also open UDP.
NETWORK_RULES: dict[str, tuple[str, ...]] = {
    "tcp": ("network inet tcp,", "network inet6 tcp,"),
    "udp": ("network inet udp,", "network inet6 udp,"),
    "icmp": ("network inet icmp,",),
}

ValueKind = Literal["profile-name", "path", "capability", "network", "comment"]


def _check_profile_name(value: str) -> str | None:
    if not PROFILE_NAME_RE.fullmatch(value):
        return "a profile name is a letter or digit followed by up to 127 of A-Z a-z 0-9 _ . -"
    if value in RESERVED_PROFILE_NAMES:
        return "this name is reserved (it switches confinement off or belongs to the runtime)"
    return None


def _check_path(value: str) -> str | None:
    if value.strip("/") == "":
        return "a path must name something below /"
    if not _PATH_RE.fullmatch(value):
        return ("a path must be absolute and use only A-Z a-z 0-9 _ . @ + - / "
                "(no quotes, braces, commas, spaces, globbing characters or newlines)")
    if len(value) > _PATH_MAX:
        return f"a path is limited to {_PATH_MAX} characters"
    parts = value.rstrip("/").split("/")[1:]
    if "" in parts:
        return "a path cannot contain an empty component ('//')"
    if any(part in (".", "..") for part in parts):
        return "a path cannot contain '.' or '..' components"
    return None


def _check_capability(value: str) -> str | None:
    if value not in CAPABILITY_BITS:
        return "not a canonical capability name (CAP_X)"
    return None


def _check_network(value: str) -> str | None:
    if value not in NETWORK_RULES:
        return f"apparmor.network entries are {', '.join(NETWORK_RULES)}"
    return None


def _check_comment(value: str) -> str | None:
    if not _COMMENT_RE.fullmatch(value):
        return "only printable ASCII without spaces or newlines may appear in a comment"
    return None


_CHECKS: dict[ValueKind, Callable[[str], str | None]] = {
    "profile-name": _check_profile_name,
    "path": _check_path,
    "capability": _check_capability,
    "network": _check_network,
    "comment": _check_comment,
}


def _aa_value(value: object, kind: ValueKind, *, glob: str = "") -> str:
    """Return `value` as it may appear in a rule, or raise ProfileError naming it.

    The single gate between manifest values and profile text. Paths come back quoted and
    without a trailing slash; `glob` ("/**") is appended here, after validation, so the
    only globbing in a rendered path is the one the renderer meant. Capabilities come
    back in AppArmor's spelling (`CAP_NET_RAW` -> `net_raw`).
    """
    if not isinstance(value, str):
        raise ProfileError(f"apparmor: {kind} {value!r} is not a string")
    reason = _CHECKS[kind](value)
    if reason:
        raise ProfileError(f"apparmor: {kind} {value!r} cannot be used in a profile: {reason}")
    if kind == "path":
        return f'"{value.rstrip("/")}{glob}"'
    if kind == "capability":
        return value.removeprefix("CAP_").lower()
    return value


def profile_name_for(manifest: Manifest) -> str:
    """`saferun-<app name>`: one profile per app, replaced in place on the next run."""
    return _aa_value(f"{PROFILE_PREFIX}{manifest.app.name}", "profile-name")


@cache
def _template() -> string.Template:
    """saferun's own data file (not host state), read once; `##` lines are template notes."""
    text = (data_dir("apparmor") / TEMPLATE_FILE).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith("##")]
    return string.Template("".join(lines))


def render_apparmor(manifest: Manifest, *, profile_name: str) -> str:
    """The profile text for `manifest`, byte-for-byte the same for the same input."""
    name = _aa_value(profile_name, "profile-name")
    header = (f"# Generated by saferun for app {_aa_value(manifest.app.name, 'comment')}; "
              "edit the manifest, not this file.")
    return _template().substitute(
        header=header,
        profile_name=name,
        file_rules=_indent(_file_rules(manifest)),
        network_rules=_indent(_network_rules(manifest)),
        capability_rules=_indent(_capability_rules(manifest)),
    )


def _indent(lines: Iterable[str]) -> str:
    return "\n".join(f"  {line}" for line in lines)


def _file_rules(manifest: Manifest) -> list[str]:
    """Image read-only (unless the writable_root exception), mounts writable, exec policy."""
    executables = manifest.apparmor.executables
    perms = "r" + ("wkl" if not manifest.filesystem.read_only else "") + "m"
    perms += "ix" if executables is None else ""
    runs = "run (children inherit this profile)" if executables is None else "run as listed below"
    writes = "; write too (filesystem.read_only = false)" if "w" in perms else ""
    lines = [f"# Every file of the image: read, map, {runs}{writes}.", f'"/**" {perms},']
    lines += _writable_rules(manifest)
    if executables is not None:
        lines += _executable_rules(executables)
    return lines


def _writable_targets(manifest: Manifest) -> list[tuple[str, str]]:
    """(target, kind) of every writable mount, sorted, for deterministic output."""
    fs = manifest.filesystem
    targets = [(t.target, "tmpfs") for t in fs.tmpfs]
    targets += [(m.target, m.type) for m in fs.mounts if not m.read_only]
    return sorted(targets)


def _writable_rules(manifest: Manifest) -> list[str]:
    lines: list[str] = []
    for target, kind in _writable_targets(manifest):
        exact, below = _aa_value(target, "path"), _aa_value(target, "path", glob="/**")
        plain = exact.strip('"')
        if any(plain == tree or plain.startswith(tree + "/") for tree in _DENIED_TREES):
            raise ProfileError(
                f"apparmor: writable {kind} at {target!r} lies under a kernel interface whose "
                "writes the profile denies (/proc, /sys); mount it elsewhere"
            )
        lines += [f"# writable {kind}", f"{exact} rwk,", f"{below} rwkl,"]
    return lines


def _executable_rules(executables: list[str]) -> list[str]:
    if not executables:
        raise ProfileError(
            "apparmor: apparmor.executables is empty, so not even the entrypoint could start",
            fix="list the binaries the app runs (real paths, after symlinks), or remove the key",
        )
    lines = ["# apparmor.executables: the only programs that may run; children inherit this."]
    lines += [f"{_aa_value(path, 'path')} ix," for path in sorted(set(executables))]
    return lines


def _network_rules(manifest: Manifest) -> list[str]:
    wanted = {_aa_value(entry, "network") for entry in manifest.apparmor.network}
    if not wanted:
        return ["# apparmor.network is empty: no TCP, UDP or ICMP sockets."]
    return [rule for family, rules in NETWORK_RULES.items() if family in wanted for rule in rules]


def _capability_rules(manifest: Manifest) -> list[str]:
    caps = sorted({_aa_value(cap, "capability") for cap in manifest.capabilities.add})
    if not caps:
        return ["# capabilities.add is empty: every capability is denied."]
    return [f"capability {cap}," for cap in caps]


class ApparmorAction(StrEnum):
    """What `saferun run` does about AppArmor."""

    GENERATE = "generate"  # render, load with apparmor_parser -r, run under it
    NAMED = "named"  # run under a profile the host already has loaded
    UNCONFINED = "unconfined"  # apparmor.mode = "off", allowed by exceptions.apparmor_off
    SKIP = "skip"  # the host has no AppArmor and enforcement is "preferred": warn


class ApparmorDecision(msgspec.Struct, frozen=True):
    """The outcome for one run: what to load, which security option, what to tell the user."""

    action: ApparmorAction
    profile_name: str | None = None
    profile_text: str | None = None  # set only for GENERATE: load this before starting
    warning: str | None = None

    @property
    def security_opt(self) -> str | None:
        """`apparmor=NAME` for docker's --security-opt, or None to pass nothing."""
        if self.action is ApparmorAction.UNCONFINED:
            return "apparmor=unconfined"
        if self.action in (ApparmorAction.GENERATE, ApparmorAction.NAMED):
            return f"apparmor={self.profile_name}"
        return None

    @property
    def to_load(self) -> tuple[str, str] | None:
        """(name, text) of the profile to load with apparmor_parser, if any."""
        if self.profile_name is not None and self.profile_text is not None:
            return self.profile_name, self.profile_text
        return None


def decide_apparmor(manifest: Manifest, host_has_apparmor: bool) -> ApparmorDecision:
    """Decide how the manifest's [apparmor] applies on a host; refuse if it cannot.

    Values are validated (and the profile rendered) before the host is considered, so a
    broken manifest fails the same way on every host instead of only where AppArmor runs.
    """
    section = manifest.apparmor
    if section.mode == "off":
        # Harmless on hosts without AppArmor; on others it stops docker-default applying.
        return ApparmorDecision(ApparmorAction.UNCONFINED)
    if section.mode == "profile":
        name, text = _aa_value(section.profile, "profile-name"), None
        what = f"apparmor.profile '{name}'"
    else:
        name = profile_name_for(manifest)
        text = render_apparmor(manifest, profile_name=name)
        what = f"the generated AppArmor profile '{name}'"
    if host_has_apparmor:
        action = ApparmorAction.NAMED if text is None else ApparmorAction.GENERATE
        return ApparmorDecision(action, profile_name=name, profile_text=text)
    if section.enforcement == "required":
        raise RequirementUnmet(
            f'apparmor.enforcement = "required", but AppArmor is absent on this host (the '
            f"daemon does not list it in its security options), so {what} cannot be applied",
            fix='enable AppArmor in the kernel (boot with apparmor=1 security=apparmor, as '
            'Debian and Ubuntu do by default) or set apparmor.enforcement = "preferred"',
        )
    return ApparmorDecision(
        ApparmorAction.SKIP,
        warning=f"AppArmor is absent on this host; {what} is not applied "
        '(apparmor.enforcement = "preferred"; set "required" to refuse instead)',
    )
