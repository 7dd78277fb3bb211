from __future__ import annotations

import os
from pathlib import Path

from saferun.engine.host import daemon_for_socket, file_stat, local_facts, parse_subuid, read_subuid
from saferun.model.facts import HostFacts


def test_parse_subuid_takes_the_users_first_range() -> None:
    text = "alice:100000:65536\ndockremap:165536:65536\ndockremap:300000:10\nbroken\n"
    assert parse_subuid(text, "dockremap") == (165536, 65536)
    assert parse_subuid(text, "bob") is None


def test_read_subuid_missing_file(tmp_path: Path) -> None:
    assert read_subuid(str(tmp_path / "none"), "dockremap") is None
    (tmp_path / "subuid").write_text("dockremap:100000:65536\n")
    assert read_subuid(str(tmp_path / "subuid"), "dockremap") == (100000, 65536)


def test_local_facts_only_for_a_local_engine() -> None:
    facts = HostFacts(security_options=frozenset({"seccomp"}))
    assert local_facts(facts, local=False) is facts
    local = local_facts(facts, local=True)
    assert local.kvm_available is os.path.exists("/dev/kvm")
    assert local.subuid_range is None  # not remapped: /etc/subuid is not read


def test_daemon_for_socket_matches_the_serving_dockerd() -> None:
    processes = [
        (10, ("dockerd",)),
        (20, ("dockerd", "--userns-remap=default", "-H", "unix:///run/docker-userns.sock")),
    ]
    assert daemon_for_socket(processes, "/var/run/docker.sock") == ("dockerd",)
    assert daemon_for_socket(processes, "/run/docker-userns.sock") == processes[1][1]
    assert daemon_for_socket(processes, "/run/other.sock") is None


def test_file_stat(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text("{}")
    os.chmod(path, 0o640)
    stat = file_stat(str(path))
    assert stat is not None and stat.mode == 0o640 and stat.uid == os.getuid()
    assert file_stat(str(tmp_path / "missing")) is None
