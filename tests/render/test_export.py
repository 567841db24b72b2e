"""Export through Blender's own exporters, then re-import: same frame count and bone count."""

from __future__ import annotations

import os

import pytest

bpy = pytest.importorskip("bpy")

from remomask_addon.blender import export, motion_to_armature, render_presets as rp  # noqa: E402
from tests.addon_keying.conftest import make_motion  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]  # the render suite


@pytest.fixture
def keyed():
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 20
    arm, _ = motion_to_armature.import_motion(bpy.context, make_motion(T=30))
    yield scene, arm
    bpy.ops.wm.read_homefile(use_empty=True)


def _reimport(path, fps=20):
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.render.fps = fps  # glTF stores seconds; the importer keys at the scene's fps
    before = set(bpy.data.objects)
    ext = os.path.splitext(path)[1]
    if ext == ".bvh":
        bpy.ops.import_anim.bvh(filepath=path, update_scene_fps=False, update_scene_duration=True)
    elif ext == ".fbx":
        bpy.ops.import_scene.fbx(filepath=path)
    else:
        bpy.ops.import_scene.gltf(filepath=path)
    arms = [o for o in bpy.data.objects if o not in before and o.type == "ARMATURE"]
    assert len(arms) == 1
    arm = arms[0]
    action = arm.animation_data.action if arm.animation_data else None
    if action is None and arm.animation_data and arm.animation_data.nla_tracks:
        action = arm.animation_data.nla_tracks[0].strips[0].action
    assert action is not None
    lo, hi = action.frame_range
    return arm, int(round(hi - lo)) + 1


@pytest.mark.parametrize("ext", [".bvh", ".fbx", ".glb"])
def test_export_reimports_with_same_frames_and_bones(keyed, tmp_path, ext):
    scene, arm = keyed
    lo, hi = rp.motion_frame_range(scene, arm)
    nbones = len(arm.data.bones)
    umask = os.umask(0o022)
    try:
        out = export.export_armature(arm, str(tmp_path / f"walk{ext}"))
    finally:
        os.umask(umask)
    assert os.listdir(tmp_path) == [f"walk{ext}"]
    assert os.stat(out).st_mode & 0o777 == 0o644  # the user's usual mode, not the temporary file's 0600
    re_arm, frames = _reimport(out)
    assert len(re_arm.data.bones) == nbones
    assert frames == hi - lo + 1


def test_export_refuses_bad_requests_and_keeps_files(keyed, tmp_path):
    scene, arm = keyed
    existing = tmp_path / "walk.fbx"
    existing.write_bytes(b"keep me")
    with pytest.raises(export.ExportError, match="already exists"):
        export.export_armature(arm, str(existing))
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(export.ExportError, match="Unknown export format"):
        export.export_armature(arm, str(tmp_path / "walk.obj"))
    with pytest.raises(export.ExportError, match="does not exist"):
        export.export_armature(arm, str(tmp_path / "nope" / "walk.bvh"))
    mesh = next(c for c in arm.children if c.type == "MESH")
    with pytest.raises(export.ExportError, match="Select an armature"):
        export.export_armature(mesh, str(tmp_path / "walk.bvh"))
    assert sorted(os.listdir(tmp_path)) == ["walk.fbx"]
