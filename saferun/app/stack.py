"""`saferun up`, `down` and `ps`: a stack of hardened services on a private network.

`up` checks that rules can be installed (fail closed) before it creates anything, then
plans every service with the same pipeline as `saferun run` while the stack's network and
one sandbox per service (which holds the service's network namespace) are created, not
started: a refusal removes them before any process ran. Then the sandboxes start, the
services' containers are created, and each service goes on as soon as what it needs is
there: its ruleset into its sandbox's namespace, then its container started, joining the
sandbox, once its dependencies are up. A guard process removes what was created if `up`
dies before it finishes.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import msgspec

from saferun.errors import ManifestError, RequirementUnmet, SaferunError
from saferun.model.stack import (
    EGRESS_LABEL,
    INGRESS_LABEL,
    ROLE_LABEL,
    SERVICE_LABEL,
    STACK_LABEL,
    sandbox_name,
    service_container_name,
)
from saferun.model.strict import updated


@dataclass(frozen=True)
class StartedService:
    name: str
    container: str
    addresses: tuple[str, ...]
    rules_seconds: float | None  # time to install its rules; None: it has none


@dataclass(frozen=True)
class UpResult:
    stack: str
    network: str
    services: tuple[StartedService, ...]


@dataclass(frozen=True)
class _Planned:
    member: Any  # StackMember
    plan: Any  # RunPlan of the service's container
    rules: Any  # ServiceRules


def _policy_text(value: list[str] | str | None) -> str:
    from saferun.model.netpolicy import parse_peers

    if value is None:
        return "open"
    if isinstance(value, str):
        return value
    return ",".join(str(p) for p in parse_peers(value)) or "none"


def _service_rules(network: Any) -> Any:
    from saferun.model.netpolicy import peers_of
    from saferun.plan.netrules import ServiceRules

    published = tuple((p.container, p.protocol) for p in network.ports)
    return ServiceRules(peers_of(network.ingress), peers_of(network.egress), published)


def _plan_service(stack: Any, member: Any, facts: Any, session: Any,
                  warn: Callable[[str], None]) -> _Planned:
    from saferun.app.planning import checked_plan
    from saferun.app.run import (
        check_mount_sources,
        check_writable_mounts,
        judge_warnings,
        pin_floating_image,
    )
    from saferun.plan.planner import LaunchOptions
    from saferun.policy.digest import check_image_policy

    manifest = member.manifest
    manifest_dir = str(member.manifest_path.resolve().parent)
    check_image_policy(manifest.app.image, manifest.policy.ignore, manifest.policy.digest)
    for message in judge_warnings(manifest, manifest_dir):
        warn(f"{member.name}: {message}")
    joined = joined_manifest(manifest, stack.name, member.name)
    options = LaunchOptions(detach=True, name=service_container_name(stack.name, member.name),
                            manifest_dir=manifest_dir, manifest_sha256=member.manifest_sha256)
    plan = checked_plan(joined, facts, options)
    check_mount_sources(joined, plan)
    plan = pin_floating_image(plan, session)
    plan = check_writable_mounts(plan, facts, session,
                                 present=bool(session.image_present(plan.image)))
    labels = dict(plan.labels)
    labels.update({STACK_LABEL: stack.name, ROLE_LABEL: "service", SERVICE_LABEL: member.name,
                   INGRESS_LABEL: _policy_text(manifest.network.ingress),
                   EGRESS_LABEL: _policy_text(manifest.network.egress)})
    plan = msgspec.structs.replace(plan, labels=tuple(sorted(labels.items())))
    rules = _service_rules(manifest.network)
    _check_cannot_touch_rules(member, plan, rules)
    for message in plan.warnings:
        warn(f"{member.name}: {message}")
    return _Planned(member, plan, rules)


def joined_manifest(manifest: Any, stack: str, service: str) -> Any:
    """The manifest of a stack service as `up` starts it: in its sandbox's namespace, which
    holds the endpoint settings (and the hostname)."""
    from saferun.render.sandbox import service_network

    return updated(manifest,
                   network=service_network(manifest.network, sandbox_name(stack, service)),
                   app=updated(manifest.app, hostname=None))


def _check_cannot_touch_rules(member: Any, plan: Any, rules: Any) -> None:
    """A service with rules must not hold CAP_NET_ADMIN: in its namespace it could flush
    them. An [allow] reason does not change that, so it is refused here."""
    from saferun.policy.spec import from_plan

    if rules.restricted and "CAP_NET_ADMIN" in from_plan(plan).effective_caps:
        raise SaferunError(
            f"{member.manifest_path}: service '{member.name}' declares network ingress/egress "
            "and would hold CAP_NET_ADMIN, with which it could remove its own rules",
            fix="drop NET_ADMIN (and privileged) from the service, or its [network] rules")


def up(target: str | None, *, warn: Callable[[str], None],
       say: Callable[[str], None] = lambda _line: None) -> UpResult:
    """Start the stack at `target`; everything or nothing (see the module docstring).
    `say` hears each step as it begins (the CLI draws it as progress on a terminal)."""
    from saferun.engine import stacks
    from saferun.engine.api import EngineSession
    from saferun.engine.host import probe_host_facts
    from saferun.engine.netns import check_rules_possible
    from saferun.engine.sandbox_image import ensure_sandbox_image
    from saferun.inputs.stackfile import load_stack

    stack = load_stack(target)
    session = EngineSession()
    try:
        facts, _ = probe_host_facts(session)
        if any(_service_rules(m.manifest.network).restricted for m in stack.services):
            check_rules_possible(rootless=facts.rootless)
        if stacks.stack_exists(stack.name, session):
            raise SaferunError(f"stack '{stack.name}' is already up (or was left half-made)",
                               fix=f"run `saferun down {target or '.'}` first")
        ensure_sandbox_image(stack.sandbox_image, session)
        guard = stacks.UpGuard(stack.name)
        try:
            result = _create(stack, facts, session, warn, say)
        except BaseException:
            guard.roll_back()
            raise
        guard.commit()
        return result
    finally:
        session.close()


def _create(stack: Any, facts: Any, session: Any, warn: Callable[[str], None],
            say: Callable[[str], None]) -> UpResult:
    """Every step that creates something, overlapped where nothing depends on the order:
    the network and the sandboxes are created while the services are planned (a refusal
    there rolls them back; no app has run), the services are created while the sandboxes
    start, and each service goes on as soon as what it needs is there (`_bring_up`).
    Nothing the app runs starts before its own rules are installed."""
    from concurrent.futures import ThreadPoolExecutor

    from saferun.engine import stacks

    with ThreadPoolExecutor(max_workers=1) as background:
        made = background.submit(_make_sandboxes, stack, session)
        try:
            say(f"stack {stack.name}: planning {len(stack.services)} service(s)")
            planned = [_plan_service(stack, m, facts, session, warn) for m in stack.services]
        finally:
            made_error = made.exception()  # waits: a rollback must not race a create
        if made_error is not None:
            raise made_error
    say(f"stack {stack.name}: starting {len(planned)} sandbox(es)")
    # The engine's work (starts, creates) in a bounded pool; the services' threads only
    # wait on it and on each other, so they cannot starve it.
    with ThreadPoolExecutor(max_workers=8) as engine_work, \
            ThreadPoolExecutor(max_workers=len(planned)) as services:
        steps = _Steps(
            sandbox_up={i.member.name: engine_work.submit(
                _start_sandbox, stack, sandbox_name(stack.name, i.member.name), session)
                for i in planned},
            created={i.member.name: engine_work.submit(_make_service, i, session)
                     for i in planned},
            started={})
        for item in planned:  # in start order: a dependency's future exists before its use
            steps.started[item.member.name] = services.submit(
                _bring_up, stack, item, steps, session, say)
        errors = [f.exception() for group in (steps.sandbox_up, steps.created, steps.started)
                  for f in group.values()]
    for error in errors:
        if error is not None:
            raise error
    started = [StartedService(item.member.name,
                              service_container_name(stack.name, item.member.name),
                              *steps.started[item.member.name].result())
               for item in planned]
    return UpResult(stack.name, stacks.network_name(stack.name), tuple(started))


@dataclass(frozen=True)
class _Steps:
    """Futures of `up`'s steps, by service name."""

    sandbox_up: dict[str, Any]  # its sandbox started: whether it had to be made again
    created: dict[str, Any]  # its container created
    started: dict[str, Any]  # started: (sandbox addresses, seconds its rules took or None)


