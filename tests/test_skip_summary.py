"""scripts/test's last line names each skipped group and the command that enables it."""

from __future__ import annotations

from tests.skips import group_of, skip_summary


def test_each_known_reason_has_a_group_and_a_command() -> None:
    assert group_of("the engine has no runsc runtime (see scripts/engine.sh)")[0] == "gvisor"
    assert group_of("docker-compose is not installed") == ("compose",
                                                           "apt-get install docker-compose")
    assert group_of("cannot build the preset images: debootstrap: not found")[0] == (
        "debian-images")


def test_summary_is_one_line_with_counts_and_commands() -> None:
    line = skip_summary(["docker-compose is not installed", "docker-compose is not installed",
                         "runsc is not registered with this engine", "this host has no findings"])
    assert "\n" not in line
    assert line.startswith(
        "skipped groups: compose (2): apt-get install docker-compose; gvisor (1)")
    assert line.endswith("other (1) (not enabled by a command)")
    assert skip_summary([]) == "skipped groups: none"
