"""The `docker run` command line, as data and a parser that reads it the way docker does.

The flag table is the option list of `docker container run` in the Docker CLI reference
(docs/reference/commandline/container_run.md, Docker 28/29), plus the two hidden aliases
the CLI still accepts (`--net`, `--net-alias`) and `--kernel-memory`, which 28.x still
parses. Each flag records its long name, its one-letter alias, whether it takes a value,
and whether repeating it adds (list/map types) or replaces (everything else).

The grammar is pflag's with interspersed arguments off, as the docker CLI sets it:
`--flag=value` and `--flag value`; `-e A=1`, `-eA=1`, `-e=A=1`; bundled booleans (`-dit`)
whose last letter may take a value (`-itp 80:80`, `-itp80:80`); booleans accept
`--rm=false`; `--` ends the flags; the first word that is not a flag is the image and
every word after it belongs to the container's command, even words that look like flags.
Errors use docker's wording so a drop-in user recognises them.

Pure: no I/O. `saferun run` passes its own flags in as an extra table so one parser reads
the whole line.
"""

from __future__ import annotations

from saferun.errors import DockerArgsError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: see the classes below
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Literal

    FlagKind = Literal["bool", "value"]


# Plain slotted classes, not dataclasses or typing.NamedTuple: the plan cache parses every
# command line it has not seen with this module, and importing dataclasses (inspect) or
# typing (with re, enum, collections) costs 3-10 ms there.
class Flag:
    """One `docker run` option."""

    __slots__ = ("name", "short", "kind", "repeatable", "value_type", "alias_of")

    def __init__(self, name: str, short: str | None = None, kind: FlagKind = "value",
                 repeatable: bool = False, value_type: str = "string",
                 alias_of: str | None = None) -> None:
        self.name = name  # long name without dashes
        self.short = short  # one-letter alias
        self.kind = kind
        self.repeatable = repeatable  # list/map flags accumulate; others: the last one wins
        self.value_type = value_type  # the type docker's reference shows (list, bytes...)
        self.alias_of = alias_of  # hidden aliases (--net) resolve to their flag (--network)

    def _key(self) -> tuple[object, ...]:
        return (self.name, self.short, self.kind, self.repeatable, self.value_type,
                self.alias_of)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Flag) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Flag({})".format(", ".join(map(repr, self._key())))


def _b(name: str, short: str | None = None) -> Flag:
    return Flag(name, short, "bool", False, "bool")


def _v(name: str, value_type: str = "string", short: str | None = None) -> Flag:
    return Flag(name, short, "value", False, value_type)


def _list(name: str, value_type: str = "list", short: str | None = None) -> Flag:
    return Flag(name, short, "value", True, value_type)


