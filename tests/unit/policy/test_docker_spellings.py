"""Issue 19, case 4: values are judged as docker reads them, the same in `run` and `check`.

docker lower-cases a --mount type, keeps the last of a repeated key (src and source are one
key), reads `-u 00` as uid 0, and binds every address for `[::0]`, `0:0:0:0:0:0:0:0` and
`::ffff:0.0.0.0`.
"""

from __future__ import annotations

import pytest

from saferun.app.check import check_docker_run
from saferun.errors import Refused
from saferun.inputs.dockerargs import split_command_line
from saferun.inputs.dockerrun import (
    base_for_image,
    build_manifest,
    from_docker_run,
    merge_document,
    parse_run_args,
)
from saferun.model.manifest import Manifest
from saferun.model.normalise import is_all_addresses, is_root_user

LINES = [
    ("--mount type=BIND,source=/etc,target=/x", "sensitive-host-mount"),
    ("--mount type=bind,source=/tmp,src=/etc,target=/x", "sensitive-host-mount"),
    ("--mount type=bind,src=/tmp,source=/etc,target=/x", "sensitive-host-mount"),
    ("--mount TYPE=Bind,SRC=/etc,dst=/x", "sensitive-host-mount"),
    ("-u 00", "run-as-root"),
    ("-u 0000:0", "run-as-root"),
    ("-u root:1000", "run-as-root"),
    ("-p [::0]:18300:80", "port-host-ip"),
    ("-p [::ffff:0.0.0.0]:18301:80", "port-host-ip"),
    ("-p [0:0:0:0:0:0:0:0]:18302:80", "port-host-ip"),
    ("-p 0.0.0.0:18303:80", "port-host-ip"),
]


def run_rules(args: str) -> set[str]:
    """The rules `saferun run` refuses or warns about for this line (pure part of run)."""
    parsed = parse_run_args(split_command_line(f"docker run {args} nginx:1.25"))
    dropin = from_docker_run(parsed, cwd="/tmp")
    try:
        manifest = build_manifest(merge_document(base_for_image(parsed.image, None), dropin))
    except Refused as exc:
        return set(exc.rule_ids)
    return {w.rule for w in manifest.warnings()}


@pytest.mark.parametrize(("args", "rule"), LINES)
def test_run_and_check_read_the_value_as_docker_does(args: str, rule: str) -> None:
    assert rule in run_rules(args)
    report = check_docker_run(f"docker run {args} nginx:1.25", cwd="/tmp")
    assert rule in {f.rule for f in report.findings}


def test_a_manifest_host_ip_in_any_spelling_of_every_address_warns() -> None:
    for host_ip in ("0:0:0:0:0:0:0:0", "::ffff:0.0.0.0", "::", "0.0.0.0"):
        manifest = Manifest.from_data({
            "app": {"name": "hostile-ip", "image": "nginx:1.25"},
            "network": {"ports": [{"container": 80, "host_ip": host_ip}]}})
        assert "port-host-ip" in {w.rule for w in manifest.warnings()}, host_ip


def test_normalise() -> None:
    assert all(is_root_user(u) for u in ("0", "00", "0000:0", "root", "root:1", " 0"))
    assert not any(is_root_user(u) for u in ("1000", "10", "rooty", "", "٠", "0x0"))
    assert all(is_all_addresses(a) for a in ("", "::", "[::0]", "0:0:0:0:0:0:0:0",
                                             "::ffff:0.0.0.0", "0.0.0.0", "::%eth0"))
    assert not any(is_all_addresses(a) for a in ("127.0.0.1", "::1", "::ffff:127.0.0.1",
                                                 "10.0.0.1", "fe80::1", "not-an-ip"))
