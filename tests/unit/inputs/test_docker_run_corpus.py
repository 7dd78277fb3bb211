"""The drop-in claim over real command lines (tests/data/docker_run_corpus.toml).

Each line goes through the real `saferun run` path, the one a user's command line takes
(saferun.app.run.start: the preset found by the image's name, the floating-tag warning,
app.name rules, label and env files read), as `saferun run --dry-run --offline LINE` for
the docker argv and `... --format json LINE` for the Engine API body. Every line parses;
the dangerous ones are refused naming the expected rule; all others run hardened
(non-root user, every capability dropped, read-only root, no-new-privileges, limits,
ports bound to loopback unless the line names an address) in both renderings. And no
flag of the line is dropped: each value given reaches the argv and the body as many times
as it was given, compared after the normalisations docker itself makes (sizes to bytes,
`h=ip` to `h:ip`, `-v` to a mount, relative paths made absolute...).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from saferun.app.run import start
from saferun.errors import Refused
from saferun.inputs.dockerargs import ParsedRun, split_command_line
from saferun.inputs.loader import load_manifest, preset_for_image, preset_path
from saferun.inputs.run_flags import RUN_TABLE, parse_run_args
from saferun.model.refusals import RULE_IDS

CORPUS = Path(__file__).resolve().parents[2] / "data" / "docker_run_corpus.toml"
CASES: list[dict[str, Any]] = tomllib.loads(CORPUS.read_text())["case"]
ENV_FILE, LABEL_FILE = "FROM_FILE=env file line\n", "team=from the label file\n"
CWD = "/srv/app"  # where a line is typed, for tests that read lines without files


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the lines are typed in, with the files they name."""
    folder = tmp_path_factory.mktemp("typed-here")
    (folder / "env.list").write_text(ENV_FILE)
    (folder / "labels").write_text(LABEL_FILE)
    return folder


@pytest.fixture(autouse=True)
def user_session(workdir: Path, tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A user with no config file and no team policy, in that folder."""
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(workdir / "no-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "corpus-cache"))
    monkeypatch.delenv("SAFERUN_POLICY", raising=False)
    yield


def shell_expand(line: str, cwd: str = CWD) -> str:
    """What the user's shell would have done before docker saw the line; nothing more."""
    line = line.replace('"$(pwd)"', cwd).replace("$(pwd)", cwd)
    line = line.replace('"$PWD"', cwd).replace("${PWD}", cwd).replace("$PWD", cwd)
    line = line.replace("$(id -u)", "1000").replace("$(id -g)", "1000")
    line = line.replace("${UID}", "1000").replace("$UID", "1000").replace("${GID}", "1000")
    return re.sub(r"(?<=[\s=])~/", "/home/user/", line)


def test_corpus_is_big_enough_and_sourced() -> None:
    assert len(CASES) >= 150
    lines = [case["line"] for case in CASES]
    assert len(lines) == len(set(lines)), "a line is listed twice"
    for case in CASES:
        assert case["source"].startswith("https://"), case
        assert case["expect"] in ("hardened", *RULE_IDS), case
    kinds = Counter(case["expect"] for case in CASES)
    assert {"hardened", "privileged", "docker-socket-mount", "sensitive-host-mount"} <= set(kinds)


def saferun_run(words: list[str]) -> tuple[list[str], dict[str, Any]]:
    """`saferun run --dry-run --offline WORDS`: (the docker argv, the Engine API body)."""
    def ignore(message: str) -> None:
        del message

    def dry_run(*extra: str) -> str:
        parsed = parse_run_args(["--dry-run", "--offline", *extra, *words])
        return start(parsed, cwd=os.getcwd(), warn=ignore, note=ignore)

    return shlex.split(dry_run()), json.loads(dry_run("--format", "json"))


# --- what a value means, compared the way docker compares it -------------------------

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def size(text: str) -> int:
    """docker's RAMInBytes: 1GB, 100M, 512m, 65536k, a plain number of bytes."""
    if text.strip() == "-1":
        return -1  # --memory-swap -1: unlimited swap
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([bkmgt]?)(?:i?b)?", text.strip().lower())
    assert match, text
    return int(float(match[1]) * _UNITS[match[2]])


def _ports(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1)) if low else [0]


