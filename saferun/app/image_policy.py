"""The image policy in force: a manifest's [policy] merged with the team policy file, applied.

A team sets its floor once, in a policy file (`--policy FILE`, or SAFERUN_POLICY for
`saferun run`) holding the same `[policy]` table as a manifest; each manifest may only
tighten it. Merging keeps the stricter value of each key (`merge_policies`, pure):
registries must be allowed by both lists, `digest = "require"` wins, the scan and signature
gates are on if either side turns them on (required if either requires, the lower fail_on),
and the image checks take the deeper level, the lower limits and every absent tool. A team
file may not `ignore` rules: it can only add constraints.

`start_for_run` and `PendingPolicy.finish` are what `saferun run` does before launch:
registry/tag/digest from the reference alone (no engine call, the default), then, once the
plan is made, the image's config or filesystem when [policy.image] check asks, and the scan
and signature gates when the policy has them. The
decision and its reasons become the container's `io.saferun.image-policy` label.
`check_image` is `saferun image check`: everything, as a report for the shared formatters.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saferun.errors import ImageRefused, ManifestError, RequirementUnmet
from saferun.model.strict import updated
from saferun.policy.image_rules import IMAGE_RULES, ImagePolicy, evaluate_image, registry_allowed
from saferun.policy.rules import Hit, RuleResult
from saferun.policy.severity import Severity

TYPE_CHECKING = False
if TYPE_CHECKING:
    from saferun.policy.report import TargetReport

POLICY_ENV = "SAFERUN_POLICY"
LABEL = "io.saferun.image-policy"
_CHECK_DEPTH = {"reference": 0, "config": 1, "full": 2}
_SEVERITY_ORDER = ("low", "medium", "high", "critical")


# --- merging (pure) -------------------------------------------------------------------------


def _lower(a: str, b: str) -> str:
    return a if _SEVERITY_ORDER.index(a) <= _SEVERITY_ORDER.index(b) else b


def _merge_registries(a: list[str], b: list[str]) -> list[str]:
    """Entries allowed by both lists: the narrower of every pair that nests."""
    if not a or not b:
        return list(a or b)

    def under(x: str, y: str) -> bool:
        return x == y or x.startswith(y.rstrip("/") + "/")

    both = {x for x in a for y in b if under(x, y)} | {y for y in b for x in a if under(y, x)}
    if not both:
        raise ManifestError(
            f"[policy] registries: the manifest allows {', '.join(a)} and the team policy "
            f"{', '.join(b)}; no registry is allowed by both, so no image could run",
            fix="use a registry the team policy allows")
    return sorted(both)


def _merge_scan(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return a if b is None else b
    if "any" not in (a.tool, b.tool) and a.tool != b.tool:
        raise ManifestError(f"[policy] scan.tool: the manifest asks for {a.tool!r} and the team "
                            f"policy for {b.tool!r}", fix="use the same scanner, or \"any\"")
    return updated(a, **{"required": a.required or b.required,
                                "tool": a.tool if a.tool != "any" else b.tool,
                                "fail_on": _lower(a.fail_on, b.fail_on)})


def _merge_signature(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return a if b is None else b
    if (a.method, a.key, a.identity, a.issuer) != (b.method, b.key, b.identity, b.issuer):
        raise ManifestError("[policy] signature: the manifest and the team policy name a "
                            f"different method or key ({a.method} vs {b.method}); saferun "
                            "cannot tell which is stricter", fix="configure the signature "
                            "gate in one place (the team policy file)")
    return updated(a, required=a.required or b.required)


def merge_policies(manifest: Any, team: Any | None) -> Any:
    """The stricter of each key of two PolicySection values (team may be None)."""
    if team is None:
        return manifest
    mi, ti = manifest.image, team.image
    image = updated(mi, **{
        "check": max(mi.check, ti.check, key=_CHECK_DEPTH.__getitem__),
        "fail_on": _lower(mi.fail_on, ti.fail_on),
        "absent": sorted(set(mi.absent) | set(ti.absent)),
        "max_size_mb": min(mi.max_size_mb, ti.max_size_mb),
        "max_layers": min(mi.max_layers, ti.max_layers),
    })
    return updated(manifest, **{
        "digest": "require" if "require" in (manifest.digest, team.digest) else "recommend",
        "registries": _merge_registries(list(manifest.registries), list(team.registries)),
        "scan": _merge_scan(manifest.scan, team.scan),
        "signature": _merge_signature(manifest.signature, team.signature),
        "image": image,
        "refuse": sorted(set(manifest.refuse) | set(team.refuse)),
    })


def image_policy(policy: Any) -> ImagePolicy:
    """The pure rules' view of a (merged) PolicySection."""
    return ImagePolicy(registries=tuple(policy.registries), digest=policy.digest,
                       absent=frozenset(policy.image.absent),
                       max_size_mb=policy.image.max_size_mb, max_layers=policy.image.max_layers)


