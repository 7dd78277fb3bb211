from __future__ import annotations

import marshal
import os
from pathlib import Path

import pytest

from saferun.app import plancache


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_key_depends_on_argv_cwd_and_docker_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = plancache.entry_key(["run", "a.toml"])
    assert key == plancache.entry_key(["run", "a.toml"])
    assert key != plancache.entry_key(["run", "b.toml"])
    monkeypatch.setenv("DOCKER_HOST", "unix:///other.sock")
    assert key != plancache.entry_key(["run", "a.toml"])
    monkeypatch.delenv("DOCKER_HOST")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert key != plancache.entry_key(["run", "a.toml"])


def test_inputs_detect_content_existence_and_symlink_changes(tmp_path: Path) -> None:
    manifest = tmp_path / "m.toml"
    manifest.write_text("a")
    link = tmp_path / "data"
    link.symlink_to(tmp_path)
    records = [
        plancache.describe_input(str(manifest)),
        plancache.describe_input(str(link)),
        plancache.describe_input(str(tmp_path / "absent")),
    ]
    assert plancache._inputs_unchanged(records)
    manifest.write_text("b")
    assert not plancache._inputs_unchanged(records)
    manifest.write_text("a")
    link.unlink()
    link.symlink_to("/etc")
    assert not plancache._inputs_unchanged(records)
    link.unlink()
    link.symlink_to(tmp_path)
    (tmp_path / "absent").write_text("now here")
    assert not plancache._inputs_unchanged(records)


def test_facts_digest_ignores_volatile_fields() -> None:
    info = {
        "ServerVersion": "20.10",
        "SecurityOptions": ["name=seccomp"],
        "Containers": 1,
        "SystemTime": "a",
    }
    same = {**info, "Containers": 5, "SystemTime": "b"}
    assert plancache.facts_digest(info) == plancache.facts_digest(same)
    assert plancache.facts_digest(info) != plancache.facts_digest({**info, "SecurityOptions": []})


def test_store_writes_a_private_entry(monkeypatch: pytest.MonkeyPatch, cache_home: Path) -> None:
    monkeypatch.setattr(plancache, "invocation", ["run", "x.toml"])
    plancache.store(
        inputs=[],
        info={"ServerVersion": "1"},
        docker_argv=["docker", "run", "img"],
        seccomp_profile=None,
        warnings=["w"],
    )
    path = Path(plancache._cache_root()) / f"{plancache.entry_key(['run', 'x.toml'])}.plan"
    assert path.stat().st_mode & 0o777 == 0o600
    assert Path(plancache._cache_root()).stat().st_mode & 0o777 == 0o700
    entry = marshal.loads(path.read_bytes())
    assert entry["docker_argv"] == ["docker", "run", "img"] and entry["warnings"] == ["w"]


def test_entries_others_could_write_are_ignored(cache_home: Path) -> None:
    directory = Path(plancache._cache_root())
    directory.mkdir(parents=True, mode=0o700)
    path = directory / "entry.plan"
    path.write_bytes(marshal.dumps({"format": 1}))
    os.chmod(path, 0o600)
    assert plancache._private_read(str(path)) is not None
    os.chmod(path, 0o620)
    assert plancache._private_read(str(path)) is None
    os.chmod(path, 0o600)
    os.chmod(directory, 0o770)
    assert plancache._private_read(str(path)) is None
    os.chmod(directory, 0o700)
    link = directory / "link.plan"
    link.symlink_to(path)
    assert plancache._private_read(str(link)) is None


def test_no_cache_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFERUN_NO_CACHE", "1")
    assert not plancache.enabled()
    monkeypatch.setenv("SAFERUN_NO_CACHE", "0")
    assert plancache.enabled()


def test_daemon_identity_only_for_the_default_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    from saferun.engine import api as engine

    monkeypatch.setenv("DOCKER_HOST", "unix:///run/docker-userns.sock")
    assert engine.daemon_identity() is None
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2376")
    assert engine.daemon_identity() is None
