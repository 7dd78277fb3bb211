"""Exposure score: unconfined is 10, saferun's hardened default is low, every item explains."""

from __future__ import annotations

import pytest

from saferun.app.check import IDEAL_FACTS, check_docker_run
from saferun.model.manifest import Manifest
from saferun.plan.planner import build_plan
from saferun.policy.report import judge
from saferun.policy.rules import evaluate
from saferun.policy.score import exposure, rating
from saferun.policy.spec import from_plan

IMAGE = "saferun-test/busybox:1"


def test_privileged_host_root_and_host_network_scores_10() -> None:
    report = check_docker_run(f"docker run --privileged -v /:/host --net=host {IMAGE}")
    assert report.score is not None
    assert report.score.value >= 9.5 and report.score.rating == "UNSAFE"
    assert {"privileged", "sensitive-host-mount", "host-network"} <= \
        {i.rule for i in report.score.items if i.badness}
    assert "privileged" in report.score.unconfined_by


def test_hardened_default_for_the_same_image_scores_below_2() -> None:
    manifest = Manifest.from_data({"app": {"name": "app", "image": IMAGE}})
    _, _, score = judge(from_plan(build_plan(manifest, IDEAL_FACTS)))
    assert score.value < 2
    assert not score.unconfined_by


def test_plain_docker_run_lies_between() -> None:
    report = check_docker_run(f"docker run {IMAGE}")
    assert report.score is not None and 2 < report.score.value < 8


def test_each_table_item_explains() -> None:
    report = check_docker_run(f"docker run --privileged -v /:/host --net=host {IMAGE}")
    assert report.score is not None
    for item in report.score.items:
        assert item.explanation and item.weight > 0
        if item.badness:
            assert not item.explanation.startswith("ok")
        else:
            assert item.explanation.startswith("ok")
    shares = sum(report.score.share(i) for i in report.score.items)
    assert shares == pytest.approx(report.score.raw, abs=0.2)


def test_weights_normalise_like_systemd() -> None:
    manifest = Manifest.from_data({"app": {"name": "app", "image": IMAGE}})
    results = evaluate(from_plan(build_plan(manifest, IDEAL_FACTS)))
    score = exposure(results)
    failing = sum(r.rule.weight for r in results if not r.passed)
    assert score.value == round(10 * failing / score.total_weight, 1)


@pytest.mark.parametrize(("value", "name"), [(0.0, "PERFECT"), (1.5, "SAFE"), (4.0, "OK"),
                                             (6.0, "MEDIUM"), (8.0, "EXPOSED"), (10.0, "UNSAFE")])
def test_ratings(value: float, name: str) -> None:
    assert rating(value) == name
