"""Read a container's init process from the host's /proc (the edge); parsed by model.process."""

from __future__ import annotations

from saferun.model.process import ProcFacts, facts_from_text


def read_process(pid: int, proc: str = "/proc") -> ProcFacts:
    """Read one process's facts (the edge). Raises OSError when /proc cannot be read."""
    if pid <= 0:
        raise OSError(f"invalid pid {pid}")
    texts = []
    for name in ("status", "uid_map", "mountinfo"):
        with open(f"{proc}/{pid}/{name}", encoding="utf-8", errors="replace") as handle:
            texts.append(handle.read())
    return facts_from_text(pid, *texts)
