"""`saferun learn`: record what the app calls, write the result, prove it.

A learning run is an ordinary planned start (the same planner as `saferun run`) of the
manifest with `[seccomp] mode = "log"` and an empty learned list, so every call the app
makes outside the runtime's own is logged by the kernel and recorded by
saferun.engine.audit. Runs that lost records are repeated, never written. `verify` starts
the workload again enforcing the result; if it fails, a log-mode replay names the calls
the profile refused. The containers are started and driven through the docker CLI
(saferun.engine.docker_cli); what the records mean is decided in saferun.learn.

Progress goes to `say(line)` (the CLI prints it as `saferun: line` on stderr), the diff
to `show(text)` (stdout).
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import msgspec

from saferun.engine.docker_cli import docker
from saferun.errors import RecordingIncomplete, UsageError, WorkloadFailed
from saferun.learn.learning import LossSigns
from saferun.model.manifest import Manifest

MAX_ATTEMPTS = 3
STOP_TIMEOUT_S = 10
START_WAIT_S = 10.0
# Beyond the workload's own timeouts: the docker calls of a run (start, inspect, diff) on a
# busy engine. A run that needs more is ended by its container's lifetime bound, and fails.
LIFETIME_MARGIN_S = 30.0

Say = Callable[[str], None]


@dataclass(frozen=True)
class Workload:
    """What a run does and how it is judged (exit status 0 = passed)."""

    command: tuple[str, ...] | None = None  # replaces the app's command
    exec_argv: tuple[str, ...] | None = None  # run inside the container (docker exec)
    load_argv: tuple[str, ...] | None = None  # run on the host beside the container
    duration: float | None = None  # keep the app running this long
    timeout: float = 300.0
    # Where the manifest's relative paths (bind sources, env files) lead: its folder, as
    # for `saferun run`.
    manifest_dir: str = "."

    def lifetime_s(self, health_wait: float = 0.0) -> float:
        """How long a container of this workload may live (its lifetime bound): the longest
        `_drive` may take by the workload's own timeouts (the start wait, exec and load each
        up to `timeout`, the duration, the health check's wait; or `docker wait` up to
        `timeout`), then the stop's grace, plus a margin for the docker calls between."""
        if self.exec_argv or self.load_argv or self.duration is not None:
            drive = (START_WAIT_S + self.timeout * (bool(self.exec_argv) + bool(self.load_argv))
                     + (self.duration or 0.0) + health_wait)
        else:
            drive = self.timeout
        return drive + STOP_TIMEOUT_S + LIFETIME_MARGIN_S

    def describe(self) -> str:
        parts = []
        if self.command:
            parts.append(f"command {shlex.join(self.command)}")
        if self.exec_argv:
            parts.append(f"exec {shlex.join(self.exec_argv)}")
        if self.load_argv:
            parts.append(f"load {shlex.join(self.load_argv)}")
        if self.duration is not None:
            parts.append(f"{self.duration:g} s")
        return ", ".join(parts) or "the app's own command"


@dataclass
class RunResult:
    passed: bool
    detail: str
    calls: frozenset[str] = frozenset()
    signs: LossSigns | None = None
    diff: list[tuple[str, str]] = field(default_factory=list)
    output: str = ""
    records: int = 0
    started: bool = True  # False: the daemon refused the container (detail says why)


def host_facts() -> Any:
    """The facts learning runs are planned with (saferun.engine.host.probe_host_facts)."""
    from saferun.engine.host import probe_host_facts

    return probe_host_facts()[0]


class NotStarted(WorkloadFailed):
    """The container never ran: the daemon refused it (the message is the daemon's)."""


def lifetime_bound_applies(manifest: Manifest) -> bool:
    """False when the manifest shares another pid namespace (`security.pid`): the learning
    container cannot join its lifetime container's then (see `started`)."""
    return manifest.security.pid is None


def warn_unbounded(manifest: Manifest, say: Say) -> None:
    """Say so when the learning containers get no lifetime bound (never silently)."""
    if not lifetime_bound_applies(manifest):
        say(f'warning: security.pid = "{manifest.security.pid}": the learning containers '
            "join that pid namespace, so they have no lifetime bound of their own; the "
            "watchdog still removes them when saferun ends")


