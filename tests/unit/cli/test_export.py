"""`saferun export` through click's CliRunner: files, notes on stderr, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from saferun.cli import cli

DATA = Path(__file__).resolve().parents[2] / "data" / "export"


def test_stdout_gets_the_main_file_and_stderr_the_notes(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["export", str(DATA / "web.toml"), "--to", "compose"])
    assert result.exit_code == 0, result.stderr
    assert "web" in yaml.safe_load(result.stdout)["services"]
    assert "saferun: note: web: seccomp:" in result.stderr
    assert "not written (standard output): web.apparmor, web.seccomp.json" in result.stderr


def test_output_directory_gets_every_file(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    args = ["export", str(DATA / "web.toml"), str(DATA / "minimal.toml"), "--to", "kubernetes",
            "--kind", "deployment", "--kube-version", "1.29", "-o", f"{out}/"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["apparmor/saferun-minimal", "apparmor/saferun-web", "kubernetes.yaml",
                       "seccomp/saferun/minimal.json", "seccomp/saferun/web.json"]
    kinds = [d["kind"] for d in yaml.safe_load_all((out / "kubernetes.yaml").read_text())]
    assert kinds == ["NetworkPolicy", "NetworkPolicy", "Deployment", "Deployment"]
    before = (out / "kubernetes.yaml").read_bytes()
    again = runner.invoke(cli, args)  # rewriting in place works and changes nothing
    assert again.exit_code == 0 and (out / "kubernetes.yaml").read_bytes() == before


def test_output_is_byte_identical_between_runs(runner: CliRunner, tmp_path: Path) -> None:
    contents = []
    for name in ("a", "b"):
        out = tmp_path / name / "web.container"
        result = runner.invoke(cli, ["export", str(DATA / "web.toml"), "--to", "quadlet",
                                     "-o", str(out)])
        assert result.exit_code == 0, result.stderr
        contents.append({p.name: p.read_bytes() for p in out.parent.iterdir()})
    assert contents[0] == contents[1]
    assert sorted(contents[0]) == ["web.apparmor", "web.container", "web.seccomp.json"]


@pytest.mark.parametrize(("args", "message"), [
    (["--to", "quadlet", "{web}", "{minimal}"], "several Quadlet units"),
    (["--to", "compose", "--kind", "pod", "{web}"], "only apply to --to kubernetes"),
    (["--to", "kubernetes", "--kube-version", "1.2", "{web}"], "--kube-version '1.2'"),
    (["--to", "compose", "{bad}"], "invalid manifest"),
    (["--to", "compose", "{web}", "{web}"], "more than one manifest"),
])
def test_usage_and_manifest_errors_exit_2(runner: CliRunner, tmp_path: Path, args: list[str],
                                          message: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[app]\nname = "x"\nimage = "busybox"\nuser = "0"\n')
    paths = {"web": str(DATA / "web.toml"), "minimal": str(DATA / "minimal.toml"),
             "bad": str(bad)}
    result = runner.invoke(cli, ["export", *[a.format(**paths) for a in args]])
    assert result.exit_code == 2
    assert message in result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_relative_paths_follow_the_output_directory(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    result = runner.invoke(cli, ["export", str(DATA / "kata-volume.toml"), "--to", "compose",
                                 "-o", f"{out}/"])
    assert result.exit_code == 0, result.stderr
    service = yaml.safe_load((out / "compose.yaml").read_text())["services"]["db"]
    env_file = (out / service["env_file"][0]).resolve()
    assert env_file == (DATA / "app.env").resolve()


def test_kubernetes_options_refused_for_other_targets(runner: CliRunner) -> None:
    for option in (["--namespace", "x"], ["--pin"], ["--profiles", "operator"]):
        result = runner.invoke(cli, ["export", str(DATA / "web.toml"), "--to", "compose",
                                     *option])
        assert result.exit_code == 2 and "only apply to --to kubernetes" in result.stderr


def test_profiles_operator_through_the_cli(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["export", str(DATA / "web.toml"), "--to", "kubernetes",
                                 "--profiles", "operator", "--namespace", "shop"])
    assert result.exit_code == 0, result.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout) if d]
    assert kinds[0] == "SeccompProfile" and kinds[-1] == "Pod"
    assert "not written" not in result.stderr or "seccomp" not in result.stderr.split(
        "not written")[1]
