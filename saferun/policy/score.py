"""Exposure score: 0 (locked down) to 10 (unconfined), in the manner of systemd-analyze security.

Each rule contributes `badness x weight`; the sum is normalised by the sum of all weights
and scaled to 10, so the number says what share of the weighted controls is missing. A
finding that on its own makes the container root-equivalent on the host (privileged,
--cap-add ALL, the Docker socket, a writable / or /etc) sets the score to 10: every other
control can then be undone from inside, so counting the ones still "set" would flatter it.
Suppressed findings still count: a written reason changes the policy verdict, not the
exposure.

Pure: a function of rule results.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from saferun.policy.rules import RuleResult

# systemd-analyze security's verdicts, by exposure.
RATINGS: tuple[tuple[float, str], ...] = (
    (0.1, "PERFECT"), (1.9, "SAFE"), (4.9, "OK"), (6.9, "MEDIUM"), (8.4, "EXPOSED"),
    (10.0, "UNSAFE"),
)


class ScoreItem(msgspec.Struct, frozen=True):
    """One row of the details table."""

    rule: str
    title: str
    weight: int
    badness: float  # 0 (control in place) .. 1 (control missing)
    explanation: str  # what was found, or that the control is in place

    @property
    def exposure(self) -> float:
        """This item's share of the 0-10 scale."""
        return self.badness * self.weight


class Score(msgspec.Struct, frozen=True):
    value: float
    rating: str
    items: tuple[ScoreItem, ...]
    unconfined_by: tuple[str, ...]  # rule ids whose findings alone make the container unconfined
    total_weight: int
    raw: float  # the weighted share before a root-equivalent finding sets it to 10

    def share(self, item: ScoreItem) -> float:
        """How many of the 10 points this item accounts for before any cap."""
        return round(10 * item.exposure / self.total_weight, 2) if self.total_weight else 0.0


def rating(value: float) -> str:
    for bound, name in RATINGS:
        if value <= bound:
            return name
    return RATINGS[-1][1]


# A passed rule's row is the same in every score: made once per rule (`check` scores
# thousands of manifests, 39 rules each).
_PASSED: dict[tuple[str, str, int], ScoreItem] = {}


def _passed_item(rule_id: str, title: str, weight: int) -> ScoreItem:
    key = (rule_id, title, weight)
    item = _PASSED.get(key)
    if item is None:
        item = _PASSED[key] = ScoreItem(rule_id, title, weight, 0.0,
                                        f"ok: no finding for '{title.lower()}'")
    return item


def exposure(results: Sequence[RuleResult]) -> Score:
    passed: list[ScoreItem] = []
    missing: list[ScoreItem] = []
    unconfined: list[str] = []
    total = 0
    for result in results:
        rule = result.rule
        total += rule.weight
        if not result.hits:
            passed.append(_passed_item(rule.id, rule.title, rule.weight))
            continue
        explanation = "; ".join(h.detail for h in result.hits) + f". {rule.rationale}"
        missing.append(ScoreItem(rule.id, rule.title, rule.weight, 1.0, explanation))
        if any(h.unconfined for h in result.hits):
            unconfined.append(rule.id)
    raw = 10 * sum(item.weight for item in missing) / total if total else 0.0
    value = 10.0 if unconfined else round(min(10.0, raw), 1)
    # Missing controls first, heaviest first; then the controls in place (exposure 0).
    missing.sort(key=lambda i: (-i.weight, i.rule))
    passed.sort(key=lambda i: (-i.weight, i.rule))
    return Score(value, rating(value), (*missing, *passed), tuple(unconfined), total,
                 round(raw, 1))
