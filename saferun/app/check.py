"""`saferun check` and `saferun score`: read each input at the edge, judge it in the core.

Inputs are manifests, `docker run` command lines and running containers. Each becomes a
ContainerSpec; bind-mount sources are resolved here (symlinks followed, on this host) so
the pure rules see where a mount really leads. The rules, the score and the formatters
are pure; this module is the only part that reads files or asks the engine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from saferun.app.networks import NetworkLookup
from saferun.app.planning import judged_plan
from saferun.errors import (
    ImageRefused,
    ManifestError,
    ProfileError,
    Refused,
    RequirementUnmet,
    SaferunError,
)
from saferun.inputs.plain_docker import plain_docker_spec
from saferun.model.facts import HostFacts
from saferun.model.strict import to_document, updated
from saferun.plan.planner import LaunchOptions
from saferun.policy.report import (
    BY_ALLOW,
    BY_EXCEPTIONS,
    BY_IGNORE,
    TargetReport,
    judge,
    label_reasons,
)
from saferun.policy.rules import Policy
from saferun.policy.spec import ContainerSpec, from_inspect, from_plan, with_resolved_sources

# Checking judges the manifest, not this host: plan against a daemon that has every feature.
IDEAL_FACTS = HostFacts(
    server_version="check",
    security_options=frozenset({"seccomp", "apparmor", "userns"}),
    runtimes=frozenset({"runc", "runsc", "kata"}),
)


def resolve_sources(spec: ContainerSpec) -> ContainerSpec:
    """Follow symlinks of every bind source that exists on this host (the I/O edge)."""
    resolved = {m.source: os.path.realpath(m.source) for m in spec.mounts
                if m.kind == "bind" and os.path.lexists(m.source)}
    return with_resolved_sources(spec, resolved)


def read_seccomp_file(spec: ContainerSpec, security_opts: list[str],
                      cwd: str) -> tuple[ContainerSpec, tuple[str, ...]]:
    """`--security-opt seccomp=FILE`: the docker CLI reads FILE and sends its JSON, so it is
    read here too (the edge, with the input files' bound) and judged by what it denies: a
    profile that lets every call through (defaultAction SCMP_ACT_LOG, allow rules only) is
    seccomp-unconfined, as `check --container` judges the same profile from docker inspect."""
    from dataclasses import replace

    from saferun.inputs.loader import decode_input, read_bounded
    from saferun.policy.spec import denies_nothing, profile_sha256, security_opt_pair

    files = [v for k, v in map(security_opt_pair, security_opts) if k == "seccomp"]
    if spec.seccomp != "custom" or not files:
        return spec, ()
    path = Path(cwd, files[-1])
    try:
        text = decode_input(read_bounded(path, "seccomp profile"), str(path), "seccomp profile")
    except ManifestError as exc:
        return spec, (f"{exc.message}: judged as a custom profile (docker would not start "
                      "without it)",)
    spec = replace(spec, seccomp_sha256=profile_sha256(text))
    if not denies_nothing(text):
        return spec, ()
    return replace(spec, seccomp="unconfined"), (
        f"seccomp profile {path} denies nothing (every action lets the call through): judged "
        "as seccomp=unconfined",)


def manifest_reasons(manifest: Any) -> dict[str, tuple[str, str]]:
    """Written reasons of a manifest by rule id: [allow], legacy [exceptions], [policy] ignore."""
    from saferun.model.refusals import LEGACY_KEYS

    reasons = {rule: (BY_IGNORE, reason) for rule, reason in manifest.policy.ignore.items()}
    reasons.update({LEGACY_KEYS[key]: (BY_EXCEPTIONS, reason)
                    for key, reason in manifest.exceptions.items() if key in LEGACY_KEYS})
    reasons.update({rule: (BY_ALLOW, reason) for rule, reason in manifest.allow.items()})
    return reasons


def manifest_spec(manifest: Any, manifest_dir: str,
                  facts: HostFacts = IDEAL_FACTS) -> ContainerSpec:
    """What `saferun run` would start for this manifest, bind sources resolved. The plan is
    run's own judged plan: a bind source that leads to /etc through `..` or a symlink is
    refused here as `run` refuses it (the manifest is INVALID, as with `/etc` written)."""
    plan = judged_plan(manifest, facts, LaunchOptions(manifest_dir=manifest_dir))
    return resolve_sources(from_plan(plan))


# Generating and compiling a seccomp profile takes ~20 ms (libseccomp builds the filter
# twice), 95% of checking a manifest. Manifests in one repository mostly share their
# [seccomp] table, capabilities and runtime, which are all the profile depends on; `check`
# compiles each distinct combination once and reuses the outcome (valid, or its error).
_SECCOMP_SEEN: dict[str, tuple[str, str | None] | SaferunError] = {}


def _seccomp_key(manifest: Any) -> str | None:
    if manifest.seccomp.profile not in ("default", "strict"):
        return None  # docker-default / unconfined: nothing is generated
    return "|".join((repr(to_document(manifest.seccomp)), ",".join(manifest.capabilities.add),
                     manifest.security.runtime))


def _checked_spec(manifest: Any, manifest_dir: str) -> ContainerSpec:
    """manifest_spec, with the seccomp outcome of an identical earlier manifest reused."""
    from dataclasses import replace

    key = _seccomp_key(manifest)
    seen = _SECCOMP_SEEN.get(key) if key is not None else None
    if isinstance(seen, SaferunError):
        raise seen
    if seen is None:
        try:
            spec = manifest_spec(manifest, manifest_dir)
        except SaferunError as exc:
            if key is not None and "seccomp" in exc.message:
                _SECCOMP_SEEN[key] = exc
            raise
        if key is not None:
            _SECCOMP_SEEN[key] = (spec.seccomp, spec.seccomp_sha256)
        return spec
    builtin = updated(manifest, seccomp=updated(manifest.seccomp, profile="docker-default"))
    spec = manifest_spec(builtin, manifest_dir)
    return replace(spec, seccomp=seen[0], seccomp_sha256=seen[1])


def resolve_networks(spec: ContainerSpec, names: list[str],
                     lookup: NetworkLookup | None) -> tuple[ContainerSpec, tuple[str, ...]]:
    """The spec on the host network when the engine says one of `names` is it (its ID, an
    ID prefix), as `saferun run` judges it; with what was found, or that nothing could be."""
    from dataclasses import replace

    from saferun.app.networks import host_network_notes

    lookup = lookup if lookup is not None else NetworkLookup()
    found = lookup.resolve(names)
    if found is None:
        return spec, (lookup.unresolved_note(names),)
    notes = tuple(host_network_notes(found))
    return (replace(spec, network="host") if notes else spec), notes


def check_manifest(path: Path, *, network: str | None = None,
                   lookup: NetworkLookup | None = None, data: bytes | None = None,
                   directories: dict[str, str] | None = None) -> TargetReport:
    """`network`: the network the app is on when not its own (a stack's, under `up`).
    `lookup` resolves the networks the manifest names (a new one, asking the engine, if
    None). `data`: the file's bytes, when already read; `directories`: real paths of
    directories already resolved in this check."""
    from saferun.app.networks import manifest_networks
    from saferun.inputs.loader import load_manifest

    notes: tuple[str, ...] = ()
    from saferun.app.image_policy import refuse_registry

    try:
        manifest = load_manifest(path, data)
        refuse_registry(manifest.app.image, manifest.policy)  # as run refuses it
        spec = _checked_spec(manifest, _real_parent(path, directories))
        if network is not None:
            from dataclasses import replace

            spec = replace(spec, network=network)
        else:
            spec, notes = resolve_networks(spec, manifest_networks(manifest), lookup)
    except (ManifestError, RequirementUnmet, ProfileError, Refused,
            ImageRefused) as exc:  # this input only:
        return TargetReport(str(path), "manifest", error=exc.render())  # check the rest
    policy = Policy(digest=manifest.policy.digest)
    findings, results, score = judge(spec, policy=policy, reasons=manifest_reasons(manifest))
    return TargetReport(str(path), "manifest", findings=findings, score=score, results=results,
                        notes=notes)


def _real_parent(path: Path, directories: dict[str, str] | None) -> str:
    """The real directory of the manifest at `path` (`path.resolve().parent`); with
    `directories`, each directory of a check is resolved once (a stat per component) for
    the files in it that are not symlinks."""
    if directories is None or os.path.islink(path):
        return str(path.resolve().parent)
    parent = os.path.dirname(os.path.abspath(path))
    real = directories.get(parent)
    if real is None:
        real = directories[parent] = os.path.realpath(parent)
    return real


def _check_path(path: Path, lookup: NetworkLookup | None = None,
                directories: dict[str, str] | None = None) -> list[TargetReport]:
    """A manifest, or a saferun.stack.toml: each of its services' manifests."""
    from saferun.inputs.loader import read_manifest_bytes
    from saferun.inputs.stackfile import is_stack_file, load_stack

    data = None
    if path.suffix == ".toml":
        try:  # read once for both questions: stack file or manifest, and the manifest
            data = read_manifest_bytes(path)
        except ManifestError:
            data = None  # not readable: loading it below says why
    if not is_stack_file(path, data):
        return [check_manifest(path, lookup=lookup, data=data, directories=directories)]
    try:
        stack = load_stack(str(path))
    except ManifestError as exc:
        return [TargetReport(str(path), "manifest", error=exc.render())]
    from saferun.model.stack import network_name

    return [check_manifest(member.manifest_path, network=network_name(stack.name))
            for member in stack.services]


def check_docker_run(line: str, *, cwd: str | None = None,
                     lookup: NetworkLookup | None = None) -> TargetReport:
    """A pasted `docker run ...` line, judged as plain docker would run it (its networks as
    the engine resolves them, through `lookup` or a new one)."""
    from saferun.inputs.docker_values import parse_network
    from saferun.inputs.dockerargs import parse_docker_run, split_command_line

    shown = " ".join(line.split())
    try:
        parsed = parse_docker_run(split_command_line(line))
        spec = resolve_sources(plain_docker_spec(parsed, cwd=cwd or os.getcwd()))
        names = [parse_network(value)["name"] for value in parsed.values("network")]
    except SaferunError as exc:
        return TargetReport(shown, "docker-run", error=exc.render())
    spec, seccomp_notes = read_seccomp_file(spec, parsed.values("security-opt"),
                                            cwd or os.getcwd())
    spec, notes = resolve_networks(spec, names, lookup)
    notes = (*seccomp_notes, *notes)
    findings, results, score = judge(spec)
    return TargetReport(shown, "docker-run", findings=findings, score=score, results=results,
                        notes=("judged as plain `docker run` would start it; `saferun run` "
                               "with the same flags adds its hardened defaults", *notes))


def container_spec(data: dict[str, Any], *, local: bool) -> ContainerSpec:
    spec = from_inspect(data)
    return resolve_sources(spec) if local else spec


def check_container(name: str, session: Any, *, local: bool) -> TargetReport:
    """A running (or stopped) container, from `docker inspect`."""
    data = session.container_inspect(name)
    if data is None:
        return TargetReport(name, "container", error=f"no such container: {name}")
    spec = container_spec(data, local=local)
    findings, results, score = judge(spec, reasons=label_reasons(spec))
    return TargetReport(name, "container", findings=findings, score=score, results=results)


def check_all(manifests: tuple[Path, ...], lines: tuple[str, ...],
              containers: tuple[str, ...]) -> list[TargetReport]:
    """Every input in the order given: manifests, command lines, then containers."""
    lookup = NetworkLookup()  # the engine is asked once, if a network needs it
    directories: dict[str, str] = {}
    reports = [report for path in manifests
               for report in _check_path(path, lookup, directories)]
    reports += [check_docker_run(line, lookup=lookup) for line in lines]
    if containers:
        from saferun.engine.api import EngineSession, local_socket_path

        session = EngineSession()
        local = local_socket_path() is not None
        reports += [check_container(name, session, local=local) for name in containers]
    return reports
