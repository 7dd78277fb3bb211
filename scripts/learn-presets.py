#!/usr/bin/env python3
"""Re-learn the seccomp allow list of each preset in profiles/ on its real server.

For each preset: write a manifest that only says `extends = "<preset>"` plus the verified
image and a published port, run `saferun learn` on it with the E2E test's own client as the
load (tests/e2e/preset_clients.py) and the preset's health check as an exec, merge several
runs, verify the result by running the workload again under it, and write the learned list
into the preset (comments kept). Needs root, a Docker engine and the images of
scripts/build-preset-images.sh and scripts/build-official-images.sh. Usage (from the root):

    .venv/bin/python scripts/learn-presets.py [PRESET...]
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from saferun.app.planning import checked_plan  # noqa: E402
from saferun.inputs.loader import load_manifest, preset_path  # noqa: E402
from saferun.learn.learning import rewrite_manifest  # noqa: E402
from saferun.model.facts import OFFLINE_FACTS  # noqa: E402
from saferun.plan.planner import LaunchOptions  # noqa: E402
from tests.e2e.preset_clients import PG_PASSWORD  # noqa: E402

# preset -> (image it is verified with, container port, host port used while learning)
SERVERS: dict[str, tuple[str, int, int]] = {
    "nginx": ("saferun-test/nginx:1", 80, 18480),
    "official-nginx": ("saferun-test/official-nginx:1", 80, 18481),
    "official-httpd": ("saferun-test/official-httpd:1", 80, 18482),
    "redis": ("saferun-test/official-redis:1", 6379, 18479),
    "postgres": ("saferun-test/official-postgres:1", 5432, 18432),
    "python-web": ("saferun-test/pyweb:1", 8000, 18400),
}
RUNS = 3
# Retry the health check until the server is up (postgres runs initdb first), then linger
# so that the recorder sees the whole exec.
WAIT_HEALTHY = ("i=0; until {health}; do i=$((i+1)); [ $i -lt 120 ] || exit 1; sleep 0.5; "
                "done; sleep 1")


def child_manifest(preset: str, directory: Path) -> Path:
    image, container_port, host_port = SERVERS[preset]
    path = directory / f"{preset}.toml"
    path.write_text(
        f'extends = "{preset}"\n\n[app]\nname = "learn-{preset}"\nimage = "{image}"\n'
        + (f'env = {{ POSTGRES_PASSWORD = "{PG_PASSWORD}" }}\n' if preset == "postgres" else "")
        + f"\n[[network.ports]]\ncontainer = {container_port}\nhost = {host_port}\n")
    return path


def learn(preset: str) -> None:
    with tempfile.TemporaryDirectory(prefix="saferun-learn-") as tmp:
        child = child_manifest(preset, Path(tmp))
        plan = checked_plan(load_manifest(child), OFFLINE_FACTS, LaunchOptions())
        health = plan.healthcheck.shell_command if plan.healthcheck else "true"
        # The health check runs as docker runs it (sh -c CMD), one level down: the process
        # `docker exec` starts may be attributed to the host (the recorder reads its cgroup
        # at fork, before runc moves it into the container's), so its own calls could be
        # missed; the inner shell is forked inside the container and fully recorded.
        health_exec = shlex.join(["sh", "-c", health])
        port = SERVERS[preset][2]
        load = shlex.join([sys.executable, "-m", "tests.e2e.preset_clients", preset, str(port)])
        exec_cmd = shlex.join(["sh", "-c", WAIT_HEALTHY.format(health=health_exec)])
        argv = [str(ROOT / ".venv/bin/saferun"), "learn", str(child), "--load", load,
                "--exec", exec_cmd, "--duration", "2",
                "--runs", str(RUNS), "--verify", "--write-manifest"]
        print(f"== {preset}: {shlex.join(argv)}", flush=True)
        subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        learned = tomllib.loads(child.read_text())["seccomp"]["learned"]
    target = preset_path(preset)
    target.write_text(rewrite_manifest(target.read_text(), learned=learned))
    print(f"== {preset}: {len(learned)} calls written to {target}", flush=True)


def main(names: list[str]) -> int:
    for preset in names or sorted(SERVERS):
        learn(preset)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
