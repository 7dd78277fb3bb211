"""Learning mode's pure core: run manifests, merging, loss detection, writable paths, rewrite."""

from __future__ import annotations

import tomllib

import pytest

from saferun.learn.learning import (
    capability_candidates,
    diagnosing_manifest,
    enforcing_manifest,
    learning_manifest,
    loss_signs,
    merge_runs,
    missing_serials,
    next_buffer,
    parse_docker_diff,
    propose_writable,
    rewrite_manifest,
    syscall_list_diff,
    text_diff,
)
from saferun.model.manifest import Manifest, SeccompSection
from saferun.model.strict import ValidationError
from saferun.profiles.seccomp import generate_seccomp, load_data


def _manifest(**sections: object) -> Manifest:
    return Manifest.from_data({"app": {"name": "web", "image": "nginx:1"}, **sections})


def _allowed(profile: dict[str, object]) -> set[str]:
    rules = profile["syscalls"]
    assert isinstance(rules, list)
    return {n for r in rules if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
            for n in r["names"]}


def _profile(manifest: Manifest) -> dict[str, object]:
    return generate_seccomp(manifest.seccomp, capabilities=frozenset(manifest.capabilities.add),
                            native_arch="x86_64", runtime="runc")


RUNC_NEEDS = set(load_data().runtimes["runc"].syscalls) | {"arch_prctl", "epoll_pwait",
                                                            "epoll_wait"}


def test_learning_run_logs_everything_but_the_runtimes_calls() -> None:
    base = _manifest(seccomp={"profile": "strict", "allow": ["@mount"], "deny": ["ptrace"],
                              "learned": ["read"]})
    learning = learning_manifest(base)
    assert learning.seccomp.mode == "log" and learning.seccomp.learned == []
    assert not learning.filesystem.read_only and "writable_root" in learning.exceptions
    profile = _profile(learning)
    assert profile["defaultAction"] == "SCMP_ACT_LOG"
    assert _allowed(profile) == RUNC_NEEDS


def test_learning_from_docker_default_uses_a_generated_profile() -> None:
    learning = learning_manifest(_manifest(seccomp={"profile": "docker-default"}),
                                 writable_root=False)
    assert learning.seccomp.profile == "default" and learning.filesystem.read_only


def test_enforcing_profile_allows_exactly_the_learned_calls_and_keeps_guards() -> None:
    enforcing = enforcing_manifest(_manifest(), ["accept4", "clone", "socket", "openat"],
                                   tmpfs=["/run"])
    assert enforcing.seccomp.mode == "allowlist"
    assert [t.target for t in enforcing.filesystem.tmpfs] == ["/tmp", "/run"]
    profile = _profile(enforcing)
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert _allowed(profile) == RUNC_NEEDS | {"accept4", "openat"}
    guarded = {r["names"][0] for r in profile["syscalls"] if r.get("args")}
    assert {"clone", "socket"} <= guarded  # measured names do not lift the guards
    assert "unshare" not in _allowed(profile)


def test_diagnosing_keeps_the_allow_rules_and_logs_the_rest() -> None:
    enforcing = enforcing_manifest(_manifest(), ["openat"])
    profile = _profile(diagnosing_manifest(enforcing))
    assert profile["defaultAction"] == "SCMP_ACT_LOG"
    assert _allowed(profile) == RUNC_NEEDS | {"openat"}


def test_capabilities_can_be_set() -> None:
    enforcing = enforcing_manifest(_manifest(capabilities={"add": ["CHOWN", "SETUID"]}), [],
                                   capabilities=["CAP_SETUID"])
    assert enforcing.capabilities.add == ["CAP_SETUID"]
    assert capability_candidates(("CAP_CHOWN", "CAP_SETUID")) == [
        ("CAP_CHOWN", ("CAP_SETUID",)), ("CAP_SETUID", ("CAP_CHOWN",))]


def test_learned_list_needs_an_allowlist() -> None:
    with pytest.raises(ValidationError, match="seccomp.learned needs mode"):
        SeccompSection.from_data({"mode": "denylist", "learned": ["read"]})
    with pytest.raises(ValidationError):
        SeccompSection.from_data({"learned": ["@basic-io"]})  # names only, no groups


