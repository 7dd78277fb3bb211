"""Issue 19, case 7: `init` writes a file it can read back, whatever a flag value holds.

The docker run line is repeated in a comment; an ESC, NUL or line separator in a value is
escaped there (TOML ends a comment at a newline and refuses control characters in one),
and the values themselves are TOML strings that read back byte for byte.
"""

from __future__ import annotations

import shlex

import pytest

from saferun.app.init import from_docker_run_line
from saferun.inputs.loader import parse_manifest
from saferun.model.encoding import comment_text

VALUES = ["x\x1b[31my", "x\x00y", "a\u2028b\u2029c\x85d", "x\x7fy", "x\ry", "x\ny", "x\ty"]


@pytest.mark.parametrize("value", VALUES)
def test_init_output_reads_back_to_the_same_values(value: str) -> None:
    line = (f"docker run -e {shlex.quote('A=' + value)} --label {shlex.quote('k=' + value)} "
            "nginx:1.25")
    result = from_docker_run_line(line, (), cwd="/tmp", manifest_dir="/tmp")
    manifest = parse_manifest(result.text.encode(), "init output")
    assert manifest.app.env == {"A": value}
    assert manifest.app.labels == {"k": value}
    comments = [row for row in result.text.splitlines() if row.startswith("#")]
    assert any("Written by `saferun init`" in row for row in comments)


def test_comment_text() -> None:
    assert comment_text("a\x1bb\x00c\u2028d\U000e0001") == "a\\x1bb\\x00c\\u2028d\\U000e0001"
    assert comment_text("plain é ü") == "plain é ü"
