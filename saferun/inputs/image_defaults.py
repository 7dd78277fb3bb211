"""What an image decides: the user and the writable paths a hardened start of it needs.

Official images run their servers as a user of their own (redis 999, postgres 999, mysql
999, memcache 11211) and own their data directories. Many start as root only to chown the
data and then drop to that user (`exec gosu redis "$@"`); their entrypoints skip that
step when started as the user already. So saferun starts such an image as that user from
the first instruction, with nothing in the container ever root:

1. the image's USER, when it names a non-root account;
2. else the account the entrypoint script drops to with gosu, su-exec, setpriv,
   chroot --userspec or runuser;
3. else the one non-root owner of every declared VOLUME.

Under the read-only root the server still writes its pid files, sockets and caches: each
empty directory under /var or /run that the image gave to that user becomes a small tmpfs
owned by it, with the image's mode. Declared VOLUMEs need nothing: docker mounts an
anonymous volume there, with the owner and mode copied from the image. Every decision is
a note the user sees (`--dry-run`, `init`).

Pure: an ImageProbe in, a manifest fragment and notes out.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from saferun.inputs.manifest_writer import ImageProposal
from saferun.model.image import Account, ImageProbe, parse_group, parse_passwd

# `exec gosu redis "$@"`, `su-exec postgres`, `setpriv --reuid=mysql`, `chroot --userspec=a:b /`
_DROP = re.compile(
    r"\b(?:gosu|su-exec|s6-setuidgid|setuser)\s+['\"]?([a-z_][a-z0-9_.-]*)(?::[a-z0-9_.-]+)?['\"]?(?=\s)"
    r"|\bsetpriv\b[^\n]*?--reuid[= ]['\"]?([a-z_][a-z0-9_.-]*)"
    r"|\bchroot\s+--userspec[= ]['\"]?([a-z_][a-z0-9_.-]*)"
    r"|\brunuser\s+(?:-u\s+)?['\"]?([a-z_][a-z0-9_.-]*)",
)
_WRITABLE_ROOTS = ("/var/", "/run/")
_SKIP = ("/var/cache/apt", "/var/lib/apt", "/var/lib/dpkg", "/var/log/apt")
TMPFS_SIZE = "16m"
MAX_TMPFS = 8


@dataclass(frozen=True)
class ImageDefaults:
    """A manifest fragment (merged under the command line's flags) and why."""

    document: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    uid: int | None = None
    gid: int | None = None


def entrypoint_drop_user(script: str) -> str | None:
    """The account an entrypoint script drops root to, if it names one literally."""
    for line in script.splitlines():
        code = line.split("#", 1)[0]
        match = _DROP.search(code)
        if match:
            return next(g for g in match.groups() if g)
    return None


def _account(user: str, accounts: tuple[Account, ...],
             groups: dict[str, int]) -> tuple[int, int, str] | None:
    """USER as docker reads it: name or uid, optionally :group or :gid."""
    name, _, group = user.partition(":")
    if name.isdigit():
        uid = int(name)
        known = next((a for a in accounts if a.uid == uid), None)
        gid = known.gid if known else uid
        label = known.name if known else name
    else:
        found = next((a for a in accounts if a.name == name), None)
        if found is None:
            return None
        uid, gid, label = found.uid, found.gid, found.name
    if group:
        if group.isdigit():
            gid = int(group)
        elif group in groups:
            gid = groups[group]
        else:
            return None
    return uid, gid, label


def derive(probe: ImageProbe) -> ImageDefaults:
    """The user to start the image as, and the tmpfs it needs to write; {} when the image
    gives no non-root user (saferun's default user then applies)."""
    accounts, groups = parse_passwd(probe.passwd), parse_group(probe.group)
    chosen, why = None, ""
    if probe.user:
        chosen = _account(probe.user, accounts, groups)
        why = f"the image's USER {probe.user}"
        if chosen is not None and chosen[0] == 0:
            chosen = None
    if chosen is None:
        dropped = entrypoint_drop_user(probe.entrypoint_text)
        if dropped is not None:
            chosen = _account(dropped, accounts, groups)
            why = (f"the user its entrypoint drops root to ({dropped}); started as that user "
                   "the entrypoint skips its root-only step, so nothing runs as root")
    if chosen is None:
        owners = {(p.uid, p.gid) for p in (probe.path(v) for v in probe.volumes) if p}
        if len(owners) == 1 and next(iter(owners))[0] != 0 and probe.volumes:
            uid, gid = next(iter(owners))
            label = next((a.name for a in accounts if a.uid == uid), str(uid))
            chosen = (uid, gid, label)
            why = f"the owner of its VOLUME {', '.join(probe.volumes)}"
    if chosen is None or chosen[0] == 0:
        return ImageDefaults()
    uid, gid, label = chosen
    notes = [f"runs as {label} ({uid}:{gid}): {why}"]
    tmpfs = _writable_dirs(probe, uid)
    for entry in tmpfs:
        owned = f"{uid}:{entry['gid']}"
        notes.append(f"tmpfs {entry['target']} ({TMPFS_SIZE}, owned by {owned}, mode "
                     f"{entry['mode']}): the image gives this directory to {label}, and the "
                     "root filesystem is read-only")
    for volume in probe.volumes:
        owner = probe.path(volume)
        shown = f"{owner.uid}:{owner.gid}" if owner else "unknown"
        notes.append(f"VOLUME {volume} (owner {shown} in the image): docker mounts an "
                     f"anonymous volume there unless you mount one (-v NAME:{volume} keeps "
                     "the data across containers)")
    document: dict[str, Any] = {"app": {"user": f"{uid}:{gid}"}}
    if tmpfs:
        document["filesystem"] = {"tmpfs": [{"target": "/tmp"}, *tmpfs]}
    return ImageDefaults(document, tuple(notes), uid, gid)


def _writable_dirs(probe: ImageProbe, uid: int) -> list[dict[str, Any]]:
    volumes = [v.rstrip("/") for v in probe.volumes]
    found: list[dict[str, Any]] = []
    for fact in probe.paths:
        path = fact.path
        if not fact.is_dir or fact.uid != uid or fact.entries or not path.startswith(
                _WRITABLE_ROOTS) or path.startswith(_SKIP):
            continue
        if any(path == v or path.startswith(v + "/") for v in volumes):
            continue
        if any(path.startswith(str(e["target"]) + "/") for e in found):
            continue  # a parent already has a tmpfs
        found.append({"target": posixpath.normpath(path), "size": TMPFS_SIZE,
                      "mode": f"{fact.mode & 0o7777:04o}", "uid": uid, "gid": fact.gid})
        if len(found) == MAX_TMPFS:
            break
    return found


def with_image_defaults(proposal: ImageProposal, defaults: ImageDefaults) -> ImageProposal:
    """`saferun init --image`: the config-only proposal with the user and tmpfs the image's
    files gave; the notes say why, in place of the config-only guess about the user."""
    if not defaults.document:
        return proposal
    document = {key: dict(value) for key, value in proposal.document.items()}
    document["app"]["user"] = defaults.document["app"]["user"]
    args = [*proposal.docker_args, "--user", defaults.document["app"]["user"]]
    tmpfs = defaults.document.get("filesystem", {}).get("tmpfs", [])
    if tmpfs:
        document.setdefault("filesystem", {})["tmpfs"] = tmpfs
        for entry in tmpfs[1:]:  # the first is saferun's own /tmp
            args += ["--tmpfs", f"{entry['target']}:size={entry['size']},mode={entry['mode']},"
                     f"uid={entry['uid']},gid={entry['gid']}"]
    notes = [n for n in proposal.notes if not n.startswith(("The image runs as",
                                                            "The image's USER is"))]
    # init maps each VOLUME to a named volume itself; its own note says so.
    mine = [n for n in defaults.notes if not n.startswith("VOLUME ")]
    return ImageProposal(document, (*mine, *notes), tuple(args))
