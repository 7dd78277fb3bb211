"""The escape battery uses the e2e fixtures (engine, busybox image, clean-up label)."""

from __future__ import annotations

from tests.e2e.conftest import busybox_image, docker_engine  # noqa: F401  (fixtures)
