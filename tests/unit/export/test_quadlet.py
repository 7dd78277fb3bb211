"""Quadlet export: only keys podman-systemd.unit(5) documents, values that survive parsing."""

from __future__ import annotations

import re
from typing import Any

import pytest

from saferun.export import ExportInput, Target, export
from saferun.model.manifest import Manifest
from tests.unit.export.cases import CASES, run

# [Container] keys of podman-systemd.unit(5) (Podman 5.x, docs/source/markdown/
# podman-systemd.unit.5.md, table "Valid options for [Container]").
CONTAINER_KEYS = frozenset(
    """
AddCapability AddDevice AddHost Annotation AutoUpdate CgroupsMode ContainerName
ContainersConfModule DNS DNSOption DNSSearch DropCapability Entrypoint Environment
EnvironmentFile EnvironmentHost Exec ExposeHostPort GIDMap GlobalArgs Group GroupAdd HealthCmd
HealthInterval HealthLogDestination HealthMaxLogCount HealthMaxLogSize HealthOnFailure
HealthRetries HealthStartPeriod HealthStartupCmd HealthStartupInterval HealthStartupRetries
HealthStartupSuccess HealthStartupTimeout HealthTimeout HostName Image IP IP6 Label LogDriver
LogOpt Mask Memory Mount Network NetworkAlias NoNewPrivileges Notify PidsLimit Pod PodmanArgs
PublishPort Pull ReadOnly ReadOnlyTmpfs ReloadCmd ReloadSignal Retry RetryDelay Rootfs RunInit
SeccompProfile Secret SecurityLabelDisable SecurityLabelFileType SecurityLabelLevel
SecurityLabelNested SecurityLabelType ShmSize StartWithPod StopSignal StopTimeout SubGIDMap
SubUIDMap Sysctl Timezone Tmpfs UIDMap Ulimit Unmask User UserNS Volume WorkingDir
""".split()
)
# Keys of the plain systemd sections we write: systemd.unit(5) [Unit] and [Install],
# systemd.service(5) [Service]; Quadlet passes them through ([Install]: WantedBy supported).
SYSTEMD_KEYS = {
    "Unit": frozenset({"Description", "StartLimitIntervalSec", "StartLimitBurst"}),
    "Service": frozenset({"Restart"}),
    "Install": frozenset({"WantedBy"}),
}
BOOLEAN_KEYS = frozenset({"NoNewPrivileges", "ReadOnly", "ReadOnlyTmpfs", "RunInit"})


