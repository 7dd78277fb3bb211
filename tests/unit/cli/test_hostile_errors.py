"""Issue 19, cases 5 and 6: every bad input ends in one paragraph and a documented code.

`run` keeps docker's codes (125 when saferun refuses, a usage error included); the other
commands exit 2 for a bad manifest or usage.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from saferun.cli import cli


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def _invoke(*args: str, both: bool = False) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args, result.exception)
    assert "Traceback" not in result.output + result.stderr
    return result.exit_code, result.output + result.stderr if both else result.stderr


def _manifest(here: Path, name: str, tail: str) -> str:
    path = here / name
    path.write_text(f'[app]\nname = "hostile-err"\nimage = "nginx:1.25"\n{tail}')
    return str(path)


@pytest.mark.parametrize("value", ["0", "true", "1.5", "{a = 1}", "[1]", '"NOT_A_CAP"'])
def test_capabilities_of_the_wrong_type(here: Path, value: str) -> None:
    path = _manifest(here, "cap.toml", f"[capabilities]\nadd = [{value}]\n")
    code, err = _invoke("run", "--dry-run", "--offline", "-f", path)
    assert code == 125 and "capabilities.add" in err
    code, err = _invoke("check", path)
    assert code == 2


def test_deeply_nested_arrays_are_one_paragraph(here: Path) -> None:
    path = here / "deep.toml"
    path.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    cases = ((("run", "--dry-run", "--offline", "-f", str(path)), 125),
             (("check", str(path)), 2), (("export", "--to", "compose", str(path)), 2))
    for args, expected in cases:
        code, err = _invoke(*args)
        assert code == expected, args
    code, err = _invoke("run", "--dry-run", "--offline", "-f", str(path))
    assert "nested more than" in err


def test_a_huge_manifest_is_refused(here: Path) -> None:
    path = _manifest(here, "big.toml", "# " + "x" * (2 << 20) + "\n")
    code, err = _invoke("check", path)
    assert code == 2


def test_a_path_too_long_for_the_kernel(here: Path) -> None:
    long = "/tmp/" + "a" * 4000
    code, err = _invoke("run", "--dry-run", "--offline", "-f", long)
    assert code == 125 and "File name too long" in err
    for args in (("check", long), ("export", "--to", "compose", long)):
        code, _ = _invoke(*args)
        assert code == 2, args


def test_an_unterminated_quote_in_a_health_command(here: Path) -> None:
    code, err = _invoke("run", "--dry-run", "--offline", "--health-cmd", 'echo "x', "nginx:1.25")
    assert code == 0  # docker hands CMD-SHELL to /bin/sh, which reports it in the container
    out = here / "init.toml"
    code, err = _invoke("init", "--from-docker-run",
                        "docker run --health-cmd 'echo \"x' nginx:1.25", "-o", str(out))
    assert code == 0
    code, err = _invoke("check", str(out))
    assert code in (0, 1)


def test_run_usage_errors_exit_125(here: Path) -> None:
    code, err = _invoke("run", "--dry-run", "--format", "xml", "nginx:1.25")
    assert code == 125 and "--format xml" in err
    code, err = _invoke("run", "--offline", "nginx:1.25")
    assert code == 125 and "--offline" in err


@pytest.mark.parametrize("value", ["name=a\nb", "name=a\rb", "name=a,alias=b\nc"])
def test_a_network_value_that_is_no_csv_record(here: Path, value: str) -> None:
    """Gap 3 of the audit: a newline or a carriage return in `--network name=...` was a
    csv.Error traceback in run, check and init; now one paragraph naming flag and value."""
    code, err = _invoke("run", "--dry-run", "--offline", "--network", value, "nginx:1.25")
    assert code == 125 and "--network" in err and repr(value) in err
    assert len(err.strip().splitlines()) == 1
    line = shlex.join(["docker", "run", "--network", value, "nginx:1.25"])
    result = CliRunner().invoke(cli, ["check", "--docker-run", line])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 2 and "--network" in result.output
    code, err = _invoke("init", "--from-docker-run", line, "-o", str(here / "n.toml"))
    assert code == 2 and "--network" in err and not (here / "n.toml").exists()


DEEP_TOML = "a = " + "[" * 5000 + "]" * 5000 + "\n"
# (name, content): too deep for the parser, not UTF-8, and far over the size bound (a sparse
# file of 700 MB: read whole it would take seconds and the memory; read bounded, a moment).
BAD_INPUTS = (("deep", DEEP_TOML.encode()), ("latin1", b'# caf\xe9\n'), ("huge", None))


def _bad_file(here: Path, name: str, kind: str, content: bytes | None) -> str:
    path = here / name
    if content is None:
        with open(path, "wb") as handle:
            handle.truncate(700 << 20)
    else:
        path.write_bytes(content)
    return str(path)


def _one_paragraph(code: int, err: str, expected: int, path: str) -> None:
    assert code == expected, err
    assert path in err and ("nested more than" in err or "not UTF-8" in err
                            or "bytes it may have" in err), err


@pytest.mark.parametrize(("kind", "content"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_every_input_file_has_the_limits(here: Path, monkeypatch: pytest.MonkeyPatch,
                                         kind: str, content: bytes | None) -> None:
    """Gap 4 of the audit: the team policy, the user config, a Compose file, --label-file,
    --env-file (also with --format json) and stack files had no depth or size limit, and
    a non-UTF-8 byte was a UnicodeDecodeError traceback. Each is one paragraph now."""
    image = "nginx:1.25"
    policy = _bad_file(here, "policy.toml", kind, content)
    monkeypatch.setenv("SAFERUN_POLICY", policy)
    _one_paragraph(*_invoke("run", "--dry-run", "--offline", image), 125, policy)
    monkeypatch.delenv("SAFERUN_POLICY")
    config = here / "xdg" / "saferun"
    config.mkdir(parents=True)
    path = _bad_file(config, "config.toml", kind, content)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(here / "xdg"))
    _one_paragraph(*_invoke("run", "--dry-run", "--offline", image), 125, path)
    monkeypatch.delenv("XDG_CONFIG_HOME")
    compose = _bad_file(here, "compose.yaml", kind, content if kind != "deep" else
                        ("services: " + "[" * 5000 + "]" * 5000 + "\n").encode())
    _one_paragraph(*_invoke("init", "--from-compose", compose, "-o", str(here / "o.toml")),
                   2, compose)
    # docker itself reads an --env-file of the printed line; the JSON body holds its values
    for flag, extra in (("--label-file", ()), ("--env-file", ("--format", "json"))):
        if kind == "deep":
            continue  # a label or env file is lines, not a tree
        path = _bad_file(here, "values", kind, content)
        code, err = _invoke("run", "--dry-run", "--offline", *extra, flag, path, image)
        _one_paragraph(code, err, 125, path)
    stack = _bad_file(here, "saferun.stack.toml", kind, content)
    for args in (("check", stack), ("export", "--to", "compose", stack)):
        _one_paragraph(*_invoke(*args, both=True), 2, stack)


@pytest.mark.parametrize("command", [("check",), ("export", "--to", "compose"), ("score",)])
def test_dev_zero_is_read_with_a_bound(here: Path, command: tuple[str, ...]) -> None:
    code, out = _invoke(*command, "/dev/zero", both=True)
    assert code == 2 and "bytes it may have" in out


def test_yaml_aliases_cannot_make_the_depth_walk_unbounded(here: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = here / "laughs.yaml"
    path.write_text("\n".join(lines) + "\nservices: {web: {image: '*a8'}}\n")
    code, err = _invoke("init", "--from-compose", str(path), "-o", str(here / "o.toml"))
    assert code == 2 and "values" in err
