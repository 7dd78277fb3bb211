"""The seccomp generator: group data, resolution rules, architectures, determinism."""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from saferun.data import data_dir
from saferun.errors import ProfileError
from saferun.model.manifest import Manifest, SeccompSection
from saferun.model.strict import ValidationError
from saferun.profiles.seccomp import (
    Group,
    expand,
    generate_seccomp,
    load_data,
    render_seccomp_json,
)

GOLDENS = Path(__file__).parent / "goldens"
UPDATE_GOLDENS = os.environ.get("SAFERUN_UPDATE_GOLDENS") == "1"

# Docker's default profile (moby/profiles seccomp/default.json): names no rule allows, and
# names allowed only with a capability. saferun's default must refuse all of them when the
# container keeps no capability.
DOCKER_NEVER_ALLOWED = {
    "add_key",
    "keyctl",
    "request_key",
    "kexec_load",
    "kexec_file_load",
    "pivot_root",
    "swapon",
    "swapoff",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "move_pages",
    "migrate_pages",
    "nfsservctl",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "sysfs",
    "_sysctl",
    "uselib",
    "ustat",
    "vm86",
    "vm86old",
}
DOCKER_CAP_GATED = {
    "bpf",
    "fanotify_init",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "perf_event_open",
    "quotactl",
    "quotactl_fd",
    "setdomainname",
    "sethostname",
    "setns",
    "syslog",
    "umount",
    "umount2",
    "unshare",
    "open_by_handle_at",
    "reboot",
    "chroot",
    "delete_module",
    "init_module",
    "finit_module",
    "acct",
    "kcmp",
    "pidfd_getfd",
    "process_madvise",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "iopl",
    "ioperm",
    "settimeofday",
    "stime",
    "clock_settime",
    "vhangup",
    "get_mempolicy",
    "mbind",
    "set_mempolicy",
    "set_mempolicy_home_node",
}
NAMESPACE_FLAGS = 0x7E020000


def generate(
    native: str = "x86_64",
    caps: frozenset[str] = frozenset(),
    runtime: str = "runc",
    **section: Any,
) -> dict[str, Any]:
    return generate_seccomp(
        SeccompSection(**section), capabilities=caps, native_arch=native, runtime=runtime
    )


def unconditional(profile: dict[str, Any], action: str = "SCMP_ACT_ALLOW") -> set[str]:
    return {
        n
        for rule in profile["syscalls"]
        if rule["action"] == action and "args" not in rule
        for n in rule["names"]
    }


