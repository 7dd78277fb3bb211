"""The signature gate: Docker Content Trust or `cosign verify`, decided from plain values.

Two methods, as the policy names them:
- content-trust: the docker CLI itself refuses an image whose tag has no valid Notary
  signature when DOCKER_CONTENT_TRUST=1 is in its environment, for the pull and for the
  `docker run` that resolves the tag. saferun sets it in the environment of the `docker
  run` it hands over to (and `--disable-content-trust=false` is what docker reads from it).
- cosign: `cosign verify --key KEY IMAGE` (or `--certificate-identity` with
  `--certificate-oidc-issuer` for keyless signatures) before launch; its stdout is the JSON
  list of verified payloads, each naming the manifest digest it covers.

Required and the tool missing (cosign not installed) means refuse, like the scanner gate.
Pure: saferun.engine.supply_tools runs cosign.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

CONTENT_TRUST_ENV = ("DOCKER_CONTENT_TRUST", "1")


@dataclass(frozen=True)
class SignatureDecision:
    allowed: bool
    status: str  # verified | enforced-by-docker | refused | skipped
    reason: str
    method: str
    env: tuple[tuple[str, str], ...] = ()  # to set for the docker run (content trust)
    tool_missing: bool = False

    def record(self) -> dict[str, Any]:
        return {"status": self.status, "method": self.method, "reason": self.reason}


def content_trust() -> SignatureDecision:
    """Content trust is enforced by docker at pull/run time: saferun only turns it on."""
    return SignatureDecision(True, "enforced-by-docker",
                             "DOCKER_CONTENT_TRUST=1 set for docker run: docker refuses a tag "
                             "without a valid signature", "content-trust", (CONTENT_TRUST_ENV,))


def cosign_argv(image: str, *, key: str | None, identity: str | None,
                issuer: str | None) -> list[str]:
    """`cosign verify` for a key (file or KMS URI) or a keyless identity and issuer."""
    argv = ["cosign", "verify", "--output", "json"]
    if key is not None:
        argv += ["--key", key]
    else:
        assert identity is not None and issuer is not None
        argv += ["--certificate-identity", identity, "--certificate-oidc-issuer", issuer]
    return [*argv, "--", image]


def missing_cosign(required: bool) -> SignatureDecision:
    if required:
        return SignatureDecision(False, "refused", "the signature gate is required and cosign "
                                 "is not installed; saferun does not skip a required "
                                 "verification", "cosign", tool_missing=True)
    return SignatureDecision(True, "skipped", "cosign is not installed; signature not "
                             "verified ([policy] signature.required = false)", "cosign",
                             tool_missing=True)


def verified_digests(stdout: str) -> list[str]:
    """The manifest digests in cosign verify's JSON output (one payload per signature)."""
    try:
        payloads = json.loads(stdout)
    except ValueError:
        return []
    if isinstance(payloads, dict):
        payloads = [payloads]
    digests = []
    for payload in payloads if isinstance(payloads, list) else []:
        critical = payload.get("critical") or payload.get("Critical") or {}
        image = critical.get("image") or critical.get("Image") or {}
        digest = image.get("docker-manifest-digest") or image.get("Docker-manifest-digest")
        kind = critical.get("type") or critical.get("Type")
        if digest and kind == "cosign container image signature":
            digests.append(str(digest))
    return digests


def judge_cosign(returncode: int, stdout: str, stderr: str, *, required: bool,
                 expected_digests: frozenset[str] = frozenset()) -> SignatureDecision:
    """cosign verify's outcome: exit 0 and a payload for the image's digest, or refuse.

    `expected_digests` are the repo digests the local engine records for the image; when
    known, a payload must cover one of them (a signature of some other image is not one).
    """
    digests = verified_digests(stdout) if returncode == 0 else []
    problem = None
    if returncode != 0:
        tail = " ".join(stderr.strip().splitlines()[-2:])[-300:] or f"exit {returncode}"
        problem = f"cosign verify failed: {tail}"
    elif not digests:
        problem = "cosign verify printed no signature payload"
    elif expected_digests and not expected_digests & set(digests):
        problem = (f"cosign verified signatures of {', '.join(digests)}, not of this image "
                   f"({', '.join(sorted(expected_digests))})")
    if problem is None:
        return SignatureDecision(True, "verified", f"cosign verified a signature of "
                                 f"{digests[0]}", "cosign")
    if required:
        return SignatureDecision(False, "refused", problem, "cosign")
    return SignatureDecision(True, "skipped", f"{problem} ([policy] signature.required = "
                             "false)", "cosign")