@contextmanager
def started(manifest: Manifest, facts: Any, command: tuple[str, ...] | None,
            manifest_dir: str = ".", *, lifetime_s: float = 600.0) -> Iterator[str]:
    """Plan and start the container detached (profile in a memfd); always removed after.

    Relative bind sources resolve against `manifest_dir` and are checked like `saferun
    run` checks them. The container's name is guarded by saferun.engine.reaper: it is
    removed even when this process is killed, and it lives at most `lifetime_s` seconds
    even when its watchdog is killed too: it joins the pid namespace of a lifetime
    container that ends then (saferun.engine.reaper.lifetime_argv). Docker's `--rm` would
    remove it at its exit, before the diff and the logs a run reads afterwards.
    """
    from saferun.app.planning import judged_plan
    from saferun.engine.docker_cli import SECCOMP_FD_PATH, error_text, run_docker
    from saferun.engine.reaper import HOST_BUSYBOX, guarded_name, lifetime_argv, lifetime_name
    from saferun.plan.planner import LaunchOptions
    from saferun.render.argv import render_argv

    name = guarded_name()
    options = LaunchOptions(detach=True, command=command, manifest_dir=manifest_dir, name=name)
    plan = judged_plan(manifest, facts, options)
    _check_networks(manifest)
    seccomp_path = SECCOMP_FD_PATH if plan.seccomp_profile is not None else None
    life = lifetime_name(name)
    try:
        if lifetime_bound_applies(manifest):
            bound = docker(*lifetime_argv(name, plan.image, lifetime_s, platform=plan.platform),
                           timeout=120, check=False)
            if bound.returncode != 0:
                raise NotStarted(
                    "the learning container's lifetime bound did not start (it needs a "
                    f"static busybox at {HOST_BUSYBOX} on the engine's host: apt-get install "
                    f"busybox-static): {error_text(bound.stderr)}")
            plan = msgspec.structs.replace(plan, pid_mode=f"container:{life}")
        result = run_docker(render_argv(plan, seccomp_path=seccomp_path), plan.seccomp_profile,
                            timeout=120)
        if result.returncode != 0:
            raise NotStarted(f"the container did not start: {error_text(result.stderr)}")
        yield name
    finally:
        # By name: also when `docker run` created the container but failed to start it. -v:
        # the anonymous volumes of the image's VOLUMEs go with it. The app first: removing
        # the lifetime container kills its processes.
        docker("rm", "-f", "-v", name, check=False)
        docker("rm", "-f", "-v", life, check=False)


def _state(container: str) -> tuple[bool, int]:
    out = docker("inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", container,
                 check=False).stdout.split()
    return (out[0] == "true", int(out[1])) if len(out) == 2 else (False, -1)


def _lifetime_running(container: str) -> bool:
    from saferun.engine.reaper import lifetime_name

    return _state(lifetime_name(container))[0]


def _health(container: str) -> tuple[str, str]:
    """(docker's health status, the last check's output) of a running container."""
    found = docker("inspect", "--format", "{{json .State.Health}}", container, check=False)
    try:
        health = json.loads(found.stdout or "null") or {}
    except ValueError:
        health = {}
    log = health.get("Log") or [{}]
    return str(health.get("Status", "")), str(log[-1].get("Output", "")).strip()


def _await_health(container: str, wait_s: float) -> tuple[bool, str]:
    """Wait for the health check's verdict (docker runs it: CMD-SHELL, /bin/sh -c)."""
    deadline = time.monotonic() + wait_s
    while True:
        status, output = _health(container)
        if status == "healthy":
            return True, "healthy"
        if status == "unhealthy" or time.monotonic() > deadline:
            said = f": {output.splitlines()[-1]}" if output else ""
            return False, f"the health check did not pass ({status or 'no verdict'}{said})"
        if not _state(container)[0]:
            return False, "the app exited before its health check passed"
        time.sleep(0.25)


def _drive(container: str, workload: Workload, health_wait: float = 0.0) -> tuple[bool, str]:
    """Run the workload against the started container; (passed, what happened).

    With `health_wait` (the manifest has a health check) a run that keeps the app running
    also passes only once docker reports the container healthy.
    """
    if workload.exec_argv or workload.load_argv or workload.duration is not None:
        deadline = time.monotonic() + START_WAIT_S
        while not _state(container)[0] and time.monotonic() < deadline:
            time.sleep(0.1)
        results = []
        if workload.exec_argv:
            r = docker("exec", container, *workload.exec_argv, timeout=workload.timeout,
                       check=False)
            results.append((r.returncode == 0, f"exec exited {r.returncode}"))
        if workload.load_argv:
            from saferun.engine.commands import run_host_command

            status, error = run_host_command(workload.load_argv, timeout=workload.timeout,
                                             extra_env={"SAFERUN_LEARN_CONTAINER": container})
            results.append((status == 0, f"load exited {status}") if status is not None
                           else (False, f"load failed: {error}"))
        if workload.duration is not None:
            time.sleep(workload.duration)
        running, code = _state(container)
        if not running and code != 0:
            results.append((False, f"the app exited {code}"))
        elif running and health_wait:
            results.append(_await_health(container, health_wait))
        passed = all(ok for ok, _ in results)
        return passed, "; ".join(text for _, text in results) or "the app kept running"
    r = docker("wait", container, timeout=workload.timeout, check=False)
    code = int(r.stdout.strip() or -1) if r.stdout.strip().lstrip("-").isdigit() else -1
    return code == 0, f"the app exited {code}"


