"""saferun pin: choosing the digest and rewriting the manifest with its comments."""

from __future__ import annotations

import pytest

from saferun.app.pin import pinned_reference, rewrite_image
from saferun.errors import ManifestError

DIGEST = "sha256:" + "d" * 64
TEXT = """# the web app
[app]
name = "web"  # container name
image = "nginx:1.27"  # reviewed 2024-05

# limits
[resources]
memory = "1g"
"""


def test_pinned_reference_keeps_the_tag() -> None:
    assert pinned_reference("nginx:1.27", [f"nginx@{DIGEST}"]) == f"nginx:1.27@{DIGEST}"
    assert pinned_reference("nginx:1.27", [f"docker.io/library/nginx@{DIGEST}"]) == \
        f"nginx:1.27@{DIGEST}"
    assert pinned_reference(f"nginx@{DIGEST}", []) == f"nginx@{DIGEST}"


def test_an_image_without_registry_digest_cannot_be_pinned() -> None:
    with pytest.raises(ManifestError, match="no registry digest"):
        pinned_reference("local/app:1", [])
    with pytest.raises(ManifestError):
        pinned_reference("local/app:1", [f"other/app@{DIGEST}"])


def test_rewrite_keeps_comments_and_layout() -> None:
    new = rewrite_image(TEXT, f"nginx:1.27@{DIGEST}")
    assert new == TEXT.replace('"nginx:1.27"', f'"nginx:1.27@{DIGEST}"')
