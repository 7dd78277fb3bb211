"""Drift against the manifest and against /proc, with rule ids; /proc parsers."""

from __future__ import annotations

from dataclasses import replace

from saferun.model.process import cap_names, facts_from_text, parse_mountinfo
from saferun.policy.drift import config_drift, proof, runtime_drift
from saferun.policy.spec import ContainerSpec, MountSpec

EXPECTED = ContainerSpec(image="busybox:1", user="65534:65534", cap_drop=frozenset({"ALL"}),
                         cap_add=frozenset({"CAP_NET_BIND_SERVICE"}), read_only=True,
                         no_new_privileges=True, seccomp="custom", seccomp_sha256="ab",
                         memory=1 << 29, pids_limit=256,
                         mounts=(MountSpec("bind", "/srv/data", "/data", True),))

STATUS = """Name:\tsleep
Uid:\t65534\t65534\t65534\t65534
CapEff:\t0000000000000000
CapBnd:\t0000000000000400
NoNewPrivs:\t1
Seccomp:\t2
"""
MOUNTINFO = """\
600 500 0:50 / / ro,relatime master:1 - overlay overlay rw,lowerdir=/x
601 600 8:1 /srv/data /data ro,relatime - ext4 /dev/sda1 rw
602 600 0:51 / /tmp rw,nosuid,nodev,noexec shared:7 - tmpfs tmpfs rw
603 600 8:1 /my\\040dir /with\\040space rw - ext4 /dev/sda1 rw
"""
UID_MAP = "         0          0 4294967295\n"


def test_same_spec_has_no_drift() -> None:
    assert config_drift(EXPECTED, EXPECTED) == []


def test_extra_capability_is_drift_with_its_rule_id() -> None:
    actual = replace(EXPECTED, cap_add=EXPECTED.cap_add | {"CAP_NET_ADMIN"})
    found = config_drift(EXPECTED, actual)
    assert [(f.rule, f.kind) for f in found] == [("cap-not-allowed", "drift")]
    assert "+NET_ADMIN" in found[0].message


def test_other_drift_names_its_rules() -> None:
    actual = replace(EXPECTED, read_only=False, seccomp_sha256="cd", network="host",
                     mounts=(MountSpec("bind", "/etc", "/etc-host", False),))
    rules = {f.rule for f in config_drift(EXPECTED, actual)}
    assert {"writable-root", "seccomp-unconfined", "host-network", "sensitive-host-mount"} <= rules


def test_proc_parsers() -> None:
    facts = facts_from_text(42, STATUS, UID_MAP, MOUNTINFO)
    assert cap_names(facts.cap_bnd) == {"CAP_NET_BIND_SERVICE"} and facts.cap_eff == 0
    assert facts.no_new_privs and facts.seccomp == 2 and facts.uids[0] == 65534
    assert not facts.remapped and facts.host_uid == 65534
    root = facts.mount("/")
    assert root is not None and root.read_only and not root.shared
    tmp = facts.mount("/tmp")
    assert tmp is not None and tmp.shared and not tmp.read_only
    assert parse_mountinfo(MOUNTINFO)[-1].mount_point == "/with space"
    assert "NoNewPrivs=1" in proof(facts) and "Seccomp=filter" in proof(facts)


def test_proc_matching_the_spec_has_no_runtime_drift() -> None:
    assert runtime_drift(EXPECTED, facts_from_text(42, STATUS, UID_MAP, MOUNTINFO)) == []


def test_controls_not_in_force_are_reported() -> None:
    status = (STATUS.replace("CapBnd:\t0000000000000400", "CapBnd:\t0000000000201400")
              .replace("NoNewPrivs:\t1", "NoNewPrivs:\t0").replace("Seccomp:\t2", "Seccomp:\t0")
              .replace("Uid:\t65534\t65534", "Uid:\t0\t0"))
    mounts = MOUNTINFO.replace("/ / ro,relatime", "/ / rw,relatime").replace(
        "/srv/data /data ro,relatime -", "/srv/data /data rw shared:3 -")
    found = runtime_drift(EXPECTED, facts_from_text(42, status, UID_MAP, mounts))
    assert {f.rule for f in found} == {"cap-not-allowed", "no-new-privileges", "seccomp-unconfined",
                                       "run-as-root", "writable-root", "sensitive-host-mount",
                                       "shared-propagation"}
    assert all(f.kind == "runtime" and "/proc/42" in f.message for f in found)


def test_a_floating_image_started_by_its_id_is_not_drift() -> None:
    from dataclasses import replace as _replace

    from saferun.policy.drift import config_drift
    from saferun.policy.spec import ContainerSpec

    expected = ContainerSpec(image="nginx")
    actual = _replace(expected, image="sha256:" + "ab" * 32, origin="container",
                      labels=(("io.saferun.image-reference", "nginx"),))
    assert not [f for f in config_drift(expected, actual) if "image" in f.message]
    moved = _replace(actual, labels=())
    assert [f for f in config_drift(expected, moved) if "image" in f.message]


def test_anonymous_volumes_are_not_drift_but_a_changed_one_is() -> None:
    """docker names an anonymous volume (`-v /data`, a preset's mount without a source, an
    image VOLUME) with a random id: it matches a mount without a source at its target."""
    from saferun.policy.spec import _inspect_mount

    anonymous = _inspect_mount({"Type": "volume", "Name": "b1" * 32, "Destination": "/data",
                                "RW": True})
    assert anonymous == MountSpec("volume", "", "/data", False)
    expected = replace(EXPECTED, mounts=(MountSpec("volume", "", "/data", False),))
    image_volume = _inspect_mount({"Type": "volume", "Name": "c2" * 32,
                                   "Destination": "/var/lib/x", "RW": True})
    assert config_drift(expected, replace(expected, mounts=(anonymous, image_volume))) == []
    named = replace(EXPECTED, mounts=(MountSpec("volume", "cache", "/data", False),))
    found = [f.message for f in config_drift(named, replace(named, mounts=(anonymous,)))]
    assert found == ["mount not in the manifest: volume (anonymous) -> /data (rw)",
                     "mount missing or changed: volume cache -> /data"]
