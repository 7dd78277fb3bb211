"""Run the syscall probe under Docker's default profile and saferun's, print a Markdown table.

    .venv/bin/python bench/seccomp_compare.py > /tmp/table.md

The table goes into docs/seccomp.md. Each call is tried in a container with
--cap-drop ALL, --user 65534:65534 and no-new-privileges. saferun's profile is also run
with errno = ENOSYS: only the filter can answer 38, so that column shows what seccomp
itself refused, while EPERM could also be the kernel's capability check.
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from pathlib import Path

from _common import provenance, write_profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.seccomp_probe import DANGEROUS, EXTRA, build_probe_image, remove_image, run_probe  # noqa: E402

ERRNO_NAMES = {
    "errno=1": "EPERM",
    "errno=2": "ENOENT",
    "errno=14": "EFAULT",
    "errno=22": "EINVAL",
    "errno=38": "ENOSYS",
    "errno=97": "EAFNOSUPPORT",
    "errno=3": "ESRCH",
    "ok": "ok",
}


def main() -> None:
    tag = f"saferun-bench/probe:{uuid.uuid4().hex[:8]}"
    build_probe_image(tag)
    try:
        with tempfile.TemporaryDirectory(prefix="saferun-bench-") as work:
            eperm, _ = write_profile(Path(work), "default")
            enosys, _ = write_profile(Path(work), "default-enosys", errno="ENOSYS")
            columns = {
                "unconfined": run_probe(tag, ("seccomp=unconfined",)),
                "Docker default": run_probe(tag),
                "saferun default": run_probe(tag, (eperm,)),
                "saferun default, errno=ENOSYS": run_probe(tag, (enosys,)),
            }
    finally:
        remove_image(tag)
    print(render(columns))


def render(columns: dict[str, dict[str, str]]) -> str:
    names = (*DANGEROUS, *EXTRA, "getpid")
    head = ["call", *columns, "Docker lets it reach the kernel, saferun refuses"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        cells = [ERRNO_NAMES.get(col[name], col[name]) for col in columns.values()]
        docker_result = columns["Docker default"][name]
        gap = (
            docker_result not in ("errno=1", "errno=38")
            and columns["saferun default, errno=ENOSYS"][name] == "errno=38"
        )
        lines.append("| " + " | ".join([f"`{name}`", *cells, "**yes**" if gap else ""]) + " |")
    return "\n".join([f"Measured {provenance()}.", "", *lines])


if __name__ == "__main__":
    main()
