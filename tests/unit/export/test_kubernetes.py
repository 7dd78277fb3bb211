"""Kubernetes export: official schemas (several versions), Pod Security "restricted", mapping."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from saferun.errors import ExportError
from saferun.export import ExportInput, KubeKind, Target, export
from saferun.export.kubernetes import k8s_name, parse_kube_version
from saferun.inputs.loader import load_manifest
from saferun.model.manifest import Manifest
from tests.unit.export import pss
from tests.unit.export.cases import CASES, PSS_EXPECTED_FAILURES, run

kubernetes_validate = pytest.importorskip("kubernetes_validate")

# The oldest targeted (annotation AppArmor), the first with the appArmorProfile field, and
# a current one (user namespaces on by default).
SCHEMA_VERSIONS = ["1.29", "1.30", "1.33"]


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def workload(document: dict[str, Any], **sections: Any) -> dict[str, Any]:
    manifest = Manifest.from_data({"app": {"name": "web", "image": "busybox:1"}, **sections})
    result = export([ExportInput(manifest)], Target.KUBERNETES, **document)
    return documents(result.main.content)[-1]


def spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return pss.pod_spec(obj)[1]


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("kind", ["pod", "deployment"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_output_validates_against_the_official_schema(case: str, kind: str, version: str) -> None:
    result = export([ExportInput(load_manifest(CASES[case]))], Target.KUBERNETES,
                    kind=KubeKind(kind), kube_version=version)
    for document in documents(result.main.content):
        # strict: unknown fields are errors too, so a misspelt key cannot pass.
        kubernetes_validate.validate(document, f"{version}.0", strict=True)


def test_the_schema_check_can_fail() -> None:
    """Guards against a validator that accepts anything: a misplaced field and a field
    from a newer version are both rejected."""
    pod = workload({"kind": KubeKind.POD, "kube_version": "1.30"})
    broken = copy.deepcopy(pod)
    broken["spec"]["containers"][0]["securityContext"]["readOnlyRoot"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.30.0", strict=True)
    with pytest.raises(kubernetes_validate.ValidationError):  # appArmorProfile is 1.30+
        kubernetes_validate.validate(pod, "1.29.0", strict=True)


@pytest.mark.parametrize("kind", ["pod", "deployment"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_export_passes_pod_security_restricted(case: str, kind: str) -> None:
    variant = "kubernetes-pod-1.30" if kind == "pod" else "kubernetes-deployment-1.29"
    result = run([CASES[case]], variant)
    minor = 30 if kind == "pod" else 29
    workloads = [d for d in documents(result.main.content) if d["kind"] in ("Pod", "Deployment")]
    assert workloads
    for obj in workloads:
        assert set(pss.check(obj, minor)) == PSS_EXPECTED_FAILURES.get(case, set())


def _good_pod() -> dict[str, Any]:
    return workload({"kind": KubeKind.POD, "kube_version": "1.30"},
                    capabilities={"add": ["NET_BIND_SERVICE"]})


BREAKS: dict[str, Any] = {
    "host-process": lambda s, c: c["securityContext"].update(
        windowsOptions={"hostProcess": True}),
    "host-namespaces": lambda s, c: s.update(hostPID=True),
    "privileged": lambda s, c: c["securityContext"].update(privileged=True),
    "capabilities-baseline": lambda s, c: c["securityContext"]["capabilities"].update(
        add=["SYS_ADMIN"]),
    "host-path-volumes": lambda s, c: s["volumes"].append(
        {"name": "h", "hostPath": {"path": "/"}}),
    "host-ports": lambda s, c: c.update(ports=[{"containerPort": 80, "hostPort": 80}]),
    "host-probes": lambda s, c: c.update(
        livenessProbe={"httpGet": {"port": 80, "host": "10.0.0.1"}}),
    "apparmor": lambda s, c: c["securityContext"].update(appArmorProfile={"type": "Unconfined"}),
    "selinux": lambda s, c: c["securityContext"].update(seLinuxOptions={"user": "root"}),
    "proc-mount": lambda s, c: c["securityContext"].update(procMount="Unmasked"),
    "seccomp-baseline": lambda s, c: c["securityContext"].update(
        seccompProfile={"type": "Unconfined"}),
    "sysctls": lambda s, c: s["securityContext"].update(
        sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
    "volume-types": lambda s, c: s["volumes"].append({"name": "n", "nfs": {"server": "x",
                                                                           "path": "/"}}),
    "privilege-escalation": lambda s, c: c["securityContext"].pop("allowPrivilegeEscalation"),
    "running-as-non-root": lambda s, c: s["securityContext"].pop("runAsNonRoot"),
    "running-as-non-root-user": lambda s, c: c["securityContext"].update(runAsUser=0),
    "seccomp": lambda s, c: s["securityContext"].pop("seccompProfile"),
    "capabilities-restricted": lambda s, c: c["securityContext"]["capabilities"].update(
        drop=["NET_RAW"]),
}


def test_every_control_has_a_break() -> None:
    assert set(BREAKS) == set(pss.RESTRICTED)


@pytest.mark.parametrize("control", sorted(BREAKS))
def test_a_deliberately_bad_spec_fails_its_control(control: str) -> None:
    pod = _good_pod()
    assert pss.check(pod) == {}
    spec = pod["spec"]
    BREAKS[control](spec, spec["containers"][0])
    assert control in pss.check(pod)


def test_a_hand_written_bad_pod_fails_many_controls() -> None:
    bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"}, "spec": {
        "hostNetwork": True,
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
        "containers": [{"name": "c", "image": "x", "securityContext": {
            "privileged": True, "runAsUser": 0, "capabilities": {"add": ["NET_RAW"]}}}]}}
    assert set(pss.check(bad)) == {
        "host-namespaces", "privileged", "capabilities-baseline", "host-path-volumes",
        "volume-types", "privilege-escalation", "running-as-non-root",
        "running-as-non-root-user", "seccomp", "capabilities-restricted"}


def test_hardening_fields() -> None:
    pod = workload({"kind": KubeKind.POD}, capabilities={"add": ["NET_BIND_SERVICE"]},
                   healthcheck={"command": ["true"], "interval": "10s", "timeout": "3s"})
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 65534
    assert spec["securityContext"]["runAsGroup"] == 65534
    assert spec["securityContext"]["seccompProfile"] == {
        "type": "Localhost", "localhostProfile": "saferun/web.json"}
    container = spec["containers"][0]
    ctx = container["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False and ctx["readOnlyRootFilesystem"] is True
    assert ctx["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    assert ctx["appArmorProfile"] == {"type": "Localhost", "localhostProfile": "saferun-web"}
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert spec["volumes"] == [{"name": "tmpfs-tmp",
                                "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}]
    assert container["livenessProbe"] == {"exec": {"command": ["true"]}, "periodSeconds": 10,
                                          "timeoutSeconds": 3, "failureThreshold": 3}
    assert "hostUsers" not in spec and "runtimeClassName" not in spec


def test_apparmor_annotation_before_1_30() -> None:
    pod = workload({"kind": KubeKind.POD, "kube_version": "1.29"})
    assert pod["metadata"]["annotations"][
        "container.apparmor.security.beta.kubernetes.io/web"] == "localhost/saferun-web"
    assert "appArmorProfile" not in pod["spec"]["containers"][0]["securityContext"]


def test_docker_default_seccomp_is_runtime_default() -> None:
    pod = workload({"kind": KubeKind.POD}, seccomp={"profile": "docker-default"})
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_userns_required_sets_host_users_false() -> None:
    pod = workload({"kind": KubeKind.POD}, security={"userns": "required"})
    assert pod["spec"]["hostUsers"] is False


@pytest.mark.parametrize(("runtime", "name", "handler"),
                         [("gvisor", "gvisor", "runsc"), ("kata", "kata", "kata")])
def test_sandboxed_runtime_gets_a_runtime_class(runtime: str, name: str, handler: str) -> None:
    manifests = [Manifest.from_data({"app": {"name": n, "image": "busybox:1"},
                                          "security": {"runtime": runtime}}) for n in ("a", "b")]
    docs = documents(export([ExportInput(m) for m in manifests], Target.KUBERNETES).main.content)
    classes = [d for d in docs if d["kind"] == "RuntimeClass"]
    assert classes == [{"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                        "metadata": {"name": name}, "handler": handler}]
    assert all(d["spec"]["runtimeClassName"] == name for d in docs if d["kind"] == "Pod")


def test_deployment_shape_and_restart_note() -> None:
    manifest = Manifest.from_data({"app": {"name": "web", "image": "busybox:1"}})
    result = export([ExportInput(manifest)], Target.KUBERNETES, kind=KubeKind.DEPLOYMENT)
    deployment = documents(result.main.content)[-1]
    assert deployment["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "web"}
    assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "web"
    assert deployment["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert any(n.key == "restart.policy" for n in result.notes)


def test_node_level_settings_are_reported() -> None:
    manifest = Manifest.from_data({
        "app": {"name": "web", "image": "busybox:1", "init": True},
        "network": {"ports": [{"container": 80, "host": 8080}]},
        "filesystem": {"mounts": [{"type": "bind", "source": "/srv/site", "target": "/site"}]}})
    result = export([ExportInput(manifest)], Target.KUBERNETES)
    keys = {n.key for n in result.notes}
    assert {"resources.pids", "resources.nofile/nproc", "logging", "app.init", "network.ports",
            "filesystem.mounts /site", "filesystem.tmpfs /tmp", "seccomp", "apparmor"} <= keys
    pod = documents(result.main.content)[-1]
    assert "hostPath" not in result.main.content.split("#")[-1]  # reported, not exported
    assert pod["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    for note in result.notes:
        assert note.render() in result.main.content  # the file says it too


def test_names_and_versions() -> None:
    assert k8s_name("Sandboxed_Job") == "sandboxed-job"
    assert parse_kube_version("1.30") == 30 and parse_kube_version("v1.33.2") == 33
    for bad in ("2.0", "1.24", "latest", "1.30; rm"):
        with pytest.raises(ExportError, match="--kube-version"):
            parse_kube_version(bad)
    clash = [Manifest.from_data({"app": {"name": n, "image": "busybox:1"}})
             for n in ("Web", "web")]
    with pytest.raises(ExportError, match="'web'"):
        export([ExportInput(m) for m in clash], Target.KUBERNETES)


def test_an_anonymous_volume_is_an_empty_dir_with_a_note() -> None:
    manifest = Manifest.from_data({"app": {"name": "web", "image": "busybox:1"}, "filesystem": {
        "mounts": [{"type": "volume", "target": "/data", "read_only": False}]}})
    result = export([ExportInput(manifest)], Target.KUBERNETES)
    spec = spec_of(documents(result.main.content)[-1])
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == "/data")
    assert mount["readOnly"] is False
    assert next(v for v in spec["volumes"] if v["name"] == mount["name"])["emptyDir"] == {}
    assert "anonymous volume becomes an emptyDir" in result.main.content
    assert "anonymous volume at /data: a Pod spec has no equivalent" not in result.main.content
