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


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args, result.exception)
    assert "Traceback" not in result.output + result.stderr
    return result.exit_code, result.stderr


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