def rules_for(profile: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [rule for rule in profile["syscalls"] if name in rule["names"]]


# --- the data ------------------------------------------------------------------------------


def test_groups_file_is_sorted_documented_and_acyclic() -> None:
    raw = tomllib.loads((data_dir("seccomp") / "groups.toml").read_text())
    assert list(raw) == sorted(raw)
    for name, group in raw.items():
        assert set(group) == {"purpose", "safe", "syscalls"}, name
        assert group["purpose"].strip() and "\n" not in group["purpose"], name
        assert isinstance(group["safe"], bool), name
        assert group["syscalls"] == sorted(group["syscalls"]), f"@{name} is not sorted"
        assert len(set(group["syscalls"])) == len(group["syscalls"]), f"@{name} has duplicates"
        assert expand([f"@{name}"], load_data().groups), f"@{name} expands to nothing"


def test_safe_groups_only_include_safe_groups() -> None:
    groups = load_data().groups
    for group in groups.values():
        for entry in group.entries:
            if entry.startswith("@") and group.safe:
                assert groups[entry[1:]].safe, f"safe @{group.name} includes unsafe {entry}"


def test_safe_and_dangerous_groups_do_not_overlap() -> None:
    groups = load_data().groups
    dangerous = set(expand(["@dangerous"], groups))
    safe = set(expand(["@system-service"], groups))
    assert not dangerous & safe
    unsafe_leaves = {g.name for g in groups.values() if not g.safe} - {"dangerous"}
    assert {f"@{name}" for name in unsafe_leaves} == set(groups["dangerous"].entries)


def test_capability_and_guard_data_use_known_names() -> None:
    data = load_data()
    from saferun.model.capabilities import CAPABILITY_BITS

    assert set(data.capabilities) <= set(CAPABILITY_BITS)
    for guard in data.guards.values():
        for lifter in guard.lifted_by:
            assert lifter in CAPABILITY_BITS or lifter[1:] in data.groups or lifter == guard.name


# --- expansion -----------------------------------------------------------------------------


def test_expand_follows_includes_and_labels_the_direct_group() -> None:
    groups = {
        "outer": Group("outer", "o", True, ("@inner", "read")),
        "inner": Group("inner", "i", True, ("write",)),
    }
    assert expand(["@outer", "close"], groups) == {
        "write": "@inner",
        "read": "@outer",
        "close": "close",
    }


def test_expand_detects_cycles() -> None:
    groups = {
        "a": Group("a", "a", True, ("@b",)),
        "b": Group("b", "b", True, ("@c", "read")),
        "c": Group("c", "c", True, ("@a",)),
    }
    with pytest.raises(ProfileError, match=r"cycle: @a -> @b -> @c -> @a"):
        expand(["@a"], groups)


def test_unknown_group_suggests_the_closest() -> None:
    with pytest.raises(
        ProfileError, match=r"unknown seccomp group '@keyrings' \(did you mean @keyring\?\)"
    ):
        generate(allow=["@keyrings"])


# --- the default profile -------------------------------------------------------------------


def test_default_refuses_everything_docker_refuses_and_io_uring() -> None:
    profile = generate()
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO" and profile["defaultErrnoRet"] == 1
    allowed = {
        n
        for rule in profile["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW"
        for n in rule["names"]
    }
    assert not allowed & (DOCKER_NEVER_ALLOWED | DOCKER_CAP_GATED)
    assert "read" in allowed and "execve" in allowed


def test_default_guards_clone_clone3_personality_and_socket() -> None:
    profile = generate()
    clone = rules_for(profile, "clone")
    assert [r["args"] for r in clone] == [
        [{"index": 0, "value": NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]
    ]
    clone3 = rules_for(profile, "clone3")
    assert [(r["action"], r["errnoRet"], "args" in r) for r in clone3] == [
        ("SCMP_ACT_ERRNO", 38, False)
    ]
    personality = {
        r["args"][0]["value"]
        for r in rules_for(profile, "personality")
        if r["action"] == "SCMP_ACT_ALLOW"
    }
    assert personality == {0, 8, 0x20000, 0x20008, 0xFFFFFFFF}
    sockets = {(a["op"], a["value"]) for r in rules_for(profile, "socket") for a in r["args"]}
    assert sockets == {("SCMP_CMP_LT", 38), ("SCMP_CMP_EQ", 39), ("SCMP_CMP_GT", 40)}


def test_strict_is_a_subset_of_default() -> None:
    strict, default = unconditional(generate(profile="strict")), unconditional(generate())
    assert strict < default
    assert not strict & {"shmget", "setuid", "sched_setaffinity", "io_setup"}


# --- capabilities and explicit lists -------------------------------------------------------


def test_capabilities_bring_their_syscalls() -> None:
    assert "ptrace" not in unconditional(generate())
    ptrace = generate(caps=frozenset({"CAP_SYS_PTRACE"}))
    assert {"ptrace", "process_vm_readv", "kcmp"} <= unconditional(ptrace)
    assert "mount" not in unconditional(ptrace)
    assert "clock_settime" in unconditional(generate(caps=frozenset({"CAP_SYS_TIME"})))


def test_sys_admin_lifts_the_clone_guards_like_docker() -> None:
    profile = generate(caps=frozenset({"CAP_SYS_ADMIN"}))
    assert {"clone", "clone3", "mount", "unshare", "setns"} <= unconditional(profile)
    assert not [r for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ERRNO"]


def test_allowing_a_group_allows_exactly_its_calls() -> None:
    base = unconditional(generate())
    with_keyring = unconditional(generate(allow=["@keyring"]))
    assert with_keyring - base == {"add_key", "keyctl", "request_key"}
    assert base <= with_keyring


def test_namespaces_group_lifts_the_clone_guard() -> None:
    profile = generate(allow=["@namespaces"])
    assert {"unshare", "setns", "clone", "clone3"} <= unconditional(profile)


def test_explicit_deny_wins_over_allow_and_capabilities() -> None:
    profile = generate(
        caps=frozenset({"CAP_SYS_PTRACE"}), allow=["@keyring"], deny=["ptrace", "keyctl", "@ipc"]
    )
    allowed = unconditional(profile)
    assert not allowed & {"ptrace", "keyctl", "shmget", "msgsnd"}
    assert {"add_key", "kcmp"} <= allowed


def test_runtime_needs_cannot_be_denied() -> None:
    with pytest.raises(ProfileError, match="execve.*runc runtime"):
        generate(deny=["@process"])


def test_runtime_needs_are_added_per_native_arch() -> None:
    with pytest.raises(ProfileError, match="arch_prctl"):
        generate(native="x86_64", deny=["arch_prctl"])
    profile = generate(native="aarch64", deny=["arch_prctl"])
    assert "arch_prctl" not in unconditional(profile)
    gvisor = generate(runtime="gvisor", profile="strict", deny=["@process"])
    assert "execve" not in unconditional(gvisor)


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(ProfileError, match="runtime 'crun'"):
        generate(runtime="crun")


# --- modes and errno -----------------------------------------------------------------------


def test_denylist_mode_allows_by_default_and_denies_dangerous_groups() -> None:
    profile = generate(mode="denylist")
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW" and "defaultErrnoRet" not in profile
    denied = unconditional(profile, "SCMP_ACT_ERRNO")
    assert (DOCKER_NEVER_ALLOWED | {"mount", "ptrace", "bpf", "unshare"}) <= denied | {"clone3"}
    assert not unconditional(profile)  # nothing listed as allow: it is the default
    flags = {r["args"][0]["value"] for r in rules_for(profile, "clone")}
    assert sum(flags) == NAMESPACE_FLAGS and len(flags) == 7


def test_denylist_mode_respects_allow_and_capabilities() -> None:
    profile = generate(mode="denylist", allow=["@keyring"], caps=frozenset({"CAP_SYS_PTRACE"}))
    denied = unconditional(profile, "SCMP_ACT_ERRNO")
    assert not denied & {"keyctl", "ptrace"} and "mount" in denied


def test_log_mode_denies_nothing() -> None:
    profile = generate(mode="log")
    assert profile["defaultAction"] == "SCMP_ACT_LOG"
    assert {r["action"] for r in profile["syscalls"]} == {"SCMP_ACT_ALLOW"}


def test_enosys_is_explicit_for_known_dangerous_calls() -> None:
    profile = generate(errno="ENOSYS")
    assert profile["defaultErrnoRet"] == 38
    refused = {
        n for rule in profile["syscalls"] if rule.get("errnoRet") == 38 for n in rule["names"]
    }
    assert {"mount", "keyctl", "io_uring_setup", "ptrace", "clone3", "personality"} <= refused
    assert not {r.get("errnoRet") for r in profile["syscalls"]} - {None, 38}


# --- architectures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("native", "expected"),
    [
        ("x86_64", ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
        ("amd64", ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
        ("aarch64", ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]),
        ("arm64", ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]),
    ],
)
def test_default_architectures_are_native_and_neighbours(native: str, expected: list[str]) -> None:
    assert generate(native=native)["architectures"] == expected


def test_explicit_architectures_must_include_the_native_one() -> None:
    assert generate(architectures=["x86_64"])["architectures"] == ["SCMP_ARCH_X86_64"]
    assert generate(architectures=["x32", "x86_64"])["architectures"] == [
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X32",
    ]
    with pytest.raises(ProfileError, match="leaves out the daemon's own architecture 'x86_64'"):
        generate(architectures=["aarch64"])


def test_unsupported_native_architecture_is_refused() -> None:
    with pytest.raises(ProfileError, match="'s390x' is not supported"):
        generate(native="s390x")


# --- determinism and provenance ------------------------------------------------------------


def test_same_input_same_bytes() -> None:
    first = render_seccomp_json(generate(allow=["@keyring"], caps=frozenset({"CAP_SYS_TIME"})))
    second = render_seccomp_json(generate(allow=["@keyring"], caps=frozenset({"CAP_SYS_TIME"})))
    assert first == second
    shuffled = json.loads(first, object_pairs_hook=lambda pairs: dict(reversed(pairs)))
    assert render_seccomp_json(shuffled) == first
    assert first.endswith("}\n")


def test_every_rule_says_where_it_comes_from() -> None:
    profile = generate(allow=["@keyring"], caps=frozenset({"CAP_SYS_BOOT"}))
    comments = [rule["comment"] for rule in profile["syscalls"]]
    assert all(
        re.match(r"^(profile default:|manifest allow:|capability |runtime |guard )", c)
        for c in comments
    ), comments
    assert "manifest allow: @keyring" in comments and "capability CAP_SYS_BOOT" in comments


@pytest.mark.parametrize("profile", ["default", "strict"])
def test_golden_profiles(profile: str) -> None:
    """Drift check: a change to the data or generator shows up as a reviewed diff here.

    Update with SAFERUN_UPDATE_GOLDENS=1 after checking the change is intended.
    """
    text = render_seccomp_json(generate(profile=profile))
    golden = GOLDENS / f"seccomp-{profile}-x86_64.json"
    if UPDATE_GOLDENS:
        golden.write_text(text)
    assert golden.read_text() == text


# --- unconfined and the other non-generated profiles ---------------------------------------


def test_unconfined_is_refused_without_a_reasoned_exception() -> None:
    app = {"name": "x", "image": "busybox:1"}
    with pytest.raises(ValidationError, match="seccomp_unconfined"):
        Manifest.from_data({"app": app, "seccomp": {"profile": "unconfined"}})
    with pytest.raises(ValidationError, match="written reason"):
        Manifest.from_data(
            {
                "app": app,
                "seccomp": {"profile": "unconfined"},
                "exceptions": {"seccomp_unconfined": "x"},
            }
        )
    accepted = Manifest.from_data(
        {
            "app": app,
            "seccomp": {"profile": "unconfined"},
            "exceptions": {"seccomp_unconfined": "strace-based debugging image, never in prod"},
        }
    )
    assert accepted.seccomp.profile == "unconfined"


@pytest.mark.parametrize("name", ["unconfined", "docker-default"])
def test_generator_refuses_profiles_it_does_not_own(name: str) -> None:
    with pytest.raises(ProfileError, match="not generated by saferun"):
        generate(profile=name)


def test_manifest_validates_seccomp_entries() -> None:
    with pytest.raises(ValidationError):
        SeccompSection.from_data({"allow": ["mount; rm -rf /"]})
    with pytest.raises(ValidationError):
        SeccompSection.from_data({"errno": "EACCES"})


def test_fallback_data_names_known_calls_and_documents_its_callers() -> None:
    import pyseccomp

    from saferun.profiles.seccomp import _read_toml

    raw = _read_toml("fallbacks.toml")
    assert raw["clone3"]["fallbacks"] == ["clone"]
    for name, entry in raw.items():
        assert entry["callers"], name
        for call in (name, *entry["fallbacks"]):
            # -1: unknown to libseccomp (other negative numbers: absent on this arch only).
            assert pyseccomp.resolve_syscall(pyseccomp.Arch.X86_64, call) != -1, call
        assert name not in entry["fallbacks"]


def test_with_fallbacks_is_transitive() -> None:
    from saferun.profiles.seccomp import with_fallbacks

    assert with_fallbacks(["a"], {"a": ["b"], "b": ["c"]}) == {"a", "b", "c"}
    assert with_fallbacks(["x"], {"a": ["b"]}) == {"x"}


def test_listed_names_keep_guarded_calls_the_profile_refuses() -> None:
    from saferun.profiles.seccomp import listed_names

    section = SeccompSection(learned=["clone3", "read"])
    listed = listed_names(section, capabilities=frozenset(), native_arch="x86_64", runtime="runc")
    assert {"clone3", "read"} <= listed and "clone" not in listed
    profile = generate_seccomp(section, capabilities=frozenset(), native_arch="x86_64",
                               runtime="runc")
    allowed = {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW"
               for n in r["names"]}
    assert "clone3" not in allowed  # only its guard's ENOSYS rule


# --- [seccomp] report = "kill": refused-by-name calls become visible to saferun watch ------


def _kill_names(profile: dict[str, Any]) -> set[str]:
    return {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_KILL_PROCESS"
            for n in r["names"]}


@pytest.mark.parametrize("mode", ["allowlist", "denylist", "log"])
def test_report_kill_kills_the_deny_list_and_keeps_the_rest(mode: str) -> None:
    from saferun.model.manifest import SeccompSection
    from saferun.profiles.seccomp import generate_seccomp

    plain = generate_seccomp(SeccompSection(mode=mode), capabilities=frozenset(),
                             native_arch="x86_64", runtime="runc")
    killed = generate_seccomp(SeccompSection(mode=mode, report="kill"),
                              capabilities=frozenset(), native_arch="x86_64", runtime="runc")
    names = _kill_names(killed)
    assert {"ptrace", "mount", "io_uring_setup", "bpf"} <= names
    assert _kill_names(plain) == set()
    assert killed["defaultAction"] == plain["defaultAction"]  # the default is unchanged
    allowed = {n for r in killed["syscalls"] if r["action"] == "SCMP_ACT_ALLOW"
               for n in r["names"]}
    assert not names & allowed
    assert not names & {n for r in killed["syscalls"] if r["action"] == "SCMP_ACT_ERRNO"
                        and not r.get("args") for n in r["names"]}


def test_report_kill_spares_what_a_capability_or_allow_brings_back() -> None:
    from saferun.model.manifest import SeccompSection
    from saferun.profiles.seccomp import generate_seccomp

    profile = generate_seccomp(SeccompSection(report="kill", allow=["mount"]),
                               capabilities=frozenset({"CAP_SYS_PTRACE"}), native_arch="x86_64",
                               runtime="runc")
    assert not {"mount", "ptrace"} & _kill_names(profile)


def test_report_kill_compiles_with_libseccomp() -> None:
    from saferun.model.manifest import SeccompSection
    from saferun.profiles.seccomp import generate_seccomp
    from saferun.profiles.seccomp_check import check_profile, compile_bpf

    profile = generate_seccomp(SeccompSection(report="kill"), capabilities=frozenset(),
                               native_arch="x86_64", runtime="runc")
    assert compile_bpf(profile)
    assert check_profile(profile).instructions > 0
