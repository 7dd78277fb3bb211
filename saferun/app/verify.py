"""`saferun verify`: does what runs now still match the committed manifest, and is it enforced?

For each container: the policy rules on what docker recorded (`docker inspect`); drift
against the manifest it was started from (found through the io.saferun.manifest-sha256
and io.saferun.manifest-dir labels written at launch); and proof from the host's /proc
that the controls are in force on its init process. The edge work (engine, files, /proc)
happens here; the comparisons are pure (saferun.policy.drift).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from saferun.app.check import container_spec, manifest_reasons, manifest_spec
from saferun.errors import SaferunError
from saferun.model.facts import HostFacts
from saferun.policy.report import Finding, TargetReport, judge, label_reasons
from saferun.policy.rules import RULES, Policy

APP_LABEL = "io.saferun.app"
SHA_LABEL = "io.saferun.manifest-sha256"
DIR_LABEL = "io.saferun.manifest-dir"
SANDBOX_RUNTIMES = frozenset({"runsc", "gvisor", "kata", "kata-runtime", "io.containerd.kata.v2"})


def find_manifest(directory: str, sha256: str) -> tuple[Path | None, bool]:
    """The manifest in `directory` whose content hashes to `sha256`: (path, unchanged).

    When none matches, saferun.toml (the default name) is the changed manifest.
    """
    folder = Path(directory)
    candidates = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    for path in candidates:
        try:
            if hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
                return path, True
        except OSError:
            continue
    default = folder / "saferun.toml"
    return (default, False) if default.is_file() else (None, False)


def _meta(rule: str, message: str) -> Finding:
    return Finding(rule, RULES[rule].severity, message, kind="drift")


def verify_container(name: str, session: Any, facts: HostFacts, *, local: bool) -> TargetReport:
    from saferun.inputs.loader import load_manifest
    from saferun.policy.drift import config_drift, proof, runtime_drift

    data = session.container_inspect(name)
    if data is None:
        return TargetReport(name, "container", error=f"no such container: {name}")
    actual = container_spec(data, local=local)
    labels = actual.label_map
    notes: list[str] = []
    extra: list[Finding] = []
    reasons = label_reasons(actual)
    policy = Policy()
    expected = None
    if APP_LABEL not in labels:
        notes.append("no io.saferun.app label: not started by saferun, so there is no manifest "
                     "to compare; judged against the policy rules only")
    elif SHA_LABEL not in labels or DIR_LABEL not in labels:
        notes.append("started by saferun without a manifest file (bare image or command line): "
                     "judged against the policy rules only")
    else:
        path, unchanged = find_manifest(labels[DIR_LABEL], labels[SHA_LABEL])
        if path is None:
            extra.append(_meta("manifest-missing", f"no manifest with sha256 "
                                                   f"{labels[SHA_LABEL][:12]}... in "
                                                   f"{labels[DIR_LABEL]}"))
        else:
            if not unchanged:
                extra.append(_meta("manifest-changed",
                                   f"{path} changed since the container started; "
                                   "compared with its current content"))
            try:
                manifest = load_manifest(path)
                expected = manifest_spec(_as_started(manifest, labels),
                                         str(path.parent), facts)
                expected = _same_sandbox(expected, actual, labels, session)
                reasons = manifest_reasons(manifest)
                policy = Policy(digest=manifest.policy.digest)
                notes.append(f"manifest: {path}")
            except SaferunError as exc:
                notes.append(f"cannot plan {path}: {exc.message}")
    findings, results, score = judge(actual, policy=policy, reasons=reasons)
    drift = config_drift(expected, actual) if expected is not None else []
    state = data.get("State") or {}
    pid = int(state.get("Pid") or 0)
    if not state.get("Running") or pid <= 0:
        notes.append("not running: nothing to read from /proc")
    elif not local:
        notes.append("remote engine: /proc of its host cannot be read from here")
    elif actual.runtime in SANDBOX_RUNTIMES:
        notes.append(f"runtime {actual.runtime}: the host's /proc shows the sandbox, not the "
                     "container's processes; capability proof skipped")
    else:
        from saferun.engine.proc import read_process

        try:
            proc = read_process(pid)
        except OSError as exc:
            notes.append(f"cannot read /proc/{pid}: {exc.strerror or exc}")
        else:
            drift += runtime_drift(expected or actual, proc)
            if expected is not None:
                drift += [f for f in runtime_drift(actual, proc) if f not in drift]
            notes.append("in force: " + proof(proc))
    return TargetReport(name, "container", findings=(*extra, *drift, *findings), score=score,
                        notes=tuple(notes), results=results)


def verify_all(names: tuple[str, ...], every: bool) -> list[TargetReport]:
    from saferun.engine.api import EngineSession, local_socket_path
    from saferun.engine.host import probe_host_facts

    session = EngineSession()
    local = local_socket_path() is not None
    facts, _ = probe_host_facts(session)
    targets = list(names) + ([n for n in session.running_containers() if n not in names]
                             if every else [])
    return [verify_container(name, session, facts, local=local) for name in targets]


def _as_started(manifest: Any, labels: dict[str, str]) -> Any:
    """A stack service was started in its sandbox's namespace (saferun up): compare with that."""
    from saferun.model.stack import ROLE_LABEL, SERVICE_LABEL, STACK_LABEL

    if labels.get(ROLE_LABEL) != "service" or STACK_LABEL not in labels:
        return manifest
    from saferun.app.stack import joined_manifest

    return joined_manifest(manifest, labels[STACK_LABEL], labels.get(SERVICE_LABEL, ""))


def _same_sandbox(expected: Any, actual: Any, labels: dict[str, str], session: Any) -> Any:
    """docker records container:ID where `up` said container:NAME: the same when NAME is ID."""
    from dataclasses import replace

    mode = expected.network
    if not mode.startswith("container:") or not actual.network.startswith("container:"):
        return expected
    data = session.container_inspect(mode.split(":", 1)[1])
    if data is not None and f"container:{data.get('Id', '')}" == actual.network:
        return replace(expected, network=actual.network)
    return expected
