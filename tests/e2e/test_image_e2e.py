"""Images and supply chain on a real engine: `saferun image check` on images built here, and
`saferun run` refusing by registry, tag, image checks, missing scanner or cosign (exit 125,
no container), or keeping its decision as a label on the container it starts.

Every image is built locally FROM the busybox test image (no registry) with a one-problem
Dockerfile, tagged with this session's id and removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import BUSYBOX_IMAGE, E2E_LABEL, SESSION_ID, docker, inspect, saferun

pytestmark = pytest.mark.e2e

# Every image is good but for one planted problem; "clean" also adds and then deletes a
# private key in a later layer, so only a walk that applies whiteouts passes it.
GOOD_TAIL = "USER 1000\nHEALTHCHECK CMD true\n"
DOCKERFILES = {
    "clean": "RUN mkdir -p /root/.ssh && echo key > /root/.ssh/id_rsa\n"
             "RUN rm /root/.ssh/id_rsa\n" + GOOD_TAIL,
    "setuid": "RUN cp /bin/busybox /bin/suidtool && chmod 4755 /bin/suidtool\n" + GOOD_TAIL,
    "secret-env": "ENV AWS_ACCESS_KEY_ID=AKIAQ3EGRTZ5BXK4LMNO\n" + GOOD_TAIL,
    "root": "HEALTHCHECK CMD true\n",
}
PLANTED = {"clean": set(), "setuid": {"image-setuid"}, "secret-env": {"image-secret-config"},
           "root": {"image-user-root"}}


@pytest.fixture(scope="module")
def images(busybox_image: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    built = {}
    try:
        for name, body in DOCKERFILES.items():
            context = tmp_path_factory.mktemp(f"img-{name}")
            (context / "Dockerfile").write_text(f"FROM {busybox_image}\n{body}")
            tag = f"saferun-e2e-img/{name}:{SESSION_ID}"
            result = docker("build", "-q", "-t", tag, str(context), check=False, timeout=300)
            if result.returncode != 0:  # no default builder in this CLI: use the classic one
                env = {**os.environ, "DOCKER_BUILDKIT": "0"}
                subprocess.run(["docker", "build", "-q", "-t", tag, str(context)], env=env,
                               check=True, capture_output=True, timeout=300)
            built[name] = tag
        yield built
    finally:
        for tag in built.values():
            docker("rmi", "-f", tag, check=False)


def rule_ids(result: Any) -> set[str]:
    document = json.loads(result.stdout)
    return {f["rule"] for f in document["results"][0]["findings"]}


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_image_check_finds_exactly_the_planted_problem(images: dict[str, str], name: str) -> None:
    result = saferun("image", "check", "--format", "json", images[name])
    assert result.returncode == (1 if PLANTED[name] else 0), (result.stdout, result.stderr)
    assert rule_ids(result) == PLANTED[name]


def test_image_check_table_and_sarif(images: dict[str, str]) -> None:
    table = saferun("image", "check", images["secret-env"])
    assert table.returncode == 1 and "image-secret-config" in table.stdout
    assert "AKIAQ3EGRTZ5BXK4LMNO" not in table.stdout  # masked
    assert "deletion(s) applied" in table.stdout
    sarif = json.loads(saferun("image", "check", "--format", "sarif", images["setuid"]).stdout)
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["image-setuid"]
    assert saferun("image", "check", "--fail-on", "high", images["setuid"]).returncode == 0


def test_tools_count_only_where_the_manifest_says_the_app_needs_none(
        images: dict[str, str], e2e_manifest: Any) -> None:
    manifest = e2e_manifest({"policy": {"image": {"absent": ["shell", "package-manager"]}}})
    result = saferun("image", "check", "--format", "json", "--fail-on", "low",
                     "--manifest", str(manifest), images["clean"])
    assert result.returncode == 1  # low findings: they fail only at --fail-on low
    assert rule_ids(result) == {"image-shell", "image-package-manager"}  # busybox sh, dpkg


def test_image_check_usage_and_engine_errors(tmp_path: Path) -> None:
    missing = saferun("image", "check", "saferun-test/does-not-exist:1")
    assert missing.returncode == 2 and "not in the local engine" in missing.stderr
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no.sock"}
    down = saferun("image", "check", BUSYBOX_IMAGE, env=env)
    assert down.returncode == 3 and "Traceback" not in down.stderr


# --- saferun run -------------------------------------------------------------------------------

def _containers() -> list[str]:
    return docker("ps", "-aq", "--filter", f"label={E2E_LABEL[0]}={E2E_LABEL[1]}").stdout.split()


def _refused(manifest: Path, *needles: str, env: dict[str, str] | None = None) -> str:
    before = _containers()
    result = saferun("run", "--rm", str(manifest), env=env)
    assert result.returncode == 125, (result.stdout, result.stderr)
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert _containers() == before
    return result.stderr


def test_run_refuses_a_registry_not_on_the_allowlist(e2e_manifest: Any) -> None:
    manifest = e2e_manifest({"policy": {"registries": ["registry.example:5000"]}})
    _refused(manifest, "refused by rule 'image-registry'", "docker.io")


def test_latest_and_untagged_warn_and_a_team_policy_refuses_them(e2e_manifest: Any,
                                                                  tmp_path: Path) -> None:
    latest = e2e_manifest({"app": {"image": "saferun-test/busybox:latest"}})
    warned = saferun("run", "--dry-run", str(latest))
    assert warned.returncode == 0 and "image-tag-latest" in warned.stderr
    team = tmp_path / "team-policy.toml"
    team.write_text('[policy]\nrefuse = ["image-tag-latest"]\n')
    env = {**os.environ, "SAFERUN_POLICY": str(team)}
    _refused(latest, "refused by rule 'image-tag-latest'", env=env)
    before = _containers()
    bare = saferun("run", "--rm", "saferun-test/busybox", env=env)
    assert bare.returncode == 125 and "image-tag-latest" in bare.stderr
    assert _containers() == before


def test_run_refuses_by_team_policy_file(e2e_manifest: Any, tmp_path: Path) -> None:
    team = tmp_path / "team-policy.toml"
    team.write_text('[policy]\nregistries = ["ghcr.io/acme"]\n')
    env = {**os.environ, "SAFERUN_POLICY": str(team)}
    _refused(e2e_manifest(), "image-registry", "ghcr.io/acme", env=env)


@pytest.mark.skipif(bool(shutil.which("trivy") or shutil.which("grype")),
                    reason="a scanner is installed here: the absent-scanner path cannot be shown")
def test_run_refuses_when_a_required_scanner_is_absent(e2e_manifest: Any) -> None:
    manifest = e2e_manifest({"policy": {"scan": {"required": True, "fail_on": "high"}}})
    _refused(manifest, "Trivy or Grype is not installed", "refused by rule 'image-scan'")


@pytest.mark.skipif(bool(shutil.which("cosign")), reason="cosign is installed here")
def test_run_refuses_when_cosign_is_required_and_absent(e2e_manifest: Any, tmp_path: Path) -> None:
    (tmp_path / "cosign.pub").write_text("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n")
    manifest = e2e_manifest({"policy": {"signature": {"method": "cosign", "key": "cosign.pub"}}})
    _refused(manifest, "cosign is not installed", "refused by rule 'image-signature'")


def test_run_with_content_trust_lets_docker_verify(e2e_manifest: Any) -> None:
    """No signature exists for a locally built image (and no Notary is reachable here):
    docker itself refuses once saferun turns content trust on."""
    manifest = e2e_manifest({"policy": {"signature": {"method": "content-trust"}}})
    stderr = _refused(manifest)
    assert "trust" in stderr.lower() or "notary" in stderr.lower(), stderr


def test_run_refuses_image_findings_when_policy_asks_for_the_full_check(
        images: dict[str, str], e2e_manifest: Any) -> None:
    manifest = e2e_manifest({"app": {"image": images["setuid"]},
                             "policy": {"image": {"check": "full", "fail_on": "medium"}}})
    _refused(manifest, "image-setuid", "/bin/suidtool")
    clean = e2e_manifest({"app": {"image": images["clean"], "command": ["true"]},
                          "policy": {"image": {"check": "full", "fail_on": "medium"}}},
                         name="clean.toml")
    result = saferun("run", "--rm", str(clean))
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(bool(shutil.which("trivy") or shutil.which("grype")),
                    reason="a scanner is installed here")
def test_started_container_carries_the_decision_and_is_not_cached(
        e2e_manifest: Any, tmp_path: Path) -> None:
    team = tmp_path / "team-policy.toml"
    team.write_text('[policy]\nregistries = ["docker.io/saferun-test"]\n')
    gated = e2e_manifest({"app": {"command": ["true"]}, "policy": {"scan": {"required": False}}})
    env = {**os.environ, "SAFERUN_POLICY": str(team), "SAFERUN_DEBUG": "1",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    started = []
    try:
        for _ in range(2):  # the same command line twice: a cached plan would hit
            result = saferun("run", "-d", "--name", f"e2e-gated-{uuid.uuid4().hex[:8]}",
                             str(gated), env=env)
            assert result.returncode == 0, result.stderr
            started.append(result.stdout.strip())
            assert "scan skipped" in result.stderr  # warned, never silent
            assert "plan cache hit" not in result.stderr  # a gate ran: no cache entry
        decision = json.loads(inspect(started[0])["Config"]["Labels"]["io.saferun.image-policy"])
        assert decision["decision"] == "allowed"
        assert decision["registry"] == "allowed: docker.io/saferun-test"
        assert decision["policy_file"] == str(team)
        assert decision["scan"]["status"] == "skipped"
        # Without a gate the same policy is decided from its inputs alone and is cached.
        plain = e2e_manifest({"app": {"command": ["true"]}}, name="plain.toml")
        # (--rm in the foreground: app.name names the container, so it is free again)
        hits = [saferun("run", "--rm", str(plain), env=env) for _ in range(2)]
        assert all(h.returncode == 0 for h in hits), hits[0].stderr
        assert "plan cache hit" in hits[1].stderr, hits[1].stderr
        dry = saferun("run", "--dry-run", str(plain), env=env)
        assert "io.saferun.image-policy" in dry.stdout
    finally:
        docker("rm", "-f", *[c for c in started if c], check=False)
