"""The subprocess edge of the supply-chain gates: find and run Trivy, Grype and cosign.

Everything here is I/O; what to run and what the output means is decided in
saferun.policy.scan_gate and saferun.policy.signature_gate. argv lists only, never a shell.
"""

from __future__ import annotations

import shutil
import subprocess

from saferun.errors import ReportError
from saferun.policy.scan_gate import (
    SCANNERS,
    ScanDecision,
    choose_scanner,
    failed_scanner,
    judge_report,
    missing_scanner,
    parse_report,
    scanner_argv,
    unreadable_report,
)
from saferun.policy.severity import Severity
from saferun.policy.signature_gate import (
    SignatureDecision,
    content_trust,
    cosign_argv,
    judge_cosign,
    missing_cosign,
)

SCAN_TIMEOUT_S = 900.0  # a first Trivy run downloads its database (~60 MB)
VERIFY_TIMEOUT_S = 120.0


def installed(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(name for name in names if shutil.which(name))


def _run(argv: list[str], timeout: float) -> tuple[int, str, str]:
    path = shutil.which(argv[0])
    if path is None:
        return 127, "", f"{argv[0]}: not found"
    try:
        result = subprocess.run([path, *argv[1:]], capture_output=True, text=True,
                                timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return 124, "", f"{argv[0]} did not finish within {timeout:.0f} s"
    except OSError as exc:
        return 126, "", f"{argv[0]}: {exc.strerror}"
    return result.returncode, result.stdout, result.stderr


def run_scan_gate(image: str, *, tool: str, fail_on: Severity, required: bool) -> ScanDecision:
    chosen = choose_scanner(tool, installed(SCANNERS))
    if chosen is None:
        return missing_scanner(tool, required)
    code, out, err = _run(scanner_argv(chosen, image), SCAN_TIMEOUT_S)
    if code != 0:
        return failed_scanner(chosen, code, err, required)
    try:
        vulns = parse_report(chosen, out)
    except ReportError as exc:
        return unreadable_report(chosen, str(exc), required)
    return judge_report(chosen, vulns, fail_on)


def run_signature_gate(image: str, *, method: str, required: bool, key: str | None,
                       identity: str | None, issuer: str | None,
                       expected_digests: frozenset[str] = frozenset()) -> SignatureDecision:
    if method == "content-trust":
        return content_trust()
    if not installed(("cosign",)):
        return missing_cosign(required)
    code, out, err = _run(cosign_argv(image, key=key, identity=identity, issuer=issuer),
                          VERIFY_TIMEOUT_S)
    return judge_cosign(code, out, err, required=required, expected_digests=expected_digests)
