"""`extends`: a manifest starts from a preset or another manifest (saferun.inputs.loader)."""

from __future__ import annotations

from pathlib import Path

import pytest

from saferun.errors import ManifestError
from saferun.inputs.loader import (
    PRESET_PLACEHOLDER_IMAGE,
    load_manifest,
    merge_documents,
    preset_names,
    preset_path,
    read_document,
)

APP = '[app]\nname = "web"\nimage = "saferun-test/nginx:1"\n'


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_tables_merge_key_by_key_and_everything_else_replaces() -> None:
    parent = {"app": {"user": "1:1", "env": {"A": "1", "B": "2"}},
              "filesystem": {"read_only": True, "tmpfs": [{"target": "/run"}, {"target": "/tmp"}]},
              "capabilities": {"add": ["CHOWN", "SETUID"]}}
    child = {"app": {"name": "x", "env": {"B": "3"}},
             "filesystem": {"tmpfs": [{"target": "/data"}]},
             "capabilities": {"add": []}}
    merged = merge_documents(parent, child)
    assert merged == {
        "app": {"user": "1:1", "name": "x", "env": {"A": "1", "B": "3"}},
        "filesystem": {"read_only": True, "tmpfs": [{"target": "/data"}]},
        "capabilities": {"add": []},
    }
    # Pure: neither input is changed, and the result shares nothing with them.
    assert parent["app"]["env"] == {"A": "1", "B": "2"}
    merged["app"]["env"]["A"] = "changed"
    assert parent["app"]["env"]["A"] == "1"


