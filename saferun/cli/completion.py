"""Shell completion (bash, zsh, fish) through click's mechanism.

`_SAFERUN_COMPLETE=bash_source saferun` prints the script (README "Shell completion").
Subcommands and options complete by themselves; this module adds the values click cannot
know: manifest files, local image and container names (asked of the engine with a short
timeout, and no names when it does not answer), rule ids, and `saferun run`'s own
docker-style command line, which click does not parse (see saferun.cli.run).

bash gets click's script with one change (`SaferunBash`): a candidate that ends in `=` (a
rule id for `--allow RULE=REASON`) or `/` (a folder) is not followed by a space, so the
reason or the rest of the path is typed on in the same word.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import ClassVar

import click
from click.shell_completion import BashComplete, CompletionItem, add_completion_class

MANIFEST_SUFFIX = ".toml"
# Values of `saferun run` flags that are a closed set (docker's words).
_RUN_VALUES: dict[str, tuple[str, ...]] = {
    "format": ("argv", "json"),
    "pull": ("always", "missing", "never"),
    "restart": ("no", "on-failure", "always", "unless-stopped"),
    "cgroupns": ("host", "private"),
    "network": ("bridge", "none", "host"),
    "log-driver": ("json-file", "local", "none", "journald", "syslog"),
}
_RUN_FILES = frozenset({"file", "env-file", "label-file", "cidfile"})
_RUN_CONTAINERS = frozenset({"volumes-from", "link"})


# click's bash script (click.shell_completion), with the candidate quoted and the
# `nospace` option for candidates that go on. The `dir` and `file` types are click's.
_SOURCE_BASH = """\
%(complete_func)s() {
    local IFS=$'\\n'
    local response

    response=$(env COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD=$COMP_CWORD \
%(complete_var)s=bash_complete $1)

    for completion in $response; do
        IFS=',' read type value <<< "$completion"

        if [[ $type == 'dir' ]]; then
            COMPREPLY=()
            compopt -o dirnames
        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default
        elif [[ $type == 'plain' ]]; then
            COMPREPLY+=("$value")
            # a rule id's '=' or a folder's '/': the word goes on, no space after it
            if [[ $value == *[=/] ]]; then
                compopt -o nospace
            fi
        fi
    done

    return 0
}

%(complete_func)s_setup() {
    complete -o nosort -F %(complete_func)s %(prog_name)s
}

%(complete_func)s_setup;
"""


class SaferunBash(BashComplete):
    """bash completion: click's, but no space after a candidate ending in `=` or `/`."""

    source_template: ClassVar[str] = _SOURCE_BASH


def use_saferun_bash() -> None:
    """Register SaferunBash for `_SAFERUN_COMPLETE=bash_source` (called before click
    answers a completion request)."""
    add_completion_class(SaferunBash, "bash")


def _matching(candidates: Iterable[str], incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(c) for c in candidates if c.startswith(incomplete)]


def manifest_paths(incomplete: str) -> list[str]:
    """Directories (ending in /) and .toml files that start with `incomplete`."""
    directory, _, prefix = incomplete.rpartition("/")
    base = directory + "/" if directory or incomplete.startswith("/") else ""
    try:
        entries = sorted(os.scandir(directory or ("/" if incomplete.startswith("/") else ".")),
                         key=lambda e: e.name)
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.name.startswith(prefix) or (entry.name.startswith(".") and
                                                 not prefix.startswith(".")):
            continue
        if entry.is_dir():
            found.append(f"{base}{entry.name}/")
        elif entry.name.endswith(MANIFEST_SUFFIX):
            found.append(f"{base}{entry.name}")
    return found


def complete_manifests(ctx: click.Context, param: click.Parameter,
                       incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(p) for p in manifest_paths(incomplete)]


def complete_images(ctx: click.Context, param: click.Parameter,
                    incomplete: str) -> list[CompletionItem]:
    from saferun.engine.names import local_image_names

    return _matching(local_image_names(), incomplete)


