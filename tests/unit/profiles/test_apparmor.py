"""Rule rendering for each manifest feature, the value gate, and the run-time decision."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from saferun.errors import ProfileError, RequirementUnmet
from saferun.model.manifest import (
    Manifest,
    TmpfsMount,
)
from saferun.model.strict import ValidationError, updated
from saferun.profiles.apparmor import (
    ApparmorAction,
    decide_apparmor,
    profile_name_for,
    render_apparmor,
)


def manifest(**sections: Any) -> Manifest:
    document: dict[str, Any] = {"app": {"name": "web", "image": "nginx:1.25"}}
    document.update(sections)
    return Manifest.from_data(document)


def render(m: Manifest) -> str:
    return render_apparmor(m, profile_name=profile_name_for(m))


def rules(text: str) -> list[str]:
    """Rule lines without comments or indentation, for exact assertions."""
    stripped = (line.strip() for line in text.splitlines())
    return [line for line in stripped if line and not line.startswith("#")]


def unchecked(*, targets: tuple[str, ...] = (), executables: list[str] | None = None,
              caps: tuple[str, ...] = (), network: tuple[str, ...] = (),
              name: str = "web") -> Manifest:
    """A manifest that skipped model validation, to test the renderer's own defences."""
    base = Manifest.from_data({"app": {"name": "web", "image": "x"}})
    return updated(
        base,
        app=updated(base.app, name=name),
        capabilities=updated(base.capabilities, add=list(caps)),
        filesystem=updated(base.filesystem, tmpfs=[TmpfsMount(target=t) for t in targets]),
        apparmor=updated(base.apparmor, network=list(network), executables=executables),
    )


# --- profile name -------------------------------------------------------------------------

def test_profile_name_is_prefixed_app_name() -> None:
    m = manifest()
    assert profile_name_for(m) == "saferun-web"
    text = render(m)
    assert "profile saferun-web flags=(attach_disconnected,mediate_deleted) {" in text
    assert "signal (send,receive) peer=saferun-web," in rules(text)
    assert "ptrace (trace,tracedby,read,readby) peer=saferun-web," in rules(text)


@pytest.mark.parametrize("name", ["unconfined", "docker-default", "a b", "x,y", "x{y}", "x\ny",
                                  "-lead", "", "x" * 129, "a=b", "a/b", 'a"b', "web\n"])
def test_bad_profile_names_are_refused(name: str) -> None:
    with pytest.raises(ProfileError) as info:
        render_apparmor(manifest(), profile_name=name)
    assert repr(name) in info.value.message


# --- files ----------------------------------------------------------------------------------

def test_image_is_read_only_and_executable_by_default() -> None:
    r = rules(render(manifest()))
    assert '"/**" rmix,' in r
    writes = [line for line in r if not line.startswith("deny") and " rw" in line]
    # Only the default /tmp tmpfs and the container's own devices and /dev/shm are writable.
    assert {line.split()[0] for line in writes} == {
        '"/tmp"', '"/tmp/**"', "/dev/null", "/dev/zero", "/dev/full", "/dev/tty",
        "/dev/console", "/dev/ptmx", "/dev/pts/[0-9]*", "/dev/shm/**",
    }


def test_writable_volumes_and_tmpfs_get_write_rules_read_only_mounts_do_not() -> None:
    m = manifest(filesystem={
        "tmpfs": [{"target": "/run/app/"}],
        "mounts": [
            {"type": "volume", "source": "data", "target": "/srv/data", "read_only": False},
            {"type": "bind", "source": "./conf", "target": "/etc/app"},
        ],
    })
    r = rules(render(m))
    assert ['"/run/app" rwk,', '"/run/app/**" rwkl,'] == [x for x in r if x.startswith('"/run')]
    assert '"/srv/data" rwk,' in r and '"/srv/data/**" rwkl,' in r
    assert not [x for x in r if "/etc/app" in x]
    assert '"/tmp/**" rwkl,' not in r  # the manifest's tmpfs list replaced the default


def test_writable_root_exception_allows_writes_everywhere_but_kernel_interfaces() -> None:
    m = manifest(filesystem={"read_only": False},
                 exceptions={"writable_root": "legacy app writes into /var/lib at start"})
    r = rules(render(m))
    assert '"/**" rwklmix,' in r
    assert "deny /proc/sys/** wklx," in r and "deny /sys/** wklx," in r


@pytest.mark.parametrize("target", ["/proc/sys/kernel", "/sys/fs/x", "/proc", "/sys"])
def test_writable_mount_under_denied_kernel_interface_is_refused(target: str) -> None:
    with pytest.raises(ProfileError, match="kernel interface"):
        render(manifest(filesystem={"tmpfs": [{"target": target}]}))