def _check_networks(manifest: Manifest) -> None:
    """A named network is judged as the engine resolves it, as `saferun run` judges it."""
    from saferun.app.networks import manifest_networks, names_to_resolve
    from saferun.app.run import check_named_networks
    from saferun.engine.api import EngineSession

    if not names_to_resolve(manifest_networks(manifest)):
        return
    session = EngineSession()
    try:
        check_named_networks(manifest, session)
    finally:
        session.close()


def run_once(manifest: Manifest, facts: Any, workload: Workload, *, record: bool,
             rcvbuf: int | None = None) -> RunResult:
    """One start of the workload; with `record`, the calls of the container's processes."""
    from saferun.engine.audit import Recorder
    from saferun.learn.learning import (
        health_wait_s,
        loss_signs,
        parse_docker_diff,
        probing_manifest,
    )

    manifest = probing_manifest(manifest)
    health_wait = health_wait_s(manifest)
    lifetime = workload.lifetime_s(health_wait)
    recorder = Recorder(rcvbuf) if record else None
    if recorder is not None:
        recorder.start()
    try:
        with started(manifest, facts, workload.command, workload.manifest_dir,
                     lifetime_s=lifetime) as short_id:
            full_id = docker("inspect", "--format", "{{.Id}}", short_id).stdout.strip()
            passed, detail = _drive(short_id, workload, health_wait)
            if not passed and lifetime_bound_applies(manifest) and not _lifetime_running(
                    short_id):
                detail += f" (its lifetime bound of {lifetime:g} s ended it)"
            # Before and after stopping: files an app removes on exit (pid files) show only
            # while it runs, files it writes on exit only afterwards.
            running_diff = parse_docker_diff(docker("diff", short_id, check=False).stdout)
            docker("stop", "-t", str(STOP_TIMEOUT_S), short_id, check=False,
                   timeout=STOP_TIMEOUT_S + 30)
            final_diff = parse_docker_diff(docker("diff", short_id, check=False).stdout)
            diff = list(dict.fromkeys([*running_diff, *final_diff]))
            logs = docker("logs", short_id, check=False)
            output = logs.stdout + logs.stderr
    except NotStarted as exc:
        if recorder is not None:
            recorder.stop()
        return RunResult(False, exc.message, started=False)
    except BaseException:
        if recorder is not None:
            recorder.stop()
        raise
    if recorder is None:
        return RunResult(passed, detail, diff=diff, output=output)
    recorder.settle()
    capture = recorder.stop()
    ours = [r for r in capture.records_of(full_id) if r.action == "log"]
    signs = loss_signs(serials=capture.serials, overflows=capture.overflows,
                       lost_before=capture.lost_before, lost_after=capture.lost_after,
                       proc_overflows=capture.proc_overflows)
    return RunResult(passed, detail, frozenset(r.name for r in ours), signs, diff, output,
                     len(ours))


def recorded_run(manifest: Manifest, facts: Any, workload: Workload, *, rcvbuf: int | None,
                 label: str, say: Say) -> RunResult:
    """A recording run, repeated with a larger socket buffer while records were lost."""
    from saferun.engine.audit import DEFAULT_RCVBUF
    from saferun.learn.learning import next_buffer

    buffer = rcvbuf
    for attempt in range(1, MAX_ATTEMPTS + 1):
        result = run_once(manifest, facts, workload, record=True, rcvbuf=buffer)
        if not result.started:
            raise NotStarted(f"{label}: {result.detail}")
        reasons = result.signs.reasons() if result.signs else []
        if not reasons:
            say(f"{label}: {result.records} records, {len(result.calls)} distinct calls, "
                f"{result.detail}")
            return result
        say(f"warning: {label}: records were lost ({'; '.join(reasons)}); "
            + (f"repeating the run (attempt {attempt + 1} of {MAX_ATTEMPTS})"
               if attempt < MAX_ATTEMPTS else "giving up"))
        buffer = next_buffer(buffer or DEFAULT_RCVBUF, DEFAULT_RCVBUF)
    raise RecordingIncomplete(
        f"{label}: records were lost in each of {MAX_ATTEMPTS} attempts, so the learned list "
        "would have holes; nothing was written",
        fix="reduce other audit traffic on the host, or shorten the workload and merge runs",
    )


