"""Local image and container names, for shell completion.

Completion runs on every Tab press: a short timeout, and any failure (no engine, a remote
endpoint, a slow daemon) gives no names rather than an error in the user's shell.
"""

from __future__ import annotations

import json
from typing import Any

from saferun.engine import api

COMPLETION_TIMEOUT_S = 2.0


def _get(path: str) -> list[dict[str, Any]]:
    socket_path = api.local_socket_path()
    if socket_path is None:
        return []  # a remote endpoint: completion never opens a TLS connection
    try:
        status, body = api._unix_get(socket_path, f"/{api.API_VERSION}{path}",
                                     COMPLETION_TIMEOUT_S)
        found = json.loads(body) if status == 200 else []
    except (OSError, ValueError):
        return []
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def local_image_names() -> list[str]:
    """`repository:tag` of every tagged local image, sorted."""
    names = {str(tag) for image in _get("/images/json") for tag in image.get("RepoTags") or ()
             if tag and tag != "<none>:<none>"}
    return sorted(names)


def container_names(*, running_only: bool = False) -> list[str]:
    """Names of the containers (all of them, or the running ones), sorted."""
    path = "/containers/json" if running_only else "/containers/json?all=1"
    names = {str(name).lstrip("/") for container in _get(path)
             for name in container.get("Names") or ()}
    return sorted(names)
