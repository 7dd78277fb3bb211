"""No silent data loss: the pure judgement of who can write a mount."""

from __future__ import annotations

from saferun.policy.writable import MountOwner, can_write, hidden_volumes, unwritable


def owner(uid: int, gid: int, mode: int) -> MountOwner:
    return MountOwner("/data", "volume data", uid, gid, mode)


def test_unix_permission_bits_decide() -> None:
    assert can_write(999, frozenset({999}), owner(999, 999, 0o700))
    assert not can_write(999, frozenset({999}), owner(999, 999, 0o500))
    assert can_write(1000, frozenset({4}), owner(999, 4, 0o2770))
    assert not can_write(1000, frozenset({5}), owner(999, 4, 0o2770))
    assert can_write(65534, frozenset({65534}), owner(0, 0, 0o1777))
    assert not can_write(65534, frozenset({65534}), owner(0, 0, 0o755))
    assert can_write(0, frozenset({0}), owner(999, 999, 0o700))


def test_each_unwritable_mount_is_named_with_its_fix() -> None:
    problems = unwritable("65534:65534", [owner(100, 101, 0o755), owner(65534, 65534, 0o755)])
    assert len(problems) == 1
    text = problems[0]
    assert text.startswith("/data: the container user 65534:65534 cannot write volume data")
    assert "owned by 100:101, mode 0755" in text and "--user 100:101" in text
    assert "--user 0" not in unwritable("999", [owner(0, 0, 0o755)])[0].split("IMAGE")[1]


def test_named_users_are_left_to_the_image() -> None:
    assert unwritable("redis", [owner(0, 0, 0o700)]) == []


def test_a_tmpfs_in_place_of_a_volume_is_said() -> None:
    said = hidden_volumes(("/data/", "/var/lib/postgresql/data"), ("/tmp", "/data"))
    assert len(said) == 1
    assert said[0].startswith("tmpfs /data replaces the image's VOLUME /data: ")
    assert "lost when the container stops" in said[0] and "-v NAME:/data" in said[0]
    # A tmpfs above a VOLUME does not stop docker mounting the volume there: nothing lost.
    assert hidden_volumes(("/var/lib/postgresql/data",), ("/var/lib/postgresql",)) == []
    assert hidden_volumes((), ("/data",)) == []


def test_an_anonymous_volume_is_fixed_by_a_named_one() -> None:
    """A volume docker names itself has no source to chown first: the fix names one."""
    new = MountOwner("/data", "new volume (anonymous)", 0, 0, 0o755, anonymous=True)
    text = unwritable("999:999", [new])[0]
    assert "mount a named volume there instead" in text and "-v NAME:/data" in text
    assert "SOURCE" not in text
