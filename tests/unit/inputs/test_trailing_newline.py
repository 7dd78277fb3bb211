"""Issue 19, case 9: a trailing newline is not a valid name (`$` matches before one).

Names, keys and paths are matched whole (re.fullmatch, or a model pattern whose closing `$`
saferun.model.strict.meta turns into \\Z), and the error names the key and shows the value
escaped, in one paragraph.
"""

from __future__ import annotations

import pytest

from saferun.errors import SaferunError
from saferun.inputs.dockerargs import split_command_line
from saferun.inputs.dockerrun import (
    base_for_image,
    build_manifest,
    from_docker_run,
    merge_document,
    parse_run_args,
)

FLAGS = [
    (["-e", "A\n=1"], "'A\\n'"),
    (["-e", "A\n"], "'A\\n'"),
    (["--label", "k\n=v"], "'k\\n'"),
    (["--cidfile", "/tmp/hostile-cid\n"], "--cidfile"),
    (["-v", "abc\n:/data"], "'abc\\n'"),
    (["--add-host", "h\n:1.2.3.4"], "'h\\n:1.2.3.4'"),
    (["--name", "hostile\n"], "'hostile\\n'"),
    (["--hostname", "h\n"], "app.hostname"),
    (["--log-opt", "tag\n=x"], "'tag\\n'"),
    (["--sysctl", "net.ipv4.ip_forward\n=1"], "net.ipv4.ip_forward"),
]


def _run_reads(flags: list[str]) -> None:
    words = [*split_command_line("docker run"), *flags, "nginx:1.25"]
    parsed = parse_run_args(words)
    dropin = from_docker_run(parsed, cwd="/tmp")
    build_manifest(merge_document(base_for_image(parsed.image, None), dropin))


@pytest.mark.parametrize(("flags", "shown"), FLAGS)
def test_a_trailing_newline_is_refused(flags: list[str], shown: str) -> None:
    with pytest.raises(SaferunError) as caught:
        _run_reads(flags)
    assert shown in caught.value.message
    assert "\n" not in caught.value.message.replace("\n  ", " ")  # one paragraph


@pytest.mark.parametrize("flags", [["-e", "A=1\n"], ["--label", "k=v\n"], ["-v", "abc:/data"]])
def test_a_newline_in_a_value_is_kept(flags: list[str]) -> None:
    _run_reads(flags)  # values are data: docker passes them on unchanged
