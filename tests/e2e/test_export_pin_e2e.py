"""`saferun export --to kubernetes --pin` asks the real engine for each image's digest."""

from __future__ import annotations

from tests.e2e.conftest import REPO, saferun


def test_pin_refuses_an_image_without_a_registry_digest(busybox_image: str) -> None:
    # examples/hello runs the locally built busybox: the engine has no registry digest.
    result = saferun("export", str(REPO / "examples" / "hello" / "saferun.toml"),
                     "--to", "kubernetes", "--pin")
    assert result.returncode == 2, result.stderr
    assert f"'{busybox_image}' has no registry digest in the local engine" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
