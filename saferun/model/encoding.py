"""Text made safe for an output format by encoding it, never by dropping characters.

A comment holds one line in every format saferun writes (TOML, YAML, INI units, AppArmor),
and YAML ends a line at U+0085, U+2028 and U+2029 as well as at a newline. Every character
that is not printable is written as its backslash escape instead, so the comment stays one
line and still shows what the input said.
"""

from __future__ import annotations


def comment_text(text: str) -> str:
    """`text` for one comment line: non-printable characters as \\xNN, \\uNNNN, \\UNNNNNNNN."""
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
