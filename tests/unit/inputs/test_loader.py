from __future__ import annotations

from pathlib import Path

import pytest

from saferun.errors import ManifestError
from saferun.inputs.loader import find_manifest, load_manifest, locate_key

TEXT = """\
[app]
name = "web"
image = "busybox:1"

[resources]
pids = 10
memory = "-5m"
"""


def test_errors_name_file_line_key_and_value(tmp_path: Path) -> None:
    path = tmp_path / "saferun.toml"
    path.write_text(TEXT)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    message = info.value.render()
    assert f"{path}:7: resources.memory = '-5m'" in message
    assert "invalid size" in message


def test_toml_syntax_errors_carry_the_line(tmp_path: Path) -> None:
    path = tmp_path / "saferun.toml"
    path.write_text('[app]\nname = "web"\nimage = \n')
    with pytest.raises(ManifestError, match=r"invalid TOML: .*line 3"):
        load_manifest(path)


def test_unknown_key_is_located(tmp_path: Path) -> None:
    path = tmp_path / "saferun.toml"
    path.write_text('[app]\nname = "web"\nimage = "busybox:1"\ncolour = "red"\n')
    with pytest.raises(ManifestError, match=r"saferun.toml:4: unknown key app.colour"):
        load_manifest(path)


def test_missing_required_key(tmp_path: Path) -> None:
    path = tmp_path / "saferun.toml"
    path.write_text('[app]\nname = "web"\n')
    with pytest.raises(ManifestError, match="app.image is required"):
        load_manifest(path)


def test_find_manifest_defaults_to_saferun_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "saferun.toml").write_text(TEXT)
    monkeypatch.chdir(tmp_path)
    assert find_manifest(None) == Path("saferun.toml")
    assert find_manifest(str(tmp_path)) == tmp_path / "saferun.toml"
    with pytest.raises(ManifestError, match="manifest not found"):
        find_manifest("nope.toml")


def test_locate_key_in_array_of_tables() -> None:
    text = '[app]\nname = "x"\n\n[[filesystem.mounts]]\ntype = "bind"\ntarget = "rel"\n'
    assert locate_key(text, ["filesystem", "mounts", "0", "target"]) == 6