# Every option of `docker container run` in the current Docker CLI reference, in its order.
DOCKER_RUN_FLAGS: tuple[Flag, ...] = (
    _list("add-host"),
    _list("annotation", "map"),
    _list("attach", short="a"),
    _v("blkio-weight", "uint16"),
    _list("blkio-weight-device"),
    _list("cap-add"),
    _list("cap-drop"),
    _v("cgroup-parent"),
    _v("cgroupns"),
    _v("cidfile"),
    _v("cpu-count", "int64"),
    _v("cpu-percent", "int64"),
    _v("cpu-period", "int64"),
    _v("cpu-quota", "int64"),
    _v("cpu-rt-period", "int64"),
    _v("cpu-rt-runtime", "int64"),
    _v("cpu-shares", "int64", short="c"),
    _v("cpus", "decimal"),
    _v("cpuset-cpus"),
    _v("cpuset-mems"),
    _b("detach", "d"),
    _v("detach-keys"),
    _list("device"),
    _list("device-cgroup-rule"),
    _list("device-read-bps"),
    _list("device-read-iops"),
    _list("device-write-bps"),
    _list("device-write-iops"),
    _b("disable-content-trust"),
    _list("dns"),
    _list("dns-option"),
    _list("dns-search"),
    _v("domainname"),
    _v("entrypoint"),
    _list("env", short="e"),
    _list("env-file"),
    _list("expose"),
    _v("gpus", "gpu-request"),
    _list("group-add"),
    _v("health-cmd"),
    _v("health-interval", "duration"),
    _v("health-retries", "int"),
    _v("health-start-interval", "duration"),
    _v("health-start-period", "duration"),
    _v("health-timeout", "duration"),
    _b("help"),
    _v("hostname", short="h"),
    _b("init"),
    _b("interactive", "i"),
    _v("io-maxbandwidth", "bytes"),
    _v("io-maxiops", "uint64"),
    _v("ip", "ip"),
    _v("ip6", "ip"),
    _v("ipc"),
    _v("isolation"),
    _v("kernel-memory", "bytes"),  # deprecated; still parsed by the 28.x CLI
    _list("label", short="l"),
    _list("label-file"),
    _list("link"),
    _list("link-local-ip"),
    _v("log-driver"),
    _list("log-opt"),
    _v("mac-address"),
    _v("memory", "bytes", short="m"),
    _v("memory-reservation", "bytes"),
    _v("memory-swap", "bytes"),
    _v("memory-swappiness", "int64"),
    _list("mount", "mount"),
    _v("name"),
    _list("network", "network"),
    _list("network-alias"),
    _b("no-healthcheck"),
    _b("oom-kill-disable"),
    _v("oom-score-adj", "int"),
    _v("pid"),
    _v("pids-limit", "int64"),
    _v("platform"),
    _b("privileged"),
    _list("publish", short="p"),
    _b("publish-all", "P"),
    _v("pull"),
    _b("quiet", "q"),
    _b("read-only"),
    _v("restart"),
    _b("rm"),
    _v("runtime"),
    _list("security-opt"),
    _v("shm-size", "bytes"),
    _b("sig-proxy"),
    _v("stop-signal"),
    _v("stop-timeout", "int"),
    _list("storage-opt"),
    _list("sysctl", "map"),
    _list("tmpfs"),
    _b("tty", "t"),
    _list("ulimit", "ulimit"),
    _b("use-api-socket"),
    _v("user", short="u"),
    _v("userns"),
    _v("uts"),
    _list("volume", short="v"),
    _v("volume-driver"),
    _list("volumes-from"),
    _v("workdir", short="w"),
    # Hidden aliases the CLI keeps for old scripts.
    Flag("net", None, "value", True, "network", alias_of="network"),
    Flag("net-alias", None, "value", True, "list", alias_of="network-alias"),
)

# Go's strconv.ParseBool, which pflag uses for `--rm=false`.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


class FlagTable:
    """Flags indexed by long and short name."""

    __slots__ = ("flags",)

    def __init__(self, flags: tuple[Flag, ...]) -> None:
        self.flags = flags
        longs = [f.name for f in self.flags]
        shorts = [f.short for f in self.flags if f.short]
        if len(set(longs)) != len(longs) or len(set(shorts)) != len(shorts):
            raise ValueError("flag table has a duplicate name")

    def long(self, name: str) -> Flag | None:
        for flag in self.flags:
            if flag.name == name:
                return flag
        return None

    def short(self, letter: str) -> Flag | None:
        for flag in self.flags:
            if flag.short == letter:
                return flag
        return None

    def extended(self, extra: Iterable[Flag]) -> FlagTable:
        return FlagTable((*self.flags, *extra))


DOCKER_RUN = FlagTable(DOCKER_RUN_FLAGS)


class ParsedRun:
    """A parsed `docker run` line: flags in order (canonical long name, value), image, command.

    Boolean flags carry "true" or "false". The image is None only when the line ends before
    one (saferun allows that when a manifest names the image).
    """

    __slots__ = ("flags", "image", "command")

    def __init__(self, flags: tuple[tuple[str, str], ...], image: str | None,
                 command: tuple[str, ...]) -> None:
        self.flags = flags
        self.image = image
        self.command = command

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ParsedRun)
                and (self.flags, self.image, self.command)
                == (other.flags, other.image, other.command))

    def __hash__(self) -> int:
        return hash((self.flags, self.image, self.command))

    def __repr__(self) -> str:
        return f"ParsedRun({self.flags!r}, {self.image!r}, {self.command!r})"

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.flags if key == name]

    def last(self, name: str) -> str | None:
        values = self.values(name)
        return values[-1] if values else None

    def flag(self, name: str) -> bool | None:
        """A boolean flag's final value, or None when it was not given."""
        value = self.last(name)
        return None if value is None else value == "true"

    def given(self) -> list[str]:
        """Canonical names of every flag given, first occurrence order."""
        seen: list[str] = []
        for key, _ in self.flags:
            if key not in seen:
                seen.append(key)
        return seen


