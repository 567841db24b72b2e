"""A new take in Blender's default scene (issue #13 item 6): not buried in the default cube, beside the previous
takes or at the 3D cursor, the only selected and the active object, the scene's frame range fitted to it, and the
user's other objects left where and as they were."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from remomask_addon.blender import motion_to_armature, take_placement  # noqa: E402

pytestmark = pytest.mark.blender

T = 153     # the take: 153 frames, with the scene left at 1-250 before


@pytest.fixture
def default_scene(bpy_clean):
    """Blender's default scene, as far as a take is concerned: a 2 m cube at the origin, selected and active."""
    bpy.ops.mesh.primitive_cube_add(size=2.0, location=(0.0, 0.0, 0.0))
    cube = bpy.context.active_object
    bpy.context.scene.render.fps = 20          # the motions' rate: one key per frame
    assert cube.name == "Cube" and cube.select_get()
    assert (bpy.context.scene.frame_start, bpy.context.scene.frame_end) == (1, 250)
    return bpy.context.scene, cube


def _swept_points(arm, frames):
    """World positions of every bone's head and tail over ``frames`` (evaluated)."""
    scene = bpy.context.scene
    pts = []
    for f in frames:
        scene.frame_set(int(f))
        mw = arm.matrix_world
        for pb in arm.pose.bones:
            pts += [tuple(mw @ pb.head), tuple(mw @ pb.tail)]
    scene.frame_set(scene.frame_start)
    return np.array(pts)


def _world_bounds(obj):
    c = np.array([tuple(obj.matrix_world @ __import__("mathutils").Vector(v)) for v in obj.bound_box])
    return c.min(axis=0), c.max(axis=0)


def _inside(points, lo, hi, margin=0.0):
    return np.all((points > lo - margin) & (points < hi + margin), axis=1)


def test_first_take_is_beside_the_default_cube_selected_with_its_frame_range(default_scene, motion_factory):
    scene, cube = default_scene
    cube_state = (tuple(cube.location), tuple(cube.scale), cube.hide_render, cube.hide_viewport, cube.parent)
    keyed = motion_to_armature.key_motions(scene, [motion_factory(T=T, speed=0.8)])
    arm = keyed.armature
    # not inside the cube at any moment: no bone point within the cube (with the body's thickness around it)
    lo, hi = _world_bounds(cube)
    pts = _swept_points(arm, range(1, T + 1, 4))
    assert not _inside(pts, lo, hi, margin=0.15).any()
    assert arm.location.x > hi[0]            # beside the cube, along +X
    # the only selected object and the active one: Render and Export act on it
    vl = bpy.context.view_layer
    assert vl.objects.active == arm
    assert [o.name for o in vl.objects if o.select_get()] == [arm.name]
    # the frame range is the take's
    assert (scene.frame_start, scene.frame_end) == (1, T)
    # the cube is where and as it was (only its selection changed)
    assert (tuple(cube.location), tuple(cube.scale), cube.hide_render, cube.hide_viewport, cube.parent) == \
        cube_state
    assert len(arm[take_placement.FOOTPRINT_PROP]) == 6


def test_each_new_take_goes_beside_the_previous_ones(default_scene, motion_factory):
    scene, cube = default_scene
    arms = []
    for i in range(3):
        arms += motion_to_armature.key_motions(scene, [motion_factory(T=40 + 10 * i, seed=i)],
                                               with_body=i != 1).armatures
    xs = [a.location.x for a in arms]
    assert xs == sorted(xs) and len(set(xs)) == 3
    boxes = [take_placement._world_box(a) for a in arms]
    for i in range(3):
        for j in range(i):
            a, b = boxes[i], boxes[j]
            assert a[0, 0] >= b[1, 0] or b[0, 0] >= a[1, 0], "two takes' paths overlap"
    assert [o.name for o in bpy.context.view_layer.objects if o.select_get()] == [arms[-1].name]
    assert (scene.frame_start, scene.frame_end) == (1, 60)            # the last take's frames
    # several samples of one generation: each its own armature, beside each other, all selected
    keyed = motion_to_armature.key_motions(scene, [motion_factory(T=30, seed=7), motion_factory(T=30, seed=8)])
    a, b = keyed.armatures
    assert b.location.x > a.location.x > arms[-1].location.x
    assert bpy.context.view_layer.objects.active == a and a.select_get() and b.select_get()


def test_at_the_3d_cursor_when_asked(default_scene, motion_factory):
    scene, cube = default_scene
    scene.cursor.location = (3.0, -2.0, 0.5)
    keyed = motion_to_armature.key_motions(scene, [motion_factory(T=20)], placement="CURSOR")
    assert tuple(keyed.armature.location) == pytest.approx((3.0, -2.0, 0.5))
    with pytest.raises(ValueError, match="Unknown placement"):
        motion_to_armature.key_motions(scene, [motion_factory(T=20)], placement="NOWHERE")
    assert len([o for o in bpy.data.objects if o.type == "ARMATURE"]) == 1    # the failed call left nothing


def test_keying_onto_an_existing_armature_moves_nothing(default_scene, motion_factory):
    scene, cube = default_scene
    arm = motion_to_armature.key_motions(scene, [motion_factory(T=20)]).armature
    arm.location = (-7.0, 4.0, 0.0)
    bpy.context.view_layer.objects.active = cube
    motion_to_armature.key_motions(scene, [motion_factory(T=90, seed=3)], armature=arm)
    assert tuple(arm.location) == pytest.approx((-7.0, 4.0, 0.0))
    assert (scene.frame_start, scene.frame_end) == (1, 90)


def test_a_frame_range_beyond_the_scenes_end(bpy_clean, motion_factory):
    scene = bpy.context.scene
    scene.render.fps = 20
    scene.frame_start, scene.frame_end = 1, 10
    motion_to_armature.key_motions(scene, [motion_factory(T=30)], start_frame=20)
    assert (scene.frame_start, scene.frame_end) == (20, 49)
    assert scene.frame_current == 20