# --- reading (the edge) -------------------------------------------------------------------


def team_policy_path(explicit: str | None = None) -> Path | None:
    if explicit is None and not os.environ.get(POLICY_ENV):
        from saferun.app.user_config import default_policy, user_config

        explicit = default_policy(*user_config())  # config.toml `policy`
    value = explicit if explicit is not None else os.environ.get(POLICY_ENV) or None
    return Path(value) if value else None


def _resolve_key(policy: Any, base: Path) -> Any:
    """A cosign key file is relative to the file that names it; KMS URIs stay as they are."""
    sig = policy.signature
    if sig is None or sig.key is None or "://" in sig.key:
        return policy
    key = str((base / sig.key).resolve()) if not os.path.isabs(sig.key) else sig.key
    return updated(policy, signature=updated(sig, key=key))


def read_team_policy(path: Path) -> Any:
    """A team policy file: TOML with one [policy] table, validated like a manifest's."""
    from saferun.inputs.loader import parse_toml_input, read_bounded
    from saferun.model.manifest import PolicySection
    from saferun.model.strict import ValidationError

    try:
        data = parse_toml_input(read_bounded(path, "policy file"), f"policy file {path}",
                                "policy file")[0]
    except ManifestError as exc:
        raise ManifestError(exc.message if exc.message.startswith("policy file")
                            else f"policy file {exc.message}",
                            fix=f"fix the file, or unset {POLICY_ENV}") from None
    extra = sorted(set(data) - {"policy"})
    if extra or not isinstance(data.get("policy"), dict):
        raise ManifestError(f"policy file {path}: needs one [policy] table and nothing else "
                            f"(found: {', '.join(extra) or 'no [policy]'})")
    if data["policy"].get("ignore"):
        raise ManifestError(f"policy file {path}: [policy] ignore is per manifest; a team "
                            "policy can only add constraints")
    try:
        section = PolicySection.from_data(data["policy"])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ManifestError(f"policy file {path}: [policy] {where}: {first['msg']}") from None
    return _resolve_key(section, path.resolve().parent)


def effective_policy(manifest: Any, manifest_dir: str,
                     team_path: Path | None) -> tuple[Any, str | None]:
    """(merged PolicySection, team file path or None) for a validated manifest."""
    own = _resolve_key(manifest.policy, Path(manifest_dir))
    if team_path is None:
        return own, None
    return merge_policies(own, read_team_policy(team_path)), str(team_path)


# --- saferun run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunDecision:
    """What the image policy decided for one launch."""

    label: str  # JSON for the io.saferun.image-policy label
    env: tuple[tuple[str, str], ...] = ()  # for the docker run (content trust)
    external: bool = False  # a decision read outside state (engine image, scanner DB, signatures)
    warnings: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()  # files the decision read (the team policy file)
    record: dict[str, Any] = field(default_factory=dict, compare=False)


def refuse_registry(image: str, policy: Any) -> None:
    """Pure check: refuse an image whose registry is not allowed (rule image-registry)."""
    if registry_allowed(image, tuple(policy.registries)):
        return
    from saferun.policy.image_rules import registry_of

    raise ImageRefused(
        f"app.image: '{image}' comes from {registry_of(image)}, which is not an allowed "
        f"registry ({', '.join(policy.registries)}); refused by rule 'image-registry'",
        fix="use an image from an allowed registry, or add its registry to [policy] registries "
        "(docs/images.md#image-registry)")


def _refusal_text(rule_id: str, lines: list[str], limit: int = 20) -> str:
    shown = lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])
    return "\n  ".join(shown) + f"\n  refused by rule '{rule_id}'"


def asks_for_more(policy: Any) -> bool:
    """Whether a [policy] goes beyond the tag/digest check saferun run always makes."""
    return bool(policy.registries or policy.scan is not None or policy.signature is not None
                or policy.image.check != "reference")