def check_runtime(manifest: Manifest) -> None:
    """gVisor and Kata filter inside their own kernel: the host's audit never sees the app."""
    runtime = manifest.security.runtime
    if runtime != "runc":
        raise UsageError(
            f'security.runtime = "{runtime}": system calls cannot be recorded, because '
            f"{runtime} handles the app's calls in its own kernel and the host's audit log "
            "never sees them",
            fix='learn with security.runtime = "runc" (the learned list applies to gVisor too)',
        )


@dataclass
class LearnOutcome:
    learned: tuple[str, ...]
    tmpfs: tuple[str, ...]
    notes: tuple[str, ...]
    capabilities: tuple[str, ...] | None
    enforcing: Manifest
    profile: dict[str, Any]
    verified: RunResult | None = None
    denied: tuple[str, ...] = ()
    fallbacks: dict[str, tuple[str, ...]] = field(default_factory=dict)  # added: for which
    listed: frozenset[str] = frozenset()  # allowed by name (saferun.profiles.seccomp.listed_names)


def learn_app(manifest: Manifest, workload: Workload, *, runs: int, verify: bool,
              minimize_caps: bool, rcvbuf: int | None, say: Say) -> LearnOutcome:
    from saferun.learn.learning import (
        capability_candidates,
        enforcing_manifest,
        learning_manifest,
        merge_runs,
        propose_writable,
    )
    from saferun.profiles.seccomp_check import generate_checked

    check_runtime(manifest)
    warn_unbounded(manifest, say)
    from saferun.engine.audit import check_recording_possible

    check_recording_possible()
    facts = host_facts()
    learning = learning_manifest(manifest)
    results = [recorded_run(learning, facts, workload, rcvbuf=rcvbuf,
                            label=f"run {i + 1}/{runs}", say=say) for i in range(runs)]
    failed = [r for r in results if not r.passed]
    if failed:
        raise WorkloadFailed(f"the workload failed during learning ({failed[0].detail}), even "
                             "with nothing denied", fix=output_tail(failed[0].output))
    from saferun.learn.learning import pair_fallbacks
    from saferun.profiles.seccomp import load_data

    learned, paired = pair_fallbacks(merge_runs(r.calls for r in results), load_data().fallbacks)
    for extra, sources in paired.items():
        say(f"fallback: {extra} added for {', '.join(sources)} (libc calls it when "
            f"{' or '.join(sources)} is refused)")
    covered = [t.target for t in manifest.filesystem.tmpfs] + [
        m.target for m in manifest.filesystem.mounts]
    proposal = propose_writable([e for r in results for e in r.diff], covered)
    tmpfs = proposal.tmpfs if manifest.filesystem.read_only else ()
    caps: tuple[str, ...] | None = None
    if minimize_caps:
        kept = list(manifest.capabilities.add)
        for cap, without in capability_candidates(tuple(kept)):
            trial = enforcing_manifest(manifest, learned, tmpfs=tmpfs,
                                       capabilities=[c for c in kept if c in without])
            if run_once(trial, facts, workload, record=False).passed:
                kept.remove(cap)
                say(f"capabilities: {cap} is not needed")
            else:
                say(f"capabilities: {cap} is needed")
        caps = tuple(kept)
    enforcing = enforcing_manifest(manifest, learned, tmpfs=tmpfs, capabilities=caps)
    profile, _ = generate_checked(enforcing.seccomp,
                                  capabilities=frozenset(enforcing.capabilities.add),
                                  native_arch=facts.architecture,
                                  runtime=enforcing.security.runtime)
    from saferun.profiles.seccomp import listed_names

    listed = listed_names(enforcing.seccomp, capabilities=frozenset(enforcing.capabilities.add),
                          native_arch=facts.architecture, runtime=enforcing.security.runtime)
    outcome = LearnOutcome(learned, tmpfs, proposal.notes, caps, enforcing, profile,
                           fallbacks=paired, listed=listed)
    if verify:
        outcome.verified = run_once(enforcing, facts, workload, record=False)
        if not outcome.verified.passed:
            outcome.denied = tuple(sorted(diagnose(enforcing, facts, workload, rcvbuf,
                                                   say).calls))
    return outcome


