"""Command-line side of rendering/export: motion file -> scene -> output (no UI)."""

from __future__ import annotations

import os

import pytest

bpy = pytest.importorskip("bpy")

from remomask_addon.blender import export, headless, render_presets as rp  # noqa: E402
from tests.addon_keying.conftest import make_motion, write_npz  # noqa: E402
from tests.retarget.rigs import build_armature, mixamo_bones, target_joints  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]  # the render suite


@pytest.fixture
def motion_file(tmp_path):
    return str(write_npz(tmp_path / "walk.npz", make_motion(T=24)))


def test_scene_from_motion_keys_the_whole_motion(motion_file):
    scene, arm, action = headless.scene_from_motion(motion_file)
    assert scene.render.fps == 20
    assert (scene.frame_start, scene.frame_end) == (1, 24)
    assert any(c.type == "MESH" for c in arm.children)


def test_render_file_sequence(motion_file, tmp_path):
    out = headless.render_file(motion_file, str(tmp_path / "s.png"),
                               rp.RenderOptions(mode="sequence", sequence_count=3, resolution="360p", scale_percent=25))
    assert os.path.getsize(out) > 0


def test_export_file_retargeted_onto_a_rig_from_another_blend(motion_file, tmp_path):
    bpy.ops.wm.read_homefile(use_empty=True)
    build_armature(bpy, "Hero", mixamo_bones(target_joints(leg_scale=1.2)))
    rig_blend = str(tmp_path / "hero.blend")
    bpy.ops.wm.save_as_mainfile(filepath=rig_blend, copy=True)

    out = headless.export_file(motion_file, str(tmp_path / "hero.bvh"), target_blend=rig_blend,
                               target_armature="Hero", bone_map="mixamo")
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.import_anim.bvh(filepath=out, update_scene_fps=False)
    arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    names = {b.name for b in arm.data.bones}
    assert "mixamorig:Hips" in names and "pelvis" not in names
    lo, hi = arm.animation_data.action.frame_range
    assert int(round(hi - lo)) + 1 == 24
    # the hips travel (the source walks about 1.2 m/s for 1.2 s; the rig's legs are 1.2x longer)
    scene = bpy.context.scene
    scene.frame_set(int(lo))
    start = arm.matrix_world @ arm.pose.bones["mixamorig:Hips"].head
    scene.frame_set(int(hi))
    end = arm.matrix_world @ arm.pose.bones["mixamorig:Hips"].head
    # Blender's BVH exporter writes Blender's z-up axes and its importer assumes y-up, so the round trip
    # turns the path by 90 degrees: compare the length of the path, not its direction.
    assert (end - start).length > 0.8


def test_export_file_bad_target(motion_file, tmp_path):
    with pytest.raises(export.ExportError, match="not found"):
        headless.export_file(motion_file, str(tmp_path / "x.fbx"), target_blend=str(tmp_path / "no.blend"),
                             target_armature="Hero")
    with pytest.raises(export.ExportError, match="both"):
        headless.export_file(motion_file, str(tmp_path / "x.fbx"), target_blend=str(tmp_path / "no.blend"))
    assert not (tmp_path / "x.fbx").exists()
