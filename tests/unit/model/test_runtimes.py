"""The fix that `saferun run` prints when gVisor is missing is a complete daemon.json entry."""

from __future__ import annotations

import json
import re

from saferun.model.runtimes import RUNTIME_FIX


def test_gvisor_fix_registers_runsc_as_docs_runtimes_md_says() -> None:
    snippet = re.search(r"(\{.*\}\}\})", RUNTIME_FIX["gvisor"])
    assert snippet is not None
    runsc = json.loads(snippet.group(1))["runtimes"]["runsc"]
    assert runsc == {"path": "/usr/bin/runsc",
                     "runtimeArgs": ["--network=host", "--oci-seccomp"]}