def test_merge_runs_is_the_sorted_union() -> None:
    assert merge_runs([{"read", "write"}, {"openat", "read"}, set()]) == ("openat", "read",
                                                                          "write")


@pytest.mark.parametrize(("serials", "missing"), [
    ([], 0),
    ([5], 0),
    ([5, 6, 6, 7], 0),  # records of one event share a serial
    ([7, 5, 6], 0),  # kauditd may deliver out of order
    ([5, 6, 9, 10], 2),
    ([1, 100], 98),
])
def test_missing_serials(serials: list[int], missing: int) -> None:
    assert missing_serials(serials) == missing


def test_loss_signs() -> None:
    clean = loss_signs(serials=[1, 2, 3], overflows=0, lost_before=4, lost_after=4)
    assert clean.reasons() == []
    lossy = loss_signs(serials=[1, 3], overflows=2, lost_before=4, lost_after=9,
                       proc_overflows=1)
    assert lossy.reasons() == [
        "the audit socket overflowed 2 time(s)",
        "1 audit serial number(s) never arrived",
        "the kernel dropped 5 audit record(s)",
        "1 burst(s) of fork events were dropped",
    ]
    unknown = loss_signs(serials=[1, 2], overflows=0, lost_before=None, lost_after=3)
    assert unknown.kernel_lost is None and unknown.reasons() == []


def test_next_buffer_grows_to_the_default() -> None:
    default = 32 << 20
    assert next_buffer(256, default) == 65536
    assert next_buffer(65536, default) == 1 << 20
    assert next_buffer(4 << 20, default) == default
    assert next_buffer(default, default) == default


NGINX_DIFF = """C /run
A /run/nginx.pid
C /var
C /var/lib
C /var/lib/nginx
A /var/lib/nginx/body
A /var/lib/nginx/body/00
A /var/lib/nginx/proxy
C /tmp
A /tmp/scratch
C /etc
C /etc/hosts
"""


def test_writable_paths_from_docker_diff() -> None:
    diff = parse_docker_diff(NGINX_DIFF + "garbage line\n")
    assert ("A", "/run/nginx.pid") in diff and len(diff) == 12
    proposal = propose_writable(diff, covered=["/tmp"])
    assert proposal.tmpfs == ("/run", "/var/lib/nginx")
    assert proposal.notes == ()


def test_files_modified_in_place_and_top_level_writes_are_notes() -> None:
    diff = parse_docker_diff("C /etc\nC /etc/app.conf\nA /marker\nC /srv\nA /srv/a\nA /srv/a/b\n")
    proposal = propose_writable(diff, covered=[])
    assert proposal.tmpfs == ("/srv",)
    assert len(proposal.notes) == 2
    assert any("/etc/app.conf is modified in place" in n for n in proposal.notes)
    assert any("/marker is written at the top level" in n for n in proposal.notes)


def test_nested_proposals_collapse() -> None:
    diff = parse_docker_diff("A /var/cache/app/x\nA /var/cache/y\n")
    assert propose_writable(diff, covered=[]).tmpfs == ("/var/cache",)


MANIFEST = """\
# The web front end.
[app]
name = "web"  # container name
image = "nginx:1"

[seccomp]
# We used to allow everything here.
mode = "log"  # while we learn
allow = ["@mount"]
"""


def test_rewrite_keeps_comments_and_switches_to_allowlist() -> None:
    new = rewrite_manifest(MANIFEST, learned=["write", "read", "read"], tmpfs=["/run"],
                           capabilities=["CAP_CHOWN"])
    for comment in ("# The web front end.", '"web"  # container name',
                    "# We used to allow everything here.", "# while we learn"):
        assert comment in new
    parsed = tomllib.loads(new)
    assert parsed["seccomp"]["learned"] == ["read", "write"]
    assert parsed["seccomp"]["mode"] == "allowlist"
    assert parsed["seccomp"]["allow"] == ["@mount"]  # hand-written entries stay
    assert parsed["filesystem"]["tmpfs"] == [{"target": "/tmp"}, {"target": "/run"}]
    assert parsed["capabilities"]["add"] == ["CHOWN"]
    Manifest.from_data(parsed)
    diff = text_diff(MANIFEST, new, "saferun.toml")
    assert '-mode = "log"  # while we learn' in diff and "+learned = [" in diff