def test_kernel_interface_denies_match_docker_default() -> None:
    r = rules(render(manifest()))
    for rule in ("deny /proc/* w,", "deny /proc/sys/** wklx,", "deny /proc/sysrq-trigger rwklx,",
                 "deny /proc/kcore rwklx,", "deny /sys/firmware/** rwklx,",
                 "deny /sys/kernel/security/** rwklx,",
                 "deny /sys/devices/virtual/powercap/** rwklx,",
                 "deny mount,", "deny umount,", "deny pivot_root,"):
        assert rule in r


# --- executables allowlist -----------------------------------------------------------------

def test_executables_allowlist_removes_blanket_exec() -> None:
    m = manifest(apparmor={"executables": ["/usr/sbin/nginx", "/bin/sh", "/usr/sbin/nginx"]})
    r = rules(render(m))
    assert '"/**" rm,' in r
    assert not [x for x in r if x.startswith('"/**"') and "x" in x.split()[1]]
    assert [x for x in r if x.endswith(" ix,")] == ['"/bin/sh" ix,', '"/usr/sbin/nginx" ix,']


def test_empty_executables_is_refused_by_manifest_and_renderer() -> None:
    with pytest.raises(ValidationError, match="executables is empty"):
        manifest(apparmor={"executables": []})
    with pytest.raises(ProfileError, match="executables is empty"):
        render(unchecked(executables=[]))


# --- network --------------------------------------------------------------------------------

@pytest.mark.parametrize(("families", "expected"), [
    (["tcp"], ["network inet tcp,", "network inet6 tcp,"]),
    (["udp"], ["network inet udp,", "network inet6 udp,"]),
    (["icmp"], ["network inet icmp,"]),
    (["udp", "tcp"], ["network inet tcp,", "network inet6 tcp,", "network inet udp,",
                      "network inet6 udp,"]),
    ([], []),
])
def test_network_rules_mirror_manifest(families: list[str], expected: list[str]) -> None:
    r = rules(render(manifest(apparmor={"network": families})))
    allowed = [x for x in r if x.startswith("network ")]
    assert allowed == ["network unix,", *expected]
    assert {"deny network raw,", "deny network packet,", "deny network alg,"} <= set(r)


# --- capabilities ---------------------------------------------------------------------------

def test_capabilities_mirror_allowlist_in_apparmor_spelling() -> None:
    r = rules(render(manifest(capabilities={"add": ["net_bind_service", "CAP_CHOWN"]})))
    assert [x for x in r if x.startswith("capability")] == [
        "capability chown,", "capability net_bind_service,"]


def test_no_capabilities_means_no_capability_rule() -> None:
    assert not [x for x in rules(render(manifest())) if "capability" in x]


def test_unknown_capability_is_refused_by_renderer() -> None:
    with pytest.raises(ProfileError, match="'CAP_EVIL'"):
        render(unchecked(caps=("CAP_EVIL",)))


# --- the value gate: break-out attempts ----------------------------------------------------

BREAKOUTS = [
    '/tmp" rwx, /** ix, "', "/tmp/a,b", "/tmp/{a,b}", "/tmp\n/** rwx,", "/tmp/*", "/tmp/?",
    "/tmp/[ab]", "/tmp/../etc", "/tmp/./x", "/tmp//x", "/tmp/@{HOME}", "/tmp/a b", "/tmp/a#b",
    "/tmp/a\\b", "relative/path", "/", "/tmp/^x", "/tmp/\x00", "/" + "a" * 1100, "/tmp\n",
]


# The manifest's CONTAINER_PATH_PATTERN lets this through; only the renderer stops it.
PASS_MANIFEST = {"/" + "a" * 1100}


@pytest.mark.parametrize("value", [v for v in BREAKOUTS if v not in PASS_MANIFEST])
def test_breakout_paths_are_refused_by_the_manifest(value: str) -> None:
    with pytest.raises(ValidationError):
        manifest(filesystem={"tmpfs": [{"target": value}]})


@pytest.mark.parametrize("value", sorted(PASS_MANIFEST))
def test_paths_the_manifest_accepts_are_still_refused_by_the_renderer(value: str) -> None:
    m = manifest(filesystem={"tmpfs": [{"target": value}]})
    with pytest.raises(ProfileError) as info:
        render(m)
    assert repr(value) in info.value.message


@pytest.mark.parametrize("value", BREAKOUTS)
def test_breakout_paths_are_refused_by_the_renderer_itself(value: str) -> None:
    for m in (unchecked(targets=(value,)), unchecked(executables=[value])):
        with pytest.raises(ProfileError) as info:
            render(m)
        assert repr(value) in info.value.message


