"""Issue 19: a generated hostile-input test over every manifest string field and every
docker run flag value (hypothesis, a fixed seed, a bounded number of examples).

For each generated input: no traceback (only saferun's own errors, which carry documented
exit codes), `run`'s verdict is `check`'s and every exporter's (what run refuses, export
refuses by the same rule; check reports it), every output parses back to one document of
the intended shape (YAML, INI unit, AppArmor, JSON, init's TOML), and the printed
`--dry-run` line shlex-splits to the argv that would be launched.
"""

from __future__ import annotations

import configparser
import json
import os
import shlex
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomlkit
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saferun.app import networks
from saferun.app.check import check_docker_run, check_manifest
from saferun.app.export import ExportRequest, render_export
from saferun.app.init import from_docker_run_line
from saferun.app.planning import judged_plan
from saferun.cli import cli
from saferun.errors import EngineUnavailable, ExportError, Refused, SaferunError
from saferun.export import Target
from saferun.inputs.dockerargs import DOCKER_RUN_FLAGS
from saferun.inputs.loader import load_manifest, parse_manifest
from saferun.model.facts import OFFLINE_FACTS
from saferun.model.manifest import Manifest
from saferun.model.strict import StrictModel, field_types
from saferun.plan.planner import LaunchOptions
from saferun.render.argv import render_argv, shell_quote

FRAGMENTS = ["a", "x", "/", "../", "/etc", "\n", "\r", "\x00", "\x1b[2K", "\x1b]0;t\x07",
             "\u2028", "\u2029", "\x85", "\t", " ", "'", '"', "\\", "$(id)", "`id`", "${X}",
             ";", "|", "&", "#", "%", "$", "{", "}", "[", "]", ",", "=", ":", "@", "---",
             "kind: Pod", "é", "\U0001f642", "\ufeff", "0", "-1", "99999999999999999999"]
HOSTILE = st.one_of(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=6).map("".join),
                    st.text(max_size=12))
# A fixed seed and a bounded count in CI; SAFERUN_HOSTILE_EXAMPLES=N hunts with a random one.
SETTINGS = settings(max_examples=int(os.environ.get("SAFERUN_HOSTILE_EXAMPLES", "150")),
                    derandomize=not os.environ.get("SAFERUN_HOSTILE_EXAMPLES"), deadline=None,
                    database=None, suppress_health_check=list(HealthCheck))
# The Engine API body holds the files' contents, so only its dry run reads them.
READS_FILES = {"env-file", "label-file"}
BASE = {"app": {"name": "hostile-h", "image": "nginx:1.25"}}
# A minimal valid item for each list of tables, so the hostile value is the only fault.
ITEM = {("filesystem", "mounts"): {"type": "volume", "source": "hostile-v", "target": "/d"},
        ("filesystem", "tmpfs"): {"target": "/cache"}, ("network", "ports"): {"container": 80},
        ("network", "extra_networks"): {"name": "hostile-n"}}
UNIT_SECTIONS = {"Unit", "Container", "Service", "Install"}


def _string_fields(model: type[StrictModel], prefix: tuple[str, ...] = ()) -> list[
        tuple[tuple[str, ...], str]]:
    """(path, shape) of every field that holds a string: shape str, list, key or value."""
    found: list[tuple[tuple[str, ...], str]] = []
    for name, annotation in field_types(model).items():
        found += _shapes(annotation, (*prefix, name))
    return found


