"""Generate a Docker/OCI seccomp profile from a manifest's `[seccomp]` section.

Pure: the inputs are the validated section, the capabilities the container keeps, the
daemon's native architecture and the runtime; the output is a plain JSON-able dict. The
only thing read is saferun's own data folder (`seccomp/*.toml`), once, cached.

Everything is resolved here, in Python, into plain OCI rules (names, action, errnoRet,
args): no `includes`/`excludes` are left for docker to evaluate, so what the profile
allows can be read from the JSON alone, checked by libseccomp (seccomp_check) and diffed.
Each rule carries a `comment` saying which group, capability, guard or runtime put it
there (docker accepts the key and ignores it).

Precedence, from strongest: the runtime's own needs (a manifest cannot deny them: the
container would not start), explicit `deny` in the manifest, capabilities and explicit
`allow` in the manifest, the base profile.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

import msgspec

from saferun.data import data_dir
from saferun.errors import ProfileError
from saferun.model.manifest import SeccompSection

ERRNO_VALUES: dict[str, int] = {"EPERM": 1, "ENOSYS": 38}
ACT_ALLOW = "SCMP_ACT_ALLOW"
ACT_ERRNO = "SCMP_ACT_ERRNO"
ACT_LOG = "SCMP_ACT_LOG"
# The one refusing action the kernel logs without SECCOMP_FILTER_FLAG_LOG, which Docker
# 20.10 drops from a profile (verified: its `flags` key never reaches runc's config.json).
ACT_KILL_PROCESS = "SCMP_ACT_KILL_PROCESS"

# saferun's architecture names -> libseccomp's.
SCMP_ARCHES: dict[str, str] = {
    "x86_64": "SCMP_ARCH_X86_64",
    "x86": "SCMP_ARCH_X86",
    "x32": "SCMP_ARCH_X32",
    "aarch64": "SCMP_ARCH_AARCH64",
    "arm": "SCMP_ARCH_ARM",
}
# `docker info`'s Architecture (Go's or uname's spelling) -> saferun's name.
NATIVE_ALIASES: dict[str, str] = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "aarch64",
    "armv7l": "arm",
    "armv6l": "arm",
    "arm": "arm",
    "i386": "x86",
    "i686": "x86",
    "x86": "x86",
}
# A 64-bit kernel also runs its compat ABIs: a filter that omits them lets a process
# switch ABI to reach calls the native table denies (Docker's archMap does the same).
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "x86_64": ("x86", "x32"),
    "aarch64": ("arm",),
    "arm": (),
    "x86": (),
}
OPS: dict[str, str] = {
    "eq": "SCMP_CMP_EQ",
    "ne": "SCMP_CMP_NE",
    "lt": "SCMP_CMP_LT",
    "le": "SCMP_CMP_LE",
    "gt": "SCMP_CMP_GT",
    "ge": "SCMP_CMP_GE",
    "masked_eq": "SCMP_CMP_MASKED_EQ",
}


class Group(msgspec.Struct, frozen=True):
    name: str
    purpose: str
    safe: bool
    entries: tuple[str, ...]


class Condition(msgspec.Struct, frozen=True):
    index: int
    op: str
    value: int
    value_two: int = 0

    def to_oci(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "value": self.value,
            "valueTwo": self.value_two,
            "op": OPS[self.op],
        }


Alternatives = tuple[tuple[Condition, ...], ...]


class Guard(msgspec.Struct, frozen=True):
    name: str
    purpose: str
    lifted_by: frozenset[str]
    allow_when: Alternatives
    deny_when: Alternatives
    errno_when: Alternatives
    errno: str | None


class BaseProfile(msgspec.Struct, frozen=True):
    name: str
    purpose: str
    allow: tuple[str, ...]
    deny: tuple[str, ...]


class RuntimeNeeds(msgspec.Struct, frozen=True):
    name: str
    purpose: str
    syscalls: tuple[str, ...]
    arches: Mapping[str, tuple[str, ...]]


class SeccompData(msgspec.Struct, frozen=True):
    groups: Mapping[str, Group]
    profiles: Mapping[str, BaseProfile]
    guards: Mapping[str, Guard]
    capabilities: Mapping[str, tuple[str, ...]]
    runtimes: Mapping[str, RuntimeNeeds]
    # call -> the calls libc or a runtime makes instead when it is refused (fallbacks.toml)
    fallbacks: Mapping[str, tuple[str, ...]] = {}


def _read_toml(name: str) -> dict[str, Any]:
    with open(data_dir("seccomp") / name, "rb") as handle:
        return tomllib.load(handle)


def _alternatives(raw: list[list[dict[str, Any]]] | None) -> Alternatives:
    return tuple(tuple(Condition(**cond) for cond in alt) for alt in raw or ())


@cache
def load_data() -> SeccompData:
    """Read the data folder once; everything after this is computation."""
    groups = {
        name: Group(name, g["purpose"], bool(g["safe"]), tuple(g["syscalls"]))
        for name, g in _read_toml("groups.toml").items()
    }
    profiles = {
        name: BaseProfile(name, p["purpose"], tuple(p["allow"]), tuple(p["deny"]))
        for name, p in _read_toml("profiles.toml").items()
    }
    guards = {
        name: Guard(
            name,
            g["purpose"],
            frozenset(g["lifted_by"]),
            _alternatives(g.get("allow_when")),
            _alternatives(g.get("deny_when")),
            _alternatives(g.get("errno_when", g.get("deny_when"))),
            g.get("errno"),
        )
        for name, g in _read_toml("guards.toml").items()
    }
    capabilities = {cap: tuple(c["syscalls"]) for cap, c in _read_toml("capabilities.toml").items()}
    runtimes = {
        name: RuntimeNeeds(
            name,
            r["purpose"],
            tuple(r["syscalls"]),
            {arch: tuple(calls) for arch, calls in r.get("arches", {}).items()},
        )
        for name, r in _read_toml("runtimes.toml").items()
    }
    fallbacks = {name: tuple(f["fallbacks"]) for name, f in _read_toml("fallbacks.toml").items()}
    return SeccompData(groups, profiles, guards, capabilities, runtimes, fallbacks)


def with_fallbacks(names: Iterable[str], fallbacks: Mapping[str, Iterable[str]]) -> set[str]:
    """NAMES and, transitively, the calls made instead of each when it is refused."""
    found = set(names)
    pending = list(found)
    while pending:
        for fallback in fallbacks.get(pending.pop(), ()):
            if fallback not in found:
                found.add(fallback)
                pending.append(fallback)
    return found


def expand(entries: Iterable[str], groups: Mapping[str, Group]) -> dict[str, str]:
    """Names and @groups -> {syscall: the @group that lists it directly, or the bare name}.

    Includes are followed depth-first; a group that (indirectly) includes itself is an
    error rather than a silent truncation, because the data is edited by hand.
    """
    found: dict[str, str] = {}
    for entry in entries:
        _expand_entry(entry, groups, found, stack=(), label=entry)
    return found


def _expand_entry(
    entry: str,
    groups: Mapping[str, Group],
    found: dict[str, str],
    stack: tuple[str, ...],
    label: str,
) -> None:
    if not entry.startswith("@"):
        found.setdefault(entry, label)
        return
    name = entry[1:]
    if name not in groups:
        import difflib  # only for the message

        close = difflib.get_close_matches(name, list(groups), n=1)
        hint = f" (did you mean @{close[0]}?)" if close else ""
        raise ProfileError(
            f"unknown seccomp group '{entry}'{hint}",
            fix="see docs/seccomp.md for the list of groups",
        )
    if name in stack:
        cycle = " -> ".join(f"@{part}" for part in (*stack[stack.index(name) :], name))
        raise ProfileError(f"seccomp group include cycle: {cycle}")
    for item in groups[name].entries:
        _expand_entry(item, groups, found, (*stack, name), entry)


def target_architectures(section: SeccompSection, native_arch: str) -> tuple[str, ...]:
    """The manifest's list, or the native architecture and its compat neighbours.

    The native architecture must be in the list: a filter without it kills every process
    on this host at its first system call.
    """
    native = NATIVE_ALIASES.get(native_arch)
    if native is None:
        raise ProfileError(
            f"the daemon's architecture '{native_arch}' is not supported by saferun's seccomp "
            f"profiles (supported: {', '.join(sorted(SCMP_ARCHES))})",
            fix='set seccomp.profile = "docker-default" on this host',
        )
    if not section.architectures:
        return (native, *NEIGHBOURS[native])
    arches = tuple(dict.fromkeys(section.architectures))
    if native not in arches:
        raise ProfileError(
            f"seccomp.architectures = {list(arches)} leaves out the daemon's own architecture "
            f"'{native}': every process would be killed at its first system call",
            fix=f'add "{native}" to seccomp.architectures, or remove the key',
        )
    return (native, *sorted(a for a in arches if a != native))


class _Sources(msgspec.Struct, frozen=True):
    """Every input of the resolution, expanded to {syscall: provenance label}."""

    base_allow: dict[str, str]
    base_deny: dict[str, str]
    manifest_allow: dict[str, str]
    manifest_deny: dict[str, str]
    capabilities: dict[str, str]
    runtime: dict[str, str]
    lifted: frozenset[str]


def _labelled(found: dict[str, str], prefix: str) -> dict[str, str]:
    return {name: f"{prefix}: {label}" for name, label in found.items()}


def _collect(
    section: SeccompSection,
    data: SeccompData,
    capabilities: frozenset[str],
    runtime: str,
    native: str,
) -> _Sources:
    base = data.profiles[section.profile]
    if runtime not in data.runtimes:
        raise ProfileError(f"no seccomp runtime needs are known for runtime '{runtime}'")
    needs = data.runtimes[runtime]
    caps: dict[str, str] = {}
    for cap in sorted(capabilities):
        for name in data.capabilities.get(cap, ()):
            caps.setdefault(name, f"capability {cap}")
    runtime_calls = (*needs.syscalls, *needs.arches.get(native, ()))
    explicit = set(section.allow) | set(capabilities)
    lifted = frozenset(g.name for g in data.guards.values() if g.lifted_by & explicit)
    # A measured list (`saferun learn`) replaces the base profile's allow list; guards stay on
    # because the names were recorded, not written by a person who meant to lift them.
    base_allow = (
        _labelled(expand(base.allow, data.groups), f"profile {base.name}")
        if section.learned is None
        else {name: "learned" for name in section.learned}
    )
    return _Sources(
        base_allow=base_allow,
        base_deny=_labelled(expand(base.deny, data.groups), f"profile {base.name} deny"),
        manifest_allow=_labelled(expand(section.allow, data.groups), "manifest allow"),
        manifest_deny=_labelled(expand(section.deny, data.groups), "manifest deny"),
        capabilities=caps,
        runtime={name: f"runtime {runtime}" for name in sorted(runtime_calls)},
        lifted=lifted,
    )


def _refuse_runtime_denials(sources: _Sources, runtime: str) -> None:
    clash = sorted(set(sources.runtime) & set(sources.manifest_deny))
    if clash:
        raise ProfileError(
            f"seccomp.deny removes {', '.join(clash)}, which the {runtime} runtime calls after "
            "installing the filter: the container could not start",
            fix="remove these names (or the group that holds them) from seccomp.deny",
        )


def _allowed_set(sources: _Sources) -> dict[str, str]:
    """Allowlist and log modes: everything any source allows, minus explicit denies."""
    allowed: dict[str, str] = {}
    # Labels: the first source that brings a name, so `runtime runc` shows only what the
    # runtime adds beyond the profile.
    for source in (
        sources.base_allow,
        sources.manifest_allow,
        sources.capabilities,
        sources.runtime,
    ):
        for name, label in source.items():
            allowed.setdefault(name, label)
    for name in sources.manifest_deny:
        if name not in sources.runtime:
            allowed.pop(name, None)
    return allowed


def _denied_set(sources: _Sources) -> dict[str, str]:
    """Denylist mode: what is denied; explicit manifest denies win over allows."""
    exempt = set(sources.manifest_allow) | set(sources.capabilities) | set(sources.runtime)
    denied = {name: label for name, label in sources.base_deny.items() if name not in exempt}
    denied.update(sources.manifest_deny)
    return denied


def _rule(
    names: Iterable[str],
    action: str,
    comment: str,
    *,
    errno: int | None = None,
    args: tuple[Condition, ...] = (),
) -> dict[str, Any]:
    rule: dict[str, Any] = {"names": sorted(names), "action": action}
    if errno is not None:
        rule["errnoRet"] = errno
    if args:
        rule["args"] = [cond.to_oci() for cond in args]
    rule["comment"] = comment
    return rule


def _grouped(labelled: Mapping[str, str], action: str, errno: int | None) -> list[dict[str, Any]]:
    """One rule per provenance label, so the JSON says why each name is there."""
    by_label: dict[str, list[str]] = {}
    for name, label in labelled.items():
        by_label.setdefault(label, []).append(name)
    return [_rule(by_label[label], action, label, errno=errno) for label in sorted(by_label)]


def _active_guards(data: SeccompData, sources: _Sources) -> list[Guard]:
    return [data.guards[name] for name in sorted(data.guards) if name not in sources.lifted]


def _allowlist_rules(
    sources: _Sources, data: SeccompData, errno: int, log: bool
) -> list[dict[str, Any]]:
    allowed = _allowed_set(sources)
    guards = _active_guards(data, sources)
    guarded = {g.name for g in guards}
    rules = _grouped({n: lb for n, lb in allowed.items() if n not in guarded}, ACT_ALLOW, None)
    explicit = not log and errno != ERRNO_VALUES["EPERM"]
    if explicit:
        rules += _grouped(_explicitly_refused(sources, allowed, guarded), ACT_ERRNO, errno)
    for guard in guards:
        comment = f"guard {guard.name}: {guard.purpose}"
        if guard.name in allowed:
            rules += [_rule([guard.name], ACT_ALLOW, comment, args=alt) for alt in guard.allow_when]
        if not log and (guard.errno or explicit):
            guard_errno = ERRNO_VALUES[guard.errno] if guard.errno else errno
            rules += [
                _rule([guard.name], ACT_ERRNO, comment, errno=guard_errno, args=alt)
                for alt in guard.errno_when
            ]
    return rules


def _explicitly_refused(
    sources: _Sources, allowed: Mapping[str, str], guarded: set[str]
) -> dict[str, str]:
    """The refused names that get an explicit errno rule when errno is not EPERM.

    The default action already returns the errno through `defaultErrnoRet`, but engines
    before Docker 23 drop that key and return EPERM. Listing the base profile's deny list
    (and the manifest's) makes the known-dangerous calls return the configured errno on
    every engine; runc skips rules that repeat the default.
    """
    refused = {**sources.base_deny, **sources.manifest_deny}
    return {n: lb for n, lb in refused.items() if n not in allowed and n not in guarded}


def _denylist_rules(sources: _Sources, data: SeccompData, errno: int) -> list[dict[str, Any]]:
    denied = _denied_set(sources)
    guards = _active_guards(data, sources)
    own_errno = {g.name for g in guards if g.errno}
    rules = _grouped({n: lb for n, lb in denied.items() if n not in own_errno}, ACT_ERRNO, errno)
    for guard in guards:
        if guard.name in denied and guard.name not in own_errno:
            continue
        comment = f"guard {guard.name}: {guard.purpose}"
        guard_errno = ERRNO_VALUES[guard.errno] if guard.errno else errno
        alternatives = ((),) if guard.name in denied else guard.deny_when
        rules += [
            _rule([guard.name], ACT_ERRNO, comment, errno=guard_errno, args=alt)
            for alt in alternatives
        ]
    return rules


def generate_seccomp(
    section: SeccompSection, *, capabilities: frozenset[str], native_arch: str, runtime: str
) -> dict[str, Any]:
    """The profile docker gets with `--security-opt seccomp=FILE`, as a dict.

    `capabilities` are the canonical names the container keeps (after `--cap-drop ALL`);
    `native_arch` is docker's `Architecture` from /info; `runtime` is runc, gvisor or kata.
    """
    data = load_data()
    if section.profile not in data.profiles:
        raise ProfileError(
            f'seccomp.profile = "{section.profile}" is not generated by saferun',
            fix=f"use one of: {', '.join(sorted(data.profiles))}",
        )
    arches = target_architectures(section, native_arch)
    sources = _collect(section, data, capabilities, runtime, arches[0])
    _refuse_runtime_denials(sources, runtime)
    errno = ERRNO_VALUES[section.errno]
    profile: dict[str, Any]
    if section.mode == "denylist":
        profile = {"defaultAction": ACT_ALLOW}
        rules = _denylist_rules(sources, data, errno)
    elif section.mode == "log":
        profile = {"defaultAction": ACT_LOG}
        rules = _allowlist_rules(sources, data, errno, log=True)
    else:
        profile = {"defaultAction": ACT_ERRNO, "defaultErrnoRet": errno}
        rules = _allowlist_rules(sources, data, errno, log=False)
    if section.report == "kill":
        rules = _reported(rules, sources, data)
    profile["architectures"] = [SCMP_ARCHES[arch] for arch in arches]
    profile["syscalls"] = rules
    return profile


def _reported(rules: list[dict[str, Any]], sources: _Sources,
              data: SeccompData) -> list[dict[str, Any]]:
    """`report = "kill"`: the calls denied by name kill the caller, so the kernel logs them.

    The rest of the profile (allowed names, argument guards, the default action) is kept;
    only names with no allow rule are turned into a kill rule, so a guard's allowed
    arguments still pass.
    """
    refused = {**sources.base_deny, **sources.manifest_deny}
    allowed_by_rule = {n for r in rules if r["action"] in (ACT_ALLOW, ACT_LOG) for n in r["names"]}
    killed = {n: f"{label} (report = kill)" for n, label in refused.items()
              if n not in allowed_by_rule and n not in sources.runtime}
    kept = []
    for rule in rules:
        if rule["action"] == ACT_ERRNO and not rule.get("args"):
            names = [n for n in rule["names"] if n not in killed]
            if not names:
                continue
            rule = {**rule, "names": names}
        kept.append(rule)
    return kept + _grouped(killed, ACT_KILL_PROCESS, None)


def listed_names(
    section: SeccompSection, *, capabilities: frozenset[str], native_arch: str, runtime: str
) -> frozenset[str]:
    """The names an allowlist profile allows by name, before argument guards narrow some of
    them (clone3's guard refuses it whatever its arguments): what `saferun why` compares a
    refused call with, to tell a missing name from a guard."""
    data = load_data()
    if section.profile not in data.profiles or section.mode == "denylist":
        return frozenset()
    arches = target_architectures(section, native_arch)
    return frozenset(_allowed_set(_collect(section, data, capabilities, runtime, arches[0])))


def render_seccomp_json(profile: dict[str, Any]) -> str:
    """Canonical JSON text: sorted keys, two-space indent, final newline.

    Same profile, same bytes, so a profile can be cached by hash and checked for drift.
    """
    return json.dumps(profile, indent=2, sort_keys=True, ensure_ascii=True) + "\n"
