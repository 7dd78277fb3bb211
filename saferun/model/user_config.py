"""The user's own settings (~/.config/saferun/config.toml), validated like a manifest.

They hold what belongs to a person on a host rather than to an app: a default team policy
file, the host warnings this person has read and accepted for this host (with a reason),
and colour. An app's weakenings never go here: they stay in its manifest, reviewed with it.
"""

from typing import Annotated, Literal

from saferun.model.manifest import REASON_MIN_LENGTH
from saferun.model.strict import StrictModel, meta

# Warnings about the host (not the app) that `saferun run` repeats on every start, by id:
# the words each message starts with (saferun.profiles.apparmor, saferun.plan.planner).
HOST_WARNINGS: dict[str, str] = {
    "apparmor-absent": "AppArmor is absent on this host",
    "swap-accounting-off": "swap accounting is off on this host",
    "userns-unavailable": 'security.userns = "preferred":',
}
HostWarningId = Literal["apparmor-absent", "swap-accounting-off", "userns-unavailable"]


def host_warning_id(message: str) -> str | None:
    """The id of a host warning, or None for any other warning (those are never hidden)."""
    for warning_id, start in HOST_WARNINGS.items():
        if message.startswith(start):
            return warning_id
    return None


class UserConfig(StrictModel, frozen=True, kw_only=True):
    """~/.config/saferun/config.toml ($XDG_CONFIG_HOME/saferun/config.toml)."""

    policy: Annotated[str | None, meta(
        description="Default team policy file ([policy] table), used when --policy and "
        "$SAFERUN_POLICY are unset. Absolute, or relative to the config file; ~ is "
        "expanded.")] = None
    acknowledge: Annotated[dict[HostWarningId, str], meta(
        description="Host warnings read and accepted for this host (warning id -> written "
        "reason): saferun run no longer repeats them; --dry-run names them as notes. "
        "Ids: apparmor-absent, swap-accounting-off, userns-unavailable.")] = {}
    color: Annotated[bool, meta(description="false: no colour, as with NO_COLOR.")] = True

    @staticmethod
    def _reasons(value: dict[str, str]) -> dict[str, str]:
        for key, reason in value.items():
            if len(reason.strip()) < REASON_MIN_LENGTH:
                raise ValueError(f"acknowledge {key} needs a written reason of at least "
                                 f"{REASON_MIN_LENGTH} characters")
        return value

    def hides(self, message: str) -> str | None:
        """The id under which `message` is acknowledged, or None when it must be shown."""
        warning_id = host_warning_id(message)
        return warning_id if warning_id in self.acknowledge else None

    __field_checks__ = (("acknowledge", _reasons),)
