"""The digest policy of `saferun run` and `up`, apart from the rule table: a start needs
only this, and importing saferun.policy.rules (every rule, ContainerSpec) costs it ~6 ms."""

from __future__ import annotations

from collections.abc import Mapping


def image_parts(image: str) -> tuple[str, str | None, str | None]:
    """`registry:5000/team/app:1.2@sha256:...` -> (name, tag, digest)."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = None
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest or None


def check_image_policy(image: str, ignored: Mapping[str, str], digest: str = "recommend") -> None:
    """`saferun run`'s digest policy: refuse a tag when the policy requires digests. A
    floating tag (no tag, `latest`) is a warning (rule image-tag-latest, see
    saferun.model.manifest.Manifest.warnings), which `[policy] refuse` can make a refusal."""
    from saferun.errors import ManifestError

    if digest == "require" and image_parts(image)[2] is None and "image-digest" not in ignored:
        raise ManifestError(
            f"app.image: '{image}' is not pinned by digest and [policy] digest = \"require\"; "
            "refused by rule 'image-digest'",
            fix="run `saferun pin MANIFEST` to pin the digest from the local engine "
            "(docs/policy.md#image-digest)")