def publish(value: str) -> list[str]:
    rest, _, proto = value.partition("/")
    ip = ""
    if rest.startswith("["):
        ip, rest = rest[1:].split("]:", 1)
    parts = rest.split(":")
    if len(parts) == 3 and not ip:
        ip = parts.pop(0)
    host, container = (parts if len(parts) == 2 else ["", parts[0]])
    hosts = _ports(host) if host else [0] * len(_ports(container))
    found = [f"{h or ''}:{c}/{proto or 'tcp'}" for h, c in zip(hosts, _ports(container),
                                                                strict=True)]
    return found + ([f"ip {ip}"] * len(found) if ip and ip != "127.0.0.1" else [])


def expose(value: str) -> list[str]:
    port, _, proto = value.partition("/")
    return [f"{p}/{proto or 'tcp'}" for p in _ports(port)]


def _absolute(path: str) -> str:
    """A bind source as docker resolves it: against the folder the line is typed in."""
    return os.path.normpath(os.path.join(os.getcwd(), path)) if path.startswith(
        ("/", ".")) else path


def _mount_token(kind: str, source: str, target: str, read_only: bool) -> str:
    kind = kind if source or kind != "volume" else "anonymous"
    return f"{kind} {_absolute(source)} -> {os.path.normpath(target)}{' ro' if read_only else ''}"


def volume(value: str) -> list[str]:
    """`-v SRC:DST[:OPTS]` or `-v DST`: what is mounted where, read-only or not."""
    parts = value.split(":")
    options = parts.pop().split(",") if len(parts) > 1 and not parts[-1].startswith("/") else []
    source, target = (parts if len(parts) == 2 else ["", parts[0]])
    kind = "bind" if source.startswith(("/", ".")) else "volume"
    return [_mount_token(kind, source, target, "ro" in options),
            *(f"{target} {o}" for o in options if o in ("z", "Z", "nocopy"))]


def _tmpfs_options(target: str, options: list[str]) -> list[str]:
    found = []
    for option in options:
        key, _, value = option.partition("=")
        if key == "size":
            found.append(f"{target} size={size(value)}")
        elif key == "mode":
            found.append(f"{target} mode={int(value, 8):o}")
        elif key in ("exec", "noexec", "suid", "nosuid", "dev", "nodev"):
            found.append(f"{target} {key}")
    return found


def tmpfs(value: str) -> list[str]:
    target, _, options = value.partition(":")
    return [f"tmpfs {target}", *_tmpfs_options(target, options.split(",") if options else [])]


def mount(value: str) -> list[str]:
    fields = dict(f.partition("=")[::2] for f in next(csv.reader([value])))
    kind = fields.get("type", "volume")
    target = next(fields[k] for k in ("target", "destination", "dst") if k in fields)
    if kind == "tmpfs":
        options = [f"size={fields['tmpfs-size']}"] if "tmpfs-size" in fields else []
        options += [f"mode={fields['tmpfs-mode']}"] if "tmpfs-mode" in fields else []
        return [f"tmpfs {target}", *_tmpfs_options(target, options)]
    source = next((fields[k] for k in ("source", "src") if k in fields), "")
    read_only = any(fields.get(k, None) in ("", "true", "1") for k in ("readonly", "ro"))
    extra = [f"{target} propagation={fields['bind-propagation']}"] \
        if "bind-propagation" in fields else []
    return [_mount_token(kind, source, target, read_only), *extra]


def network(value: str) -> list[str]:
    """`NAME` or `name=NAME,alias=A,ip=IP,driver-opt=...` (CSV, as docker reads it)."""
    if "=" not in value:
        return [f"network {value}"]
    found = []
    for field in next(csv.reader([value])):
        key, _, item = field.partition("=")
        found.append(f"network {item}" if key == "name" else f"{key} {item}")
    return found


