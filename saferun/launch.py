"""`saferun run`: read the manifest, ask the daemon, plan, render, and hand over to docker."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from saferun.errors import ManifestError
from saferun.facts import OFFLINE_FACTS, HostFacts
from saferun.plan import LaunchOptions, RunPlan, build_plan


@dataclass(frozen=True)
class RunRequest:
    """What the command line asked for."""

    target: str | None  # manifest path, or an image reference (drop-in use)
    options: LaunchOptions
    offline: bool = False


@dataclass(frozen=True)
class PreparedRun:
    plan: RunPlan
    facts: HostFacts
    image_present: bool | None
    info: dict[str, Any] | None = None  # the daemon's /info, for the plan cache
    inputs: tuple[str, ...] = ()  # paths whose content or resolution planning depended on


def load_for_run(target: str | None) -> tuple[Any, str, str]:
    """Return (manifest, manifest_dir, sha256) for a manifest path or a bare image reference."""
    from saferun.loader import find_manifest, parse_manifest, read_manifest_bytes

    if target is not None and _looks_like_image(target):
        return image_manifest(target), os.getcwd(), ""
    path = find_manifest(target)
    data = read_manifest_bytes(path)
    manifest = parse_manifest(data, str(path))
    return manifest, str(path.resolve().parent), hashlib.sha256(data).hexdigest()


def _looks_like_image(target: str) -> bool:
    return not target.endswith(".toml") and not os.path.exists(target)


def image_manifest(image: str) -> Any:
    """A bare image gets the same hardened defaults as a manifest (drop-in use)."""
    from pydantic import ValidationError

    from saferun.manifest import Manifest

    base = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    name = re.sub(r"[^a-zA-Z0-9_.-]", "-", base) or "app"
    try:
        return Manifest.model_validate({"app": {"name": name, "image": image}})
    except ValidationError:
        raise ManifestError(
            f"'{image}' is neither a manifest file nor a valid image reference"
        ) from None


def prepare(request: RunRequest) -> PreparedRun:
    from saferun.engine import EngineSession, local_socket_path
    from saferun.host_audit import local_facts

    manifest, manifest_dir, digest = load_for_run(request.target)
    options = replace(request.options, manifest_dir=manifest_dir, manifest_sha256=digest)
    if request.offline:
        return PreparedRun(build_plan(manifest, OFFLINE_FACTS, options), OFFLINE_FACTS, None)
    session = EngineSession()
    try:
        info = session.info()
        facts = local_facts(HostFacts.from_info(info), local=local_socket_path() is not None)
        plan = build_plan(manifest, facts, options)
        present = session.image_present(plan.image)
    finally:
        session.close()
    inputs = (request.target or "saferun.toml", *(m.source for m in plan.mounts if m.kind == "bind"))
    return PreparedRun(plan, facts, present, info, inputs)


def dry_run_argv(plan: RunPlan) -> list[str]:
    from saferun.artifacts import store_profile
    from saferun.render.argv import render_argv

    path = store_profile(plan.seccomp_profile, ".json") if plan.seccomp_profile else None
    return render_argv(plan, seccomp_path=str(path) if path else None)


def dry_run_body(plan: RunPlan) -> dict[str, Any]:
    from saferun.render.engine_api import render_create_body

    return render_create_body(plan, env_from_files=read_env_files(plan.env_files))


def read_env_files(paths: tuple[str, ...]) -> tuple[str, ...]:
    """docker's env-file format: KEY=VALUE per line, # comments, bare KEY takes our env."""
    lines: list[str] = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ManifestError(f"app.env_files: cannot read {path}: {exc.strerror}") from None
        for raw in text.splitlines():
            line = raw.lstrip()
            if not line or line.startswith("#"):
                continue
            if "=" in line:
                lines.append(line)
            elif line in os.environ:
                lines.append(f"{line}={os.environ[line]}")
    return tuple(lines)


def launch(prepared: PreparedRun) -> None:
    """Hand over to `docker run`; does not return."""
    from saferun.engine import SECCOMP_FD_PATH, exec_docker_run
    from saferun.render.argv import render_argv

    from saferun import plancache

    plan = prepared.plan
    seccomp_path = SECCOMP_FD_PATH if plan.seccomp_profile is not None else None
    argv = render_argv(plan, seccomp_path=seccomp_path)
    if prepared.info is not None and prepared.image_present:
        plancache.store(
            inputs=[plancache.describe_input(path) for path in prepared.inputs],
            info=prepared.info, docker_argv=argv,
            seccomp_profile=plan.seccomp_profile, warnings=list(plan.warnings),
        )
    exec_docker_run(argv, plan.seccomp_profile)
