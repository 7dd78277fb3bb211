"""Kubernetes export options: --namespace, --pin's digests, pull policy, probes and uid
notes, and --profiles operator (Security Profiles Operator objects, checked against the
operator's published CRD schema, tests/data/spo/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from saferun.errors import ExportError
from saferun.export import ExportInput, KubeKind, Target, export
from saferun.export.kubernetes import KubeOptions, ProfileDelivery
from saferun.inputs.loader import load_manifest
from saferun.model.manifest import Manifest
from tests.unit.export.cases import CASES

kubernetes_validate = pytest.importorskip("kubernetes_validate")
SPO_SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "data" / "spo" /
                         "seccompprofile.v1.schema.json").read_text())
DIGEST = "sha256:" + "ab" * 32


def render(options: KubeOptions | None = None, kind: KubeKind = KubeKind.POD,
           **sections: Any) -> tuple[list[dict[str, Any]], Any]:
    app = {"name": "web", "image": "busybox:1", **sections.pop("app", {})}
    manifest = Manifest.from_data({"app": app, **sections})
    result = export([ExportInput(manifest)], Target.KUBERNETES, kind=kind, kube_options=options)
    return [d for d in yaml.safe_load_all(result.main.content) if d], result


def container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    workload = documents[-1]
    spec = workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]
    return dict(spec["containers"][0])


def test_namespace_goes_on_namespaced_objects_only() -> None:
    docs, _ = render(KubeOptions(namespace="shop"), security={"runtime": "gvisor"})
    kinds = {d["kind"]: d for d in docs}
    assert kinds["Pod"]["metadata"]["namespace"] == "shop"
    assert list(kinds["Pod"]["metadata"])[:2] == ["name", "namespace"]
    assert "namespace" not in kinds["RuntimeClass"]["metadata"]  # cluster-scoped
    docs, _ = render(KubeOptions(namespace="shop"), kind=KubeKind.DEPLOYMENT)
    assert docs[-1]["metadata"]["namespace"] == "shop"
    assert all("namespace" not in d["metadata"] for d in render()[0])
    with pytest.raises(ExportError, match="--namespace 'Shop_1'"):
        render(KubeOptions(namespace="Shop_1"))


def test_pinned_digest_and_pull_policy() -> None:
    pinned = container(render(KubeOptions(pinned={"busybox:1": f"busybox:1@{DIGEST}"}))[0])
    assert pinned["image"] == f"busybox:1@{DIGEST}"
    assert pinned["imagePullPolicy"] == "IfNotPresent"  # a digest does not move
    assert container(render()[0])["imagePullPolicy"] == "Always"  # a tag can
    never = container(render(app={"pull": "never"})[0])
    assert never["imagePullPolicy"] == "Never"


def test_probes_and_their_absence_are_said() -> None:
    docs, result = render()
    assert "livenessProbe" not in container(docs)
    assert any(n.key == "healthcheck" and "CKV_K8S_8" in n.message for n in result.notes)
    docs, result = render(healthcheck={"command": ["true"]})
    assert {"livenessProbe", "readinessProbe"} <= set(container(docs))
    assert not any(n.key == "healthcheck" for n in result.notes)


def test_a_uid_below_10000_is_kept_with_a_note() -> None:
    docs, result = render(app={"user": "101:101"})
    assert docs[-1]["spec"]["securityContext"]["runAsUser"] == 101
    assert any(n.key == "app.user" and "CKV_K8S_40" in n.message for n in result.notes)
    _, result = render(app={"user": "101:101"}, security={"userns": "required"})
    assert not any(n.key == "app.user" for n in result.notes)  # hostUsers: false
    _, result = render(app={"user": "65534:65534"})
    assert not any(n.key == "app.user" for n in result.notes)


def _pruned(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Fields the API server would drop silently (not in the structural schema)."""
    if isinstance(value, dict) and "properties" in schema:
        found = [f"{where}.{key}" for key in value if key not in schema["properties"]]
        for key, item in value.items():
            if key in schema["properties"]:
                found += _pruned(item, schema["properties"][key], f"{where}.{key}")
        return found
    if isinstance(value, list) and "items" in schema:
        return [p for i, item in enumerate(value) for p in _pruned(item, schema["items"],
                                                                  f"{where}[{i}]")]
    return []


@pytest.mark.parametrize("case", sorted(CASES))
def test_operator_profiles_follow_the_crd_schema(case: str) -> None:
    manifest = load_manifest(CASES[case])
    result = export([ExportInput(manifest)], Target.KUBERNETES,
                    kube_options=KubeOptions(profiles=ProfileDelivery.OPERATOR))
    documents = [d for d in yaml.safe_load_all(result.main.content) if d]
    profiles = [d for d in documents if d["kind"] == "SeccompProfile"]
    for profile in profiles:
        assert profile["apiVersion"] == f"{SPO_SCHEMA['x-group']}/{SPO_SCHEMA['x-version']}"
        jsonschema.validate(profile, SPO_SCHEMA)
        assert _pruned(profile, SPO_SCHEMA) == []
        assert "namespace" not in profile["metadata"]  # the CRD is cluster-scoped
    assert not [f.path for f in result.files if f.path.startswith("seccomp/")]
    for document in documents:
        if document["kind"] not in ("SeccompProfile",):
            kubernetes_validate.validate(document, "1.30.0", strict=True)


def test_operator_profile_is_the_same_filter_and_the_pod_points_at_it() -> None:
    files = render()[1]
    profile_file = json.loads(next(f.content for f in files.files if f.path.endswith(".json")))
    docs, result = render(KubeOptions(profiles=ProfileDelivery.OPERATOR))
    profile = next(d for d in docs if d["kind"] == "SeccompProfile")
    assert profile["metadata"]["name"] == "saferun-web"
    assert profile["spec"]["defaultAction"] == profile_file["defaultAction"]
    assert profile["spec"]["architectures"] == profile_file["architectures"]
    expected = [{k: r[k] for k in ("names", "action", "errnoRet", "args") if k in r}
                for r in profile_file["syscalls"]]
    assert profile["spec"]["syscalls"] == expected
    seccomp = docs[-1]["spec"]["securityContext"]["seccompProfile"]
    assert seccomp == {"type": "Localhost", "localhostProfile": "operator/saferun-web.json"}
    assert any(n.key == "apparmor" and "AppArmorProfile" in n.message for n in result.notes)


def test_the_crd_schema_check_can_fail() -> None:
    docs, _ = render(KubeOptions(profiles=ProfileDelivery.OPERATOR))
    profile = next(d for d in docs if d["kind"] == "SeccompProfile")
    broken = json.loads(json.dumps(profile))
    broken["spec"]["syscalls"][0]["action"] = "SCMP_ACT_MAYBE"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SPO_SCHEMA)
    broken = json.loads(json.dumps(profile))
    broken["spec"]["defaultErrnoRet"] = 1
    assert _pruned(broken, SPO_SCHEMA) == [".spec.defaultErrnoRet"]