def add_host(value: str) -> list[str]:
    name, _, address = value.partition("=") if "=" in value else value.partition(":")
    return [f"{name}:{address.strip('[]')}"]


def ulimit(value: str) -> list[str]:
    name, _, limits = value.partition("=")
    soft, _, hard = limits.partition(":")
    return [f"{name}={soft}:{hard or soft}"]


def restart(value: str) -> list[str]:
    policy, _, retries = value.partition(":")
    # docker's reading: on-failure without a count retries without limit (MaximumRetryCount
    # 0, argv `on-failure`); saferun keeps it and warns restart-retries (docs/drop-in.md).
    return [f"on-failure:{retries}" if policy == "on-failure" and retries not in ("", "0")
            else policy]


def key_value(value: str) -> list[str]:
    key, _, item = value.partition("=")
    return [f"{key}={item}"]


def throttle(value: str) -> list[str]:
    path, _, rate = value.rpartition(":")
    return [f"{path}:{size(rate) if not rate.isdigit() else rate}"]


def link(value: str) -> str:
    return value if ":" in value else f"{value}:{value}"  # docker reads NAME as NAME:NAME


def same(value: str) -> list[str]:
    return [value]


# Flag -> (the pool of flags its argv spelling may be in, the normaliser of both sides).
MOUNT_FLAGS = ("volume", "mount", "tmpfs")
NETWORK_FLAGS = ("network", "network-alias", "ip", "ip6")
MEANING: dict[str, tuple[tuple[str, ...], Callable[[str], list[str]]]] = {
    "publish": (("publish",), publish),
    "expose": (("expose",), expose),
    "volume": (MOUNT_FLAGS, volume),
    "mount": (MOUNT_FLAGS, mount),
    "tmpfs": (MOUNT_FLAGS, tmpfs),
    "network": (NETWORK_FLAGS, network),
    "network-alias": (NETWORK_FLAGS, lambda v: [f"alias {v}"]),
    "ip": (NETWORK_FLAGS, lambda v: [f"ip {v}"]),
    "add-host": (("add-host",), add_host),
    "ulimit": (("ulimit",), ulimit),
    "restart": (("restart",), restart),
    "label": (("label",), key_value),
    "sysctl": (("sysctl",), key_value),
    "storage-opt": (("storage-opt",), lambda v: [f"size={size(v.partition('=')[2])}"]),
    "link": (("link",), lambda v: [link(v)]),
    "env-file": (("env-file",), lambda v: [_absolute(v)]),
    "label-file": (("label-file",), lambda v: [_absolute(v)]),
    **{name: ((name,), lambda v: [str(size(v))])
       for name in ("memory", "memory-reservation", "memory-swap", "shm-size")},
    **{name: ((name,), throttle) for name in ("device-read-bps", "device-write-bps",
                                              "device-read-iops", "device-write-iops")},
}
# Flags that exist only in docker's CLI: the body has no field for them.
CLI_ONLY = {"name", "detach", "cidfile", "pull", "allow"}


def argv_tokens(flag: str, argv: ParsedRun) -> Counter[str]:
    pool, meaning = MEANING.get(flag, ((flag,), same))
    found: Counter[str] = Counter()
    for name in pool:
        for value in argv.values(name):
            found.update(MEANING.get(name, ((name,), same))[1](value))
    return found


def _bytes_of(rate: Any) -> str:
    return f"{rate['Path']}:{rate['Rate']}"


def _mounts_in(body: dict[str, Any]) -> list[str]:
    host = body["HostConfig"]
    found = [t for bind in host.get("Binds") or [] for t in volume(bind)]
    for m in host.get("Mounts") or []:
        found.append(_mount_token(m["Type"].lower(), m.get("Source", ""), m["Target"],
                                  bool(m.get("ReadOnly"))))
        propagation = (m.get("BindOptions") or {}).get("Propagation")
        found += [f"{m['Target']} propagation={propagation}"] if propagation else []
    for target, options in (host.get("Tmpfs") or {}).items():
        found += tmpfs(f"{target}:{options}")
    return found


