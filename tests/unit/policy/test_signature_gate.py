"""Signature gate decisions: recorded `cosign verify` outputs, content trust, missing tools."""

from __future__ import annotations

from pathlib import Path

from saferun.policy.signature_gate import (
    CONTENT_TRUST_ENV,
    content_trust,
    cosign_argv,
    judge_cosign,
    missing_cosign,
    verified_digests,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "scanner"
KMS = (DATA / "cosign-verify-kms.json").read_text()
KEYLESS = (DATA / "cosign-verify-keyless.json").read_text()
KMS_DIGEST = "sha256:410a07f17151ffffb513f942a01748dfdb921de915ea6427d61d60b0357c1dcd"


def test_recorded_outputs_name_the_signed_digest() -> None:
    assert verified_digests(KMS) == [KMS_DIGEST]
    assert verified_digests(KEYLESS) == [
        "sha256:b7940030ca7910d637554aa17244e92faf9e6172773bc774c3ad4a8b086fc342"]
    assert verified_digests("not json") == [] and verified_digests("[]") == []


def test_verified_when_cosign_succeeds_for_this_image() -> None:
    decision = judge_cosign(0, KMS, "", required=True, expected_digests=frozenset({KMS_DIGEST}))
    assert decision.allowed and decision.status == "verified"
    assert judge_cosign(0, KEYLESS, "", required=True).allowed  # no local digest to compare


def test_signature_of_another_image_is_refused() -> None:
    decision = judge_cosign(0, KMS, "", required=True,
                            expected_digests=frozenset({"sha256:" + "0" * 64}))
    assert not decision.allowed and "not of this image" in decision.reason


def test_failed_verification_refuses_when_required_and_warns_otherwise() -> None:
    stderr = "Error: no matching signatures:\nerror verifying signature"
    refused = judge_cosign(1, "", stderr, required=True)
    assert not refused.allowed and "no matching signatures" in refused.reason
    skipped = judge_cosign(1, "", stderr, required=False)
    assert skipped.allowed and skipped.status == "skipped"
    assert not judge_cosign(0, "", "", required=True).allowed  # exit 0 but no payload


def test_missing_cosign() -> None:
    refused = missing_cosign(required=True)
    assert not refused.allowed and refused.tool_missing and "not installed" in refused.reason
    assert missing_cosign(required=False).allowed


def test_content_trust_turns_docker_verification_on() -> None:
    decision = content_trust()
    assert decision.allowed and decision.env == (CONTENT_TRUST_ENV,)
    assert CONTENT_TRUST_ENV == ("DOCKER_CONTENT_TRUST", "1")


def test_cosign_argv() -> None:
    assert cosign_argv("app:1", key="/k/cosign.pub", identity=None, issuer=None) == [
        "cosign", "verify", "--output", "json", "--key", "/k/cosign.pub", "--", "app:1"]
    keyless = cosign_argv("app:1", key=None, identity="https://github.com/o/r/.github/w.yml@main",
                          issuer="https://token.actions.githubusercontent.com")
    assert keyless[4:8] == ["--certificate-identity", "https://github.com/o/r/.github/w.yml@main",
                            "--certificate-oidc-issuer",
                            "https://token.actions.githubusercontent.com"]