def diagnose(manifest: Manifest, facts: Any, workload: Workload, rcvbuf: int | None,
             say: Say) -> RunResult:
    """Replay with the manifest's own profile logging instead of refusing: its records are
    exactly the calls that profile denies (repeated, like learning, if records were lost)."""
    from saferun.learn.learning import diagnosing_manifest

    return recorded_run(diagnosing_manifest(manifest), facts, workload, rcvbuf=rcvbuf,
                        label="replay with denials logged", say=say)


def guard_lifters() -> dict[str, tuple[str, ...]]:
    """{guarded call: the capabilities and allow entries that lift its guard}."""
    from saferun.profiles.seccomp import load_data

    return {name: tuple(sorted(g.lifted_by)) for name, g in load_data().guards.items()}


def output_tail(output: str, lines: int = 5) -> str:
    tail = [line for line in output.strip().splitlines() if line.strip()][-lines:]
    return "the container said: " + " | ".join(tail) if tail else "the container printed nothing"


def allowed_names(profile: dict[str, Any]) -> set[str]:
    """Names the profile allows (unconditionally or for some arguments)."""
    return {name for rule in profile.get("syscalls") or ()
            if rule.get("action") in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG")
            for name in rule.get("names") or ()}


# --- the use case ---------------------------------------------------------------------------


def learn(path: Path, workload: Workload, *, runs: int, verify: bool, minimize_caps: bool,
          rcvbuf: int | None, write_manifest: bool, output: Path | None, say: Say,
          show: Say) -> LearnOutcome:
    """`saferun learn`: learn MANIFEST's calls, then write the profile to `output`, or print
    the manifest's diff (and write it with `write_manifest`; not both). Raises WorkloadFailed when
    the verification run failed (after naming the denials)."""
    from saferun.inputs.loader import load_manifest

    loaded = load_manifest(path)
    workload = replace(workload, manifest_dir=str(path.resolve().parent))
    say(f"learning {path} with {workload.describe()}")
    outcome = learn_app(loaded, workload, runs=runs, verify=verify, minimize_caps=minimize_caps,
                        rcvbuf=rcvbuf, say=say)
    report(path, loaded, outcome, write_manifest=write_manifest, output=output, say=say,
           show=show)
    return outcome


def report(path: Path, loaded: Manifest, outcome: LearnOutcome, *, write_manifest: bool,
           output: Path | None, say: Say, show: Say) -> None:
    """Write the result where asked and say what changed (and how the verification went)."""
    from saferun.engine.files import write_atomic
    from saferun.learn.learning import rewrite_manifest, syscall_list_diff, text_diff
    from saferun.profiles.seccomp import render_seccomp_json

    allowed = allowed_names(outcome.profile)
    say(f"learned {len(outcome.learned)} calls; the enforcing profile allows "
        f"{len(allowed)} names (with the runtime's own)")
    for note in outcome.notes:
        say(f"warning: {note}")
    if output is not None:
        write_atomic(output, render_seccomp_json(outcome.profile).encode(), mode=0o644)
        for line in syscall_list_diff(loaded.seccomp.learned, outcome.learned):
            show(f"{line}\n")
        say(f"wrote {output}")
    else:
        old = path.read_text(encoding="utf-8")
        new = rewrite_manifest(old, learned=outcome.learned, tmpfs=outcome.tmpfs,
                               capabilities=outcome.capabilities)
        show(text_diff(old, new, str(path)) or "no change")
        if write_manifest:
            write_atomic(path, new.encode(), mode=os.stat(path).st_mode & 0o777)
            say(f"wrote {path}")
    if outcome.verified is not None:
        _report_verify(outcome, say)


def _report_verify(outcome: LearnOutcome, say: Say) -> None:
    from saferun.learn.why import explain
    from saferun.profiles.seccomp import load_data

    verified = outcome.verified
    assert verified is not None
    if verified.passed:
        say(f"verified: the workload passed under the learned profile ({verified.detail})")
        return
    writable = [t.target for t in outcome.enforcing.filesystem.tmpfs]
    data = load_data()
    findings = explain(denied_syscalls=outcome.denied, output=verified.output, writable=writable,
                       capability_calls=data.capabilities, learned=True,
                       allowed=outcome.listed, fallbacks=data.fallbacks,
                       guards=guard_lifters())
    for finding in findings:
        say(f"denied: {finding.line()}")
    raise WorkloadFailed(f"verification failed: the workload did not pass under the learned "
                         f"profile ({verified.detail})", fix=output_tail(verified.output))
