"""Check a seccomp profile with libseccomp itself, before docker ever sees it.

runc hands the profile to the same library, so compiling it here finds what would make
the container fail to start (or, worse, start with a rule silently skipped): unknown
names, arguments libseccomp refuses, filters over the kernel's 4096-instruction limit.
A profile that fails here is never given to docker.

Also the profile QA for scripts: which high-risk calls a profile still allows
(`--verify`), and what a new profile adds or removes compared with an old one
(`--against`). Both read the plain OCI JSON, so they work on any profile without
docker-side `includes`/`excludes`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pyseccomp

from saferun.errors import ProfileError
from saferun.model.manifest import SeccompSection

BPF_MAX_INSTRUCTIONS = 4096  # BPF_MAXINSNS: the kernel refuses longer filters
BPF_INSTRUCTION_BYTES = 8

ARCHES: dict[str, int] = {
    "SCMP_ARCH_X86_64": pyseccomp.Arch.X86_64,
    "SCMP_ARCH_X86": pyseccomp.Arch.X86,
    "SCMP_ARCH_X32": pyseccomp.Arch.X32,
    "SCMP_ARCH_AARCH64": pyseccomp.Arch.AARCH64,
    "SCMP_ARCH_ARM": pyseccomp.Arch.ARM,
}
OPS: dict[str, int] = {
    "SCMP_CMP_NE": pyseccomp.NE,
    "SCMP_CMP_LT": pyseccomp.LT,
    "SCMP_CMP_LE": pyseccomp.LE,
    "SCMP_CMP_EQ": pyseccomp.EQ,
    "SCMP_CMP_GE": pyseccomp.GE,
    "SCMP_CMP_GT": pyseccomp.GT,
    "SCMP_CMP_MASKED_EQ": pyseccomp.MASKED_EQ,
}
_OP_TEXT = {
    "SCMP_CMP_NE": "!=",
    "SCMP_CMP_LT": "<",
    "SCMP_CMP_LE": "<=",
    "SCMP_CMP_EQ": "==",
    "SCMP_CMP_GE": ">=",
    "SCMP_CMP_GT": ">",
}
_PERMISSIVE = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG")
_UNKNOWN = -1  # __NR_SCMP_ERROR: libseccomp does not know the name at all


@dataclass(frozen=True)
class CheckResult:
    """What libseccomp made of a profile."""

    architectures: tuple[str, ...]
    names: int
    rules: int
    instructions: int  # libseccomp's default layout (linear per-syscall checks)
    tree_instructions: int  # with SCMP_FLTATR_CTL_OPTIMIZE=2 (binary tree), as runc can use
    absent: dict[str, tuple[str, ...]] = field(default_factory=dict)  # arch -> skipped names

    def as_dict(self) -> dict[str, Any]:
        return {
            "architectures": list(self.architectures),
            "names": self.names,
            "rules": self.rules,
            "bpf_instructions": self.instructions,
            "bpf_bytes": self.instructions * BPF_INSTRUCTION_BYTES,
            "bpf_instructions_tree": self.tree_instructions,
            "absent_on_arch": {arch: len(names) for arch, names in self.absent.items()},
        }


@cache
def known_syscalls() -> tuple[str, ...]:
    """Every name libseccomp knows on saferun's architectures, for "did you mean" hints.

    libseccomp has no list API, so numbers are resolved back to names: the real tables,
    ARM's private range and the negative pseudo-numbers of calls an arch lacks.
    """
    names: set[str] = set()
    x32_base = 0x40000000
    for arch in ARCHES.values():
        base = x32_base if arch == pyseccomp.Arch.X32 else 0
        numbers = [*range(base, base + 1024), *range(0xF0000, 0xF0010), *range(-10600, -10000)]
        for number in numbers:
            try:
                names.add(pyseccomp.resolve_syscall(arch, number).decode())
            except ValueError:
                continue
    return tuple(sorted(names))


def _rule_names(rule: dict[str, Any]) -> list[str]:
    if "names" in rule:
        return list(rule["names"] or [])
    return [rule["name"]] if rule.get("name") else []


def _profile_arches(profile: dict[str, Any]) -> tuple[str, ...]:
    arches = tuple(profile.get("architectures") or ())
    if not arches:
        raise ProfileError("the seccomp profile lists no architectures")
    unknown = [arch for arch in arches if arch not in ARCHES]
    if unknown:
        raise ProfileError(f"unsupported seccomp architecture(s): {', '.join(unknown)}")
    return arches


def resolve_names(profile: dict[str, Any], extra: Iterable[str] = ()) -> dict[str, tuple[str, ...]]:
    """Every name must be known to libseccomp on every target arch; -> {arch: absent names}.

    A name that exists but not on one arch (socketcall outside x86) is skipped there by
    libseccomp and reported; a name libseccomp does not know is an error with a hint.
    `extra` are names that need not appear in the JSON (an allowlist's denies are
    implicit) but were written by a person and must be real.
    """
    arches = _profile_arches(profile)
    names = sorted(
        {n for rule in profile.get("syscalls") or () for n in _rule_names(rule)} | set(extra)
    )
    absent: dict[str, list[str]] = {arch: [] for arch in arches}
    for name in names:
        numbers = {arch: pyseccomp.resolve_syscall(ARCHES[arch], name) for arch in arches}
        unknown_on = [arch for arch, number in numbers.items() if number == _UNKNOWN]
        if unknown_on:
            raise _unknown_name(name, unknown_on)
        for arch, number in numbers.items():
            if number < 0:
                absent[arch].append(name)
    return {arch: tuple(found) for arch, found in absent.items()}


def _unknown_name(name: str, arches: list[str]) -> ProfileError:
    close = difflib.get_close_matches(name, known_syscalls(), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    where = ", ".join(arch.removeprefix("SCMP_ARCH_").lower() for arch in arches)
    return ProfileError(
        f"unknown syscall '{name}' on {where}{hint}",
        fix=f"check the spelling in seccomp.allow/deny; libseccomp ({_libseccomp_version()}) "
        "does not know this name",
    )


def _libseccomp_version() -> str:
    try:
        return f"API level {pyseccomp.get_api()}"
    except NotImplementedError:  # pragma: no cover - very old libseccomp
        return "(unknown version)"


def _action(name: str, errno: int | None) -> int:
    simple = {
        "SCMP_ACT_ALLOW": pyseccomp.ALLOW,
        "SCMP_ACT_LOG": pyseccomp.LOG,
        "SCMP_ACT_KILL": pyseccomp.KILL,
        "SCMP_ACT_KILL_THREAD": pyseccomp.KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS": pyseccomp.KILL_PROCESS,
        "SCMP_ACT_TRAP": pyseccomp.TRAP,
    }
    if name in simple:
        return simple[name]
    if name == "SCMP_ACT_ERRNO":
        return pyseccomp.ERRNO(1 if errno is None else errno)
    raise ProfileError(f"unsupported seccomp action '{name}'")


def _args(rule: dict[str, Any]) -> list[pyseccomp.Arg]:
    args = []
    for arg in rule.get("args") or ():
        if arg["op"] not in OPS:
            raise ProfileError(f"unsupported seccomp argument operator '{arg['op']}'")
        args.append(
            pyseccomp.Arg(arg["index"], OPS[arg["op"]], arg["value"], arg.get("valueTwo", 0))
        )
    return args


def _build_filter(profile: dict[str, Any], optimize: int) -> pyseccomp.SyscallFilter:
    default = _action(profile["defaultAction"], profile.get("defaultErrnoRet"))
    flt = pyseccomp.SyscallFilter(default)
    arches = [ARCHES[arch] for arch in _profile_arches(profile)]
    for arch in arches:
        if not flt.exist_arch(arch):
            flt.add_arch(arch)
    native = pyseccomp.system_arch()
    if native not in arches:
        flt.remove_arch(native)
    if optimize > 1:
        flt.set_attr(pyseccomp.Attr.CTL_OPTIMIZE, optimize)
    for rule in profile.get("syscalls") or ():
        action = _action(rule["action"], rule.get("errnoRet"))
        if action == default:
            continue  # libseccomp refuses such rules (EACCES); runc skips them the same way
        for name in _rule_names(rule):
            try:
                flt.add_rule(action, name, *_args(rule))
            except OSError as exc:
                why = rule.get("comment", "no comment")
                raise ProfileError(
                    f"libseccomp refused the rule for '{name}' ({why}): "
                    f"{os.strerror(exc.errno or 0)}"
                ) from None
    return flt


def compile_bpf(profile: dict[str, Any], *, optimize: int = 1) -> bytes:
    """The BPF program libseccomp generates, via an anonymous in-memory file."""
    flt = _build_filter(profile, optimize)
    fd = os.memfd_create("saferun-seccomp-bpf", os.MFD_CLOEXEC)
    with os.fdopen(fd, "w+b") as handle:
        flt.export_bpf(handle)
        handle.seek(0)
        return handle.read()


def check_profile(profile: dict[str, Any], extra_names: Iterable[str] = ()) -> CheckResult:
    """Resolve every name, compile, and refuse what the kernel or runc would refuse."""
    absent = resolve_names(profile, extra_names)
    instructions = len(compile_bpf(profile)) // BPF_INSTRUCTION_BYTES
    tree = len(compile_bpf(profile, optimize=2)) // BPF_INSTRUCTION_BYTES
    if min(instructions, tree) > BPF_MAX_INSTRUCTIONS:
        raise ProfileError(
            f"the seccomp filter compiles to {min(instructions, tree)} BPF instructions; the "
            f"kernel accepts at most {BPF_MAX_INSTRUCTIONS}",
            fix="use fewer argument conditions or the denylist mode",
        )
    rules = profile.get("syscalls") or []
    return CheckResult(
        architectures=_profile_arches(profile),
        names=len({n for rule in rules for n in _rule_names(rule)}),
        rules=len(rules),
        instructions=instructions,
        tree_instructions=tree,
        absent={arch: names for arch, names in absent.items() if names},
    )


# --- reading a profile back: what does it do with each name? -------------------------------

ALLOWED, PARTIAL, DENIED = 2, 1, 0


@dataclass(frozen=True)
class Effect:
    """What a profile does with one syscall: a level for comparisons, a text for humans."""

    level: int
    text: str


def _action_text(action: str, errno: int | None) -> str:
    short = action.removeprefix("SCMP_ACT_").lower()
    return f"errno {errno if errno is not None else 1}" if short == "errno" else short


def _rule_text(rule: dict[str, Any]) -> str:
    text = _action_text(rule["action"], rule.get("errnoRet"))
    conditions = []
    for arg in rule.get("args") or ():
        if arg["op"] == "SCMP_CMP_MASKED_EQ":
            expected = arg.get("valueTwo", 0)
            conditions.append(f"arg{arg['index']} & {arg['value']:#x} == {expected:#x}")
        else:
            conditions.append(f"arg{arg['index']} {_OP_TEXT[arg['op']]} {arg['value']:#x}")
    if rule.get("includes") or rule.get("excludes"):
        conditions.append("docker-side conditions")
    return f"{text} if {' && '.join(conditions)}" if conditions else text


def _is_conditional(rule: dict[str, Any]) -> bool:
    return bool(rule.get("args") or rule.get("includes") or rule.get("excludes"))


def effects(profile: dict[str, Any]) -> tuple[Effect, dict[str, Effect]]:
    """(the default's effect, {name: effect}) for every name the profile mentions."""
    default_action = profile["defaultAction"]
    default = Effect(
        ALLOWED if default_action in _PERMISSIVE else DENIED,
        _action_text(default_action, profile.get("defaultErrnoRet")),
    )
    rules_by_name: dict[str, list[dict[str, Any]]] = {}
    for rule in profile.get("syscalls") or ():
        for name in _rule_names(rule):
            rules_by_name.setdefault(name, []).append(rule)
    return default, {name: _effect(rules, default) for name, rules in rules_by_name.items()}


def _effect(rules: list[dict[str, Any]], default: Effect) -> Effect:
    unconditional = [rule for rule in rules if not _is_conditional(rule)]
    if unconditional:
        rule = unconditional[0]
        return Effect(ALLOWED if rule["action"] in _PERMISSIVE else DENIED, _rule_text(rule))
    text = " | ".join(sorted({_rule_text(rule) for rule in rules})) + f" | else {default.text}"
    permissive = any(rule["action"] in _PERMISSIVE for rule in rules)
    restrictive = any(rule["action"] not in _PERMISSIVE for rule in rules)
    if default.level == ALLOWED:
        return Effect(PARTIAL if restrictive else ALLOWED, text)
    return Effect(PARTIAL if permissive else DENIED, text)


def _effect_of(name: str, default: Effect, named: dict[str, Effect]) -> Effect:
    return named.get(name, default)


def verify_high_risk(
    profile: dict[str, Any],
    high_risk: Iterable[str] | None = None,
    guarded: Iterable[str] | None = None,
) -> list[str]:
    """High-risk syscalls the profile still allows, one line each, sorted.

    `high_risk` defaults to every call in saferun's @dangerous group; `guarded` (clone,
    clone3, personality, socket) are reported only when allowed with any argument.
    """
    from saferun.profiles.seccomp import expand, load_data

    data = load_data()
    risky = set(high_risk if high_risk is not None else expand(["@dangerous"], data.groups))
    guards = set(guarded if guarded is not None else data.guards)
    default, named = effects(profile)
    found = []
    for name in sorted(risky | guards):
        effect = _effect_of(name, default, named)
        if name in guards and name not in risky:
            if effect.level == ALLOWED:
                found.append(f"{name}: allowed with any argument ({effect.text})")
        elif effect.level == ALLOWED:
            found.append(f"{name}: allowed ({effect.text})")
        elif effect.level == PARTIAL:
            found.append(f"{name}: allowed for some arguments ({effect.text})")
    return found


@dataclass(frozen=True)
class ProfileDiff:
    """What a new profile allows that the old did not, and the reverse."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    default: tuple[str, str] | None
    architectures: tuple[tuple[str, ...], tuple[str, ...]] | None

    @property
    def empty(self) -> bool:
        return not (
            self.added or self.removed or self.changed or self.default or self.architectures
        )

    def lines(self) -> list[str]:
        out = []
        if self.default:
            out.append(f"default action: {self.default[0]} -> {self.default[1]}")
        if self.architectures:
            out.append(
                f"architectures: {', '.join(self.architectures[0])} -> "
                f"{', '.join(self.architectures[1])}"
            )
        out += [f"+ {line}" for line in self.added]
        out += [f"- {line}" for line in self.removed]
        out += [f"~ {line}" for line in self.changed]
        return out


def diff_profiles(old: dict[str, Any], new: dict[str, Any]) -> ProfileDiff:
    """Compare what each name may do: `+` more allowed, `-` less allowed, `~` otherwise changed."""
    old_default, old_named = effects(old)
    new_default, new_named = effects(new)
    added, removed, changed = [], [], []
    for name in sorted(set(old_named) | set(new_named)):
        before = _effect_of(name, old_default, old_named)
        after = _effect_of(name, new_default, new_named)
        line = f"{name}: {before.text} -> {after.text}"
        if after.level > before.level:
            added.append(line)
        elif after.level < before.level:
            removed.append(line)
        elif after.text != before.text:
            changed.append(line)
    old_arches = tuple(old.get("architectures") or ())
    new_arches = tuple(new.get("architectures") or ())
    return ProfileDiff(
        added=tuple(added),
        removed=tuple(removed),
        changed=tuple(changed),
        default=(old_default.text, new_default.text)
        if old_default.text != new_default.text
        else None,
        architectures=(old_arches, new_arches) if old_arches != new_arches else None,
    )


def generate_checked(
    section: SeccompSection, *, capabilities: frozenset[str], native_arch: str, runtime: str
) -> tuple[dict[str, Any], CheckResult]:
    """Generate a profile and check it; the only way saferun obtains a profile to use."""
    from saferun.profiles.seccomp import expand, generate_seccomp, load_data

    profile = generate_seccomp(
        section, capabilities=capabilities, native_arch=native_arch, runtime=runtime
    )
    written = expand([*section.allow, *section.deny], load_data().groups)
    return profile, check_profile(profile, written)


def names_by_source(profile: dict[str, Any]) -> dict[str, int]:
    """{source: number of names}, for `--stats`: why each name is in the profile."""
    counts: dict[str, int] = {}
    for rule in profile.get("syscalls") or ():
        comment = str(rule.get("comment") or "(no comment)")
        source = comment.split(":")[0] if comment.startswith("guard ") else comment
        counts[source] = counts.get(source, 0) + len(_rule_names(rule))
    return dict(sorted(counts.items()))