def _bring_up(stack: Any, item: _Planned, steps: _Steps, session: Any,
              say: Callable[[str], None]) -> tuple[tuple[str, ...], float | None]:
    """One service: once its sandbox and the sandboxes its rules name are up (their
    addresses go into the rules), its rules into its sandbox's namespace; once what it
    depends on is up (healthy, where it has a health check), its container started."""
    from saferun.engine import stacks
    from saferun.engine.netns import install_rules
    from saferun.plan.netrules import UnknownService, render_ruleset

    name = item.member.name
    rules = item.rules
    named = {p.service for p in (*(rules.ingress or ()), *(rules.egress or ())) if p.service}
    needed = [name, *sorted(named & set(steps.sandbox_up) - {name})]
    for service in needed:
        steps.sandbox_up[service].result()  # raises: a sandbox that did not start
    states = {s.labels.get(SERVICE_LABEL, ""): s for s in stacks.inspect_each(
        [sandbox_name(stack.name, n) for n in needed], stack.name, session)}
    addresses = {n: tuple(ipaddress.ip_address(a) for a in s.addresses)
                 for n, s in states.items()}
    try:
        ruleset = render_ruleset(rules, addresses)
    except UnknownService as exc:
        raise ManifestError(f"{item.member.manifest_path}: {exc}") from None
    seconds = install_rules(states[name].pid, ruleset) if ruleset else None
    steps.created[name].result()
    container = service_container_name(stack.name, name)
    if steps.sandbox_up[name].result():
        # Its sandbox was made again after the service was created: docker resolved
        # `container:NAME` to the old sandbox's id then, so the service is made again too.
        stacks.remove_container(container)
        _make_service(item, session)
    if item.member.depends_on:
        say(f"stack {stack.name}: {name} waits for {', '.join(item.member.depends_on)}")
    for dependency in item.member.depends_on:
        steps.started[dependency].result()  # raises: a dependency that did not start
    _wait_for_dependencies(stack, item.member, session)
    say(f"stack {stack.name}: starting {name}")
    stacks.start_created(container, partial(_make_service, item, session), session)
    return states[name].addresses, seconds


