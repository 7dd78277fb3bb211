"""The planning server: `saferun run`'s full path, done by an already-warm process.

A start the plan cache cannot serve (a manifest or flag value never seen) spends most of
its time importing the model, the planner and the profile generators and setting them
up; the planning itself takes about 5 ms. So the first such start in a while spawns a
planning server (a fork server, saferun.engine.forkserver) for this user and this
saferun installation, and the next ones ask it: a child forked from the warm server
takes the request (command line, working directory, environment, umask), runs exactly
the full path up to the point where it would exec docker, and stores the result in the
plan cache. The client then serves itself from the plan cache as on any hit, with every
re-check a hit makes. Whatever the server does not answer (a refusal, an error, a start
that cannot be cached, a timeout) the client does itself, in process, as before: the
server changes how fast a start is decided, never what is decided.

The server listens in the cache directory (private to the user), answers only its own
uid, and exits after SAFERUN_SERVER_IDLE seconds without a request (default 600); its
name carries the fingerprint of saferun's code and data, so an upgraded or edited
saferun never asks a server running older code. SAFERUN_NO_SERVER=1 (or
SAFERUN_NO_CACHE=1) turns it off.
"""

from __future__ import annotations

import os
import sys

from saferun.app import plancache
from saferun.engine import forkserver

DEFAULT_IDLE_S = 600
ASK_TIMEOUT_S = 10.0  # a slow engine answer inside the child; then the client plans itself
_RESPAWN_AFTER_S = 30  # a server that failed to come up is not spawned again at once


def enabled() -> bool:
    return plancache.enabled() and os.environ.get("SAFERUN_NO_SERVER", "") in ("", "0")


def idle_seconds() -> float:
    text = os.environ.get("SAFERUN_SERVER_IDLE", "")
    return float(text) if text.replace(".", "", 1).isdigit() and float(text) > 0 else DEFAULT_IDLE_S


def socket_path() -> str | None:
    """This user's server for this saferun code, or None when its path is too long."""
    directory = os.path.dirname(plancache.cache_root())
    path = os.path.join(directory, f"planner-{plancache.code_fingerprint()[:24]}.sock")
    return path if len(path.encode()) <= forkserver.MAX_SOCKET_PATH else None


def fill(argv: list[str]) -> bool:
    """Ask the server to plan `argv` (saferun's own arguments, from "run") into the plan
    cache -> True when it answered that it did; spawns a server when none runs."""
    if not enabled():
        return False
    request = plancache.parse_request(argv)
    if request is None or request.dry_run:
        return False
    path = socket_path()
    if path is None or not _private_directory(os.path.dirname(path)):
        return False
    try:
        cwd = os.getcwd()
    except OSError:
        return False  # a removed working directory: the full path says what is wrong
    umask = os.umask(0o077)
    os.umask(umask)
    status, reply = forkserver.ask(path, {"argv": argv, "cwd": cwd, "umask": umask,
                                          "env": dict(os.environ)}, ASK_TIMEOUT_S)
    if status == "absent":
        _spawn(path)
        return False
    planned = status == "ok" and isinstance(reply, dict) and reply.get("stored") is True
    if planned:
        plancache.debug("planned by the planning server")
    return planned


def _private_directory(path: str) -> bool:
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError:
        return False
    return plancache.private_directory(path)


def _spawn(path: str) -> None:
    marker = f"{path}.spawned"
    try:
        import time

        if time.time() - os.lstat(marker).st_mtime < _RESPAWN_AFTER_S:
            return  # one is coming up, or could not: the in-process path meanwhile
    except OSError:
        pass
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        os.close(fd)
        os.utime(marker)
    except OSError:
        return
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    plancache.debug("no planning server: starting one")
    forkserver.spawn_detached([
        sys.executable, "-c",
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from saferun.app.planner import serve_main; serve_main()",
        package_parent,
    ])


def serve_main() -> None:
    """The server process: warm up, then answer until idle."""
    path = socket_path()
    if path is None or not enabled():
        return
    _warm_up()
    if plancache.walk_code() != plancache.code_fingerprint():
        return  # saferun changed while this server imported it: its name would lie
    forkserver.remove_stale(os.path.dirname(path), "planner-", path)  # older versions' files
    forkserver.serve(path, _handle, idle_seconds=idle_seconds())


def _warm_up() -> None:
    """Import and set up once what every full-path start needs, so children inherit it."""
    import saferun.app.run  # noqa: F401 - the modules of the full path
    import saferun.app.user_config  # noqa: F401
    import saferun.engine.api  # noqa: F401
    import saferun.engine.host  # noqa: F401
    import saferun.inputs.dockerrun  # noqa: F401
    import saferun.render.argv  # noqa: F401
    from saferun.inputs.loader import parse_manifest
    from saferun.profiles.seccomp import load_data

    load_data()
    try:  # builds msgspec's type information for the whole model
        parse_manifest(b'[app]\nname = "warm"\nimage = "busybox:1"\n', "warm-up.toml")
    except Exception:  # noqa: BLE001 - only a warm-up
        pass
    _rehearse()


REHEARSALS = 3


def _rehearse() -> None:
    """Run the full path a few times on a manifest of its own, offline and dry: a child
    then starts with the interpreter's code already specialised and first-use setup done
    (measured: a child's first plan 4.8 ms without this, 2.7 ms with it).

    Offline and dry touch no engine and no plan cache. What the rehearsal leaves in
    this process is saferun's own data read once (the seccomp groups, the templates) and
    nothing of this host: the in-memory compile outcomes are dropped, so a child judges
    its profiles as a fresh process does, and the environment is put back.
    """
    import tempfile

    from saferun.app import planning
    from saferun.app.run import decide
    from saferun.inputs.run_flags import parse_run_args

    environ = dict(os.environ)
    try:
        with tempfile.TemporaryDirectory(prefix="saferun-warm-") as work:
            manifest = os.path.join(work, "saferun.toml")
            with open(manifest, "w", encoding="utf-8") as out:
                out.write('[app]\nname = "warm"\nimage = "busybox:1"\n')
            argv = ["--dry-run", "--offline", "--rm", "--label", "warm=1", "-e", "WARM=1",
                    manifest, "true"]
            for _ in range(REHEARSALS):
                decide(parse_run_args(argv), cwd=work, warn=lambda _message: None)
    except Exception:  # noqa: BLE001 - only a warm-up: a child does the real work
        pass
    finally:
        planning.forget_compiled()
        os.environ.clear()
        os.environ.update(environ)


def _handle(request: dict[str, object]) -> dict[str, object]:
    """In a child of the server: the full path of the request, up to docker's exec."""
    argv, cwd, env, umask = request["argv"], request["cwd"], request["env"], request["umask"]
    if not (isinstance(argv, list) and isinstance(cwd, str) and isinstance(env, dict)
            and isinstance(umask, int)):
        return {"stored": False}
    os.chdir(cwd)
    os.umask(umask)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in env.items()})
    plancache.begin([str(a) for a in argv])
    from saferun.app.run import fill_plan_cache

    return {"stored": fill_plan_cache([str(a) for a in argv[1:]], cwd=cwd)}
