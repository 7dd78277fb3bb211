"""Extra dockerd instances beside the main engine, for daemon-wide settings (userns-remap, TLS).

Each one gets its own bridge, data-root, exec-root, pidfile and socket/port, as
../shared/ENGINE.md describes. Never `--bridge=none`: at start-up that deletes docker0 and
breaks the main engine's networking. `stop()` kills only the pid this helper started,
then removes the bridge and the daemon's data.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.conftest import BUSYBOX_IMAGE, IN_CI


@dataclass
class ExtraDaemon:
    name: str
    bridge: str
    bridge_cidr: str
    data_root: Path
    exec_root: Path
    pidfile: Path
    hosts: list[str]
    extra_args: list[str] = field(default_factory=list)
    client_env: dict[str, str] = field(default_factory=dict)  # DOCKER_HOST and TLS variables
    log: Path = Path("/dev/null")
    address_pool: str | None = None  # --default-address-pool base, whose bridges stop() removes
    pid: int | None = None
    created_bridge: bool = False
    restarting: bool = False  # start() has run before, so dockerd finds its old state

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS",
                            "DOCKER_CONTEXT")}
        env.update(self.client_env)
        env.update(overrides)
        return env

    def docker(self, *args: str, check: bool = True,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["docker", *args], capture_output=True, text=True,
                                env=self.env(), timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} on {self.name} failed: {result.stderr}")
        return result

    def start(self) -> None:
        if self.pidfile.exists():
            stale = self.pidfile.read_text().strip()
            if stale.isdigit() and Path(f"/proc/{stale}").exists():
                pytest.fail(f"{self.name}: a dockerd (pid {stale}) already uses {self.pidfile}; "
                            "stop it first")
        self._bridge_up()
        self.exec_root.mkdir(parents=True, exist_ok=True)
        argv = ["dockerd", "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                "--pidfile", str(self.pidfile), "--bridge", self.bridge,
                *[a for h in self.hosts for a in ("-H", h)], *self.extra_args]
        # A data root left by a crashed run holds the old state too.
        self.restarting = self.restarting or (self.data_root / "network").exists()
        if self.address_pool and not self.restarting:
            # Not on a restart: a dockerd with default address pools that finds its old
            # "bridge" network deletes the interface named docker0 (hard-coded in moby's
            # removeDefaultBridgeInterface), which is the main engine's bridge.
            argv += ["--default-address-pool", f"base={self.address_pool},size=24"]
        log_mode = "ab" if self.restarting else "wb"  # a restart keeps the first run's log
        self.restarting = True  # any later start() of this helper reuses its data root
        with open(self.log, log_mode) as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = process.pid
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                if self.docker("info", "--format", "{{.ServerVersion}}", check=False,
                               timeout=10).returncode == 0:
                    return
            except subprocess.TimeoutExpired:
                pass  # a loaded host: ask again until the deadline
            time.sleep(0.5)
        tail = self.log.read_text(errors="replace")[-3000:]
        self.stop()
        pytest.fail(f"{self.name} did not answer within 60 s:\n{tail}")

    def load_image(self, image: str = BUSYBOX_IMAGE) -> None:
        """docker save (main engine) | docker load (this engine): there is no registry."""
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        load = subprocess.run(["docker", "load"], stdin=save.stdout, capture_output=True,
                              text=True, env=self.env(), timeout=120, check=False)
        assert save.stdout is not None
        save.stdout.close()
        save.wait(timeout=60)
        if save.returncode != 0 or load.returncode != 0:
            pytest.fail(f"cannot load {image} into {self.name}: {load.stderr}")

    def kill(self) -> None:
        """SIGKILL the dockerd this helper started (by pid), as a crash would, and reap it;
        its data stays for `start()` to bring it back."""
        if self.pid is None:
            return
        _signal_and_wait(self.pid, signal.SIGKILL)
        self.pid = None
        deadline = time.monotonic() + 30
        # Its containerd dies with it (parent-death signal) but may not be gone yet; a new
        # dockerd that still sees its pid waits for it, and gives up.
        containerd = self._containerd_pid()
        while containerd and time.monotonic() < deadline and _alive(containerd):
            time.sleep(0.1)

    def _containerd_pid(self) -> int | None:
        try:
            text = (self.exec_root / "containerd" / "containerd.pid").read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def _kill_orphaned_containers(self) -> None:
        """Containers whose daemon died: their shims (which name this daemon's containerd
        socket) and the processes those run, by pid."""
        socket = f"-address {self.exec_root}/containerd/containerd.sock"
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "containerd-shim" in command and command.rstrip().endswith(socket):
                children = subprocess.run(["pgrep", "-P", entry.name], capture_output=True,
                                          text=True, check=False).stdout.split()
                for pid in [*children, entry.name]:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass

    def stop(self) -> None:
        """Stop the dockerd this helper started (by pid), then remove its bridge and data."""
        if self.pid is not None:
            _signal_and_wait(self.pid, signal.SIGTERM)
            if _alive(self.pid):
                os.kill(self.pid, signal.SIGKILL)
                time.sleep(0.5)
            try:
                os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pass
            self.pid = None
        self._kill_orphaned_containers()
        for root in (self.exec_root, self.data_root):
            _unmount_below(root)
            shutil.rmtree(root, ignore_errors=True)
        for host in self.hosts:
            if host.startswith("unix://"):
                Path(host[len("unix://"):]).unlink(missing_ok=True)
        _remove_iptables_rules(self.bridge)
        if self.address_pool:  # the bridges of networks it made, which outlive it
            for bridge in _bridges_in(self.address_pool):
                _remove_iptables_rules(bridge)
                subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
        if self.created_bridge:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)
            self.created_bridge = False

    def _bridge_up(self) -> None:
        exists = subprocess.run(["ip", "link", "show", self.bridge], capture_output=True,
                                check=False).returncode == 0
        if not exists:
            for argv in (["ip", "link", "add", "name", self.bridge, "type", "bridge"],
                         ["ip", "addr", "add", self.bridge_cidr, "dev", self.bridge],
                         ["ip", "link", "set", self.bridge, "up"]):
                result = subprocess.run(argv, capture_output=True, text=True, check=False)
                if result.returncode != 0:
                    pytest.fail(f"{' '.join(argv)} failed: {result.stderr}")
        self.created_bridge = True  # ours to delete at the end, even if left by a crashed run


def _signal_and_wait(pid: int, signum: int, seconds: float = 30) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    return Path(f"/proc/{pid}").exists()


def _remove_iptables_rules(bridge: str) -> None:
    """dockerd leaves its NAT/forward rules for a bridge behind when it stops: delete them."""
    if shutil.which("iptables") is None:
        return
    for table in ("filter", "nat"):
        listing = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True,
                                 check=False).stdout
        for line in listing.splitlines():
            words = shlex.split(line)
            if words[:1] == ["-A"] and bridge in words:
                subprocess.run(["iptables", "-t", table, "-D", *words[1:]], capture_output=True,
                               check=False)


def _bridges_in(pool: str) -> list[str]:
    """Bridge interfaces with an IPv4 address inside `pool` (a CIDR)."""
    import ipaddress
    import json

    network = ipaddress.ip_network(pool)
    listing = subprocess.run(["ip", "-j", "-4", "addr", "show", "type", "bridge"],
                             capture_output=True, text=True, check=False).stdout
    return [str(link["ifname"]) for link in json.loads(listing or "[]")
            if any(ipaddress.ip_address(a["local"]) in network
                   for a in link.get("addr_info", []))]


def _unmount_below(root: Path) -> None:
    """Mounts dockerd left under its own directories (only after a crash)."""
    prefix = str(root).rstrip("/") + "/"
    with open("/proc/mounts", encoding="utf-8") as handle:
        targets = [line.split()[1] for line in handle if line.split()[1].startswith(prefix)]
    for target in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


@contextmanager
def running(daemon: ExtraDaemon, image: str = BUSYBOX_IMAGE) -> Iterator[ExtraDaemon]:
    """The daemon started with `image` loaded, stopped afterwards; skipped where extra
    daemons cannot start (failed when CI=true)."""
    reason = can_start_daemons()
    if reason:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    daemon.start()
    try:
        daemon.load_image(image)
        yield daemon
    finally:
        daemon.stop()


def can_start_daemons() -> str | None:
    """Why extra daemons cannot be started here, or None."""
    if os.geteuid() != 0:
        return "extra dockerd instances need root"
    for tool in ("dockerd", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None
