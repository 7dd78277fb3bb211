"""A stack: several services, each a manifest, started together on a private network.

`saferun.stack.toml`:

    [stack]
    name = "shop"

    [services.web]
    manifest = "web.toml"
    depends_on = ["db"]

    [services.db]
    manifest = "db.toml"
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from saferun.model.manifest import IMAGE_PATTERN, StrictModel
from saferun.model.netpolicy import SERVICE_PATTERN, check_service_name

STACK_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,30}$"
# docker's pause image is not on every host, nor a registry; `up` makes this one on the
# engine from its host's static busybox when missing (saferun.engine.sandbox_image). Its
# process does nothing and runs with nothing (see saferun.render.sandbox).
DEFAULT_SANDBOX_IMAGE = "saferun-sandbox:1"


class StackSettings(StrictModel):
    name: Annotated[str, Field(pattern=STACK_NAME_PATTERN)] = Field(
        description="The stack's name: its network is saferun-NAME, its containers NAME-SERVICE."
    )
    sandbox_image: Annotated[str, Field(pattern=IMAGE_PATTERN)] = Field(
        DEFAULT_SANDBOX_IMAGE,
        description="Image of the sandbox container that holds each service's network "
        "namespace and rules; it only needs a `sleep` on PATH.",
    )
    health_timeout: Annotated[int, Field(ge=1, le=3600)] = Field(
        120, description="Seconds `up` waits for a dependency with a health check to be healthy."
    )


class StackService(StrictModel):
    manifest: Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]{1,4096}$")] = Field(
        description="The service's manifest, relative to the stack file."
    )
    depends_on: list[Annotated[str, Field(pattern=rf"^{SERVICE_PATTERN}$")]] = Field(
        default_factory=list, description="Services started (and healthy, if they have a "
        "health check) before this one."
    )


class StackFile(StrictModel):
    """saferun.stack.toml (schema v1)."""

    version: int = Field(1, ge=1, le=1)
    stack: StackSettings
    services: dict[str, StackService]

    @field_validator("services")
    @classmethod
    def _names(cls, value: dict[str, StackService]) -> dict[str, StackService]:
        if not value:
            raise ValueError("a stack needs at least one service")
        for name in value:
            check_service_name(name, "service")
        return value

    @model_validator(mode="after")
    def _dependencies(self) -> StackFile:
        for name, service in self.services.items():
            for dep in service.depends_on:
                if dep not in self.services:
                    raise ValueError(f"services.{name}.depends_on names '{dep}', which is not "
                                     "a service of the stack")
        start_order({n: tuple(s.depends_on) for n, s in self.services.items()})
        return self


def start_order(depends: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Services in an order where each comes after what it depends on (names sorted
    within a level, so the order is stable); ValueError on a cycle."""
    order: list[str] = []
    done: set[str] = set()
    remaining = dict(depends)
    while remaining:
        ready = sorted(n for n, deps in remaining.items() if all(d in done for d in deps))
        if not ready:
            raise ValueError(f"depends_on has a cycle among {', '.join(sorted(remaining))}")
        for name in ready:
            order.append(name)
            done.add(name)
            del remaining[name]
    return tuple(order)


STACK_LABEL = "io.saferun.stack"  # on everything a stack creates: how `down` finds it
ROLE_LABEL = "io.saferun.stack-role"  # sandbox | service
SERVICE_LABEL = "io.saferun.stack-service"
INGRESS_LABEL = "io.saferun.network-ingress"
EGRESS_LABEL = "io.saferun.network-egress"


def network_name(stack: str) -> str:
    """The stack's private bridge network."""
    return f"saferun-{stack}"


def sandbox_name(stack: str, service: str) -> str:
    return f"{stack}-{service}-sandbox"


def service_container_name(stack: str, service: str) -> str:
    return f"{stack}-{service}"
