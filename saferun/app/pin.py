"""`saferun pin`: resolve a manifest's image tag to its digest and rewrite the manifest.

The choice of digest and the rewrite are pure (a TOML text and the engine's RepoDigests
in, new text out); tomlkit keeps every comment, blank line and key order of the file.
`pin` is the use case: it asks the engine and writes the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from saferun.errors import ManifestError
from saferun.policy.rules import image_parts

_DOCKER_HUB = ("docker.io/library/", "docker.io/", "index.docker.io/library/", "index.docker.io/")


def _short(name: str) -> str:
    for prefix in _DOCKER_HUB:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def pinned_reference(image: str, repo_digests: Sequence[str]) -> str:
    """`nginx:1.27` + ["nginx@sha256:..."] -> `nginx:1.27@sha256:...` (the tag stays, to read)."""
    name, tag, digest = image_parts(image)
    if digest:
        return image
    matching = [d for d in repo_digests if _short(d.partition("@")[0]) == _short(name)]
    if not matching:
        known = ", ".join(repo_digests) or "none"
        raise ManifestError(
            f"app.image: '{image}' has no registry digest in the local engine (RepoDigests: "
            f"{known}); an image that was built or loaded locally has none",
            fix=f"pull '{image}' from its registry (or push it) so the engine records its "
            "digest, then run saferun pin again")
    digest = matching[0].partition("@")[2]
    return f"{name}:{tag}@{digest}" if tag else f"{name}@{digest}"


def rewrite_image(text: str, new_image: str) -> str:
    """Replace [app] image in the TOML text, keeping comments and layout."""
    import tomlkit

    document = tomlkit.parse(text)
    app = document.get("app")
    if app is None or "image" not in app:
        raise ManifestError("the manifest has no [app] image to pin")
    old = app["image"]
    new = tomlkit.string(new_image)
    new.trivia.comment_ws = old.trivia.comment_ws
    new.trivia.comment = old.trivia.comment
    app["image"] = new
    return tomlkit.dumps(document)


@dataclass(frozen=True)
class PinOutcome:
    image: str  # the manifest's image reference as it was
    pinned: str  # with the digest (== image when it was pinned already)
    already: bool = False
    written: bool = False


def pin(manifest: Path, *, dry_run: bool) -> PinOutcome:
    """Pin MANIFEST's image to the digest the local engine has for its tag; with `dry_run`,
    only say which reference it would become."""
    from saferun.engine.api import EngineSession
    from saferun.inputs.loader import load_manifest, read_manifest_bytes

    image = load_manifest(manifest).app.image
    if image_parts(image)[2]:
        return PinOutcome(image, image, already=True)
    data = EngineSession().image_inspect(image)
    if data is None:
        raise ManifestError(f"app.image: '{image}' is not in the local engine",
                            fix=f"pull or build '{image}' first")
    new = pinned_reference(image, data.get("RepoDigests") or [])
    if dry_run:
        return PinOutcome(image, new)
    text = read_manifest_bytes(manifest).decode("utf-8")
    updated = rewrite_image(text, new)
    tmp = manifest.with_name(f".{manifest.name}.saferun-pin")
    tmp.write_text(updated, encoding="utf-8")
    tmp.replace(manifest)
    load_manifest(manifest)  # the rewritten file must still validate
    return PinOutcome(image, new, written=True)