@dataclass(frozen=True)
class PendingPolicy:
    """The policy in force for one launch, its reference checks passed; gates still to run."""

    image: str
    policy: Any
    team_file: str | None

    def finish(self, *, engine: bool) -> RunDecision:
        """Run the gates the policy asks for (after planning, with the engine at hand)."""
        policy, image = self.policy, self.image
        record: dict[str, Any] = {"version": 1, "image": image, "decision": "allowed",
                                  "digest": policy.digest,
                                  "registry": ("allowed: " + ", ".join(policy.registries))
                                  if policy.registries else "any"}
        if self.team_file:
            record["policy_file"] = self.team_file
        inputs = (self.team_file,) if self.team_file else ()
        if not engine:
            record["gates"] = "not run (offline)"
            return RunDecision(json.dumps(record, sort_keys=True), inputs=inputs, record=record)
        warnings: list[str] = []
        env: tuple[tuple[str, str], ...] = ()
        if policy.image.check != "reference":
            record["image_check"] = _run_image_check(image, policy)
        if policy.scan is not None:
            record["scan"] = _run_scan(image, policy.scan, warnings)
        if policy.signature is not None:
            record["signature"], env = _run_signature(image, policy.signature, warnings)
        external = policy.image.check != "reference" or policy.scan is not None \
            or policy.signature is not None
        return RunDecision(json.dumps(record, sort_keys=True), env, external, tuple(warnings),
                           inputs, record)


def start_for_run(image: str, manifest: Any, manifest_dir: str,
                  team_path: Path | None) -> PendingPolicy:
    """Merge the policies and make the pure reference checks: tag, digest, registry."""
    from saferun.policy.digest import check_image_policy

    policy, team_file = effective_policy(manifest, manifest_dir, team_path)
    check_image_policy(image, policy.ignore, policy.digest)  # the team may require digests
    refuse_registry(image, policy)
    return PendingPolicy(image, policy, team_file)


def _run_image_check(image: str, policy: Any) -> dict[str, Any]:
    from saferun.engine.image_files import gather_facts

    full = policy.image.check == "full"
    facts = gather_facts(image, filesystem=full)
    fail_on = Severity.parse(policy.image.fail_on)
    blocking = []
    for result in evaluate_image(facts, image_policy(policy)):
        if result.rule.id in policy.ignore:
            continue
        for hit in result.hits:
            severity = hit.severity or result.rule.severity
            if severity >= fail_on:
                blocking.append(f"{severity.label.upper():<8} {result.rule.id}: {hit.detail}")
    if blocking:
        ids = sorted({line.split()[1].rstrip(":") for line in blocking})
        raise ImageRefused(
            f"app.image: '{image}' has {len(blocking)} finding(s) at or above "
            f"{fail_on.label} ([policy.image] check = \"{policy.image.check}\"):\n  "
            + _refusal_text(", ".join(ids), blocking),
            fix=f"fix the image, or run `saferun image check {image}` for the full report "
            "(docs/images.md)")
    return {"level": policy.image.check, "fail_on": fail_on.label, "status": "passed"}


def _run_scan(image: str, scan: Any, warnings: list[str]) -> dict[str, Any]:
    from saferun.engine.supply_tools import run_scan_gate

    decision = run_scan_gate(image, tool=scan.tool, fail_on=Severity.parse(scan.fail_on),
                             required=scan.required)
    if not decision.allowed:
        lines = [decision.reason, *(v.describe() for v in decision.blocking)]
        raise ImageRefused(f"app.image: '{image}': " + _refusal_text("image-scan", lines),
                           fix="rebuild the image on patched packages, or install the scanner "
                           "(docs/images.md#scanner-gate)")
    if decision.status == "skipped":
        warnings.append(decision.reason)
    return decision.record()


def _run_signature(image: str, signature: Any,
                   warnings: list[str]) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
    from saferun.engine.supply_tools import run_signature_gate

    decision = run_signature_gate(image, method=signature.method, required=signature.required,
                                  key=signature.key, identity=signature.identity,
                                  issuer=signature.issuer,
                                  expected_digests=_repo_digests(image)
                                  if signature.method == "cosign" else frozenset())
    if not decision.allowed:
        raise ImageRefused(f"app.image: '{image}': "
                           + _refusal_text("image-signature", [decision.reason]),
                           fix="sign the image and configure [policy] signature, or install "
                           "cosign (docs/images.md#signature-gate)")
    if decision.status == "skipped":
        warnings.append(decision.reason)
    return decision.record(), decision.env


