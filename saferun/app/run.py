"""`saferun run`: read the manifest, ask the daemon, plan, render, and hand over to docker."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import msgspec
from msgspec.structs import replace

from saferun.app.plancache import daemon_info, sha256  # sha256: CPython's own, without OpenSSL
from saferun.app.planning import check_mount_sources, checked_plan
from saferun.errors import ManifestError, SaferunError
from saferun.model.facts import OFFLINE_FACTS, HostFacts
from saferun.plan.planner import LaunchOptions, RunPlan


class RunRequest(msgspec.Struct, frozen=True):
    """What the command line asked for."""

    target: str | None  # manifest path, or an image reference (drop-in use)
    options: LaunchOptions
    offline: bool = False
    # The docker run flags of the command line (saferun.inputs.dockerrun.DropIn), merged over the
    # manifest or the image's defaults; None: the manifest alone.
    dropin: Any = None
    target_is_manifest: bool = True
    use_preset: bool = True  # a bare image's preset, found by its name (--no-preset: False)
    dry_run: bool = False  # --dry-run: decide and print, change nothing on the host


class PreparedRun(msgspec.Struct, frozen=True):
    plan: RunPlan
    facts: HostFacts
    image_present: bool | None
    info: dict[str, Any] | None = None  # the daemon's /info, for the plan cache
    inputs: tuple[str, ...] = ()  # paths whose content or resolution planning depended on
    env: tuple[tuple[str, str], ...] = ()  # for docker run (image policy: content trust)
    # False when an image gate read state outside the inputs (scanner DB, signatures, the
    # image itself): such a launch must decide again next time, so it is not cached.
    cacheable: bool = True
    # (reference, image id) when the plan was derived from the image's own user and files:
    # the plan cache reuses it only while the reference names the same image.
    image: tuple[str, str] | None = None


class Loaded(msgspec.Struct, frozen=True):
    """The manifest a start uses, and where it came from."""

    manifest: Any
    manifest_dir: str
    digest: str = ""
    extended: tuple[str, ...] = ()
    image: tuple[str, str] | None = None  # see PreparedRun.image
    notes: tuple[str, ...] = ()  # what was decided from the image, for --dry-run and init


def load_for_run(target: str | None) -> tuple[Any, str, str, tuple[str, ...]]:
    """Return (manifest, manifest_dir, sha256, extended files) for a manifest path. The
    extended files (presets, base manifests) are inputs of the plan."""
    from saferun.inputs.loader import validate_document

    path, resolved, where = _read_manifest_file(target)
    return (validate_document(resolved, str(path)), *where)


def _read_manifest_file(target: str | None) -> tuple[Path, Any, tuple[str, str, tuple[str, ...]]]:
    """The manifest file with what it extends, and (its folder, its sha256, extended files)."""
    from saferun.inputs.loader import find_manifest, read_document, read_manifest_bytes

    path = find_manifest(target)
    data = read_manifest_bytes(path)
    resolved = read_document(path)
    where = (
        str(path.resolve().parent),
        sha256(data).hexdigest(),
        tuple(str(p) for p in resolved.extended),
    )
    return path, resolved, where


def _looks_like_image(target: str) -> bool:
    return not target.endswith(".toml") and not os.path.exists(target)


def prepare(request: RunRequest) -> PreparedRun:
    from saferun.engine.api import EngineSession
    from saferun.engine.host import probe_host_facts
    from saferun.policy.digest import check_image_policy

    session = None if request.offline else EngineSession()
    if request.dropin is not None:
        loaded = load_dropin(request, session)
    else:
        loaded = Loaded(*load_for_run(request.target))
    manifest, manifest_dir = loaded.manifest, loaded.manifest_dir
    if manifest.network.restricted:
        # Never start with a requested policy missing: only `up` installs the rules.
        raise SaferunError("network.ingress/egress are enforced by `saferun up`, which holds "
                           "the rules in a sandbox's network namespace; `saferun run` would "
                           "start the app without them",
                           fix=f"start it with `saferun up {request.target or 'saferun.toml'}` "
                           "(a stack of one), or remove [network] ingress/egress")
    check_image_policy(manifest.app.image, manifest.policy.ignore, manifest.policy.digest)
    warned = judge_warnings(manifest, manifest_dir)
    label_files = tuple(os.path.join(manifest_dir, p) for p in manifest.app.label_files)
    read_label_files(label_files)
    pending = None
    if os.environ.get("SAFERUN_POLICY") or _asks_image_policy(manifest.policy):
        from saferun.app.image_policy import start_for_run, team_policy_path

        pending = start_for_run(manifest.app.image, manifest, manifest_dir, team_policy_path())
    options = replace(request.options, manifest_dir=manifest_dir, manifest_sha256=loaded.digest)
    if session is None:
        plan = _with_warnings(_with_notes(checked_plan(manifest, OFFLINE_FACTS, options),
                                          loaded.notes), warned)
        check_mount_sources(manifest, plan)
        if pending is not None:
            plan = _with_image_decision(plan, pending.finish(engine=False).label)
        return PreparedRun(plan, OFFLINE_FACTS, None)
    try:
        facts, info = probe_host_facts(session, info=daemon_info(session))
        plan = _with_warnings(_with_notes(checked_plan(manifest, facts, options), loaded.notes),
                              warned)
        check_mount_sources(manifest, plan)
        check_shared_containers(manifest, session)
        check_named_networks(manifest, session)
        plan = pin_floating_image(plan, session)
        present = session.image_present(plan.image)
        plan = check_writable_mounts(plan, facts, session, present=bool(present),
                                     dry_run=request.dry_run)
    finally:
        session.close()
    inputs = (
        request.target or "saferun.toml",
        *loaded.extended,
        *(m.source for m in plan.mounts if m.kind == "bind"),
        *label_files,  # judged above (no io.saferun.* keys): a hit must see an edit
    )
    if pending is None:
        return PreparedRun(plan, facts, present, info, inputs, image=loaded.image)
    decision = pending.finish(engine=True)
    plan = _with_image_decision(plan, decision.label, decision.warnings)
    return PreparedRun(
        plan,
        facts,
        present,
        info,
        (*inputs, *decision.inputs),
        decision.env,
        cacheable=not decision.external,
        image=loaded.image,
    )


def _with_notes(plan: RunPlan, notes: tuple[str, ...]) -> RunPlan:
    return replace(plan, notes=(*notes, *plan.notes)) if notes else plan


def _with_warnings(plan: RunPlan, warnings: tuple[str, ...]) -> RunPlan:
    return replace(plan, warnings=(*warnings, *plan.warnings)) if warnings else plan


def judge_warnings(manifest: Any, manifest_dir: str) -> tuple[str, ...]:
    """The manifest's policy warnings (restart-always, image-tag-latest, -P, ...): refused
    when the manifest's or the team policy file's `[policy] refuse` names them, otherwise
    returned as warnings. An [allow] reason or a [policy] ignore silences one."""
    from saferun.inputs.dockerrun import RULE_FLAGS
    from saferun.model.refusals import refused, rule_text

    found = manifest.warnings()
    if not found:
        return ()
    refuse = set(manifest.policy.refuse)
    team_path = os.environ.get("SAFERUN_POLICY")
    if team_path:
        from saferun.app.image_policy import read_team_policy

        refuse |= set(read_team_policy(Path(team_path)).refuse)
    hard = [v for v in found if v.rule in refuse]
    if hard:
        raise refused(hard, hints=RULE_FLAGS)
    return tuple(f"{v.where} = {v.what}: rule '{v.rule}' ({rule_text(v.rule).title}). "
                 f"{rule_text(v.rule).fix}; docs/drop-in.md#{v.rule}" for v in found)


def pin_floating_image(plan: RunPlan, session: Any) -> RunPlan:
    """A floating reference (no tag, `latest`) runs the local image by its id, so what
    starts is what was judged; the digest goes into the io.saferun.image-digest label."""
    from saferun.model.refusals import image_tag_problem

    if image_tag_problem(plan.image) is None or plan.pull == "always":
        return plan
    data = session.image_inspect(plan.image)
    if not data or not str(data.get("Id", "")).startswith("sha256:"):
        return plan  # not local: docker pulls it; the warning above stands
    image_id = str(data["Id"])
    digests = [str(d) for d in data.get("RepoDigests") or []]
    labels = {**dict(plan.labels), "io.saferun.image-digest": digests[0] if digests else image_id,
              "io.saferun.image-reference": plan.image}
    note = (f"app.image {plan.image!r} floats: saferun runs the local image {image_id[:19]} "
            "(label io.saferun.image-digest)")
    return replace(plan, image=image_id, labels=tuple(sorted(labels.items())),
                   warnings=(*plan.warnings, note))


def check_shared_containers(manifest: Any, session: Any) -> None:
    """--volumes-from and container:NAME namespaces: read those containers through the
    engine and judge what they would share by the same rules as this manifest."""
    from saferun.inputs.dockerrun import check_shared_sources

    names = {ref.split(":")[0] for ref in manifest.filesystem.volumes_from}
    for mode in (manifest.network.mode, manifest.security.pid, manifest.security.ipc):
        if mode and mode.startswith("container:"):
            names.add(mode.split(":", 1)[1])
    if not names:
        return
    found = {}
    for name in sorted(names):
        data = session.container_inspect(name)
        if data is None:
            raise ManifestError(f"container '{name}' (named by --volumes-from or container:"
                                f"{name}) does not exist", fix=f"start '{name}' first")
        found[name] = data
    check_shared_sources(manifest, found)


def check_named_networks(manifest: Any, session: Any) -> None:
    """Resolve each network the manifest names through the engine (a name, an ID or an ID
    prefix), and judge what it really is: the host's network by its ID is host-network."""
    from saferun.app.networks import inspect_networks, manifest_networks
    from saferun.inputs.dockerrun import check_networks

    check_networks(manifest, inspect_networks(manifest_networks(manifest), session))