def parse(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of every line, as systemd's unit parser reads them."""
    entries, section = [], ""
    for line in text.splitlines():
        if not line or line.startswith(("#", ";")):
            continue
        header = re.fullmatch(r"\[([A-Za-z]+)\]", line)
        if header:
            section = header.group(1)
            continue
        key, sep, value = line.partition("=")
        assert sep and section, f"not a key=value line inside a section: {line!r}"
        entries.append((section, key, value))
    return entries


def unquote_words(value: str) -> list[str]:
    """systemd's exec-style split (quotes, C escapes), then its $$ and %% un-doubling."""
    words, pattern = [], re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
    for match in pattern.finditer(value):
        word = (
            re.sub(r"\\(.)", r"\1", match.group(1))
            if match.group(1) is not None
            else match.group(2)
        )
        words.append(word.replace("$$", "$").replace("%%", "%"))
    return words


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_key_is_documented(case: str) -> None:
    for unit in [f for f in run([CASES[case]], "quadlet").files if f.path.endswith(".container")]:
        entries = parse(unit.content)
        sections = [s for s, _, _ in entries]
        assert set(sections) == {"Unit", "Container", "Service", "Install"}
        for section, key, value in entries:
            allowed = CONTAINER_KEYS if section == "Container" else SYSTEMD_KEYS[section]
            assert key in allowed, f"[{section}] {key} is not a documented key"
            if key in BOOLEAN_KEYS:
                assert value in ("true", "false")
        assert [k for s, k, _ in entries if s == "Container"].count("Image") == 1


def unit(**sections: Any) -> dict[str, list[str]]:
    app = {"name": "web", "image": "busybox:1", **sections.pop("app", {})}
    result = export(
        [ExportInput(Manifest.from_data({"app": app, **sections}))], Target.QUADLET
    )
    keys: dict[str, list[str]] = {}
    for _, key, value in parse(result.main.content):
        keys.setdefault(key, []).append(value)
    return keys


def test_same_protections_as_saferun_run() -> None:
    keys = unit(capabilities={"add": ["NET_BIND_SERVICE"]})
    assert keys["User"] == ["65534"] and keys["Group"] == ["65534"]
    assert keys["DropCapability"] == ["all"] and keys["AddCapability"] == ["CAP_NET_BIND_SERVICE"]
    assert keys["NoNewPrivileges"] == ["true"] and keys["ReadOnly"] == ["true"]
    assert keys["SeccompProfile"] == ["%E/containers/systemd/web.seccomp.json"]
    assert keys["Tmpfs"] == ["/tmp:rw,noexec,nosuid,nodev,size=67108864,mode=1777"]
    assert keys["Memory"] == ["512m"] and keys["PidsLimit"] == ["256"]
    assert keys["Ulimit"] == ["nofile=1024:4096"]
    assert unquote_words(keys["PodmanArgs"][0]) == [
        "--security-opt=apparmor=saferun-web",
        "--memory-swap=512m",
        "--cpus=1",
        "--cgroupns=private",
    ]
    assert "UserNS" not in keys and "GlobalArgs" not in keys


def test_userns_required_is_per_container_auto() -> None:
    keys = unit(security={"userns": "required", "runtime": "gvisor"})
    assert keys["UserNS"] == ["auto"]
    assert keys["GlobalArgs"] == ["--runtime=runsc"]


def test_values_survive_systemd_parsing() -> None:
    command = ["sh", "-c", 'echo "$HOME" 100% \\ done']
    keys = unit(
        app={"command": command, "env": {"A": "b c", "P": "$5"}, "labels": {"team": "it's ops"}}
    )
    assert unquote_words(keys["Exec"][0]) == command
    assert [unquote_words(v) for v in keys["Environment"]] == [["A=b c"], ["P=$5"]]
    assert ["team=it's ops"] in [unquote_words(v) for v in keys["Label"]]


_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
              "s": " ", "\\": "\\", '"': '"', "'": "'"}


def quadlet_words(text: str) -> list[str]:
    """Words as Quadlet reads a list key (podman's splitString: SplitUnquote|SplitCUnescape)."""
    words, word, index, quoted = [], "", 0, False
    while index < len(text):
        char = text[index]
        if char == '"':
            quoted, index = not quoted, index + 1
            continue
        if char == "\\":
            kind = text[index + 1]
            if kind in "xuU":
                size = {"x": 2, "u": 4, "U": 8}[kind]
                word += chr(int(text[index + 2:index + 2 + size], 16))
                index += 2 + size
            else:
                word, index = word + _C_ESCAPES[kind], index + 2
            continue
        if char == " " and not quoted:
            words, word = [*words, word], ""
        else:
            word += char
        index += 1
    return [*words, word]


def test_control_characters_are_encoded_not_injected() -> None:
    hostile = "line\n[Service]\nExecStartPre=/bin/evil\r\x1b[2K\u2028\x85\t\"'\\ end"
    keys = unit(app={"env": {"A": hostile}, "command": ["sh", "-c", hostile]})
    assert "ExecStartPre" not in keys and "Restart" in keys  # no line was injected
    assert quadlet_words(keys["Environment"][0]) == [f"A={hostile}"]
    assert quadlet_words(keys["Exec"][0]) == ["sh", "-c", hostile]
    assert all(value.isprintable() for values in keys.values() for value in values)


def test_restart_and_health() -> None:
    keys = unit(
        restart={"policy": "on-failure", "max_retries": 2},
        healthcheck={"command": ["wget", "-q", "http://x/"], "timeout": "2500ms"},
    )
    assert keys["Restart"] == ["on-failure"] and keys["StartLimitBurst"] == ["3"]
    assert keys["HealthCmd"] == ['["wget", "-q", "http://x/"]']
    assert keys["HealthTimeout"] == ["2s500ms"]


def test_an_anonymous_volume_is_a_volume_podman_makes() -> None:
    keys = unit(filesystem={"mounts": [
        {"type": "volume", "target": "/data", "read_only": False},
        {"type": "volume", "target": "/seed"}]})
    assert keys["Volume"] == ["/data", "/seed:ro"]
    assert not any("anonymous" in line for line in keys.get("Mount", []))