def complete_containers(ctx: click.Context, param: click.Parameter,
                        incomplete: str) -> list[CompletionItem]:
    """Every container, stopped ones too (`saferun why` explains a container that exited)."""
    from saferun.engine.names import container_names

    return _matching(container_names(), incomplete)


def complete_running(ctx: click.Context, param: click.Parameter,
                     incomplete: str) -> list[CompletionItem]:
    """The running containers (`saferun verify`, `saferun watch`)."""
    from saferun.engine.names import container_names

    return _matching(container_names(running_only=True), incomplete)


def complete_rules(ctx: click.Context, param: click.Parameter,
                   incomplete: str) -> list[CompletionItem]:
    """Every policy rule id (`saferun explain RULE`)."""
    from saferun.policy.catalogue import all_rules

    return _matching(sorted(all_rules()), incomplete)


def complete_allow(ctx: click.Context, param: click.Parameter,
                   incomplete: str) -> list[CompletionItem]:
    return _allow_items(incomplete)


def _allow_items(incomplete: str) -> list[CompletionItem]:
    """`--allow RULE=REASON`: the rule ids that [allow] and --allow take, with the `=`."""
    from saferun.model.refusals import ALLOWABLE_IDS

    return _matching((f"{rule}=" for rule in sorted(ALLOWABLE_IDS)), incomplete)


def complete_run(words: Sequence[str], incomplete: str) -> list[CompletionItem]:
    """`saferun run WORDS INCOMPLETE`: a flag, a flag's value, a manifest or an image.

    Walks the words as saferun.inputs.dockerargs parses them (values after value flags,
    bundled short flags, `--`, the image ending the flags); after the image everything is
    the container's command, which saferun does not complete.
    """
    from saferun.inputs.run_flags import RUN_TABLE

    pending: str | None = None  # the value flag whose value is being typed
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if pending is not None:
            if word == "=":  # bash splits `--allow=x` at its COMP_WORDBREAKS
                continue
            pending = None
            continue
        if word == "--":
            return [] if index < len(words) else _positional(incomplete)
        if word.startswith("--"):
            name, has_value, _ = word[2:].partition("=")
            flag = RUN_TABLE.long(name)
            if flag is not None and flag.kind == "value" and not has_value:
                pending = flag.alias_of or flag.name
        elif word.startswith("-") and word != "-":
            letters = word[1:]
            for pos, letter in enumerate(letters):
                flag = RUN_TABLE.short(letter)
                if flag is None or flag.kind == "value":
                    if flag is not None and pos == len(letters) - 1:
                        pending = flag.alias_of or flag.name
                    break
        else:
            return []  # the image was given: the rest is the container's command
    if pending is not None and incomplete != "=":
        return _run_value(pending, incomplete)
    if incomplete.startswith("-"):
        names = sorted(f"--{f.name}" for f in RUN_TABLE.flags if f.alias_of is None)
        return _matching(names, incomplete)
    return _positional(incomplete)


def _run_value(flag: str, incomplete: str) -> list[CompletionItem]:
    if flag == "allow":
        return _allow_items(incomplete)
    if flag in _RUN_FILES:
        return [CompletionItem(incomplete, type="file")]
    if flag in _RUN_CONTAINERS:
        from saferun.engine.names import container_names

        return _matching(container_names(), incomplete)
    return _matching(_RUN_VALUES.get(flag, ()), incomplete)


def _positional(incomplete: str) -> list[CompletionItem]:
    """The first word after the flags: a manifest file, or a local image."""
    from saferun.engine.names import local_image_names

    items = [CompletionItem(p) for p in manifest_paths(incomplete)]
    if "/" not in incomplete or not os.path.isdir(incomplete.rpartition("/")[0] or "."):
        items += _matching(local_image_names(), incomplete)
    return items
