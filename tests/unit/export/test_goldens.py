"""Golden files: each case x export variant, byte for byte (`pytest --update-goldens`).

The main file is compared whole. Companion profile files are recorded by name only: their
content is saferun's seccomp/AppArmor output, checked by those modules' own goldens and by
test_common's equality with the generators here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.export.cases import CASES, DATA, VARIANTS, VARIED, run

GOLDEN = DATA / "golden" / "export"


def _compare(directory: Path, name: str, content: str, update: bool) -> None:
    path = directory / name
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        return
    assert path.is_file(), f"missing golden {path}: run pytest --update-goldens"
    assert content == path.read_text(), f"{path} differs: review, then pytest --update-goldens"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str, variant: str, update_goldens: bool) -> None:
    result = run([CASES[case]], variant)
    directory = GOLDEN / case / variant
    _compare(directory, result.main.path, result.main.content, update_goldens)
    companions = "".join(f"{f.path}\n" for f in result.files[1:])
    _compare(directory, "companion-files.txt", companions, update_goldens)


@pytest.mark.parametrize("variant", ["compose", "kubernetes-deployment-1.29"])
def test_golden_several_manifests_in_one_file(variant: str, update_goldens: bool) -> None:
    result = run(VARIED, variant)
    _compare(GOLDEN / "all-varied" / variant, result.main.path, result.main.content,
             update_goldens)


def test_every_case_has_a_golden_directory() -> None:
    """A golden left behind by a removed preset is flagged, so the set stays exact."""
    if not GOLDEN.is_dir():
        pytest.skip("no goldens yet")
    stale = {p.name for p in GOLDEN.iterdir()} - set(CASES) - {"all-varied"}
    assert not stale, f"goldens without a case: {sorted(stale)}"
