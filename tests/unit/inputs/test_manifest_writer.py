"""`saferun init`'s writer: commented TOML that reads back as the very same manifest."""

from __future__ import annotations

import tomllib

from saferun.inputs.dockerargs import split_command_line
from saferun.inputs.dockerrun import (
    base_for_image,
    build_manifest,
    from_docker_run,
    merge_document,
    parse_run_args,
)
from saferun.inputs.manifest_writer import (
    ImageFacts,
    propose_from_image,
    relative_sources,
    render_manifest,
)
from saferun.model.manifest import Manifest
from saferun.model.strict import to_document

LINE = (
    "docker run -d --name web -p 8080:80 -p 127.0.0.1:9090:9090/udp -v data:/data "
    "-v ./html:/usr/share/nginx/html:ro -e A=1 -e TOKEN --memory 256m --cpus 0.5 "
    "--ulimit nofile=100:200 --tmpfs /run:size=8m --cap-add NET_BIND_SERVICE "
    "--health-cmd 'curl -f http://localhost/ || exit 1' --restart on-failure:3 "
    "--allow host-pid='process viewer, SEC-1' --pid host nginx:1.27 nginx -g 'daemon off;'"
)


def manifest_of(line: str, cwd: str = "/srv/app") -> Manifest:
    d = from_docker_run(parse_run_args(split_command_line(line)), cwd=cwd)
    document = merge_document(base_for_image(str(d.image), d.options.name), d)
    if d.options.command:
        document["app"]["command"] = list(d.options.command)
    return build_manifest(document)


def test_round_trip_is_the_same_model() -> None:
    original = manifest_of(LINE)
    text = render_manifest(
        original, origin=LINE, session=["-d", "--name", "web"], manifest_dir="/srv/app"
    )
    reread = Manifest.from_data(tomllib.loads(text))
    assert to_document(reread, exclude=frozenset({"filesystem"})) == \
        to_document(original, exclude=frozenset({"filesystem"}))
    assert [m.source for m in reread.filesystem.mounts] == [
        "data",
        "./html",
    ]  # relative to the file
    assert reread.filesystem.tmpfs == original.filesystem.tmpfs
    assert reread.allow == {"host-pid": "process viewer, SEC-1"}


def test_written_file_is_commented_and_minimal() -> None:
    text = render_manifest(manifest_of("docker run busybox:1"), origin="docker run busybox:1")
    assert text.startswith("# saferun manifest")
    assert "# Written by `saferun init` from: docker run busybox:1" in text
    assert "[capabilities] (defaults)" in text
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert body == ["version = 1", "[app]", 'name = "busybox"', 'image = "busybox:1"']


def test_relative_sources_only_below_the_manifest_dir() -> None:
    document = {
        "filesystem": {
            "mounts": [
                {"type": "bind", "source": "/srv/app/data", "target": "/d"},
                {"type": "bind", "source": "/opt/shared", "target": "/s"},
                {"type": "volume", "source": "v", "target": "/v"},
            ]
        },
        "app": {"env_files": ["/srv/app/.env"]},
    }
    out = relative_sources(document, "/srv/app")
    assert [m["source"] for m in out["filesystem"]["mounts"]] == ["./data", "/opt/shared", "v"]
    assert out["app"]["env_files"] == ["./.env"]


def test_image_proposal_reads_user_ports_volumes_entrypoint() -> None:
    facts = ImageFacts.from_inspect(
        "redis:7",
        {
            "Config": {
                "User": "999:999",
                "ExposedPorts": {"6379/tcp": {}},
                "Volumes": {"/data": {}},
                "Entrypoint": ["docker-entrypoint.sh"],
                "Cmd": ["redis-server"],
                "WorkingDir": "/data",
            }
        },
    )
    proposal = propose_from_image(facts, "redis")
    m = build_manifest(proposal.document)
    assert m.app.user == "999:999"
    assert [(p.container, p.host, p.host_ip) for p in m.network.ports] == [
        (6379, None, "127.0.0.1")
    ]
    assert [(x.source, x.target, x.read_only) for x in m.filesystem.mounts] == [
        ("redis-data", "/data", False)
    ]
    assert any("docker-entrypoint.sh redis-server" in note for note in proposal.notes)
    # The same app as a command line gives the same manifest.
    d = from_docker_run(parse_run_args([*proposal.docker_args, "redis:7"]), cwd="/")
    assert build_manifest(merge_document(base_for_image("redis:7", None), d)) == m


def test_image_with_a_named_user_keeps_it_and_root_keeps_the_default() -> None:
    named = propose_from_image(ImageFacts(image="nginx:1", user="nginx"), "nginx")
    # A name is passed through (docker resolves it in the image), with a note to check it.
    assert named.document["app"]["user"] == "nginx"
    assert "a name" in named.notes[0]
    root = propose_from_image(ImageFacts(image="busybox:1"), "busybox")
    assert "user" not in root.document["app"] and "root" in root.notes[0]