def _networks_in(body: dict[str, Any]) -> list[str]:
    found = [f"network {body['HostConfig']['NetworkMode']}"]
    for name, endpoint in ((body.get("NetworkingConfig") or {}).get("EndpointsConfig")
                           or {}).items():
        found += [f"network {name}", *(f"alias {a}" for a in endpoint.get("Aliases") or [])]
        ipam = endpoint.get("IPAMConfig") or {}
        found += [f"ip {ipam[k]}" for k in ("IPv4Address", "IPv6Address") if ipam.get(k)]
        found += [f"driver-opt {k}={v}" for k, v in (endpoint.get("DriverOpts") or {}).items()]
    return found


def _ports_in(body: dict[str, Any]) -> list[str]:
    found = []
    for port, bindings in (body["HostConfig"].get("PortBindings") or {}).items():
        for b in bindings:
            found.append(f"{b.get('HostPort', '')}:{port}")
            ip = b.get("HostIp") or ""
            found += [f"ip {ip}"] if ip not in ("", "127.0.0.1") else []
    return found


def _restart_in(host: dict[str, Any]) -> list[str]:
    policy = host["RestartPolicy"]
    name = policy["Name"]
    retries = policy["MaximumRetryCount"]
    return [f"{name}:{retries}" if name == "on-failure" and retries else name]


BODY: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "publish": _ports_in,
    "expose": lambda b: list(b.get("ExposedPorts") or {}),
    **{name: _mounts_in for name in MOUNT_FLAGS},
    **{name: _networks_in for name in NETWORK_FLAGS},
    "env": lambda b: b.get("Env") or [],
    "label": lambda b: [f"{k}={v}" for k, v in (b.get("Labels") or {}).items()],
    "add-host": lambda b: [t for h in b["HostConfig"].get("ExtraHosts") or [] for t in add_host(h)],
    "ulimit": lambda b: [f"{u['Name']}={u['Soft']}:{u['Hard']}"
                         for u in b["HostConfig"].get("Ulimits") or []],
    "restart": lambda b: _restart_in(b["HostConfig"]),
    "sysctl": lambda b: [f"{k}={v}" for k, v in (b["HostConfig"].get("Sysctls") or {}).items()],
    "storage-opt": lambda b: [f"{k}={v}" for k, v in
                              (b["HostConfig"].get("StorageOpt") or {}).items()],
    "link": lambda b: [link(v) for v in b["HostConfig"].get("Links") or []],
    "volumes-from": lambda b: b["HostConfig"].get("VolumesFrom") or [],
    "group-add": lambda b: b["HostConfig"].get("GroupAdd") or [],
    "security-opt": lambda b: b["HostConfig"].get("SecurityOpt") or [],
    "attach": lambda b: [s.lower() for s in ("Stdin", "Stdout", "Stderr") if b[f"Attach{s}"]],
    "user": lambda b: [b["User"]],
    "workdir": lambda b: [b["WorkingDir"]],
    "hostname": lambda b: [b["Hostname"]],
    "entrypoint": lambda b: [" ".join(b["Entrypoint"] or [])],
    "stop-timeout": lambda b: [str(b["StopTimeout"])],
    "log-driver": lambda b: [b["HostConfig"]["LogConfig"]["Type"]],
    "ipc": lambda b: [b["HostConfig"]["IpcMode"]],
    "memory": lambda b: [str(b["HostConfig"]["Memory"])],
    "memory-reservation": lambda b: [str(b["HostConfig"]["MemoryReservation"])],
    "memory-swap": lambda b: [str(b["HostConfig"]["MemorySwap"])],
    "memory-swappiness": lambda b: [str(b["HostConfig"]["MemorySwappiness"])],
    "blkio-weight": lambda b: [str(b["HostConfig"]["BlkioWeight"])],
    "cpuset-cpus": lambda b: [b["HostConfig"]["CpusetCpus"]],
    "cpuset-mems": lambda b: [b["HostConfig"]["CpusetMems"]],
    "cpu-period": lambda b: [str(b["HostConfig"]["CpuPeriod"])],
    "cpu-quota": lambda b: [str(b["HostConfig"]["CpuQuota"])],
    **{name: (lambda b, key=key: [_bytes_of(r) for r in b["HostConfig"].get(key) or []])
       for name, key in (("device-read-bps", "BlkioDeviceReadBps"),
                         ("device-write-bps", "BlkioDeviceWriteBps"),
                         ("device-read-iops", "BlkioDeviceReadIOps"),
                         ("device-write-iops", "BlkioDeviceWriteIOps"))},
}
# Boolean flags: their field in the body.
BODY_BOOLEAN = {"tty": "Tty", "interactive": "OpenStdin", "rm": "AutoRemove", "init": "Init",
                "read-only": "ReadonlyRootfs", "oom-kill-disable": "OomKillDisable",
                "publish-all": "PublishAllPorts"}


