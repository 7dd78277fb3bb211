from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from click.testing import CliRunner

from saferun.cli import cli


def _item(name: str, *deps: str, egress: tuple[str, ...] | None = None) -> Any:
    from saferun.model.netpolicy import peers_of
    from saferun.plan.netrules import ServiceRules

    rules = ServiceRules(None, peers_of(list(egress)) if egress is not None else None)
    return SimpleNamespace(member=SimpleNamespace(name=name, depends_on=deps,
                                                  manifest_path=Path(f"{name}.toml")),
                           rules=rules)


def test_a_service_starts_after_its_rules_and_its_dependencies(monkeypatch) -> None:
    """_bring_up: the rules (with the addresses of the sandboxes they name) go in before
    the service's container starts, and that waits for what it depends on."""
    from concurrent.futures import Future

    from saferun.app import stack as app
    from saferun.engine import netns, stacks
    from saferun.engine.stacks import ContainerState

    events: list[str] = []

    def done(value: Any = None) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(value)
        return future

    def inspect_each(names: list[str], stack: str, session: Any) -> list[ContainerState]:
        events.append("inspect " + ",".join(names))
        return [ContainerState(n, {"io.saferun.stack-service": n.split("-")[1]}, "running", "",
                               100 + i, (f"10.0.0.{i + 2}",), 0) for i, n in enumerate(names)]

    monkeypatch.setattr(stacks, "inspect_each", inspect_each)
    allow_db = "ip daddr 10.0.0.3/32 tcp dport 5432"
    monkeypatch.setattr(netns, "install_rules", lambda pid, ruleset: events.append(
        f"rules {pid} allow db: {allow_db in ruleset}") or 0.001)
    monkeypatch.setattr(stacks, "start_created",
                        lambda name, recreate, session: events.append(f"start {name}"))
    db_started: Future[Any] = Future()
    steps = app._Steps(sandbox_up={"web": done(), "db": done()},
                       created={"web": done(), "db": done()}, started={"db": db_started})
    stack = SimpleNamespace(name="shop", health_timeout=5)
    item = _item("web", "db", egress=("db:5432",))

    import threading

    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(
        app._bring_up(stack, item, steps, None, lambda line: None)), daemon=True)
    thread.start()
    thread.join(0.3)
    try:
        assert thread.is_alive(), "web started before db was up"
        assert events == ["inspect shop-web-sandbox,shop-db-sandbox", "rules 100 allow db: True"]
    finally:
        db_started.set_result(((), None))
    thread.join(5)
    assert events[2:] == ["inspect shop-db", "start shop-web"]
    assert result == [(("10.0.0.2",), 0.001)]


def test_up_refuses_an_invalid_stack_with_125_before_the_engine(tmp_path: Path) -> None:
    (tmp_path / "saferun.stack.toml").write_text(
        '[stack]\nname = "shop"\n[services.web]\nmanifest = "web.toml"\n'
        'depends_on = ["db"]\n')
    result = CliRunner().invoke(cli, ["up", str(tmp_path)])
    assert result.exit_code == 125
    assert "depends_on names 'db'" in result.stderr


def test_commands_are_listed() -> None:
    help_text = CliRunner().invoke(cli, ["--help"]).output
    for command in ("up", "down", "ps"):
        assert f"  {command} " in help_text


def test_up_refuses_rules_on_a_rootless_engine_before_touching_it(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """facts.rootless (the engine's security options) stops `up` with 125 before it asks
    the engine about the stack, let alone creates anything."""
    from saferun.engine import host, netns, stacks
    from saferun.model.facts import HostFacts

    rootless = HostFacts(server_version="20.10.24",
                         security_options=frozenset({"seccomp", "rootless"}),
                         runtimes=frozenset({"runc"}))
    monkeypatch.setattr(host, "probe_host_facts", lambda session: (rootless, None))
    monkeypatch.setattr(netns.shutil, "which", lambda tool: f"/usr/sbin/{tool}")
    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)
    touched: list[str] = []
    monkeypatch.setattr(stacks, "stack_exists", lambda *a: touched.append("exists"))
    monkeypatch.setattr(stacks, "create_network", lambda *a: touched.append("network"))
    (tmp_path / "web.toml").write_text(
        '[app]\nname = "web"\nimage = "busybox:1"\n[network]\negress = "none"\n')
    (tmp_path / "saferun.stack.toml").write_text(
        '[stack]\nname = "shop"\n[services.web]\nmanifest = "web.toml"\n')
    result = CliRunner().invoke(cli, ["up", str(tmp_path)])
    assert result.exit_code == 125, result.output
    assert "rootless" in result.stderr and "fix:" in result.stderr
    assert touched == []


def test_a_service_is_made_again_when_its_sandbox_was(monkeypatch) -> None:
    """docker pins `container:NAME` to the sandbox's id at create: a sandbox made again
    (the runtime's start race) means the service must be made again before it starts."""
    from concurrent.futures import Future

    from saferun.app import stack as app
    from saferun.engine import stacks
    from saferun.engine.stacks import ContainerState

    events: list[str] = []
    done: Future[Any] = Future()
    done.set_result(None)
    remade: Future[Any] = Future()
    remade.set_result(True)
    monkeypatch.setattr(stacks, "inspect_each", lambda names, stack, session: [
        ContainerState(names[0], {"io.saferun.stack-service": "web"}, "running", "", 100,
                       ("10.0.0.2",), 0)])
    monkeypatch.setattr(stacks, "remove_container", lambda name: events.append(f"rm {name}"))
    monkeypatch.setattr(app, "_make_service", lambda item, session: events.append("create"))
    monkeypatch.setattr(stacks, "start_created",
                        lambda name, recreate, session: events.append(f"start {name}"))
    steps = app._Steps(sandbox_up={"web": remade}, created={"web": done}, started={})
    app._bring_up(SimpleNamespace(name="shop", health_timeout=5), _item("web"), steps, None,
                  lambda line: None)
    assert events == ["rm shop-web", "create", "start shop-web"]
