"""Run a command of the user's on the host (`saferun learn --load`): argv only, never a shell."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence


def run_host_command(argv: Sequence[str], *, extra_env: Mapping[str, str],
                     timeout: float) -> tuple[int | None, str]:
    """(exit status, "") of ARGV run with `extra_env` added to ours, output captured; or
    (None, why) when it could not start or did not finish within `timeout` seconds."""
    env = {**os.environ, **extra_env}
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, env=env,
                                timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    return result.returncode, ""