def body_expected(flag: str, value: str) -> list[str]:
    """What the body holds for one given value, where it differs from the argv's."""
    if flag == "env" and "=" not in value:  # docker passes the caller's value on
        return [f"{value}={os.environ[value]}"] if value in os.environ else []
    if flag == "env-file":
        return ENV_FILE.splitlines()
    if flag == "label-file":
        return LABEL_FILE.splitlines()
    if flag == "label" and "=" not in value:
        return [f"{value}="]
    return MEANING.get(flag, ((flag,), same))[1](value)


def body_flag(flag: str) -> str:
    return {"env-file": "env", "label-file": "label"}.get(flag, flag)


def dropped(given: ParsedRun, argv: ParsedRun, body: dict[str, Any]) -> list[str]:
    """Each value given that the argv or the body lacks (counted: given twice, kept twice)."""
    problems = []
    wanted_argv: dict[str, Counter[str]] = {}
    wanted_body: dict[str, Counter[str]] = {}
    for flag, value in given.flags:
        spec = RUN_TABLE.long(flag)
        if spec is not None and spec.kind == "bool":
            if value == "true" and flag != "detach" and flag not in BODY_BOOLEAN:
                problems.append(f"--{flag}: no body field known")
            elif value == "true" and flag in BODY_BOOLEAN and not body_value(body, flag):
                problems.append(f"--{flag}: {BODY_BOOLEAN[flag]} is not true in the body")
            if value == "true" and argv.flag(flag) is not True:
                problems.append(f"--{flag}: not in the argv")
            continue
        if flag == "allow":
            if "io.saferun.exceptions" not in (body.get("Labels") or {}):
                problems.append("--allow: no io.saferun.exceptions label")
            continue
        if flag == "security-opt" and value.startswith("apparmor=docker-default"):
            continue  # replaced by the stricter generated profile, said in a note
        pool = MEANING.get(flag, ((flag,), same))[0]
        wanted_argv.setdefault(pool[0] if len(pool) > 1 else flag, Counter()).update(
            MEANING.get(flag, ((flag,), same))[1](value))
        if flag not in CLI_ONLY:
            wanted_body.setdefault(body_flag(flag), Counter()).update(body_expected(flag, value))
    for key, wanted in wanted_argv.items():
        missing = wanted - argv_tokens(key, argv)
        if missing:
            problems.append(f"argv lacks {dict(missing)} (of --{key})")
    for key, wanted in wanted_body.items():
        if key not in BODY:
            problems.append(f"--{key}: no body field known")
            continue
        missing = wanted - Counter(BODY[key](body))
        if missing:
            problems.append(f"body lacks {dict(missing)} (of --{key})")
    return problems


