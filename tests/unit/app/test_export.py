"""app.export: where -o puts the files, rendering without writing, then writing."""

from __future__ import annotations

from pathlib import Path

import pytest

from saferun.app.export import (
    ExportRequest,
    manifest_dir,
    output_location,
    render_export,
    write_export,
)
from saferun.errors import UsageError
from saferun.export import Target

DATA = Path(__file__).resolve().parents[2] / "data" / "export"


def test_output_location(tmp_path: Path) -> None:
    assert output_location(None, Target.COMPOSE, 2) == (None, None)
    assert output_location(str(tmp_path), Target.QUADLET, 2) == (tmp_path, None)
    assert output_location(f"{tmp_path}/new/", Target.COMPOSE, 1) == (tmp_path / "new", None)
    assert output_location(str(tmp_path / "c.yaml"), Target.COMPOSE, 2) == (tmp_path, "c.yaml")
    with pytest.raises(UsageError, match="cannot share standard output"):
        output_location(None, Target.QUADLET, 2)
    with pytest.raises(UsageError, match="several Quadlet units"):
        output_location(str(tmp_path / "a.container"), Target.QUADLET, 2)


def test_manifest_dir_is_relative_except_for_quadlet(tmp_path: Path) -> None:
    path = tmp_path / "app" / "saferun.toml"
    assert manifest_dir(path, tmp_path / "out", Target.COMPOSE) == "../app"
    assert manifest_dir(path, tmp_path / "out", Target.QUADLET) == str(tmp_path / "app")


def test_render_writes_nothing_and_write_writes_every_file(tmp_path: Path) -> None:
    to_stdout = render_export(ExportRequest((DATA / "web.toml",), Target.COMPOSE))
    assert to_stdout.out_dir is None and to_stdout.not_written == ["web.apparmor",
                                                                  "web.seccomp.json"]
    assert write_export(to_stdout) == []
    rendered = render_export(ExportRequest((DATA / "web.toml",), Target.COMPOSE,
                                           output=str(tmp_path / "stack.yaml")))
    assert list(tmp_path.iterdir()) == [] and rendered.not_written == []
    written = write_export(rendered)
    assert written[0] == tmp_path / "stack.yaml"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stack.yaml", "web.apparmor",
                                                          "web.seccomp.json"]


class _Engine:
    """The two answers --pin needs from the engine: RepoDigests per image."""

    digests: dict[str, list[str]] = {}

    def image_inspect(self, reference: str) -> dict[str, object] | None:
        found = self.digests.get(reference)
        return None if found is None else {"RepoDigests": found}


def test_pin_asks_the_engine_and_the_renderer_takes_the_values(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from saferun.engine import api
    from saferun.errors import ManifestError
    from saferun.policy.rules import image_parts

    digest = "sha256:" + "c" * 64
    manifest = DATA / "minimal.toml"  # a tag, as web.toml is pinned already
    from saferun.inputs.loader import load_manifest

    image = load_manifest(manifest).app.image
    name = image_parts(image)[0]
    monkeypatch.setattr(api, "EngineSession", _Engine)
    _Engine.digests = {image: [f"{name}@{digest}"]}
    request = ExportRequest((manifest,), Target.KUBERNETES, namespace="shop", pin=True)
    docs = list(yaml.safe_load_all(render_export(request).result.main.content))
    assert docs[-1]["metadata"]["namespace"] == "shop"
    assert docs[-1]["spec"]["containers"][0]["image"].endswith(f"@{digest}")
    _Engine.digests = {image: []}  # built locally: no registry digest
    with pytest.raises(ManifestError, match="no registry digest"):
        render_export(request)
    _Engine.digests = {}
    with pytest.raises(ManifestError, match="not in the local engine"):
        render_export(request)
    pinned_already = ExportRequest((DATA / "web.toml",), Target.KUBERNETES, pin=True)
    assert "@sha256:0123" in render_export(pinned_already).result.main.content  # not asked
