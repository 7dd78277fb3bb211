"""Issue 19: a generated hostile-input test over every manifest string field and every
docker run flag value.

Each field of the manifest model (a list of tables' fields included) and each value flag
of the flag table is a test of its own, crossed with the whole hostile corpus
(hostile_cases.CORPUS) and a few hypothesis examples (fixed seed; SAFERUN_HOSTILE_EXAMPLES=N
hunts with N random ones per field). For each input:
- no traceback: only saferun's own errors, with their documented exit codes;
- one verdict: `run` refuses  => `check` reports the rule and every exporter refuses it by
  the same rules (init too, for a flag); `run` accepts => `check` has no refusal-level
  finding and every exporter emits (or says why the target cannot hold the value);
- flag values reach the exporters too, through the manifest `init --from-docker-run`
  writes (which `run` must accept and which reads back);
- the printed `--dry-run` line shlex-splits to exactly the argv `run` would launch;
- every export (YAML, Quadlet INI, init's TOML, JSON, AppArmor) parses back to the
  structure the same export of a benign twin value has, key by key and value by value,
  with the hostile value in it as data only.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from saferun.app import networks
from saferun.app import run as run_module
from saferun.app.check import check_docker_run, check_manifest
from saferun.app.export import ExportRequest, render_export
from saferun.app.init import from_docker_run_line
from saferun.app.schema import manifest_schema
from saferun.cli import cli
from saferun.errors import EngineUnavailable, ExportError, Refused, SaferunError
from saferun.export import Target
from saferun.inputs.dockerargs import DOCKER_RUN_FLAGS
from saferun.inputs.loader import load_manifest, parse_manifest
from saferun.policy.rules import RULES
from tests.unit.app.hostile_cases import (
    CORPUS,
    LINK,
    REFUSED_RULES,
    VALUE_FLAGS,
    Field,
    benign_twin,
    document_with,
    launched_matches,
    map_strings,
    model_fields,
    read_export,
    schema_fields,
    substituted,
    toml_document,
    value_at,
    variants,
)

FRAGMENTS = ["a", "/", "../", "/etc", "\n", "\r", "\x1b[2K", "\u2028", "\x85", "'", '"',
             "\\", "$(id)", "%", ";", "#", "=", ":", ",", "---", "kind: Pod", "é", "0"]
HOSTILE = st.one_of(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=5).map("".join),
                    st.text(max_size=10))
HUNT = os.environ.get("SAFERUN_HOSTILE_EXAMPLES")
SETTINGS = settings(max_examples=int(HUNT or 3), derandomize=not HUNT, deadline=None,
                    database=None, suppress_health_check=list(HealthCheck))
# The Engine API body holds these files' contents, so only its dry run reads them.
READS_FILES = {"env-file", "label-file"}
IMAGE = "nginx:1.25"
FIELDS = sorted(model_fields())
CASES = [(field, variant) for field in FIELDS for variant in range(variants(field))]


def _with_corpus(test: Any) -> Any:
    for value in CORPUS:
        test = example(value=value)(test)
    return test


def _name(field: Field) -> str:
    return ".".join(field[0]) + f"<{field[1]}>"


def _case_name(case: tuple[Field, int]) -> str:
    return _name(case[0]) + (f"-item{case[1]}" if variants(case[0]) > 1 else "")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No engine for anything here (`run --offline` is compared, so check, export and init
    judge offline too: a hostile name such as `a` would otherwise be an ID prefix of some
    network on the engine at hand), and a private plan cache."""
    directory = tmp_path_factory.mktemp("hostile")
    os.symlink("/etc", directory / LINK)

    def absent() -> None:
        raise EngineUnavailable("no engine in this test")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(networks, "_engine_session", absent)
        patch.setenv("DOCKER_HOST", f"unix://{directory}/no-engine.sock")
        patch.setenv("XDG_CACHE_HOME", str(directory / "cache"))
        patch.delenv("SAFERUN_POLICY", raising=False)
        patch.setenv("XDG_CONFIG_HOME", str(directory / "config"))
        patch.chdir(directory)
        yield directory


# --- coverage: every field and every flag, and each really exercised --------------------

def test_the_fields_are_every_string_field_of_the_model_and_its_schema() -> None:
    assert set(FIELDS) == schema_fields(manifest_schema())
    names = {".".join(p) for p, _ in FIELDS}
    assert {"filesystem.mounts.[0].source", "filesystem.mounts.[0].target",
            "filesystem.tmpfs.[0].target", "network.ports.[0].host_ip",
            "network.extra_networks.[0].name", "logging.options"} <= names