def body_value(body: dict[str, Any], flag: str) -> Any:
    field = BODY_BOOLEAN[flag]
    return body[field] if field in body else body["HostConfig"].get(field)


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c['expect']}" for i, c in enumerate(CASES)])
def test_corpus_line(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    expect = case["expect"]
    words = split_command_line(shell_expand(case["line"], os.getcwd()))
    given = parse_run_args(words)
    for value in given.values("env"):  # `-e VAR` passes the caller's VAR on
        if "=" not in value:
            monkeypatch.setenv(value, f"{value} from the caller")
    try:
        argv, body = saferun_run(words)
    except Refused as refused:
        assert expect in refused.rule_ids, (expect, refused.render())
        return
    assert expect == "hardened", f"expected refusal '{expect}', got a manifest"
    assert given.image
    # The docker argv: hardened.
    assert argv[:2] == ["docker", "run"]
    assert argv[argv.index("--user") + 1] not in ("0", "root")
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert "--read-only" in argv and "--privileged" not in argv
    assert "no-new-privileges" in argv
    for flag in ("--memory", "--pids-limit"):
        assert flag in argv
    assert "--cpus" in argv or "--cpu-quota" in argv
    published = [argv[i + 1] for i, word in enumerate(argv) if word == "--publish"]
    if "127.0.0.1" not in case["line"] and "0.0.0.0" not in case["line"]:
        assert all(p.startswith("127.0.0.1:") for p in published), published
    rendered = parse_run_args(argv[2:])
    assert rendered.command == given.command  # the line's own command, word for word
    if given.flag("name") is None and not given.values("name"):
        assert "--name" not in argv  # as docker: a bare image gets a random name
    preset = preset_for_image(given.image)
    if preset is not None and not given.values("user"):  # found by the image's name
        assert rendered.last("user") == load_manifest(preset_path(preset)).app.user
    # The Engine API body: the same container.
    host = body["HostConfig"]
    assert body["User"] == rendered.last("user")
    assert host["CapDrop"] == ["ALL"] and host["ReadonlyRootfs"] is True
    assert "no-new-privileges" in host["SecurityOpt"] and not host.get("Privileged")
    assert host["Memory"] == size(rendered.last("memory") or "0") and host["PidsLimit"] > 0
    assert body["Image"] == rendered.image
    for binding in (b for bs in (host["PortBindings"] or {}).values() for b in bs):
        if "127.0.0.1" not in case["line"] and "0.0.0.0" not in case["line"]:
            assert binding["HostIp"] == "127.0.0.1"
    # No flag is dropped: every value given, in the argv and in the body.
    problems = dropped(given, rendered, body)
    assert not problems, (problems, case["line"])


def test_the_drop_check_can_fail() -> None:
    """A value lost on the way (a port, a second -e, a mount made read-only) is seen."""
    given = parse_run_args(split_command_line(
        "docker run -p 8080:80 -e A=1 -e A=1 -v /srv:/srv nginx:1"))
    argv = parse_run_args(["-p", "127.0.0.1:8081:80/tcp", "-e", "A=1", "--mount",
                           "type=bind,source=/srv,target=/srv,readonly", "nginx:1"])
    body = {"Env": ["A=1"], "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "8080"}]},
                                           "Binds": ["/srv:/srv:rw"], "NetworkMode": "x"}}
    assert dropped(given, argv, body) == [
        "argv lacks {'8080:80/tcp': 1} (of --publish)",  # another host port
        "argv lacks {'A=1': 1} (of --env)",  # given twice, kept once
        "argv lacks {'bind /srv -> /srv': 1} (of --volume)",  # made read-only
        "body lacks {'A=1': 1} (of --env)",
    ]
    assert dropped(given, given, body | {"Env": ["A=1", "A=1"]}) == []


def test_corpus_counts_are_in_the_docs() -> None:
    """docs/drop-in.md reports the corpus: keep the numbers in step."""
    kinds = Counter("hardened" if c["expect"] == "hardened" else "refused" for c in CASES)
    text = (Path(__file__).resolve().parents[3] / "docs" / "drop-in.md").read_text()
    assert f"{len(CASES)} real `docker run` lines" in text
    assert f"{kinds['hardened']} run hardened" in text
    assert f"{kinds['refused']} are refused" in text
