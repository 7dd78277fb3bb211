"""Shell completion through click's own protocol: the script bash sources, then the words
bash hands over (COMP_WORDS, COMP_CWORD) and what comes back as COMPREPLY.

The engine is out of reach here (DOCKER_HOST names a socket that does not exist), so image
and container names give no candidates, quietly; tests/e2e/test_completion_e2e.py asks the
real engine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
           "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock", **extra}
    env.pop("DOCKER_CONTEXT", None)
    return env


def complete(words: str, tmp_path: Path, cwd: Path | None = None) -> list[str]:
    """click's bash protocol: COMP_WORDS as one string, the index of the word being typed."""
    split = words.split(" ")
    result = subprocess.run(
        [str(BIN / "saferun")], capture_output=True, text=True, timeout=60, check=False,
        cwd=cwd or tmp_path,
        env=_env(tmp_path, COMP_WORDS=words, COMP_CWORD=str(len(split) - 1),
                 _SAFERUN_COMPLETE="bash_complete"))
    assert result.returncode == 0 and not result.stderr, result.stderr
    return [line.partition(",")[2] for line in result.stdout.splitlines() if line]


def compreply(words: list[str], tmp_path: Path) -> list[str]:
    """What bash itself puts in COMPREPLY after sourcing `_SAFERUN_COMPLETE=bash_source`."""
    return _bash_completes(words, tmp_path)[0]


def _bash_completes(words: list[str], tmp_path: Path) -> tuple[list[str], list[str]]:
    """COMPREPLY, and the options the script set with `compopt` (outside a TAB press bash
    refuses compopt, so a function of that name records them; tests/e2e/
    test_completion_e2e.py presses TAB in a real terminal)."""
    script = ('eval "$(_SAFERUN_COMPLETE=bash_source saferun)"\n'
              'compopt() { echo "$@" >&2; }\n'
              'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))\n'
              '_saferun_completion saferun\n'
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    result = subprocess.run(["bash", "-c", script, "bash", *words], capture_output=True,
                            text=True, timeout=60, check=False, cwd=tmp_path, env=_env(tmp_path))
    assert result.returncode == 0, result.stderr
    return ([line for line in result.stdout.splitlines() if line],
            [line for line in result.stderr.splitlines() if line])


def test_bash_sources_the_script_and_completes_subcommands(tmp_path: Path) -> None:
    assert compreply(["saferun", "ve"], tmp_path) == ["verify"]
    assert compreply(["saferun", "run", "--all"], tmp_path) == ["--allow"]
    assert "host-network=" in compreply(["saferun", "run", "--allow", "host-n"], tmp_path)


def test_bash_adds_no_space_after_a_rule_id_or_a_folder(tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "app.toml").write_text("")
    assert _bash_completes(["saferun", "run", "--allow", "host-p"], tmp_path) == (
        ["host-pid="], ["-o nospace"])
    assert _bash_completes(["saferun", "init", "--allow", "privi"], tmp_path) == (
        ["privileged="], ["-o nospace"])
    assert _bash_completes(["saferun", "check", "apps"], tmp_path) == (["apps/"], ["-o nospace"])
    # a manifest file or a subcommand is a whole word: bash adds the space
    assert _bash_completes(["saferun", "check", "app."], tmp_path) == (["app.toml"], [])
    assert _bash_completes(["saferun", "ve"], tmp_path) == (["verify"], [])


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_shell_gets_a_script(shell: str, tmp_path: Path) -> None:
    result = subprocess.run([str(BIN / "saferun")], capture_output=True, text=True, timeout=60,
                            check=False, env=_env(tmp_path, _SAFERUN_COMPLETE=f"{shell}_source"))
    assert result.returncode == 0 and "_SAFERUN_COMPLETE" in result.stdout


def test_options_of_a_click_command(tmp_path: Path) -> None:
    assert complete("saferun check --fail", tmp_path) == ["--fail-on"]
    assert complete("saferun check --fail-on h", tmp_path) == ["high"]


def test_run_flags_are_saferun_and_docker_flags(tmp_path: Path) -> None:
    assert complete("saferun run --dry", tmp_path) == ["--dry-run"]
    assert complete("saferun run --read", tmp_path) == ["--read-only"]
    assert "--security-opt" in complete("saferun run --sec", tmp_path)


def test_run_allow_completes_rule_ids_with_their_equals_sign(tmp_path: Path) -> None:
    assert complete("saferun run --allow host-p", tmp_path) == ["host-pid="]
    # bash splits `--allow=host-p` at '=' (COMP_WORDBREAKS): the same candidates.
    assert complete("saferun run --allow = host-p", tmp_path) == ["host-pid="]
    assert "restart-always=" in complete("saferun run --allow ", tmp_path)


def test_run_values_follow_docker_grammar(tmp_path: Path) -> None:
    # -dp takes 80:80 as -p's value; --pull's value is then completed.
    assert complete("saferun run -dp 80:80 --pull m", tmp_path) == ["missing"]
    assert complete("saferun run -e A=1 --restart un", tmp_path) == ["unless-stopped"]
    assert complete("saferun run --format j", tmp_path) == ["json"]


def test_run_positional_is_a_manifest_and_nothing_after_the_image(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text("")
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "web.toml").write_text("")
    (tmp_path / "apps" / "notes.txt").write_text("")
    assert complete("saferun run -it --rm a", tmp_path) == ["app.toml", "apps/"]
    assert complete("saferun run apps/", tmp_path) == ["apps/web.toml"]
    # After the image every word is the container's command, flags included.
    assert complete("saferun run busybox:1 --al", tmp_path) == []
    assert complete("saferun run -- busybox:1 sh", tmp_path) == []


def test_rule_ids_for_explain_and_init_allow(tmp_path: Path) -> None:
    assert complete("saferun explain no-new-priv", tmp_path) == ["no-new-privileges"]
    assert complete("saferun init --allow privi", tmp_path) == ["privileged="]


def test_manifest_arguments_offer_toml_files(tmp_path: Path) -> None:
    (tmp_path / "saferun.toml").write_text("")
    (tmp_path / "README.md").write_text("")
    for command in ("check", "score", "export", "pin", "learn"):
        assert complete(f"saferun {command} ", tmp_path) == ["saferun.toml"], command


def test_engine_names_fail_quietly_to_no_candidates(tmp_path: Path) -> None:
    assert complete("saferun verify ", tmp_path) == []
    assert complete("saferun why ", tmp_path) == []
    assert complete("saferun watch ", tmp_path) == []
    assert complete("saferun image check ", tmp_path) == []
    assert complete("saferun run --volumes-from ", tmp_path) == []