@pytest.mark.parametrize("value", ["raw", "packet", "tcp,", "inet tcp", "alg"])
def test_unknown_network_words_are_refused_by_renderer(value: str) -> None:
    with pytest.raises(ProfileError, match="network"):
        render(unchecked(network=(value,)))


def test_app_name_in_comment_cannot_inject_rules() -> None:
    with pytest.raises(ProfileError):
        render_apparmor(unchecked(name="web\n  capability sys_admin,"), profile_name="saferun-web")


# --- determinism ----------------------------------------------------------------------------

def test_output_is_deterministic_and_order_independent() -> None:
    a = manifest(capabilities={"add": ["CHOWN", "SETUID"]}, apparmor={"network": ["udp", "tcp"]},
                 filesystem={"tmpfs": [{"target": "/b"}, {"target": "/a"}]})
    b = manifest(capabilities={"add": ["SETUID", "CHOWN"]}, apparmor={"network": ["tcp", "udp"]},
                 filesystem={"tmpfs": [{"target": "/a"}, {"target": "/b"}]})
    assert render(a) == render(b) == render(a)
    assert "${" not in render(a)


# --- the decision ---------------------------------------------------------------------------

def test_generate_on_apparmor_host_loads_and_sets_security_opt() -> None:
    m = manifest()
    decision = decide_apparmor(m, host_has_apparmor=True)
    assert decision.action is ApparmorAction.GENERATE
    assert decision.security_opt == "apparmor=saferun-web"
    assert decision.to_load == ("saferun-web", render(m))
    assert decision.warning is None


def test_named_profile_is_used_not_generated() -> None:
    m = manifest(apparmor={"mode": "profile", "profile": "my-nginx"})
    decision = decide_apparmor(m, host_has_apparmor=True)
    assert decision.action is ApparmorAction.NAMED
    assert decision.security_opt == "apparmor=my-nginx"
    assert decision.to_load is None


@pytest.mark.parametrize("mode", ["generate", "profile"])
def test_required_without_apparmor_refuses_with_fix(mode: str) -> None:
    section: dict[str, Any] = {"mode": mode, "enforcement": "required"}
    if mode == "profile":
        section["profile"] = "my-nginx"
    with pytest.raises(RequirementUnmet) as info:
        decide_apparmor(manifest(apparmor=section), host_has_apparmor=False)
    err = info.value
    assert "AppArmor is absent" in err.message
    assert err.fix is not None and 'enforcement = "preferred"' in err.fix
    assert "enable AppArmor" in err.fix
    assert err.run_exit_code == 125


def test_preferred_without_apparmor_warns_and_skips() -> None:
    decision = decide_apparmor(manifest(), host_has_apparmor=False)
    assert decision.action is ApparmorAction.SKIP
    assert decision.security_opt is None and decision.to_load is None
    assert decision.warning is not None and "AppArmor is absent" in decision.warning


@pytest.mark.parametrize("host", [True, False])
def test_off_with_exception_runs_unconfined(host: bool) -> None:
    m = manifest(apparmor={"mode": "off"},
                 exceptions={"apparmor_off": "profiled by the host's own policy"})
    decision = decide_apparmor(m, host_has_apparmor=host)
    assert decision.action is ApparmorAction.UNCONFINED
    assert decision.security_opt == "apparmor=unconfined"


def test_off_without_exception_and_unconfined_by_name_are_refused() -> None:
    with pytest.raises(ValidationError, match="apparmor_off"):
        manifest(apparmor={"mode": "off"})
    with pytest.raises(ValidationError, match="unconfined"):
        manifest(apparmor={"mode": "profile", "profile": "unconfined"})


def test_decision_validates_before_looking_at_the_host() -> None:
    """A profile value that would inject rules fails on every host, not only AppArmor ones."""
    bad = unchecked(targets=("/tmp/a,b",))
    for host in (True, False):
        with pytest.raises(ProfileError):
            decide_apparmor(bad, host_has_apparmor=host)


# --- docs -----------------------------------------------------------------------------------

def test_docs_example_is_current() -> None:
    """docs/apparmor.md shows a manifest and its profile; they must not drift apart."""
    doc = (Path(__file__).resolve().parents[3] / "docs" / "apparmor.md").read_text()
    example = doc.split("## Worked example", 1)[1]
    toml_text = re.search(r"```toml\n(.*?)```", example, re.S)
    profile_text = re.search(r"```apparmor\n(.*?)```", example, re.S)
    assert toml_text and profile_text
    m = Manifest.from_data(tomllib.loads(toml_text.group(1)))
    assert render(m) == profile_text.group(1)