def test_rewrite_is_stable_and_appends_to_existing_tmpfs() -> None:
    text = MANIFEST + '\n[filesystem]\ntmpfs = [{ target = "/tmp", size = "16m" }]\n'
    once = rewrite_manifest(text, learned=["read"], tmpfs=["/run", "/tmp"])
    assert tomllib.loads(once)["filesystem"]["tmpfs"] == [
        {"target": "/tmp", "size": "16m"}, {"target": "/run"}]
    assert rewrite_manifest(once, learned=["read"], tmpfs=["/run"]) == once
    assert once.count("Measured by `saferun learn`") == 1


def test_rewrite_adds_a_seccomp_table_and_replaces_ungenerated_profiles() -> None:
    plain = '[app]\nname = "web"\nimage = "nginx:1"\n'
    assert tomllib.loads(rewrite_manifest(plain, learned=["read"]))["seccomp"] == {
        "learned": ["read"]}
    docker_default = plain + '\n[seccomp]\nprofile = "docker-default"\n'
    assert tomllib.loads(rewrite_manifest(docker_default, learned=[]))["seccomp"]["profile"] == (
        "default")


def test_syscall_list_diff() -> None:
    assert syscall_list_diff(["read", "mount"], ["read", "write"]) == ["+ write", "- mount"]
    assert syscall_list_diff(None, ["read"]) == ["+ read"]


# --- libc fallbacks, replays, health checks ---------------------------------------------------


def test_learned_calls_bring_the_fallbacks_libc_makes_when_they_are_refused() -> None:
    from saferun.learn.learning import pair_fallbacks

    learned, added = pair_fallbacks(["clone3", "openat", "statx"], load_data().fallbacks)
    assert {"clone3", "clone", "openat", "statx", "newfstatat", "fstat"} <= set(learned)
    assert added["clone"] == ("clone3",)
    assert "openat" not in added  # recorded, not added
    assert list(learned) == sorted(learned)
    # Already paired: nothing more to add.
    assert pair_fallbacks(["clone", "clone3"], {"clone3": ["clone"]}) == (("clone", "clone3"), {})


def test_the_paired_list_survives_the_clone3_guard() -> None:
    from saferun.learn.learning import pair_fallbacks

    learned, _ = pair_fallbacks(["clone3", "wait4"], load_data().fallbacks)
    profile = _profile(enforcing_manifest(_manifest(), learned))
    # clone3 is refused by its guard (ENOSYS); glibc then calls clone, which is allowed.
    assert "clone" in {n for rule in profile["syscalls"]  # type: ignore[attr-defined]
                       if rule["action"] == "SCMP_ACT_ALLOW" for n in rule["names"]}


def test_the_why_replay_publishes_on_random_host_ports() -> None:
    from saferun.learn.learning import replay_manifest

    manifest = _manifest(network={"ports": [{"container": 80, "host": 8080},
                                            {"container": 53, "protocol": "udp"}]})
    replayed = replay_manifest(manifest)
    assert [(p.container, p.host, p.protocol) for p in replayed.network.ports] == [
        (80, None, "tcp"), (53, None, "udp")]
    assert replayed.seccomp.mode == "log"


def test_runs_probe_the_health_check_every_second() -> None:
    from saferun.learn.learning import health_wait_s, probing_manifest

    manifest = _manifest(healthcheck={"command": ["wget", "-q", "http://127.0.0.1/"],
                                      "interval": "30s", "timeout": "2s", "retries": 2})
    probing = probing_manifest(manifest)
    assert probing.healthcheck is not None and probing.healthcheck.interval == "1s"
    assert probing.healthcheck.command == manifest.healthcheck.command  # type: ignore[union-attr]
    assert health_wait_s(probing) == pytest.approx(3 * 3 + 5)
    assert probing_manifest(_manifest()) == _manifest()
    assert health_wait_s(_manifest()) == 0