def _make_sandboxes(stack: Any, session: Any) -> None:
    """The stack's network and every service's sandbox, created, not started."""
    from saferun.engine import stacks

    stacks.create_network(stack.name, session)
    stacks.in_parallel([partial(_make_sandbox, stack, sandbox_name(stack.name, m.name), session)
                        for m in stack.services])


def _make_sandbox(stack: Any, name: str, session: Any) -> None:
    from saferun.engine import stacks
    from saferun.render.engine_api import render_create_body
    from saferun.render.sandbox import sandbox_argv, sandbox_plan

    member = next(m for m in stack.services if sandbox_name(stack.name, m.name) == name)
    manifest = member.manifest
    plan = sandbox_plan(
        stack=stack.name, service=member.name, image=stack.sandbox_image,
        network=manifest.network, hostname=manifest.app.hostname,
        labels={INGRESS_LABEL: _policy_text(manifest.network.ingress),
                EGRESS_LABEL: _policy_text(manifest.network.egress)})
    stacks.create_container(sandbox_argv(plan), body=render_create_body(plan), session=session)


def _start_sandbox(stack: Any, name: str, session: Any) -> bool:
    """Start a sandbox; whether it had to be made again (see `_bring_up`)."""
    from saferun.engine import stacks

    return stacks.start_created(name, partial(_make_sandbox, stack, name, session), session)


def _make_service(item: _Planned, session: Any) -> None:
    """The service's container, created (not started) in its sandbox's namespace: over the
    local socket with the API body `saferun run --dry-run --format json` prints (the
    profile inline), or by its `docker create` line, which the CLI alone can run when its
    own settings apply (content trust, a platform, client flags) and which pulls a missing
    image."""
    import os

    from saferun.app.run import dry_run_body
    from saferun.engine import stacks
    from saferun.engine.docker_cli import SECCOMP_FD_PATH
    from saferun.render.argv import render_argv

    plan = item.plan
    argv = render_argv(msgspec.structs.replace(plan, detach=False), seccomp_path=SECCOMP_FD_PATH
                       if plan.seccomp_profile is not None else None)
    argv[1] = "create"
    cli_only = (plan.platform or plan.client_flags
                or os.environ.get("DOCKER_CONTENT_TRUST", "") not in ("", "0"))
    body = None if cli_only else dry_run_body(msgspec.structs.replace(plan, detach=False))
    stacks.create_container(argv, plan.seccomp_profile, body=body, session=session)


