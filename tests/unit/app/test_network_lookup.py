"""Issue 19, case 11 in `check` and `export`: a network is judged as the engine resolves it.

`check --docker-run`, `check` of a manifest and `export` ask the engine what a network
name is, as `run` does: the host network by its ID or an ID prefix is host-network. With no
engine they keep working and say that the names were not resolved. A fake session stands
for the engine here (the real one: tests/e2e/test_hostile_e2e.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from saferun.app import networks
from saferun.app.check import check_all, check_docker_run, check_manifest
from saferun.app.export import ExportRequest, render_export
from saferun.app.networks import NetworkLookup, names_to_resolve
from saferun.cli import cli
from saferun.errors import EngineUnavailable, Refused, SaferunError
from saferun.export import Target

HOST_ID = "1a352c1714dfe1fb9b9a582e900900cf2e424115ca2aa331432f04ccbeaae231"
HOST = {"Name": "host", "Id": HOST_ID, "Driver": "host"}
BRIDGE = {"Name": "hostile2-net", "Id": "ab" * 32, "Driver": "bridge"}


class Engine:
    """`docker network inspect` as the engine answers it: by name, ID or unique ID prefix."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def reachable(self) -> None:
        pass

    def network_inspect(self, name: str) -> dict[str, Any] | None:
        self.asked.append(name)
        if name.startswith("-"):
            raise SaferunError(f"invalid network name {name!r}")
        for data in (HOST, BRIDGE):
            if name == data["Name"] or data["Id"].startswith(name):
                return data
        return None


def _absent() -> Any:
    raise EngineUnavailable("cannot reach the Docker engine at unix:///nowhere")


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Engine:
    fake = Engine()
    monkeypatch.setattr(networks, "_engine_session", lambda: fake)
    return fake


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(networks, "_engine_session", _absent)


def _manifest(tmp_path: Path, mode: str, *, allow: str = "") -> Path:
    path = tmp_path / "saferun.toml"
    path.write_text(f'[app]\nname = "hostile2-net"\nimage = "nginx:1.25"\n'
                    f'[network]\nmode = "{mode}"\n'
                    + (f'[allow]\nhost-network = "{allow}"\n' if allow else ""))
    return path


def _rules(report: Any) -> set[str]:
    assert report.error is None, report.error
    return {f.rule for f in report.findings}


def test_only_names_the_engine_must_resolve_are_asked() -> None:
    assert names_to_resolve(["host", "bridge", "none", "default", "container:db", "", "b",
                             "a", "b"]) == ["a", "b"]
    lookup = NetworkLookup(connect=_absent)
    assert lookup.resolve(["host", "container:web"]) == {}  # no engine needed: none asked
    assert lookup.offline is None


@pytest.mark.parametrize("name", [HOST_ID, HOST_ID[:12], "1a3"])
def test_check_of_a_docker_run_line_judges_the_host_network_by_its_id(
        engine: Engine, name: str) -> None:
    report = check_docker_run(f"docker run --network {name} nginx:1.25")
    assert "host-network" in _rules(report)
    assert any("is the engine's host network 'host'" in note for note in report.notes)
    assert engine.asked == [name]


def test_other_networks_stay_what_they_are(engine: Engine) -> None:
    for line in ("docker run --network hostile2-net nginx:1.25",
                 "docker run --network unknown-net nginx:1.25",
                 "docker run --network=-weird nginx:1.25"):
        report = check_docker_run(line)
        assert "host-network" not in _rules(report), line
        assert not any("network '" in note for note in report.notes), report.notes
    assert "host-network" in _rules(check_docker_run("docker run --net host nginx:1.25"))


def test_check_of_a_manifest_judges_the_host_network_by_its_id(engine: Engine,
                                                               tmp_path: Path) -> None:
    report = check_manifest(_manifest(tmp_path, HOST_ID[:12]))
    assert "host-network" in _rules(report)
    allowed = check_manifest(_manifest(tmp_path, HOST_ID[:12], allow="measured here"))
    finding = next(f for f in allowed.findings if f.rule == "host-network")
    assert finding.suppressed_by is not None  # allowed with a reason, as run allows it
    assert "host-network" not in _rules(check_manifest(_manifest(tmp_path, "hostile2-net")))


def test_check_asks_the_engine_once_for_all_its_inputs(engine: Engine, tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, HOST_ID[:12])
    reports = check_all((manifest,), (f"docker run --network {HOST_ID[:12]} nginx:1.25",
                                      "docker run --network hostile2-net nginx:1.25"), ())
    assert all("host-network" in _rules(r) for r in reports[:2])
    assert engine.asked == [HOST_ID[:12], "hostile2-net"]