def parse_docker_run(argv: Sequence[str], table: FlagTable = DOCKER_RUN) -> ParsedRun:
    """Parse the words after `docker run` (the argv, never a shell string)."""
    flags: list[tuple[str, str]] = []
    index = 0
    words = list(argv)
    while index < len(words):
        word = words[index]
        if word == "--":
            index += 1
            break
        if word.startswith("--"):
            index = _parse_long(words, index, table, flags)
        elif word.startswith("-") and word != "-":
            index = _parse_shorts(words, index, table, flags)
        else:
            break
    rest = words[index:]
    image = rest[0] if rest else None
    return ParsedRun(tuple(flags), image, tuple(rest[1:]))


def _canonical(flag: Flag) -> str:
    return flag.alias_of or flag.name


def _bool_value(text: str, shown: str) -> str:
    if text in _TRUE:
        return "true"
    if text in _FALSE:
        return "false"
    raise DockerArgsError(
        f'invalid argument "{text}" for "{shown}" flag: strconv.ParseBool: parsing "{text}": '
        "invalid syntax"
    )


def _parse_long(words: list[str], index: int, table: FlagTable, out: list[tuple[str, str]]) -> int:
    body = words[index][2:]
    name, has_value, value = body.partition("=")
    flag = table.long(name)
    if flag is None or not name:
        raise DockerArgsError(f"unknown flag: --{name}")
    if flag.kind == "bool":
        out.append((_canonical(flag), _bool_value(value, f"--{name}") if has_value else "true"))
        return index + 1
    if has_value:
        out.append((_canonical(flag), value))
        return index + 1
    if index + 1 >= len(words):
        raise DockerArgsError(f"flag needs an argument: --{name}")
    out.append((_canonical(flag), words[index + 1]))
    return index + 2


def _parse_shorts(words: list[str], index: int, table: FlagTable,
                  out: list[tuple[str, str]]) -> int:
    letters = words[index][1:]
    pos = 0
    while pos < len(letters):
        letter = letters[pos]
        flag = table.short(letter)
        if flag is None:
            raise DockerArgsError(f"unknown shorthand flag: '{letter}' in -{letters[pos:]}")
        rest = letters[pos + 1:]
        if rest.startswith("="):  # -d=false, -e=A=1
            value = rest[1:]
            if flag.kind == "bool":
                value = _bool_value(value, f"-{letter}")
            out.append((_canonical(flag), value))
            return index + 1
        if flag.kind == "bool":
            out.append((_canonical(flag), "true"))
            pos += 1
            continue
        if rest:  # -eA=1, -itp80:80
            out.append((_canonical(flag), rest))
            return index + 1
        if index + 1 >= len(words):
            raise DockerArgsError(f"flag needs an argument: '{letter}' in -{letter}")
        out.append((_canonical(flag), words[index + 1]))
        return index + 2
    return index + 1


_PREFIXES: tuple[tuple[str, ...], ...] = (("docker", "container", "run"), ("docker", "run"))


def split_command_line(text: str) -> list[str]:
    """A pasted `docker run ...` line -> the words after `run`.

    Splits like a POSIX shell (quotes, backslash-newline continuations) without expanding
    anything: `$(pwd)` stays literal. A leading `sudo` and `docker [container] run` are
    removed; a line that is not a `docker run` line is refused.
    """
    import shlex  # not at the top: the plan cache's fast path imports this module

    joined = text.replace("\\\r\n", " ").replace("\\\n", " ")
    try:
        words = shlex.split(joined, comments=False, posix=True)
    except ValueError as exc:
        raise DockerArgsError(f"cannot split the command line: {exc}") from None
    while words and words[0] in ("sudo", "$"):
        words = words[1:]
    if words and words[0].endswith("/docker"):
        words[0] = "docker"
    for prefix in _PREFIXES:
        if tuple(words[: len(prefix)]) == prefix:
            return words[len(prefix):]
    raise DockerArgsError(
        f"not a docker run command line: {text.strip()[:60]!r}",
        fix='pass the whole line, e.g. "docker run -d -p 8080:80 nginx"',
    )