def _wait_for_dependencies(stack: Any, member: Any, session: Any) -> None:
    """A dependency with a health check must be healthy first; one without, running."""
    from saferun.engine import stacks

    if not member.depends_on:
        return
    names = [service_container_name(stack.name, d) for d in member.depends_on]
    deadline = time.monotonic() + stack.health_timeout
    while True:
        states = stacks.inspect_each(names, stack.name, session)
        waiting = [s for s in states if s.status != "running" or s.health not in ("", "healthy")]
        failed = [s for s in states if s.status in ("exited", "dead") or s.health == "unhealthy"]
        if failed:
            what = failed[0].health or failed[0].status
            raise RequirementUnmet(f"{member.name} depends on {failed[0].name}, which is {what}",
                                   fix=f"see `docker logs {failed[0].name}`")
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise RequirementUnmet(
                f"{member.name} depends on {waiting[0].name}, not healthy after "
                f"{stack.health_timeout} s",
                fix="raise [stack] health_timeout or fix its health check")
        time.sleep(0.1)  # an API inspect over the local socket costs about a millisecond


@dataclass(frozen=True)
class DownResult:
    stack: str
    containers: tuple[str, ...]
    networks: tuple[str, ...]
    volumes: tuple[str, ...]  # the services' anonymous volumes (removed or kept, as asked)


def down(target: str | None, *, volumes: bool = False) -> DownResult:
    """Remove everything labelled with the stack's name (services, sandboxes, network);
    the services' anonymous volumes too with `volumes`."""
    from saferun.engine import stacks

    name = _stack_name(target)
    removed = stacks.remove_stack(name, volumes=volumes)
    return DownResult(name, tuple(removed.containers), tuple(removed.networks),
                      tuple(removed.volumes))


def _stack_name(target: str | None) -> str:
    """The stack's name from its file; a bare stack name also works (the file may be gone)."""
    import re

    from saferun.inputs.stackfile import load_stack
    from saferun.model.stack import STACK_NAME_PATTERN

    if target and not Path(target).exists() and re.match(STACK_NAME_PATTERN, target):
        return target
    return load_stack(target).name


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    container: str
    state: str
    health: str
    addresses: tuple[str, ...]
    ingress: str
    egress: str
    rules: str  # enforced | MISSING | none (open)


@dataclass(frozen=True)
class PsResult:
    stack: str
    services: tuple[ServiceStatus, ...]


def ps(target: str | None) -> PsResult:
    """Each service's state, health and policy; whether its rules are in its namespace."""
    from saferun.engine import stacks
    from saferun.engine.netns import read_rules
    from saferun.plan.netrules import TABLE

    name = _stack_name(target)
    found = stacks.stack_containers(name)
    sandboxes = {c.labels.get(SERVICE_LABEL): c for c in found
                 if c.labels.get(ROLE_LABEL) == "sandbox"}
    rows = []
    for c in sorted(found, key=lambda c: c.name):
        if c.labels.get(ROLE_LABEL) != "service":
            continue
        service = c.labels.get(SERVICE_LABEL, "")
        ingress, egress = c.labels.get(INGRESS_LABEL, "open"), c.labels.get(EGRESS_LABEL, "open")
        sandbox = sandboxes.get(service)
        # The service's own process is in the same namespace; the sandbox's, if it is not.
        holder = c if c.status == "running" else sandbox
        if ingress == "open" and egress == "open":
            rules = "none (open)"
        elif holder is None or holder.status != "running":
            rules = "- (not running)"
        else:
            rules = "enforced" if read_rules(holder.pid, TABLE) else "MISSING"
        rows.append(ServiceStatus(service, c.name, c.status, c.health or "-",
                                  sandbox.addresses if sandbox else (), ingress, egress, rules))
    return PsResult(name, tuple(rows))
