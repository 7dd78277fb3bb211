"""Image-derived defaults: the user an image's server runs as, and where it writes."""

from __future__ import annotations

from saferun.inputs.image_defaults import derive, entrypoint_drop_user
from saferun.model.image import ImageProbe, PathFact

PASSWD = ("root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/:/usr/sbin/nologin\n"
          "redis:x:999:999::/home/redis:/bin/sh\npostgres:x:999:999::/var/lib/postgresql:/bin/bash\n"
          "memcache:x:11211:11211::/:/bin/false\n")
GROUP = "root:x:0:\nadm:x:4:\nredis:x:999:\nmemcache:x:11211:\n"


def dir_fact(path: str, uid: int, gid: int, mode: int = 0o755, entries: int = 0) -> PathFact:
    return PathFact(path, uid, gid, mode, True, entries)


def test_an_entrypoint_that_drops_with_gosu_names_the_user() -> None:
    assert entrypoint_drop_user('#!/bin/sh\nif [ x ]; then\n  exec gosu redis "$0" "$@"\nfi') \
        == "redis"
    assert entrypoint_drop_user('exec su-exec postgres "$BASH_SOURCE" "$@"') == "postgres"
    assert entrypoint_drop_user("exec setpriv --reuid=mysql --regid=mysql --init-groups x") \
        == "mysql"
    assert entrypoint_drop_user("# exec gosu redis\nexec \"$@\"") is None  # a comment
    assert entrypoint_drop_user('exec gosu "$USER" x') is None  # not literal: not guessed


def test_redis_like_image_runs_as_its_user_with_its_directories_writable() -> None:
    probe = ImageProbe(
        "sha256:1", volumes=("/data",), entrypoint=("docker-entrypoint.sh",),
        passwd=PASSWD, group=GROUP,
        entrypoint_text='#!/bin/sh\nif [ "$(id -u)" = 0 ]; then exec gosu redis "$0" "$@"; fi\n',
        paths=(dir_fact("/data", 999, 999), dir_fact("/var/lib/redis", 999, 999, 0o750),
               dir_fact("/var/log/redis", 999, 4, 0o2750),
               dir_fact("/var/lib/full", 999, 999, entries=3),  # has content: not hidden
               dir_fact("/var/cache/apt/archives/partial", 999, 0),  # apt's own: skipped
               dir_fact("/var/lib/misc", 0, 0)))
    defaults = derive(probe)
    assert defaults.document["app"] == {"user": "999:999"}
    tmpfs = defaults.document["filesystem"]["tmpfs"]
    assert [t["target"] for t in tmpfs] == ["/tmp", "/var/lib/redis", "/var/log/redis"]
    assert tmpfs[2] == {"target": "/var/log/redis", "size": "16m", "mode": "2750",
                        "uid": 999, "gid": 4}
    assert any("drops root to (redis)" in n for n in defaults.notes)
    assert any(n.startswith("VOLUME /data (owner 999:999") for n in defaults.notes)


def test_the_image_user_wins_and_root_falls_through() -> None:
    memcached = ImageProbe("sha256:2", user="memcache", passwd=PASSWD, group=GROUP)
    assert derive(memcached).document == {"app": {"user": "11211:11211"}}
    numeric = ImageProbe("sha256:3", user="1001:0", passwd=PASSWD, group=GROUP)
    assert derive(numeric).document == {"app": {"user": "1001:0"}}
    root = ImageProbe("sha256:4", user="root", passwd=PASSWD, group=GROUP,
                      volumes=("/var/lib/postgresql/data",),
                      paths=(dir_fact("/var/lib/postgresql/data", 999, 999, 0o1777),))
    assert derive(root).document["app"] == {"user": "999:999"}  # the volume's owner


def test_no_user_is_guessed_without_evidence() -> None:
    nginx_like = ImageProbe("sha256:5", passwd=PASSWD, group=GROUP,
                            entrypoint_text="#!/bin/sh\nexec \"$@\"\n",
                            paths=(dir_fact("/var/cache/nginx", 101, 101),))
    assert derive(nginx_like).document == {}  # saferun's own default user applies
    mixed = ImageProbe("sha256:6", passwd=PASSWD, group=GROUP, volumes=("/a", "/b"),
                       paths=(dir_fact("/a", 999, 999), dir_fact("/b", 1000, 1000)))
    assert derive(mixed).document == {}
    unknown = ImageProbe("sha256:7", user="nosuchuser", passwd=PASSWD, group=GROUP)
    assert derive(unknown).document == {}