def _shapes(annotation: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _shapes(args[0], path)
    if origin in (typing.Union, types.UnionType):
        return [s for a in args for s in _shapes(a, path)][:2]
    if isinstance(annotation, type) and issubclass(annotation, StrictModel):
        return _string_fields(annotation, path)
    if origin is list and args:
        inner = args[0]
        inner = typing.get_args(inner)[0] if typing.get_origin(inner) is typing.Annotated \
            else inner
        if isinstance(inner, type) and issubclass(inner, StrictModel):
            return [((*path, "[0]", *sub), shape) for sub, shape in _string_fields(inner)]
        return [(path, "list")] if _is_str(inner) else []
    if origin is dict:
        return [(path, "key"), (path, "value")]
    if origin is typing.Literal or not _is_str(annotation):
        return []
    return [(path, "str")]


def _is_str(annotation: Any) -> bool:
    if typing.get_origin(annotation) is typing.Annotated:
        return _is_str(typing.get_args(annotation)[0])
    return annotation is str


FIELDS = sorted(set(_string_fields(Manifest)))


def _document(path: tuple[str, ...], shape: str, value: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(BASE))
    if "[0]" in path:
        index = path.index("[0]")
        head, tail = path[:index], path[index + 1:]
        item = json.loads(json.dumps(ITEM.get(head, {})))
        _set(item, tail, shape, value)
        _set(document, head, "raw", [item])
        return document
    _set(document, path, shape, value)
    return document


def _set(document: dict[str, Any], path: tuple[str, ...], shape: str, value: Any) -> None:
    for key in path[:-1]:
        document = document.setdefault(key, {})
    document[path[-1]] = {"str": value, "raw": value, "list": [value], "key": {value: "v"},
                          "value": {"k": value}}[shape]


def _run_verdict(manifest: Manifest, directory: Path) -> tuple[str, frozenset[str]]:
    try:
        plan = judged_plan(manifest, OFFLINE_FACTS, LaunchOptions(manifest_dir=str(directory)))
    except Refused as exc:
        return "refused", frozenset(exc.rule_ids)
    except SaferunError as exc:
        return type(exc).__name__, frozenset()
    argv = render_argv(plan, seccomp_path="/x.json" if plan.seccomp_profile else None)
    assert shlex.split(shell_quote(argv)) == argv
    return "ok", frozenset()


def _check_output(target: Target, files: list[tuple[str, str]], app: str) -> None:
    main = files[0][1]
    if target is Target.QUADLET:
        for line in main.split("\n"):  # systemd ends a line at \n only
            assert not line or line.startswith(("#", "[")) or "=" in line, repr(line)
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.optionxform = str  # type: ignore[assignment,method-assign]
        unit.read_string(main)
        assert set(unit.sections()) <= UNIT_SECTIONS
    else:
        documents = list(yaml.safe_load_all(main))
        if target is Target.KUBERNETES:  # the app's NetworkPolicy, then its Pod: no more
            assert [d["kind"] for d in documents] == ["NetworkPolicy", "Pod"], target
            for document in documents:
                assert set(document) == {"apiVersion", "kind", "metadata", "spec"}
        else:
            assert len(documents) == 1, target
            assert list(documents[0]["services"]) == [app]
    for name, content in files[1:]:
        if name.endswith(".json"):
            json.loads(content)
        elif name.endswith(".apparmor"):
            _check_apparmor(content)


def _check_apparmor(text: str) -> None:
    depth, profiles = 0, 0
    for line in text.splitlines():
        code = line.strip()
        if code.startswith("#") or not code:
            continue
        profiles += code.startswith("profile ")
        depth += code.count("{") - code.count("}") if not code.startswith('"') else 0
    assert profiles == 1 and depth == 0, text


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module", autouse=True)
def no_engine() -> Iterator[None]:
    """`run --offline` is compared, so check and export judge offline too: a hostile name
    such as `a` would otherwise be an ID prefix of some network on the engine at hand."""
    def absent() -> None:
        raise EngineUnavailable("no engine in this test")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(networks, "_engine_session", absent)
        yield


def test_every_string_field_is_seen() -> None:
    names = {".".join(p) for p, _ in FIELDS}
    assert {"app.name", "app.image", "app.env", "filesystem.mounts.[0].source",
            "logging.options", "network.ports.[0].host_ip", "security.devices"} <= names


@SETTINGS
@given(field=st.sampled_from(FIELDS), value=HOSTILE)
def test_hostile_manifest_values(workdir: Path, field: tuple[tuple[str, ...], str],
                                 value: str) -> None:
    path = workdir / "saferun.toml"
    try:
        path.write_text(tomlkit.dumps(_document(*field, value)))
    except (TypeError, ValueError):  # a NUL key tomlkit cannot write: not a manifest
        return
    try:
        manifest = load_manifest(path)
    except SaferunError as exc:
        assert exc.exit_code == 2 and exc.render().strip()
        return
    verdict, rules = _run_verdict(manifest, workdir)
    report = check_manifest(path)
    if verdict == "refused":
        assert report.error or rules <= {f.rule for f in report.findings}, (rules, report)
    for target in Target:
        try:
            rendered = render_export(ExportRequest((path,), target))
        except Refused as exc:
            assert verdict == "refused" and frozenset(exc.rule_ids) == rules, (target, exc)
            continue
        except ExportError:
            continue  # the target cannot express the value: said so, nothing written
        except SaferunError as exc:
            assert verdict not in ("ok", "refused"), (target, exc)
            continue
        assert verdict == "ok", (target, verdict, rules)
        _check_output(target, [(f.path, f.content) for f in rendered.result.files],
                      manifest.app.name)


VALUE_FLAGS = sorted(f.name for f in DOCKER_RUN_FLAGS if f.kind == "value" and not f.alias_of)


@SETTINGS
@given(flag=st.sampled_from(VALUE_FLAGS), value=HOSTILE)
def test_hostile_flag_values(workdir: Path, flag: str, value: str) -> None:
    if "\x00" in value:
        return  # no process receives a NUL in an argument
    words = [f"--{flag}", value, "nginx:1.25"]
    result = CliRunner().invoke(cli, ["run", "--dry-run", "--offline", *words])
    assert isinstance(result.exception, SystemExit | None), result.exception
    assert result.exit_code in (0, 125), (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr
    line = shlex.join(["docker", "run", *words])
    report = check_docker_run(line, cwd=str(workdir))
    if result.exit_code == 0:
        argv = shlex.split(result.stdout)
        assert argv[:2] == ["docker", "run"] and argv[-1] == "nginx:1.25"
        body = CliRunner().invoke(cli, ["run", "--dry-run", "--offline", "--format", "json",
                                        *words])
        if body.exit_code != 0 and flag in READS_FILES:
            return
        assert body.exit_code == 0 and json.loads(body.stdout)["Image"] == "nginx:1.25"
        try:
            written = from_docker_run_line(line, (), cwd=str(workdir),
                                           manifest_dir=str(workdir))
        except SaferunError:
            return
        parse_manifest(written.text.encode(), "init output")  # init reads its own file
    elif "refused by rule '" in result.stderr:
        rule = result.stderr.split("refused by rule '", 1)[1].split("'", 1)[0]
        assert report.error or rule in {f.rule for f in report.findings}, (rule, report)
