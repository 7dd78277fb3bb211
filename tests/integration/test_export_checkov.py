"""checkov (`--framework kubernetes`) on the Kubernetes exports of examples/hello and every
preset: only the checks docs/export.md lists as accepted exceptions may remain, each only
where the docs say.

The exports are rendered as `saferun export --namespace NS --pin` would render them: the
digests are values given to the pure renderer (the engine lookup of --pin is tested in
tests/unit/app/test_export.py and tests/e2e/test_export_pin_e2e.py), since the locally
built test images have no registry digest. checkov comes from its own venv (.ci/run
installs .venv-checkov: its pinned dependencies would clash with ours); skipped with a
message where it is absent, failed in CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from saferun.export import ExportInput, KubeKind, Target, export
from saferun.export.kubernetes import KubeOptions, ProfileDelivery
from saferun.inputs.loader import load_manifest
from saferun.policy.rules import image_parts
from tests.skips import CHECKOV_INSTALL
from tests.unit.export.cases import PRESETS

REPO = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
HELLO = REPO / "examples" / "hello" / "saferun.toml"
FAKE_DIGEST = "sha256:" + "5a" * 32  # what --pin writes, for an image the test cannot pull


def _checkov() -> str:
    for candidate in (os.environ.get("SAFERUN_CHECKOV"), str(REPO / ".venv-checkov/bin/checkov"),
                      shutil.which("checkov")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    message = f"checkov is not installed: {CHECKOV_INSTALL}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def documented_exceptions() -> set[str]:
    """The check ids of the accepted-exceptions table in docs/export.md's checkov section."""
    text = (REPO / "docs" / "export.md").read_text(encoding="utf-8")
    section = text.split("### checkov", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| (CKV2?_K8S_\d+) \|", section, re.M))


def _export(manifest: Path, out: Path, profiles: ProfileDelivery) -> None:
    loaded = load_manifest(manifest)
    image = loaded.app.image
    pinned = {} if image_parts(image)[2] else {image: f"{image}@{FAKE_DIGEST}"}
    result = export([ExportInput(loaded)], Target.KUBERNETES, kind=KubeKind.DEPLOYMENT,
                    kube_options=KubeOptions("saferun-apps", pinned, profiles))
    out.mkdir(parents=True)
    for item in result.files:
        path = out / item.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(item.content, encoding="utf-8")


def failed_checks(checkov: str, root: Path) -> dict[str, set[str]]:
    """checkov's failed check ids, by exported app (the first folder under root)."""
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    ran = subprocess.run([checkov, "-d", str(root), "--framework", "kubernetes", "--quiet",
                          "--skip-download", "-o", "json"], capture_output=True, text=True,
                         timeout=600, check=False, env=env)
    assert ran.returncode in (0, 1), ran.stderr[-2000:]  # 1: failed checks, reported below
    reports = json.loads(ran.stdout)
    failed: dict[str, set[str]] = {}
    for report in reports if isinstance(reports, list) else [reports]:
        for check in report["results"]["failed_checks"]:
            app = Path(check["file_path"].lstrip("/")).parts[0]
            failed.setdefault(app, set()).add(check["check_id"])
    return failed


def test_only_documented_exceptions_remain(tmp_path: Path) -> None:
    checkov = _checkov()
    accepted = documented_exceptions()
    assert "CKV_K8S_31" in accepted  # the table was found
    apps = {"hello": HELLO, **{f"preset-{p.stem}": p for p in PRESETS}}
    for name, manifest in apps.items():
        _export(manifest, tmp_path / name, ProfileDelivery.FILES)
    _export(HELLO, tmp_path / "hello-operator", ProfileDelivery.OPERATOR)
    failed = failed_checks(checkov, tmp_path)
    assert set(failed) <= {*apps, "hello-operator"}
    for app, checks in sorted(failed.items()):
        assert checks <= accepted, f"{app}: undocumented checkov failures {checks - accepted}"
    # Each exception only where the docs say it applies.
    assert {a for a, c in failed.items() if c & {"CKV_K8S_23", "CKV_K8S_25"}} == {"preset-nginx"}
    no_probe = {a for a, c in failed.items() if c & {"CKV_K8S_8", "CKV_K8S_9"}}
    assert no_probe == {"hello", "hello-operator"}
    for app, checks in failed.items():
        # namespace, digest and pull policy are fixed: never among the failures
        assert not checks & {"CKV_K8S_21", "CKV_K8S_43", "CKV_K8S_15"}, app
        assert "CKV2_K8S_6" not in checks, app  # every pod has its NetworkPolicy


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """The same run on an export without --namespace and --pin reports those checks."""
    checkov = _checkov()
    loaded = load_manifest(HELLO)
    result = export([ExportInput(loaded)], Target.KUBERNETES)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "kubernetes.yaml").write_text(result.main.content)
    assert {"CKV_K8S_21", "CKV_K8S_43"} <= failed_checks(checkov, tmp_path)["plain"]
