"""Networks as the engine resolves them, for every command that judges one (issue 19, case 11).

`--network 1a352c…` (the host network's ID, a unique prefix of it, or another name of a
network with the host driver) is the host network, as `--network host` is; only the engine
knows which names those are. So each command asks it (`docker network inspect`, here at the
edge) and the pure verdicts judge the answer: saferun.inputs.dockerrun.check_networks
refuses (`run`, `learn`, `export`, `init`), and `check` judges the spec as on the host
network.
`run` and `learn` need an engine anyway; `check` and `export` also work without one, and
then say in their output that the names were judged unresolved (never silently).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from saferun.errors import EngineUnavailable, SaferunError

# Names docker never resolves through its network list the way it does an ID.
PREDEFINED = frozenset({"bridge", "host", "none", "default"})


def names_to_resolve(names: Iterable[str]) -> list[str]:
    """The names only the engine can tell the meaning of (not predefined, not container:X)."""
    return sorted({n for n in names if n and n not in PREDEFINED
                   and not n.startswith("container:")})


def manifest_networks(manifest: Any) -> list[str]:
    """Every network a manifest names: its mode and its further networks."""
    return [manifest.network.mode, *(n.name for n in manifest.network.extra_networks)]


def inspect_networks(names: Iterable[str], session: Any) -> dict[str, dict[str, Any]]:
    """{name: `docker network inspect` data} of each name the engine knows (run, learn)."""
    found = {}
    for name in names_to_resolve(names):
        data = session.network_inspect(name)
        if data is not None:
            found[name] = data
    return found


def _engine_session() -> Any:
    from saferun.engine.api import EngineSession

    return EngineSession()


class NetworkLookup:
    """Networks for commands that also work without an engine (`check`, `export`).

    The engine is asked on the first name that needs it, once per name; when none answers
    (or a remote endpoint is refused), `resolve` returns None and `unresolved_note` says so.
    """

    def __init__(self, connect: Callable[[], Any] | None = None) -> None:
        self._connect = connect
        self._session: Any = None
        self._answers: dict[str, dict[str, Any] | None] = {}
        self.offline: str | None = None  # why no engine answered

    def _engine(self) -> Any:
        if self._session is None and self.offline is None:
            try:
                session = (self._connect or _engine_session)()
                session.reachable()
            except SaferunError as exc:
                self.offline = exc.message
            else:
                self._session = session
        return self._session

    def resolve(self, names: Iterable[str]) -> dict[str, dict[str, Any]] | None:
        """{name: inspect data} of the names the engine knows; None: no engine answered."""
        wanted = names_to_resolve(names)
        if not wanted:
            return {}
        session = self._engine()
        if session is None:
            return None
        for name in wanted:
            if name in self._answers:
                continue
            try:
                self._answers[name] = session.network_inspect(name)
            except EngineUnavailable as exc:
                self.offline, self._session = exc.message, None
                return None
            except SaferunError:
                self._answers[name] = None  # not a name docker accepts: no such network
        return {n: data for n in wanted if (data := self._answers.get(n)) is not None}

    def unresolved_note(self, names: Iterable[str]) -> str:
        listed = ", ".join(repr(n) for n in names_to_resolve(names))
        return (f"network {listed} not resolved: no engine answered ({self.offline}); judged "
                "by the name alone, so an ID of the host network would not show as "
                "host-network")


def host_network_notes(found: dict[str, dict[str, Any]]) -> list[str]:
    """What the engine said of each name that is its host network (pure)."""
    from saferun.inputs.dockerrun import is_host_network

    return [f"network {name!r} is the engine's host network {data.get('Name')!r} "
            "(resolved through the engine): judged as --network host"
            for name, data in sorted(found.items()) if is_host_network(name, data)]


def judge_networks(manifest: Any, lookup: NetworkLookup) -> list[str]:
    """Refuse as `saferun run` refuses it a network the engine says is its host network (by
    its ID or an ID prefix), for the commands that also work offline (`export`, `init`).
    -> the note to show when no engine could say (the names were judged unresolved)."""
    from saferun.inputs.dockerrun import check_networks

    names = manifest_networks(manifest)
    found = lookup.resolve(names)
    if found is None:
        return [lookup.unresolved_note(names)]
    check_networks(manifest, found)
    return []