def test_the_flags_are_every_value_flag_of_the_table() -> None:
    table = {f.name for f in DOCKER_RUN_FLAGS if f.kind == "value" and not f.alias_of}
    assert set(VALUE_FLAGS) == table and len(table) > 80


@pytest.mark.parametrize("field", FIELDS, ids=_name)
def test_each_field_holds_the_value_it_is_given(field: Field) -> None:
    """The value really is at the field in the file the test writes (an item of a list of
    tables included), so no field is a no-op."""
    for value in CORPUS:
        for variant in range(variants(field)):
            document = tomllib.loads(toml_document(document_with(field, value, variant)))
            assert value_at(document, field) == value, (field, value)


# --- the run of one input ------------------------------------------------------------------

def _run(*args: str) -> tuple[int, str, str, list[list[str]]]:
    """`saferun run ARGS` in process: (exit code, stdout, stderr, argv that launch would
    hand to docker, as `remember` builds it for the dry run and for the launch alike)."""
    launched: list[list[str]] = []
    real = run_module.remember

    def spy(*a: Any, **k: Any) -> list[str]:
        argv = real(*a, **k)
        launched.append(list(argv))
        return argv

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_module, "remember", spy)
        result = CliRunner().invoke(cli, ["run", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args, repr(result.exception))
    assert "Traceback" not in result.stderr
    assert result.exit_code in (0, 125), (args, result.exit_code, result.stderr)
    return result.exit_code, result.stdout, result.stderr, launched


def _dry_run(*args: str) -> tuple[int, str, frozenset[str]]:
    """A dry run whose printed line must split to the launched argv: (code, stderr, rules)."""
    code, stdout, stderr, launched = _run("--dry-run", "--offline", *args)
    if code == 0:
        assert len(launched) == 1, launched
        plan_profile = _printed_profile(stdout)
        assert shlex.split(stdout) == launched_matches(stdout, launched[0], plan_profile)
        return 0, stderr, frozenset()
    assert stderr.startswith("saferun: ") and stderr.strip(), stderr
    return code, stderr, frozenset(REFUSED_RULES.findall(stderr))


def _printed_profile(stdout: str) -> str | None:
    for word in shlex.split(stdout):
        if word.startswith("seccomp=") and os.path.isfile(word[8:]):
            return Path(word[8:]).read_text()
    return None


def _exports(path: Path) -> dict[Target, Any]:
    """Each target's export of the manifest, read back; or the error it raised."""
    out: dict[Target, Any] = {}
    for target in Target:
        try:
            rendered = render_export(ExportRequest((path,), target))
        except SaferunError as exc:
            out[target] = exc
            continue
        out[target] = read_export(target.value, [(f.path, f.content)
                                                 for f in rendered.result.files])
    return out


def _refusal_findings(report: Any) -> set[str]:
    return {f.rule for f in report.findings if f.active and RULES[f.rule].refusal}


def _judge_accepted(path: Path) -> dict[Target, Any]:
    """`run` accepted the manifest at `path`: check reports no refusal-level finding and
    every exporter emits, or says (ExportError, exit 2) that its target cannot hold it."""
    report = check_manifest(path)
    assert report.error is None, report.error
    assert not _refusal_findings(report), report.findings
    exports = _exports(path)
    for target, exported in exports.items():
        assert not isinstance(exported, SaferunError) or type(exported) is ExportError, (
            target, exported)
    return exports


def _judge_refused(path: Path, rules: frozenset[str]) -> None:
    """`run` refused the manifest by `rules`: check calls it invalid by the same rules (not
    a finding with a passing score) and every exporter refuses it by the same rules. A
    manifest that does not load is invalid for every command. (A valid one that `run`
    stops for want of something on this host, such as a label file that is not there,
    names no rule: exports do not read it.)"""
    report = check_manifest(path)  # INVALID by the same rules, as the manifest is for run
    assert report.error and set(REFUSED_RULES.findall(report.error)) >= rules, (rules, report)
    for target, exported in _exports(path).items():
        assert isinstance(exported, SaferunError), (target, "emitted what run refuses")
        if rules:
            assert isinstance(exported, Refused) and set(exported.rule_ids) == rules, (
                target, exported)


def _same_structure(hostile: dict[Target, Any], twin: dict[Target, Any], token: str,
                    value: str) -> bool:
    """Every export of the hostile value equals the export of its benign twin with the
    twin replaced by the value: nested keys, values, documents and unit lines all alike."""
    compared = False
    for target, read in hostile.items():
        other = twin.get(target)
        if isinstance(read, SaferunError) or isinstance(other, SaferunError) or other is None:
            continue
        if token != value:
            # profiles hash the manifest's fields, so their file names and contents differ
            read = {n: r for n, r in read.items() if not n.endswith((".json", ".apparmor"))}
            other = {n: r for n, r in other.items() if not n.endswith((".json", ".apparmor"))}
            read, other = _drop_hashes(read), _drop_hashes(other)
        assert read == substituted(other, token, value), (target, value)
        compared = True
    return compared


_HASH = re.compile(r"[0-9a-f]{12,64}")


def _drop_hashes(structure: Any) -> Any:
    """Profile names and files carry a hash of the manifest: equal only up to that hash."""
    return map_strings(structure, lambda text: _HASH.sub("<hash>", text))


def _against_twin(case: Any, value: str) -> None:
    """Run `case` (value -> (verdict, exports)) for the hostile value and, when both are
    accepted, for its benign twin; their exports must have one structure."""
    verdict, exports = case(value, "")
    token = benign_twin(value)
    if verdict != "ok" or token == value:
        return
    twin_verdict, twin = case(token, "twin-")
    if twin_verdict != "ok":
        return
    if "init" in exports:
        hostile_init, twin_init = exports.pop("init"), twin.pop("init")
        assert hostile_init == substituted(twin_init, token, value), value
    _same_structure(exports, twin, token, value)


def _manifest_case(workdir: Path, case: tuple[Field, int], value: str,
                   name: str) -> tuple[str, Any]:
    """Write, load, run, check and export one manifest: ('invalid'|'refused'|'stopped'|'ok',
    exports)."""
    field, variant = case
    path = workdir / name
    path.write_text(toml_document(document_with(field, value, variant)), encoding="utf-8")
    assert value_at(tomllib.loads(path.read_text()), field) == value
    try:
        load_manifest(path)
    except SaferunError as exc:
        assert exc.exit_code == 2 and exc.render().strip()
        code, stderr, _ = _dry_run("-f", str(path))
        assert code == 125 and "Traceback" not in stderr
        _judge_refused(path, frozenset())
        return "invalid", None
    code, stderr, rules = _dry_run("-f", str(path))
    if code == 125 and rules:
        _judge_refused(path, rules)
        return "refused", None
    if code == 125:
        return "stopped", None
    return "ok", _judge_accepted(path)


# --- the generated tests -------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=_case_name)
@SETTINGS
@given(value=HOSTILE)
@_with_corpus
def test_hostile_manifest_value(workdir: Path, case: tuple[Field, int], value: str) -> None:
    _against_twin(lambda v, prefix: _manifest_case(workdir, case, v, f"{prefix}saferun.toml"),
                  value)


def _flag_case(workdir: Path, flag: str, value: str, out: str) -> tuple[str, Any]:
    words = [f"--{flag}", value, IMAGE]
    code, stderr, rules = _dry_run(*words)
    line = shlex.join(["docker", "run", *words])
    report = check_docker_run(line, cwd=str(workdir))
    if code == 125:
        assert report.error or rules <= {f.rule for f in report.findings}, (rules, report)
        if rules:
            with pytest.raises(Refused) as caught:
                from_docker_run_line(line, (), cwd=str(workdir), manifest_dir=str(workdir))
            assert set(caught.value.rule_ids) == rules
        return "refused", None
    body = CliRunner().invoke(cli, ["run", "--dry-run", "--offline", "--format", "json",
                                    *words])
    assert "Traceback" not in body.stderr
    if not (body.exit_code == 125 and flag in READS_FILES):  # the file it names is not here
        assert body.exit_code == 0, body.stderr
        assert json.loads(body.stdout)["Image"] == IMAGE
    # What run accepts, init writes, run accepts again, check and every exporter judge alike.
    written = from_docker_run_line(line, (), cwd=str(workdir), manifest_dir=str(workdir))
    parse_manifest(written.text.encode(), "init output", base_dir=workdir)  # reads back
    path = workdir / out
    path.write_text(written.text, encoding="utf-8")
    again, stderr, _ = _dry_run("-f", str(path))
    assert again == 0, stderr
    exports = _judge_accepted(path)
    exports["init"] = tomllib.loads(written.text)  # type: ignore[index]
    return "ok", exports


@pytest.mark.parametrize("flag", VALUE_FLAGS)
@SETTINGS
@given(value=HOSTILE)
@_with_corpus
def test_hostile_flag_value(workdir: Path, flag: str, value: str) -> None:
    if "\x00" in value:
        return  # no process receives a NUL in an argument
    _against_twin(lambda v, prefix: _flag_case(workdir, flag, v, f"{prefix}init.toml"), value)
