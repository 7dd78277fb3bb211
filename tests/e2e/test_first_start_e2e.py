"""A first start (a command line never seen) takes the full path and applies every
protection; a start that reuses a plan for a new command or env value applies the same."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import docker, inspect, saferun

pytestmark = pytest.mark.e2e


def _status(text: str) -> dict[str, str]:
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def _protections(container: str) -> dict[str, Any]:
    """What the kernel and the engine say about the running container, outside and inside."""
    data = inspect(container)
    host = data["HostConfig"]
    outside = _status(Path(f"/proc/{data['State']['Pid']}/status").read_text())
    inside = _status(docker("exec", container, "cat", "/proc/1/status").stdout)
    write = docker("exec", container, "touch", "/written", check=False)
    return {
        "NoNewPrivs": (outside["NoNewPrivs"], inside["NoNewPrivs"]),
        "Seccomp": (outside["Seccomp"], inside["Seccomp"]),
        "CapEff": (outside["CapEff"], inside["CapEff"]),
        "uid": inside["Uid"].split()[0],
        "id -u": docker("exec", container, "id", "-u").stdout.strip(),
        "ReadonlyRootfs": host["ReadonlyRootfs"],
        "root writable": write.returncode == 0,
        "CapDrop": host["CapDrop"],
        "SecurityOpt": sorted(host["SecurityOpt"] or []),
        "Memory": host["Memory"],
        "PidsLimit": host["PidsLimit"],
    }


def test_a_cold_start_takes_the_full_path_and_applies_every_protection(
    e2e_manifest: Any, tmp_path: Path
) -> None:
    env = {**os.environ, "SAFERUN_DEBUG": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("SAFERUN_NO_CACHE", None)
    manifest = e2e_manifest({"app": {"name": "speed-cold"}, "resources": {"memory": "64m"}})
    name = f"speed-cold-{uuid.uuid4().hex[:8]}"
    try:
        first = saferun("run", "-d", "--name", name, "-e", f"TOKEN={uuid.uuid4().hex}",
                        str(manifest), "sleep", "60", env=env)
        assert first.returncode == 0, first.stderr
        assert "plan cache miss: no entry" in first.stderr  # nothing reused: the full path
        cold = _protections(name)
        assert cold["NoNewPrivs"] == ("1", "1")
        assert cold["Seccomp"] == ("2", "2")  # a filter is in force
        assert cold["CapEff"] == ("0000000000000000", "0000000000000000")
        assert cold["uid"] == "65534" and cold["id -u"] == "65534"
        assert cold["ReadonlyRootfs"] is True and cold["root writable"] is False
        assert cold["CapDrop"] == ["ALL"]
        assert "no-new-privileges" in cold["SecurityOpt"]
        assert any(opt.startswith("seccomp=") and '"defaultAction"' in opt
                   for opt in cold["SecurityOpt"])  # saferun's generated profile, not docker's
        assert cold["Memory"] == 64 * 1024 * 1024 and cold["PidsLimit"] == 256
        docker("rm", "-f", name)

        # A new env value and command: the plan is reused, the protections are the same.
        second = saferun("run", "-d", "--name", name, "-e", "TOKEN=another value",
                         str(manifest), "sh", "-c", "sleep 61", env=env)
        assert second.returncode == 0, second.stderr
        assert "plan cache hit" in second.stderr
        assert _protections(name) == cold
        data = inspect(name)
        assert "TOKEN=another value" in data["Config"]["Env"]
        assert data["Config"]["Cmd"] == ["sh", "-c", "sleep 61"]
    finally:
        docker("rm", "-f", name, check=False)


def test_a_dry_run_from_the_cache_prints_what_the_full_path_prints(
    e2e_manifest: Any, tmp_path: Path
) -> None:
    env = {**os.environ, "SAFERUN_DEBUG": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("SAFERUN_NO_CACHE", None)
    manifest = e2e_manifest({"app": {"name": "speed-dry"}})
    args = ["run", "--dry-run", "--rm", "-e", "A=1", str(manifest), "true"]
    first = saferun(*args, env=env)
    assert first.returncode == 0 and "plan cache miss" in first.stderr, first.stderr
    again = [*args[:4], "A=two", *args[5:-1], "echo", "hi"]
    cached = saferun(*again, env=env)
    full = saferun(*again, env={**env, "SAFERUN_NO_CACHE": "1"})
    assert "plan cache hit" in cached.stderr and full.returncode == 0
    assert cached.stdout == full.stdout and "--env A=two" in cached.stdout
    strip = [line for line in cached.stderr.splitlines() if "debug" not in line]
    assert strip == [line for line in full.stderr.splitlines() if "debug" not in line]


def test_a_hit_still_judges_an_edited_label_file(e2e_manifest: Any, tmp_path: Path) -> None:
    env = {**os.environ, "SAFERUN_DEBUG": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("SAFERUN_NO_CACHE", None)
    labels = tmp_path / "labels"
    labels.write_text("team=speed\n")
    manifest = e2e_manifest({"app": {"name": "speed-labels", "label_files": [str(labels)]}})
    args = ["run", "--rm", str(manifest), "true"]
    assert saferun(*args, env=env).returncode == 0
    assert "plan cache hit" in saferun(*args, env=env).stderr
    labels.write_text("io.saferun.app=forged\n")
    refused = saferun(*args, env=env)
    assert refused.returncode == 125, refused.stderr
    assert "an input file changed" in refused.stderr and "reserved for saferun" in refused.stderr
