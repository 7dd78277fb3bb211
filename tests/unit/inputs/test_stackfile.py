from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w

from saferun.errors import ManifestError
from saferun.inputs.stackfile import load_stack


def _manifest(directory: Path, name: str, network: dict[str, object] | None = None) -> None:
    document: dict[str, object] = {"app": {"name": name, "image": "busybox:1.36"}}
    if network:
        document["network"] = network
    (directory / f"{name}.toml").write_text(tomli_w.dumps(document))


def _stack(directory: Path, services: dict[str, list[str]]) -> Path:
    path = directory / "saferun.stack.toml"
    path.write_text(tomli_w.dumps({"stack": {"name": "shop"}, "services": {
        s: {"manifest": f"{s}.toml", "depends_on": d} for s, d in services.items()}}))
    return path


def test_stack_file_in_dependency_order(tmp_path: Path) -> None:
    _manifest(tmp_path, "web", {"egress": ["db:5432"]})
    _manifest(tmp_path, "db", {"egress": "none", "ingress": ["web"]})
    stack = load_stack(str(_stack(tmp_path, {"web": ["db"], "db": []})))
    assert stack.name == "shop"
    assert [s.name for s in stack.services] == ["db", "web"]
    assert load_stack(str(tmp_path)).name == "shop"  # the folder finds its stack file


def test_unknown_service_in_rules(tmp_path: Path) -> None:
    _manifest(tmp_path, "web", {"egress": ["mail:25"]})
    with pytest.raises(ManifestError, match="'mail'.*not in stack 'shop'"):
        load_stack(str(_stack(tmp_path, {"web": []})))


def test_own_network_mode_is_refused(tmp_path: Path) -> None:
    _manifest(tmp_path, "web", {"mode": "none"})
    with pytest.raises(ManifestError, match="stack's own network"):
        load_stack(str(_stack(tmp_path, {"web": []})))


def test_folder_and_single_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "my-app"
    folder.mkdir()
    _manifest(folder, "web")
    _manifest(folder, "db")
    stack = load_stack(str(folder))
    assert stack.name == "my-app"
    assert sorted(s.name for s in stack.services) == ["db", "web"]
    single = load_stack(str(folder / "web.toml"))
    assert [s.name for s in single.services] == ["web"]


def test_missing(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="stack not found"):
        load_stack(str(tmp_path / "nope.toml"))


def test_check_reads_a_stack_file(tmp_path: Path) -> None:
    from saferun.app.check import check_all

    _manifest(tmp_path, "web", {"egress": ["db:5432"]})
    _manifest(tmp_path, "db", {"egress": "none", "ingress": ["web"]})
    reports = check_all((_stack(tmp_path, {"web": ["db"], "db": []}),), (), ())
    assert [Path(r.target).name for r in reports] == ["db.toml", "web.toml"]
    ids = {f.rule for r in reports for f in r.findings}
    assert "default-bridge" not in ids  # on the stack's own network under `up`
    assert "egress-unrestricted" not in ids
    web = next(r for r in reports if r.target.endswith("web.toml"))
    assert "ingress-unrestricted" in {f.rule for f in web.findings}
