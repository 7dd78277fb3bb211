"""Issue 19, case 2: every string is encoded for the format it lands in.

YAML ends a comment (and, in YAML 1.1, a line) at U+0085, U+2028 and U+2029 as well as at
a newline; a manifest string that reaches a comment or a value must not become a second
document, a new key or a privileged Pod.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from saferun.app.export import ExportRequest, render_export
from saferun.export import Target
from saferun.export.common import comment_text, dump_yaml  # comment_text: re-exported

SEPARATORS = ("\u2028", "\u2029", "\x85", "\r", "\x1b", "\x00", "\n", "\v")


def _payload(sep: str) -> str:
    return sep.join(["x", "---", "kind: Pod", "spec:", "  hostPID: true", ""])


def _manifest(tmp_path: Path, tag: str) -> Path:
    path = tmp_path / "saferun.toml"
    escaped = tag.encode("unicode_escape").decode().replace("\\x", "\\u00")
    path.write_text(f'[app]\nname = "hostile-enc"\nimage = "nginx:1.25"\n'
                    f'[logging]\ndriver = "json-file"\n[logging.options]\ntag = "{escaped}"\n')
    return path


def test_a_separator_in_a_comment_stays_in_the_comment(tmp_path: Path) -> None:
    for sep in SEPARATORS:
        path = _manifest(tmp_path, _payload(sep))
        for target, kinds in ((Target.KUBERNETES, {"NetworkPolicy", "Pod"}),
                              (Target.COMPOSE, {None})):
            text = render_export(ExportRequest((path,), target)).result.files[0].content
            for raw in ("\u2028", "\u2029", "\x85", "\r", "\x1b", "\x00", "\v"):
                assert raw not in text, (target, repr(sep))
            documents = list(yaml.safe_load_all(text))
            assert len(documents) == len(kinds), (target, repr(sep))
            assert {d.get("kind") for d in documents} == kinds
            for document in documents:
                assert "hostPID" not in str(document.get("spec", ""))
                if target is Target.KUBERNETES:
                    assert set(document) == {"apiVersion", "kind", "metadata", "spec"}


def test_comment_text_escapes_instead_of_dropping() -> None:
    assert comment_text("a\u2028b\x1bc\x85d é") == "a\\u2028b\\x1bc\\x85d é"


def test_values_with_separators_are_double_quoted_and_read_back() -> None:
    for sep in SEPARATORS:
        value = _payload(sep)
        text = dump_yaml([{"a": value, "b": ["ok"]}], ["# head"])
        assert "\u2028" not in text and "\u2029" not in text and "\x85" not in text
        assert list(yaml.safe_load_all(text)) == [{"a": value, "b": ["ok"]}]
