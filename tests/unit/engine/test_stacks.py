"""engine/stacks: a start that hits the runtime's parallel-start race is retried once."""

from __future__ import annotations

import subprocess

import pytest

from saferun.engine import stacks
from saferun.errors import RequirementUnmet

ARGV = ["docker", "create", "--name", "s-web-sandbox", "img", "sleep", "1"]
RACE = "cannot start a stopped process: unknown"


class _Session:
    def __init__(self, answers: list[str | None]) -> None:
        self.answers, self.started = answers, []

    def start_container(self, name: str) -> str | None:
        self.started.append(name)
        return self.answers.pop(0)


def _fake(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    removed: list[tuple[str, ...]] = []
    monkeypatch.setattr(stacks, "docker", lambda *args, check=True: removed.append(args))
    return removed


def test_the_race_is_retried_once_after_making_the_container_again(monkeypatch):
    removed, made = _fake(monkeypatch), []
    session = _Session([RACE, None])
    assert stacks.start_created("s-web-sandbox", lambda: made.append(1), session) is True
    assert removed == [("rm", "-f", "s-web-sandbox")]
    assert made == [1] and session.started == ["s-web-sandbox"] * 2


def test_a_second_race_is_reported(monkeypatch):
    _fake(monkeypatch)
    with pytest.raises(RequirementUnmet, match="cannot start a stopped process"):
        stacks.start_created("s-web-sandbox", lambda: None, _Session([RACE, RACE]))


def test_other_failures_are_not_retried(monkeypatch):
    removed = _fake(monkeypatch)
    with pytest.raises(RequirementUnmet, match="no such image"):
        stacks.start_created("s-web-sandbox", lambda: None, _Session(["no such image"]))
    assert removed == []


def test_a_create_failure_names_the_container_and_says_why(monkeypatch):
    monkeypatch.setattr("saferun.engine.docker_cli.run_docker", lambda argv, profile, timeout:
                        subprocess.CompletedProcess(argv, 125, "", "docker: invalid reference "
                                                    "format.\nSee 'docker create --help'.\n"))
    with pytest.raises(RequirementUnmet, match=r"docker create s-web-sandbox` failed: invalid"):
        stacks.create_container(ARGV)


def test_in_parallel_raises_the_first_failure_after_all_ended():
    ended = []

    def fails() -> None:
        raise RequirementUnmet("first")

    def slow() -> None:
        import time

        time.sleep(0.05)
        ended.append("slow")

    with pytest.raises(RequirementUnmet, match="first"):
        stacks.in_parallel([fails, slow])
    assert ended == ["slow"]


# --- down: anonymous volumes ------------------------------------------------------------

ANON = "a" * 64


def _inspected(name: str, mounts: list[dict[str, str]]) -> dict[str, object]:
    return {"Name": "/" + name, "State": {"Status": "running"}, "Mounts": mounts}


def _fake_stack(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    import json

    calls: list[tuple[str, ...]] = []
    mounts = [{"Type": "volume", "Name": ANON}, {"Type": "volume", "Name": "shop-data"},
              {"Type": "bind", "Source": "/srv"}]
    listing = {"ps": "id1\nid2\n", "network": "saferun-shop\n",
               "inspect": json.dumps([_inspected("shop-db-sandbox", [{"Type": "volume",
                                                                      "Name": "b" * 64}]),
                                      _inspected("shop-db", mounts)])}

    def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, listing.get(args[0], ""), "")

    monkeypatch.setattr(stacks, "docker", docker)
    return calls


@pytest.mark.parametrize("volumes", [False, True])
def test_down_names_a_services_anonymous_volumes_and_removes_them_only_when_asked(
        monkeypatch: pytest.MonkeyPatch, volumes: bool) -> None:
    calls = _fake_stack(monkeypatch)
    removed = stacks.remove_stack("shop", volumes=volumes)
    # The sandbox's image volume is never data (always -v) and is not reported; the named
    # volume and the bind are not a service's anonymous volumes.
    assert removed.volumes == [ANON]
    assert removed.containers == ["shop-db", "shop-db-sandbox"]
    rm = [c for c in calls if c[0] == "rm"]
    assert rm == [("rm", "-f", *(["-v"] if volumes else []), "shop-db"),
                  ("rm", "-f", "-v", "shop-db-sandbox")]
