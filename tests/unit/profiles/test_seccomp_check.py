"""libseccomp validation, profile QA (--verify, --against), the CLI and the plan hook."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pyseccomp
import pytest
from click.testing import CliRunner

from saferun.cli import cli
from saferun.errors import ProfileError
from saferun.model.facts import HostFacts
from saferun.model.manifest import Manifest, SeccompSection
from saferun.plan.planner import build_plan
from saferun.profiles.seccomp import Condition, expand, generate_seccomp, load_data
from saferun.profiles.seccomp_check import (
    BPF_MAX_INSTRUCTIONS,
    check_profile,
    compile_bpf,
    diff_profiles,
    generate_checked,
    resolve_names,
    verify_high_risk,
)

ALL_ARCHES = (
    pyseccomp.Arch.X86_64,
    pyseccomp.Arch.X86,
    pyseccomp.Arch.X32,
    pyseccomp.Arch.AARCH64,
    pyseccomp.Arch.ARM,
)


def generate(
    native: str = "x86_64", caps: frozenset[str] = frozenset(), **section: Any
) -> dict[str, Any]:
    return generate_seccomp(
        SeccompSection(**section), capabilities=caps, native_arch=native, runtime="runc"
    )


# --- the data against libseccomp -----------------------------------------------------------


def test_every_leaf_is_known_to_libseccomp_on_every_arch() -> None:
    data = load_data()
    leaves = set(expand([f"@{name}" for name in data.groups], data.groups))
    leaves |= {n for calls in data.capabilities.values() for n in calls}
    leaves |= {
        n for r in data.runtimes.values() for n in (*r.syscalls, *sum(r.arches.values(), ()))
    }
    leaves |= set(data.guards)
    unknown = sorted(
        n for n in leaves for arch in ALL_ARCHES if pyseccomp.resolve_syscall(arch, n) == -1
    )
    assert unknown == []


def test_every_leaf_exists_on_at_least_one_supported_arch() -> None:
    """Names that exist nowhere saferun runs are dead weight (s390 and riscv names aside)."""
    data = load_data()
    leaves = set(expand([f"@{name}" for name in data.groups], data.groups))
    nowhere = sorted(
        n for n in leaves if all(pyseccomp.resolve_syscall(a, n) < 0 for a in ALL_ARCHES)
    )
    assert set(nowhere) <= {
        "s390_pci_mmio_read",
        "s390_pci_mmio_write",
        "subpage_prot",
        "switch_endian",
    }, nowhere


# --- guards: the argument conditions mean what they say ------------------------------------


def _matches(alternatives: tuple[tuple[Condition, ...], ...], value: int) -> bool:
    def one(cond: Condition) -> bool:
        if cond.op == "masked_eq":
            return value & cond.value == cond.value_two
        return {
            "eq": value == cond.value,
            "ne": value != cond.value,
            "lt": value < cond.value,
            "le": value <= cond.value,
            "gt": value > cond.value,
            "ge": value >= cond.value,
        }[cond.op]

    return any(all(one(c) for c in alt) for alt in alternatives)


SAMPLES = sorted(
    {
        0,
        1,
        8,
        17,
        38,
        39,
        40,
        41,
        0x20000,
        0x20008,
        0xFFFFFFFF,
        0x80000000,
        0x80400000,
        0x7E020000,
        0x11200011,
        *(1 << bit for bit in range(32)),
        *((1 << bit) | 0x11 for bit in range(32)),
    }
)


@pytest.mark.parametrize("name", ["clone", "personality", "socket", "clone3"])
def test_guard_errno_rules_never_overlap_allowed_arguments(name: str) -> None:
    guard = load_data().guards[name]
    overlap = [
        hex(v) for v in SAMPLES if _matches(guard.allow_when, v) and _matches(guard.errno_when, v)
    ]
    assert overlap == []


@pytest.mark.parametrize("name", ["clone", "socket"])
def test_denylist_guard_is_the_exact_complement(name: str) -> None:
    guard = load_data().guards[name]
    wrong = [
        hex(v) for v in SAMPLES if _matches(guard.allow_when, v) == _matches(guard.deny_when, v)
    ]
    assert wrong == []


def test_personality_denylist_refuses_read_implies_exec_in_any_disguise() -> None:
    guard = load_data().guards["personality"]
    for value in (0x0400000, 0x0400008, 0x80400000, 0x0440000):
        assert _matches(guard.deny_when, value) and not _matches(guard.allow_when, value)
    assert not _matches(guard.deny_when, 0x20008)


# --- names and compilation -----------------------------------------------------------------


def test_unknown_name_is_an_error_with_the_closest_real_name() -> None:
    with pytest.raises(ProfileError, match=r"unknown syscall 'keyctll' .*did you mean keyctl\?"):
        check_profile(generate(allow=["keyctll"]))
    # An allowlist's denies are implicit (absent from the JSON) but are still checked.
    with pytest.raises(ProfileError, match=r"did you mean io_uring_setup\?"):
        generate_checked(
            SeccompSection(deny=["io_uring_setpu"]),
            capabilities=frozenset(),
            native_arch="x86_64",
            runtime="runc",
        )


def test_names_absent_on_an_arch_are_reported_not_refused() -> None:
    absent = resolve_names(generate())
    assert "socketcall" in absent["SCMP_ARCH_X86_64"]
    assert "socketcall" not in absent["SCMP_ARCH_X86"]
    assert "arch_prctl" in resolve_names(generate(native="aarch64"))["SCMP_ARCH_AARCH64"]


@pytest.mark.parametrize(
    "section",
    [
        {},
        {"profile": "strict"},
        {"mode": "denylist"},
        {"mode": "log"},
        {"errno": "ENOSYS"},
        {"allow": ["@namespaces", "personality", "socket"]},
        {"mode": "denylist", "errno": "ENOSYS"},
    ],
)
@pytest.mark.parametrize("native", ["x86_64", "aarch64"])
def test_every_mode_compiles_for_every_arch(section: dict[str, Any], native: str) -> None:
    result = check_profile(generate(native=native, **section))
    assert 0 < result.instructions <= BPF_MAX_INSTRUCTIONS
    assert result.as_dict()["bpf_bytes"] == result.instructions * 8


def test_bpf_is_deterministic_and_grows_with_rules() -> None:
    assert compile_bpf(generate()) == compile_bpf(generate())
    small = check_profile(generate(profile="strict")).instructions
    large = check_profile(generate()).instructions
    assert small < large


def test_compile_refuses_what_libseccomp_refuses() -> None:
    profile = generate()
    profile["syscalls"].append(
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [
                {"index": 0, "op": "SCMP_CMP_GT", "value": 1, "valueTwo": 0},
                {"index": 0, "op": "SCMP_CMP_LT", "value": 8, "valueTwo": 0},
            ],
        }
    )
    with pytest.raises(ProfileError, match="libseccomp refused the rule for 'personality'"):
        check_profile(profile)
    with pytest.raises(ProfileError, match="operator"):
        check_profile(
            {
                **generate(),
                "syscalls": [
                    {
                        "names": ["read"],
                        "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "op": "BAD", "value": 1}],
                    }
                ],
            }
        )


# --- --verify and --against ----------------------------------------------------------------


def test_default_allows_no_high_risk_call() -> None:
    assert verify_high_risk(generate()) == []
    assert verify_high_risk(generate(profile="strict")) == []
    assert verify_high_risk(generate(mode="denylist")) == []


def test_verify_names_what_caps_and_groups_open() -> None:
    found = verify_high_risk(generate(caps=frozenset({"CAP_SYS_PTRACE"}), allow=["@namespaces"]))
    names = {line.split(":")[0] for line in found}
    assert {"ptrace", "process_vm_writev", "unshare", "setns", "clone", "clone3"} <= names
    assert "mount" not in names
    assert any(line.startswith("clone: allowed with any argument") for line in found)


def test_verify_sees_through_log_mode() -> None:
    found = verify_high_risk(generate(mode="log"))
    assert any(line.startswith("mount: allowed (log)") for line in found)


def test_diff_reports_additions_removals_and_changes() -> None:
    old, new = generate(), generate(allow=["@keyring"], deny=["chown"], errno="ENOSYS")
    diff = diff_profiles(old, new)
    assert {line.split(":")[0] for line in diff.added} == {"add_key", "keyctl", "request_key"}
    assert "chown: allow -> errno 38" in diff.removed
    assert diff.default == ("errno 1", "errno 38")
    assert diff_profiles(old, generate()).empty
    back = diff_profiles(new, old)
    assert {line.split(":")[0] for line in back.removed} == {"add_key", "keyctl", "request_key"}


# --- the CLI -------------------------------------------------------------------------------

MANIFEST = '[app]\nname = "web"\nimage = "busybox:1"\n'


def cli_run(tmp_path: Path, *args: str, manifest: str = MANIFEST) -> Any:
    path = tmp_path / "saferun.toml"
    path.write_text(manifest)
    return CliRunner().invoke(
        cli, ["profile", "seccomp", str(path), "--native-arch", "x86_64", *args]
    )


def test_cli_prints_the_same_bytes_every_time(tmp_path: Path) -> None:
    first, second = cli_run(tmp_path), cli_run(tmp_path)
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout
    assert json.loads(first.stdout)["defaultAction"] == "SCMP_ACT_ERRNO"


def test_cli_writes_atomically_without_following_symlinks(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "out.json"
    link.symlink_to(victim)
    result = cli_run(tmp_path, "-o", str(link), "--stats")
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "keep me"
    info = os.lstat(link)
    assert stat.S_ISREG(info.st_mode) and not info.st_mode & 0o022
    assert json.loads(link.read_text())["architectures"][0] == "SCMP_ARCH_X86_64"
    stats = json.loads(result.stdout.split("stats: ", 1)[1])
    assert (
        stats["bpf_instructions"] > 0 and stats["by_source"]["profile default: @file-system"] > 50
    )
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_verify_exits_1_on_high_risk(tmp_path: Path) -> None:
    clean = cli_run(tmp_path, "--verify", "-o", str(tmp_path / "p.json"))
    assert clean.exit_code == 0 and "high-risk: none allowed" in clean.stdout
    risky = cli_run(
        tmp_path,
        "--verify",
        "-o",
        str(tmp_path / "p.json"),
        manifest=MANIFEST + '[capabilities]\nadd = ["SYS_PTRACE"]\n'
        '[allow]\ncap-not-allowed = "debugger sidecar needs ptrace"\n',
    )
    assert risky.exit_code == 1 and "high-risk: ptrace: allowed" in risky.stdout


def test_cli_against_reports_the_difference(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    assert cli_run(tmp_path, "-o", str(old)).exit_code == 0
    result = cli_run(
        tmp_path,
        "--against",
        str(old),
        "-o",
        str(tmp_path / "new.json"),
        manifest=MANIFEST + '[seccomp]\nallow = ["@keyring"]\n',
    )
    assert result.exit_code == 0
    assert "+ keyctl: errno 1 -> allow" in result.stdout


def test_cli_errors_are_messages_with_exit_2(tmp_path: Path) -> None:
    bad = cli_run(tmp_path, manifest=MANIFEST + '[seccomp]\nallow = ["keyctll"]\n')
    assert bad.exit_code == 2 and "did you mean keyctl?" in bad.stderr and bad.stdout == ""
    docker_default = cli_run(
        tmp_path, manifest=MANIFEST + '[seccomp]\nprofile = "docker-default"\n'
    )
    assert docker_default.exit_code == 2 and "generates no profile" in docker_default.stderr


# --- the plan hands docker only checked profiles -------------------------------------------

FACTS = HostFacts(security_options=frozenset({"seccomp"}), runtimes=frozenset({"runc"}))


def manifest(seccomp: dict[str, Any], **extra: Any) -> Manifest:
    return Manifest.from_data(
        {"app": {"name": "web", "image": "busybox:1"}, "seccomp": seccomp, **extra}
    )


def test_plan_carries_the_generated_profile() -> None:
    plan = build_plan(manifest({}), FACTS)
    assert plan.seccomp_profile is not None
    assert json.loads(plan.seccomp_profile) == generate()
    aarch64 = build_plan(
        manifest({}), HostFacts(architecture="aarch64", runtimes=frozenset({"runc"}))
    )
    assert json.loads(aarch64.seccomp_profile or "{}")["architectures"] == [
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_ARM",
    ]


def test_plan_docker_default_and_unconfined() -> None:
    assert build_plan(manifest({"profile": "docker-default"}), FACTS).seccomp_profile is None
    unconfined = build_plan(
        manifest(
            {"profile": "unconfined"},
            exceptions={"seccomp_unconfined": "debugging with strace, never deployed"},
        ),
        FACTS,
    )
    assert unconfined.seccomp_profile is None and "seccomp=unconfined" in unconfined.security_opts

