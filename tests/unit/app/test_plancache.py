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
    monkeypatch.setattr(plancache, "invocation", None)  # restored after each test
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
    path = Path(plancache.cache_root()) / f"{plancache.entry_key(['run', 'x.toml'])}.plan"
    assert path.stat().st_mode & 0o777 == 0o600
    assert Path(plancache.cache_root()).stat().st_mode & 0o777 == 0o700
    entry = marshal.loads(path.read_bytes())
    assert entry["docker_argv"] == ["docker", "run", "img"] and entry["warnings"] == ["w"]


def test_entries_others_could_write_are_ignored(cache_home: Path) -> None:
    directory = Path(plancache.cache_root())
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


# --- the normalised request ------------------------------------------------------------

def test_a_new_command_or_env_value_keeps_the_key() -> None:
    key = plancache.entry_key(["run", "--rm", "-e", "A=1", "m.toml", "true"])
    assert key == plancache.entry_key(["run", "--rm", "-e", "A=2", "m.toml", "sh", "-c", "x"])
    assert key == plancache.entry_key(["run", "--rm", "--env=A=3", "m.toml", "echo"])
    assert key == plancache.entry_key(["run", "--dry-run", "--rm", "-e", "A=", "m.toml", "id"])
    # Everything else is the request: names, flags, target, whether a command is given.
    assert key != plancache.entry_key(["run", "--rm", "-e", "B=1", "m.toml", "true"])
    assert key != plancache.entry_key(["run", "--rm", "-e", "A", "m.toml", "true"])
    assert key != plancache.entry_key(["run", "-e", "A=1", "m.toml", "true"])
    assert key != plancache.entry_key(["run", "--rm", "-e", "A=1", "n.toml", "true"])
    assert key != plancache.entry_key(["run", "--rm", "-e", "A=1", "m.toml"])
    assert key != plancache.entry_key(["run", "--rm", "-e", "A=1", "-m", "1g", "m.toml", "true"])


def _argv(words: list[str], tmp_path: Path) -> list[str]:
    """The docker argv saferun plans for `saferun run WORDS` (offline facts)."""
    from saferun.app.run import prepare, request_from_args
    from saferun.engine.docker_cli import SECCOMP_FD_PATH
    from saferun.inputs.run_flags import parse_run_args
    from saferun.render.argv import render_argv

    request = request_from_args(parse_run_args(words), cwd=str(tmp_path), offline=True)
    plan = prepare(request).plan
    return render_argv(plan, seccomp_path=SECCOMP_FD_PATH if plan.seccomp_profile else None)