def _repo_digests(image: str) -> frozenset[str]:
    from saferun.engine.api import EngineSession

    data = EngineSession().image_inspect(image) or {}
    return frozenset(str(d).partition("@")[2] for d in data.get("RepoDigests") or [] if "@" in d)


# --- saferun image check -------------------------------------------------------------------


def _gate_results(image: str, policy: Any, notes: list[str]) -> list[RuleResult]:
    """The scan and signature gates as rule results; a required gate that cannot run raises."""
    from saferun.engine.supply_tools import run_scan_gate, run_signature_gate

    results = []
    if policy.scan is not None:
        decision = run_scan_gate(image, tool=policy.scan.tool,
                                 fail_on=Severity.parse(policy.scan.fail_on),
                                 required=policy.scan.required)
        if decision.status == "refused":
            raise RequirementUnmet(decision.reason, fix="install Trivy or Grype, or let it "
                                   "update its database (docs/images.md#scanner-gate)")
        if decision.status == "skipped":
            notes.append(decision.reason)
        else:
            notes.append(decision.reason)
            hits = tuple(Hit(v.describe(), severity=v.severity) for v in decision.blocking)
            results.append(RuleResult(IMAGE_RULES["image-scan"], hits))
    sig = policy.signature
    if sig is not None:
        if sig.method == "content-trust":
            notes.append("signature: content trust is enforced by docker when saferun run "
                         "pulls or starts the image (DOCKER_CONTENT_TRUST=1); not checked here")
        else:
            verdict = run_signature_gate(image, method=sig.method, required=sig.required,
                                         key=sig.key, identity=sig.identity, issuer=sig.issuer,
                                         expected_digests=_repo_digests(image))
            if verdict.status == "refused" and verdict.tool_missing:
                raise RequirementUnmet(verdict.reason, fix="install cosign "
                                       "(docs/images.md#signature-gate)")
            notes.append(f"signature: {verdict.reason}")
            hits = () if verdict.status == "verified" else (Hit(verdict.reason),)
            results.append(RuleResult(IMAGE_RULES["image-signature"], hits))
    return results


def load_policy_for_check(manifest_path: Path | None, policy_path: Path | None) -> Any:
    """The [policy] of a manifest (or the defaults) merged with the team policy file."""
    from saferun.model.manifest import PolicySection

    if manifest_path is not None:
        from saferun.inputs.loader import load_manifest

        manifest = load_manifest(manifest_path)
        base = manifest.policy
        base = _resolve_key(base, manifest_path.resolve().parent)
    else:
        base = PolicySection()
    team = read_team_policy(policy_path) if policy_path is not None else None
    return merge_policies(base, team)


def check_image(image: str, *, manifest_path: Path | None = None,
                policy_path: Path | None = None,
                on_layer: Callable[[int, int], None] | None = None) -> TargetReport:
    """`saferun image check`: config, history and the streamed filesystem, plus the gates."""
    from saferun.engine.image_files import gather_facts
    from saferun.policy.report import BY_IGNORE, Finding, TargetReport
    from saferun.policy.score import exposure

    try:
        policy = load_policy_for_check(manifest_path, policy_path)
    except ManifestError as exc:
        return TargetReport(image, "image", error=exc.render())
    facts = gather_facts(image, filesystem=True, on_layer=on_layer)
    notes: list[str] = []
    results = list(evaluate_image(facts, image_policy(policy)))
    results += _gate_results(image, policy, notes)
    findings = []
    for result in results:
        reason = policy.ignore.get(result.rule.id)
        for hit in result.hits:
            findings.append(Finding(result.rule.id, hit.severity or result.rule.severity,
                                    hit.detail, suppressed=reason,
                                    suppressed_by=BY_IGNORE if reason else None))
    fs = facts.filesystem
    if fs is not None:
        tools = sorted({category for category, _ in fs.tools})
        notes.append(f"filesystem: {fs.files} entries in {facts.layers} layer(s), "
                     f"{fs.whiteouts} deletion(s) applied; present: "
                     f"{', '.join(tools) or 'no shell, package manager or compiler'}")
    return TargetReport(image, "image", findings=tuple(findings),
                        score=exposure(results), notes=tuple(notes), results=tuple(results))
