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

from typing import Annotated

from saferun.model.manifest import IMAGE_PATTERN
from saferun.model.netpolicy import SERVICE_PATTERN, check_service_name
from saferun.model.strict import StrictModel, meta

STACK_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,30}$"
# docker's pause image is not on every host, nor a registry; `up` makes this one on the
# engine from its host's static busybox when missing (saferun.engine.sandbox_image). Its
# process does nothing and runs with nothing (see saferun.render.sandbox).
DEFAULT_SANDBOX_IMAGE = "saferun-sandbox:1"


class StackSettings(StrictModel, frozen=True, kw_only=True):
    name: Annotated[Annotated[str, meta(pattern=STACK_NAME_PATTERN)], meta(
        description="The stack's name: its network is saferun-NAME, its containers NAME-SERVICE.")]
    sandbox_image: Annotated[Annotated[str, meta(pattern=IMAGE_PATTERN)], meta(
        description="Image of the sandbox container that holds each service's network namespace "
        "and rules; it only needs a `sleep` on PATH.")] = DEFAULT_SANDBOX_IMAGE
    health_timeout: Annotated[Annotated[int, meta(ge=1, le=3600)], meta(
        description="Seconds `up` waits for a dependency with a health check to be healthy.")] = 120


class StackService(StrictModel, frozen=True, kw_only=True):
    manifest: Annotated[Annotated[str, meta(pattern=r"^[^\x00-\x1f\x7f]{1,4096}$")], meta(
        description="The service's manifest, relative to the stack file.")]
    depends_on: Annotated[list[Annotated[str, meta(pattern=rf"^{SERVICE_PATTERN}$")]], meta(
        description="Services started (and healthy, if they have a health check) before "
        "this one.")] = []


class StackFile(StrictModel, frozen=True, kw_only=True):
    """saferun.stack.toml (schema v1)."""

    version: Annotated[int, meta(ge=1, le=1)] = 1
    stack: StackSettings
    services: dict[str, StackService]

    @staticmethod
    def _names(value: dict[str, StackService]) -> dict[str, StackService]:
        if not value:
            raise ValueError("a stack needs at least one service")
        for name in value:
            check_service_name(name, "service")
        return value

    def _dependencies(self) -> None:
        for name, service in self.services.items():
            for dep in service.depends_on:
                if dep not in self.services:
                    raise ValueError(f"services.{name}.depends_on names '{dep}', which is not "
                                     "a service of the stack")
        start_order({n: tuple(s.depends_on) for n, s in self.services.items()})

    __field_checks__ = (("services", _names),)

    def _check(self) -> None:
        self._dependencies()


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
