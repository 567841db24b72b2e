"""scripts/build_extension.py's guards: one version for the add-on and its backend, and a size limit on the zip."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def bx():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import build_extension
    finally:
        sys.path.pop(0)
    return build_extension


def test_a_manifest_version_other_than_the_backends_is_refused(bx, tmp_path, monkeypatch):
    import backend

    manifest = tmp_path / "blender_manifest.toml"
    manifest.write_text((REPO / "blender_manifest.toml").read_text().replace(
        f'version = "{backend.__version__}"', 'version = "9.9.9"'))
    assert 'version = "9.9.9"' in manifest.read_text()
    monkeypatch.setattr(bx, "MANIFEST", manifest)
    with pytest.raises(RuntimeError, match=f"says version 9.9.9 but backend/__init__.py says {backend.__version__}"):
        bx.build(tmp_path / "dist", blender_ext=Path("/unused"))
    assert not (tmp_path / "dist").exists()
    assert bx.backend_version() == backend.__version__


@pytest.mark.slow  # out of make test-fast (its 90 s budget); CI runs it
@pytest.mark.blender
def test_a_zip_over_the_limit_is_refused_and_not_left_behind(bx, tmp_path, monkeypatch):
    pytest.importorskip("bpy")
    monkeypatch.setattr(bx, "MAX_ZIP_BYTES", 20 * 2**20)      # the real zip is ~25 MiB
    with pytest.raises(RuntimeError, match=r"the zip is 2\d\.\d MiB, over the 20 MiB this build allows"):
        bx.build(tmp_path / "dist")
    assert list((tmp_path / "dist").iterdir()) == []