def read_label_files(paths: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """docker's --label-file: KEY=VALUE lines, # comments. saferun's own io.saferun.* keys
    may not come from a file (they record what saferun decided)."""
    pairs: list[tuple[str, str]] = []
    for path in paths:
        for raw in _file_lines(path, "app.label_files"):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, _, value = line.partition("=")
            if key.startswith("io.saferun."):
                raise ManifestError(f"app.label_files: {path} sets '{key}', a key reserved for "
                                    "saferun")
            pairs.append((key, value))
    return tuple(pairs)


def _asks_image_policy(policy: Any) -> bool:
    """A [policy] beyond the tag check: registries, image checks, scan or signature gates."""
    return bool(
        policy.registries
        or policy.scan is not None
        or policy.signature is not None
        or policy.image.check != "reference"
    )


def _with_image_decision(plan: RunPlan, label: str, warnings: tuple[str, ...] = ()) -> RunPlan:
    """Keep the image policy's decision on the container (io.saferun.image-policy)."""
    from saferun.app.image_policy import LABEL

    labels = tuple(sorted({**dict(plan.labels), LABEL: label}.items()))
    return replace(plan, labels=labels, warnings=(*plan.warnings, *warnings))


def request_from_args(parsed: Any, *, cwd: str, offline: bool) -> RunRequest:
    return replace(_request_from_args(parsed, cwd=cwd, offline=offline),
                   dry_run=bool(parsed.flag("dry-run")))


def _request_from_args(parsed: Any, *, cwd: str, offline: bool) -> RunRequest:
    """`saferun run [flags] [MANIFEST|IMAGE] [CMD...]` -> what to load and how to start it.

    `-f FILE` names the manifest and makes the positional word an image override. Without
    it, a positional word that is a file (or ends in .toml) is a manifest, anything else an
    image; with no word at all ./saferun.toml is used.
    """
    from saferun.inputs.dockerrun import from_docker_run

    dropin = from_docker_run(parsed, cwd=cwd)
    manifest_file = parsed.last("file")
    if manifest_file is not None:
        return RunRequest(manifest_file, dropin.options, offline, dropin, True)
    if parsed.image is None or not _looks_like_image(parsed.image):
        command = dropin.options.command
        if command and command[0] == "--":  # `saferun run MANIFEST -- CMD`
            command = command[1:] or None
        dropin = replace(dropin, image=None, options=replace(dropin.options, command=command))
        return RunRequest(parsed.image, dropin.options, offline, dropin, True)
    # A bare image: without --name docker picks a random name, and so does saferun.
    dropin = replace(dropin, options=replace(dropin.options, use_app_name=False))
    return RunRequest(parsed.image, dropin.options, offline, dropin, False,
                      use_preset=not parsed.flag("no-preset"))


def load_dropin(request: RunRequest, session: Any = None) -> Loaded:
    """The command line's flags merged over a manifest file (with what it extends) or a bare
    image's defaults; the extended files are returned as inputs of the plan. A bare image
    is probed (with a session) for the user and writable directories it needs."""
    from saferun.inputs.dockerrun import build_manifest, merge_document
    from saferun.model.manifest import IMAGE_PATTERN

    dropin = request.dropin
    if not request.target_is_manifest:
        image = str(request.target)
        if not re.fullmatch(IMAGE_PATTERN, image):
            raise ManifestError(f"'{image}' is neither a manifest file nor a valid image reference")
        base, notes, probed = image_base(image, dropin, session, use_preset=request.use_preset)
        manifest = build_manifest(merge_document(base, dropin))
        return Loaded(manifest, os.getcwd(), image=probed, notes=notes)
    path, resolved, where = _read_manifest_file(request.target)
    manifest = build_manifest(
        merge_document(resolved.document, dropin), source=str(path), text=resolved.text
    )
    return Loaded(manifest, *where)


def image_base(image: str, dropin: Any, session: Any, *, use_preset: bool = True,
               ) -> tuple[dict[str, Any], tuple[str, ...], tuple[str, str] | None]:
    """What a bare image starts from before the command line's flags: the preset found by
    its name, else (with an engine session) the user and directories the image itself
    gives; with notes saying which, and (reference, image id) when the image decided."""
    from saferun.inputs.dockerrun import base_for_image

    base = base_for_image(image, dropin.options.name)
    preset = _preset_for(image) if use_preset else None
    if preset is not None:
        from saferun.inputs.loader import merge_documents, preset_document

        base = merge_documents(preset_document(preset), base)
        return base, (f"uses the preset '{preset}' for the image {image} "
                      f"(profiles/{preset}.toml; --no-preset turns it off)",), None
    if session is None:
        return base, (), None
    return _with_image_defaults(base, image, dropin, session)


def _preset_for(image: str) -> str | None:
    from saferun.inputs.loader import preset_for_image

    return preset_for_image(image)


def _with_image_defaults(base: dict[str, Any], image: str, dropin: Any, session: Any,
                         ) -> tuple[dict[str, Any], tuple[str, ...], tuple[str, str] | None]:
    """The image's own user and writable directories under the command line's flags."""
    from saferun.engine.image_probe import probe_image
    from saferun.errors import SaferunError
    from saferun.inputs.image_defaults import derive

    if (dropin.overrides.get("app") or {}).get("user"):
        return base, ("--user given: the image's own user and directories are not used",), None
    try:
        probe = probe_image(image, session)
    except SaferunError as exc:
        return base, (f"could not read the image's files ({exc.message}); saferun's default "
                      "user applies",), None
    if probe is None:
        return base, (), None
    defaults = derive(probe)
    merged = {**base}
    for section, values in defaults.document.items():
        merged[section] = {**merged.get(section, {}), **values}
    return merged, defaults.notes, (image, probe.image_id)


def check_writable_mounts(plan: RunPlan, facts: HostFacts, session: Any, *,
                          present: bool, dry_run: bool = False) -> RunPlan:
    """No silent data loss: refuse (125) a start whose user could not write a volume, fix a
    missing bind source, and warn about a bind the user cannot write.

    Owners are read here, at the edge: bind sources and existing local volumes from the
    host (shifted back by the userns-remap offset), new volumes and declared VOLUMEs from
    the image (docker copies the image directory's owner into a new volume; a target the
    image lacks becomes root-owned). A bind mount may be configuration the app only reads,
    so an unwritable one is a warning; a volume holds data, so an unwritable one stops the
    start. A missing bind source, which `docker run -v` would create root-owned, is created
    here owned by the container's user.
    """
    from saferun.errors import SaferunError
    from saferun.policy.writable import MountOwner, hidden_volumes, unwritable

    uid_text, _, gid_text = plan.user.partition(":")
    if not uid_text.isdigit() or int(uid_text) == 0:
        return plan
    uid = int(uid_text)
    gid = int(gid_text) if gid_text.isdigit() else uid
    writable = [m for m in plan.mounts if not m.read_only]
    covered = {m.target.rstrip("/") for m in plan.mounts} | {t.target.rstrip("/")
                                                             for t in plan.tmpfs}
    probe = None
    if present:
        from saferun.engine.image_probe import probe_image

        try:
            probe = probe_image(plan.image, session)
        except SaferunError:
            probe = None
    volumes: list[MountOwner] = []
    binds: list[MountOwner] = []
    notes: list[str] = []
    for mount in writable:
        if mount.kind == "bind":
            owner = _host_owner(mount.source, facts)
            if owner is None and not os.path.lexists(mount.source):
                notes.append(_create_bind_source(mount.source, uid, gid, facts, dry_run))
                continue
            if owner is not None:
                binds.append(MountOwner(mount.target, f"bind {mount.source}", *owner))
            continue
        volume = session.volume_inspect(mount.source) if mount.source else None
        if volume is not None:
            owner = _host_owner(str(volume.get("Mountpoint") or ""), facts) \
                if volume.get("Driver") == "local" else None
            if owner is not None:
                volumes.append(MountOwner(mount.target, f"volume {mount.source}", *owner))
            continue
        if probe is None:
            continue
        image_dir = probe.path(mount.target)
        name = mount.source or "(anonymous)"
        if image_dir is not None:
            volumes.append(MountOwner(mount.target, f"new volume {name} (docker "
                                      f"copies the owner of {mount.target} in the image)",
                                      image_dir.uid, image_dir.gid, image_dir.mode,
                                      anonymous=not mount.source))
        else:
            volumes.append(MountOwner(mount.target, f"new volume {name} (the image "
                                      f"has no {mount.target}, so docker creates it "
                                      "root-owned)", 0, 0, 0o755, anonymous=not mount.source))
    for declared in probe.volumes if probe is not None else ():
        image_dir = probe.path(declared) if probe is not None else None
        if declared.rstrip("/") not in covered and image_dir is not None:
            volumes.append(MountOwner(declared, f"the anonymous volume docker mounts at the "
                                      f"image's VOLUME {declared}", image_dir.uid,
                                      image_dir.gid, image_dir.mode, anonymous=True))
    problems = unwritable(plan.user, volumes)
    if problems:
        raise SaferunError("a volume would not be writable by the container's user, so the "
                           "app would fail to write its data:\n  " + "\n  ".join(problems))
    warnings = [f"{text} (a bind the app only reads can stay as it is)"
                for text in unwritable(plan.user, binds)]
    if probe is not None:
        warnings += hidden_volumes(probe.volumes, tuple(t.target for t in plan.tmpfs))
    if not notes and not warnings:
        return plan
    return replace(plan, notes=(*plan.notes, *notes), warnings=(*plan.warnings, *warnings))


_MISSING_BIND = "bind source"  # how a note about a created bind source starts


def _create_bind_source(path: str, uid: int, gid: int, facts: HostFacts,
                        dry_run: bool) -> str:
    """Create a missing bind source owned by the container's user (docker would make it
    root's, which that user cannot write); with --dry-run only say so."""
    host_uid, host_gid = uid, gid
    if facts.userns_root is not None:
        host_uid, host_gid = facts.userns_root[0] + uid, facts.userns_root[1] + gid
    said = (f"{_MISSING_BIND} {path} does not exist: "
            f"{'would create' if dry_run else 'created'} it owned by {uid}:{gid}, the "
            "container's user (docker run -v would create it root-owned)")
    if dry_run:
        return said
    from saferun.errors import SaferunError

    try:
        os.makedirs(path, mode=0o755, exist_ok=True)
        os.chown(path, host_uid, host_gid)
    except OSError as exc:
        raise SaferunError(f"bind source {path} does not exist and cannot be created for "
                           f"the container's user {uid}:{gid}: {exc.strerror}",
                           fix=f"create it and `chown {uid}:{gid}` it") from None
    return said


def _host_owner(path: str, facts: HostFacts) -> tuple[int, int, int] | None:
    """(uid, gid, mode) of a host path as the container sees it; None if unknown."""
    try:
        info = os.stat(path)
    except OSError:
        return None  # docker creates a missing bind source (root-owned) or refuses itself
    uid, gid = info.st_uid, info.st_gid
    if facts.userns_root is not None:
        base_uid, base_gid = facts.userns_root
        uid = uid - base_uid if base_uid <= uid < base_uid + 65536 else 65534
        gid = gid - base_gid if base_gid <= gid < base_gid + 65536 else 65534
    return uid, gid, info.st_mode & 0o7777


def dry_run_argv(plan: RunPlan) -> list[str]:
    from saferun.app.plancache import store_profile_file
    from saferun.render.argv import render_argv

    path = store_profile_file(plan.seccomp_profile) if plan.seccomp_profile else None
    return render_argv(plan, seccomp_path=path)


def dry_run_body(plan: RunPlan) -> dict[str, Any]:
    from saferun.render.engine_api import render_create_body

    from_host = tuple((name, os.environ[name]) for name in plan.env_from_host if name in os.environ)
    return render_create_body(
        plan, env_from_files=read_env_files(plan.env_files), env_from_host=from_host,
        labels_from_files=read_label_files(plan.label_files),
    )


def _file_lines(path: str, key: str) -> list[str]:
    """The lines of a file the manifest names under `key` (label or env files), read with
    the input files' size bound; not UTF-8 is one paragraph naming the key and the file."""
    from saferun.inputs.loader import decode_input, read_bounded

    try:
        data = read_bounded(Path(path), "file")
        return decode_input(data, f"{key}: {path}", "file").splitlines()
    except ManifestError as exc:
        message = exc.message if exc.message.startswith(key) else f"{key}: {exc.message}"
        raise ManifestError(message) from None


def read_env_files(paths: tuple[str, ...]) -> tuple[str, ...]:
    """docker's env-file format: KEY=VALUE per line, # comments, bare KEY takes our env."""
    lines: list[str] = []
    for path in paths:
        for raw in _file_lines(path, "app.env_files"):
            line = raw.lstrip()
            if not line or line.startswith("#"):
                continue
            if "=" in line:
                lines.append(line)
            elif line in os.environ:
                lines.append(f"{line}={os.environ[line]}")
    return tuple(lines)


def launch(prepared: PreparedRun, said: tuple[str, ...] = (),
           notes: tuple[str, ...] | None = None) -> NoReturn:
    """Hand over to `docker run`; does not return. `said`: the warnings already printed
    before planning, `notes` what a dry run would note (default: the plan's), kept with
    the plan for a cache hit to print them too."""
    from saferun.engine.docker_cli import exec_docker_run

    plan = prepared.plan
    if plan.apparmor_profile is not None:
        from saferun.engine.apparmor_parser import load_profile

        load_profile(plan.apparmor_profile[1])  # load or replace, before docker refers to it
    argv = remember(prepared, said, dry_run=False, notes=notes)
    os.environ.update(dict(prepared.env))  # inherited by docker (DOCKER_CONTENT_TRUST=1)
    exec_docker_run(argv, plan.seccomp_profile)


def remember(prepared: PreparedRun, said: tuple[str, ...], *, dry_run: bool,
             notes: tuple[str, ...] | None = None) -> list[str]:
    """The argv docker gets (the seccomp profile as a memfd placeholder), stored in the
    plan cache when the launch is cacheable.

    A dry run stores only a plan a real start would have made identically: one that
    creates no bind source (the real start would have created it). A real start's plan
    serves a later --dry-run only on the same condition, since its notes would say it
    created one.
    """
    from saferun.app import plancache
    from saferun.engine.docker_cli import SECCOMP_FD_PATH
    from saferun.render.argv import render_argv

    plan = prepared.plan
    seccomp_path = SECCOMP_FD_PATH if plan.seccomp_profile is not None else None
    argv = render_argv(plan, seccomp_path=seccomp_path)
    created = any(n.startswith(f"{_MISSING_BIND} ") for n in plan.notes)
    if (prepared.info is not None and prepared.image_present and prepared.cacheable
            and not (dry_run and created)):
        from saferun.engine.host import local_fingerprint

        plancache.store(
            inputs=[plancache.describe_input(path) for path in prepared.inputs],
            info=prepared.info,
            docker_argv=argv,
            seccomp_profile=plan.seccomp_profile,
            warnings=list(plan.warnings),
            apparmor_profile=plan.apparmor_profile[0] if plan.apparmor_profile else None,
            image=prepared.image,
            said=list(said),
            notes=None if created else list(plan.notes if notes is None else notes),
            host=local_fingerprint(),
        )
    return argv


def start(parsed: Any, *, cwd: str, warn: Callable[[str], None],
          note: Callable[[str], None]) -> str:
    """`saferun run`: plan the parsed command line and hand over to docker (no return), or,
    with --dry-run, return what would run: the argv as a shell line, or the API body."""
    import json

    from saferun.render.argv import shell_quote

    dry_run = bool(parsed.flag("dry-run"))
    request, prepared, acknowledged = decide(parsed, cwd=cwd, warn=warn)
    for message in prepared.plan.warnings:
        warn(message)
    if dry_run:
        for message in (*prepared.plan.notes, *acknowledged):
            note(message)
        if (parsed.last("format") or "argv") == "json":
            return json.dumps(dry_run_body(prepared.plan), indent=2, sort_keys=True)
        remember(prepared, request.dropin.notes, dry_run=True,
                 notes=(*prepared.plan.notes, *acknowledged))
        return shell_quote(dry_run_argv(prepared.plan))
    warning = image_presence_warning(prepared.plan.image, prepared.plan.pull,
                                     prepared.image_present)
    if warning:
        warn(warning)
    launch(prepared, request.dropin.notes, notes=(*prepared.plan.notes, *acknowledged))


def decide(parsed: Any, *, cwd: str, warn: Callable[[str], None]
           ) -> tuple[RunRequest, PreparedRun, list[str]]:
    """The full path of a start up to what it prints and execs: the request, the prepared
    plan, and the notes of the user config's acknowledged warnings."""
    from saferun.app.user_config import POLICY_ENV, acknowledge, default_policy, user_config

    config, config_file = user_config()
    if not os.environ.get(POLICY_ENV):
        policy = default_policy(config, config_file)
        if policy is not None:
            os.environ[POLICY_ENV] = policy  # the user's default team policy file
    request = request_from_args(parsed, cwd=cwd, offline=bool(parsed.flag("offline")))
    for message in request.dropin.notes:
        warn(message)
    prepared, acknowledged = acknowledge(prepare(request), config, config_file)
    return request, prepared, acknowledged


def fill_plan_cache(args: list[str], *, cwd: str) -> bool:
    """For the planning server (saferun.app.planner): decide a start exactly as `start`
    does, and store it in the plan cache instead of exec'ing docker -> whether the start
    is one the plan cache can serve (the client then serves it as a hit, or plans itself).
    """
    from saferun.inputs.run_flags import parse_run_args, usage_problem

    parsed = parse_run_args(args)
    if parsed.flag("help") or parsed.flag("dry-run") or usage_problem(parsed):
        return False
    request, prepared, acknowledged = decide(parsed, cwd=cwd, warn=lambda _message: None)
    if not (prepared.info is not None and prepared.image_present and prepared.cacheable):
        return False  # not cacheable: the client's own full path says and does the rest
    if prepared.plan.apparmor_profile is not None:
        from saferun.engine.apparmor_parser import load_profile

        load_profile(prepared.plan.apparmor_profile[1])  # as launch does, before docker runs
    remember(prepared, request.dropin.notes, dry_run=False,
             notes=(*prepared.plan.notes, *acknowledged))
    return True


def image_presence_warning(image: str, pull: str, present: bool | None) -> str | None:
    """Refuse a missing image under app.pull = "never"; otherwise say docker will pull it."""
    if present is not False:
        return None
    if pull == "never":
        raise SaferunError(
            f"image '{image}' is not in the local engine and app.pull = \"never\"",
            fix=f"build or pull '{image}' first, or set app.pull = \"missing\"",
        )
    return f"image '{image}' is not in the local engine; docker will try to pull it"