def test_without_an_engine_check_works_and_says_what_it_did_not_resolve(
        no_engine: None, tmp_path: Path) -> None:
    line = check_docker_run(f"docker run --network {HOST_ID[:12]} nginx:1.25")
    manifest = check_manifest(_manifest(tmp_path, HOST_ID[:12]))
    for report in (line, manifest):
        assert "host-network" not in _rules(report)
        note = next(n for n in report.notes if "not resolved" in n)
        assert repr(HOST_ID[:12]) in note and "unix:///nowhere" in note
    plain = check_docker_run("docker run --network host nginx:1.25")
    assert not any("not resolved" in n for n in plain.notes)  # nothing needed the engine


def test_an_engine_gone_midway_is_offline_not_absent_networks() -> None:
    class Vanishing(Engine):
        def network_inspect(self, name: str) -> dict[str, Any] | None:
            raise EngineUnavailable("the engine went away")

    lookup = NetworkLookup(connect=Vanishing)
    assert lookup.resolve(["some-net"]) is None
    assert "the engine went away" in lookup.unresolved_note(["some-net"])


def test_export_refuses_the_host_network_by_its_id_as_run_does(engine: Engine,
                                                               tmp_path: Path) -> None:
    path = _manifest(tmp_path, HOST_ID[:12])
    for target in Target:
        with pytest.raises(Refused) as refused:
            render_export(ExportRequest((path,), target))
        assert refused.value.rule_ids == ["host-network"], target
    allowed = render_export(ExportRequest((_manifest(tmp_path, HOST_ID[:12],
                                                     allow="measured here"),),
                                          Target.COMPOSE))
    assert allowed.warnings == ()
    other = render_export(ExportRequest((_manifest(tmp_path, "hostile2-net"),), Target.COMPOSE))
    assert other.warnings == () and "hostile2-net" in other.result.main.content


def test_without_an_engine_export_writes_and_warns(no_engine: None, tmp_path: Path) -> None:
    path = _manifest(tmp_path, HOST_ID[:12])
    rendered = render_export(ExportRequest((path,), Target.COMPOSE))
    assert rendered.result.main.content
    (warning,) = rendered.warnings
    assert warning.startswith(f"{path}: ") and "not resolved" in warning
    printed = CliRunner().invoke(cli, ["export", str(path), "--to", "compose"])
    assert printed.exit_code == 0, printed.stderr
    assert f"saferun: warning: {warning}" in printed.stderr and "services:" in printed.stdout


@pytest.mark.parametrize("name", [HOST_ID, HOST_ID[:12], HOST_ID[:3]])
def test_init_refuses_the_host_network_by_its_id_as_run_does(engine: Engine, tmp_path: Path,
                                                           name: str) -> None:
    """Gap 5 of the audit: `init --from-docker-run "docker run --network <host ID>"` wrote
    a manifest `run` then refused; init now asks the engine as run does, and refuses."""
    from saferun.app.init import from_docker_run_line

    line = f"docker run --network {name} nginx:1.25"
    with pytest.raises(Refused, match="host-network") as caught:
        from_docker_run_line(line, (), cwd=str(tmp_path), manifest_dir=str(tmp_path))
    assert caught.value.rule_ids == ["host-network"] and name in engine.asked
    out = tmp_path / "saferun.toml"
    result = CliRunner().invoke(cli, ["init", "--from-docker-run", line, "-o", str(out)])
    assert result.exit_code == 2 and "host-network" in result.stderr and not out.exists()
    allowed = from_docker_run_line(line, ("host-network=the app serves the host's LAN",),
                                   cwd=str(tmp_path), manifest_dir=str(tmp_path))
    assert f'mode = "{name}"' in allowed.text  # with a reason it is written, as run starts it


def test_init_writes_another_network_and_says_when_names_were_not_resolved(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from saferun.app.init import from_docker_run_line

    line = "docker run --network hostile2-net nginx:1.25"
    result = from_docker_run_line(line, (), cwd=str(tmp_path), manifest_dir=str(tmp_path))
    assert 'mode = "hostile2-net"' in result.text and "hostile2-net" in engine.asked
    assert not any("not resolved" in n for n in result.notes)
    monkeypatch.setattr(networks, "_engine_session", _absent)
    line = f"docker run --network {HOST_ID[:12]} nginx:1.25"
    result = from_docker_run_line(line, (), cwd=str(tmp_path), manifest_dir=str(tmp_path))
    note = [n for n in result.notes if "not resolved" in n]
    assert note and HOST_ID[:12] in note[0] and "no engine answered" in note[0]
    assert "not resolved" in result.text  # the written manifest says so too
    out = tmp_path / "saferun.toml"
    cli_run = CliRunner().invoke(cli, ["init", "--from-docker-run", line, "-o", str(out)])
    assert cli_run.exit_code == 0 and "not resolved" in cli_run.stderr