def test_a_scalar_replaces_a_table_and_back() -> None:
    assert merge_documents({"healthcheck": {"command": ["x"]}}, {"healthcheck": 1}) == {
        "healthcheck": 1}
    assert merge_documents({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}


def test_extends_a_preset_by_name() -> None:
    assert {"nginx", "redis", "postgres", "python-web"} <= set(preset_names())
    manifest = load_manifest_text('extends = "redis"\n' + APP.replace("nginx", "redis"))
    preset = load_manifest(preset_path("redis"))
    assert manifest.extends == "redis"
    assert manifest.app.name == "web" and manifest.app.image == "saferun-test/redis:1"
    assert manifest.app.user == preset.app.user == "999:999"
    assert manifest.filesystem == preset.filesystem
    assert manifest.seccomp.learned == preset.seccomp.learned and manifest.seccomp.learned


def load_manifest_text(text: str, tmp: Path | None = None) -> object:
    import tempfile

    directory = Path(tmp or tempfile.mkdtemp())
    return load_manifest(write(directory / "saferun.toml", text))


def test_the_child_overrides_what_it_must(tmp_path: Path) -> None:
    text = ('extends = "nginx"\n' + APP + 'env = { A = "1" }\n'
            '[resources]\nmemory = "1g"\n'
            '[filesystem]\ntmpfs = [{ target = "/run" }, { target = "/var/lib/nginx" },'
            ' { target = "/var/cache/nginx" }]\n')
    manifest = load_manifest(write(tmp_path / "saferun.toml", text))
    preset = load_manifest(preset_path("nginx"))
    assert manifest.resources.memory == "1g"
    assert manifest.resources.pids == preset.resources.pids  # untouched keys kept
    assert [t.target for t in manifest.filesystem.tmpfs] == [
        "/run", "/var/lib/nginx", "/var/cache/nginx"]  # the array replaced, not extended
    assert manifest.capabilities.add == preset.capabilities.add
    assert manifest.exceptions == preset.exceptions
    assert manifest.app.env == {"A": "1"}


def test_extends_a_relative_path_and_chains(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    write(tmp_path / "base" / "team.toml",
          'extends = "python-web"\n[resources]\nmemory = "300m"\npids = 50\n')
    write(tmp_path / "base" / "strict.toml", 'extends = "./team.toml"\n[resources]\npids = 40\n')
    child = write(tmp_path / "app.toml", 'extends = "base/strict.toml"\n' + APP)
    resolved = read_document(child)
    assert resolved.extended == (tmp_path / "base/strict.toml", tmp_path / "base/team.toml",
                                 preset_path("python-web"))
    manifest = load_manifest(child)
    assert (manifest.resources.memory, manifest.resources.pids) == ("300m", 40)
    assert manifest.app.user == "65534:65534" and manifest.seccomp.learned
    assert manifest.extends == "base/strict.toml"  # what this manifest said


def test_cycles_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "a.toml", 'extends = "b.toml"\n')
    write(tmp_path / "b.toml", 'extends = "./a.toml"\n')
    child = write(tmp_path / "saferun.toml", 'extends = "a.toml"\n' + APP)
    with pytest.raises(ManifestError, match=r"extends forms a cycle: .*a\.toml -> .*b\.toml -> "
                                            r".*a\.toml"):
        load_manifest(child)
    itself = write(tmp_path / "self.toml", 'extends = "self.toml"\n' + APP)
    with pytest.raises(ManifestError, match="cycle"):
        load_manifest(itself)


def test_an_unknown_preset_lists_the_available_ones(tmp_path: Path) -> None:
    child = write(tmp_path / "saferun.toml", 'extends = "ngnix"\n' + APP)
    with pytest.raises(ManifestError) as info:
        load_manifest(child)
    message = info.value.render()
    assert "extends = 'ngnix': there is no such preset" in message
    for name in ("nginx", "postgres", "python-web", "redis"):
        assert name in message


@pytest.mark.parametrize("value", ["missing.toml", "../nowhere/x.toml"])
def test_a_missing_file_is_named(tmp_path: Path, value: str) -> None:
    child = write(tmp_path / "saferun.toml", f'extends = "{value}"\n' + APP)
    with pytest.raises(ManifestError) as info:
        load_manifest(child)
    assert f"extends = '{value}': no such file" in info.value.render()
    assert "paths are relative to the manifest that names them" in info.value.render()


@pytest.mark.parametrize("value", ["1", '""', "[\"nginx\"]", '"a\\u0001b"'])
def test_extends_must_be_a_name_or_path(tmp_path: Path, value: str) -> None:
    child = write(tmp_path / "saferun.toml", f"extends = {value}\n" + APP)
    with pytest.raises(ManifestError, match="expected a preset name"):
        load_manifest(child)


def test_errors_in_a_base_name_the_file_and_line_that_set_the_key(tmp_path: Path) -> None:
    base = write(tmp_path / "base.toml", '[app]\nuser = "1:1"\n\n[resources]\npids = 0\n')
    child = write(tmp_path / "saferun.toml", 'extends = "base.toml"\n' + APP)
    with pytest.raises(ManifestError) as info:
        load_manifest(child)
    assert f"{base}:5: resources.pids = 0" in info.value.render()
    write(child, 'extends = "base.toml"\n' + APP + "[resources]\npids = -1\n")
    with pytest.raises(ManifestError) as info:
        load_manifest(child)
    assert f"{child}:6: resources.pids = -1" in info.value.render()


def test_the_merged_result_still_passes_the_refusal_rules(tmp_path: Path) -> None:
    """A child cannot drop the preset's reasons and keep its weakenings silently."""
    write(tmp_path / "base.toml", '[capabilities]\nadd = ["SYS_ADMIN"]\n'
          '[allow]\ncap-not-allowed = "the base needs it for a reason"\n')
    child = write(tmp_path / "saferun.toml", 'extends = "base.toml"\n' + APP)
    assert load_manifest(child).capabilities.add == ["CAP_SYS_ADMIN"]
    write(tmp_path / "base.toml", '[capabilities]\nadd = ["SYS_ADMIN"]\n')
    with pytest.raises(ManifestError, match="cap-not-allowed"):
        load_manifest(child)


def test_a_preset_file_alone_validates_with_a_placeholder_app() -> None:
    for name in preset_names():
        manifest = load_manifest(preset_path(name))
        assert manifest.app.name == name
        assert manifest.app.image == PRESET_PLACEHOLDER_IMAGE.format(name=name)


def test_a_copy_of_a_preset_elsewhere_is_an_ordinary_manifest(tmp_path: Path) -> None:
    copy = write(tmp_path / "redis.toml", preset_path("redis").read_text())
    with pytest.raises(ManifestError, match="app.name is required"):
        load_manifest(copy)


def test_saferun_run_records_every_extended_file_as_a_plan_input(tmp_path: Path) -> None:
    """The plan cache re-checks inputs on each hit: a base file must be one of them."""
    from saferun.app.run import load_for_run

    write(tmp_path / "base.toml", 'extends = "redis"\n[resources]\npids = 20\n')
    child = write(tmp_path / "saferun.toml", 'extends = "./base.toml"\n' + APP)
    manifest, directory, _digest, extended = load_for_run(str(child))
    assert manifest.resources.pids == 20 and directory == str(tmp_path)
    assert extended == (str(tmp_path / "base.toml"), str(preset_path("redis")))