@pytest.mark.parametrize(("first", "second"), [
    (["-e", "A=1", "-e", "B=x", "MANIFEST", "true"],
     ["-e", "A=two words", "-e", "B=--privileged", "MANIFEST", "sh", "-c", "echo $A"]),
    (["-e", "A=1", "MANIFEST", "--", "true"], ["-e", "A=2", "MANIFEST", "--", "id", "-u"]),
    (["-e", "A=1", "busybox:1.36", "true"],
     ["-e", "A=--cap-add=ALL", "busybox:1.36", "--privileged", "x"]),
    (["--env=A=1", "-f", "MANIFEST", "busybox:1.36"], ["--env=A=9", "-f", "MANIFEST",
                                                       "busybox:1.36"]),
])
def test_planning_only_copies_the_command_and_env_values(
    first: list[str], second: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The normalised key is sound only because planning never looks at these values: the
    # argv planned for the second line is the first line's argv with its values replaced.
    manifest = tmp_path / "m.toml"
    manifest.write_text('[app]\nname = "web"\nimage = "busybox:1.36"\nenv = { A = "0" }\n')
    first = [str(manifest) if w == "MANIFEST" else w for w in first]
    second = [str(manifest) if w == "MANIFEST" else w for w in second]
    assert plancache.entry_key(["run", *first]) == plancache.entry_key(["run", *second])
    old, new = _argv(first, tmp_path), _argv(second, tmp_path)
    request = plancache.Request(first)
    entry = {"slots": plancache._slots(request, old), "docker_argv": old,
             "values": [request.env, request.command]}
    assert entry["slots"] is not None
    assert plancache._argv_for(entry, plancache.Request(second)) == new


def test_the_model_does_not_judge_env_values_or_the_command() -> None:
    # If a validator of env values or of the command is added to the model, the plan
    # cache's template (which replaces those values without validating) must learn it too.
    from saferun.model.manifest import AppSection

    judged = {name for name, _ in AppSection.__field_checks__}
    assert "command" not in judged
    assert "env" in judged  # _env_names: the names only, and names are in the key
    assert [check.__name__ for name, check in AppSection.__field_checks__
            if name == "env"] == ["_env_names"]


# --- bounded, least recently used, concurrent writers ---------------------------------------

def _store(argv: list[str]) -> None:
    plancache.invocation = argv
    plancache.store(inputs=[], info={"ServerVersion": "1"}, docker_argv=["docker", "run", "i"],
                    seccomp_profile=None, warnings=[], notes=[])


def test_eviction_keeps_the_bound_and_drops_the_least_recently_used(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each store writes two files (the request's entry and the exact command line's).
    monkeypatch.setenv("SAFERUN_CACHE_ENTRIES", "10")
    root = Path(plancache.cache_root())

    def files(index: int) -> list[Path]:
        argv = ["run", f"m{index}.toml"]
        return [root / f"{plancache.entry_key(argv)}.plan",
                root / f"{plancache.exact_key(argv)}.plan"]

    for index in range(5):
        _store(["run", f"m{index}.toml"])
        for path in files(index):  # distinct, increasing use times
            os.utime(path, ns=(index * 10**9, index * 10**9))
    for path in files(0):
        plancache._touch(str(path))  # a hit: m0 is now the most recently used
    for index in range(5, 9):  # four new pairs evict the four least recently used
        _store(["run", f"m{index}.toml"])
        assert len(list(root.glob("*.plan"))) == 10
    assert all(path.exists() for path in files(0))
    assert not any(path.exists() for index in range(1, 5) for path in files(index))
    assert all(path.exists() for index in range(5, 9) for path in files(index))


def _store_in_child(args: tuple[str, int]) -> None:
    cache, index = args
    os.environ["XDG_CACHE_HOME"] = cache
    os.environ["SAFERUN_CACHE_ENTRIES"] = "10"
    _store(["run", f"app{index}.toml", "--name", f"n{index}"])


def test_fifty_concurrent_writers_leave_a_bounded_readable_cache(cache_home: Path) -> None:
    import multiprocessing

    cache = str(cache_home / "cache")
    with multiprocessing.get_context("fork").Pool(50) as pool:
        pool.map(_store_in_child, [(cache, i) for i in range(50)], chunksize=1)
    root = Path(cache) / "saferun" / "plans"
    entries = list(root.iterdir())
    assert 1 <= len(entries) <= 10
    for path in entries:  # no torn entry, no temporary file left behind
        assert path.suffix == ".plan" and path.stat().st_mode & 0o777 == 0o600
        assert marshal.loads(path.read_bytes())["docker_argv"] == ["docker", "run", "i"]


def test_stale_temporary_files_are_removed(cache_home: Path) -> None:
    _store(["run", "a.toml"])
    root = Path(plancache.cache_root())
    stale = root / ".x.plan.123.tmp"
    stale.write_bytes(b"")
    os.utime(stale, (0, 0))
    fresh = root / ".y.plan.124.tmp"
    fresh.write_bytes(b"")
    plancache.evict(str(root), ".plan", 10)
    assert not stale.exists() and fresh.exists()


def test_an_image_line_keeps_a_leading_dashdash_in_the_command(tmp_path: Path) -> None:
    # After an image `--` is the command's own word (docker's reading); after a manifest
    # saferun drops it. The template learns which from the planned argv.
    first = ["-e", "A=1", "busybox:1.36", "--", "x"]
    second = ["-e", "A=2", "busybox:1.36", "--", "y", "z"]
    old, new = _argv(first, tmp_path), _argv(second, tmp_path)
    request = plancache.Request(first)
    entry = {"slots": plancache._slots(request, old), "docker_argv": old,
             "values": [request.env, request.command]}
    assert old[-2:] == ["--", "x"]
    assert plancache._argv_for(entry, plancache.Request(second)) == new


def test_the_key_uses_the_environment_saferun_was_started_with(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    # The full path may set SAFERUN_POLICY (a user config's default team policy) before it
    # stores; the entry must be found by the next start, which has not set it yet.
    monkeypatch.delenv("SAFERUN_POLICY", raising=False)
    monkeypatch.setattr(plancache, "_started_env", None)
    before = plancache.entry_key(["run", "a.toml"])
    plancache.begin(["run", "a.toml"])
    monkeypatch.setenv("SAFERUN_POLICY", "/etc/saferun/policy.toml")
    assert plancache.entry_key(["run", "a.toml"]) == before
    monkeypatch.setattr(plancache, "_started_env", None)
    assert plancache.entry_key(["run", "a.toml"]) != before


class _CountingSession:
    def __init__(self, info: dict[str, object]) -> None:
        self.answer, self.asked = info, 0

    def info(self) -> dict[str, object]:
        self.asked += 1
        return dict(self.answer)


_INFO = {"ServerVersion": "20.10.24", "SecurityOptions": ["name=seccomp"], "Containers": 3,
         "DockerRootDir": "/var/lib/docker", "Warnings": ["WARNING: No swap limit support"]}


def test_daemon_info_is_kept_per_daemon_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    identity = ["sock:1:2|pid:3:4"]
    monkeypatch.setattr("saferun.engine.api.daemon_identity", lambda: identity[0])
    session = _CountingSession(_INFO)
    assert plancache.daemon_info(session) == _INFO  # asked: the live answer, whole
    kept = plancache.daemon_info(session)
    assert session.asked == 1
    assert kept == {k: v for k, v in _INFO.items() if k != "Containers"}  # volatile not kept
    identity[0] = "sock:1:2|pid:3:5"  # the daemon restarted: its pidfile was rewritten
    plancache.daemon_info(session)
    assert session.asked == 2


def test_daemon_info_is_asked_without_an_identity_or_with_the_cache_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = _CountingSession(_INFO)
    monkeypatch.setattr("saferun.engine.api.daemon_identity", lambda: None)  # remote, rootless
    plancache.daemon_info(session)
    plancache.daemon_info(session)
    assert session.asked == 2
    monkeypatch.setattr("saferun.engine.api.daemon_identity", lambda: "sock")
    monkeypatch.setenv("SAFERUN_NO_CACHE", "1")
    plancache.daemon_info(session)
    plancache.daemon_info(session)
    assert session.asked == 4


def test_daemon_info_ignores_a_file_another_user_could_have_written(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("saferun.engine.api.daemon_identity", lambda: "sock")
    session = _CountingSession(_INFO)
    plancache.daemon_info(session)
    [kept] = list((cache_home / "cache" / "saferun" / "plans").glob("*.info"))
    forged = {"format": marshal.loads(kept.read_bytes())["format"], "daemon": "sock",
              "info": {"SecurityOptions": []}}  # would hide seccomp support
    kept.write_bytes(marshal.dumps(forged))
    os.chmod(kept, 0o666)
    assert plancache.daemon_info(session) == _INFO
    assert session.asked == 2


def test_profile_files_are_bounded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFERUN_CACHE_ENTRIES", "5")
    paths = [plancache.store_profile_file(f'{{"n": {n}}}') for n in range(12)]
    directory = Path(paths[0]).parent
    assert len(list(directory.glob("*.json"))) == 5
    assert all(Path(p).exists() for p in paths[-5:])  # the newest are kept
