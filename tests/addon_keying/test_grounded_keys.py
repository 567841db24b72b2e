"""What the animator gets keyed stands on the floor (issue #11 part 3): a generated-looking walk with short,
sunk legs, fitted with the feet grounded (the default) and keyed onto the SMPL armature, has no foot bone below
the floor by more than 1 cm on any frame; fitted without grounding it goes through the floor."""

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
synthetic = pytest.importorskip("backend.synthetic")

from remomask_addon.blender import motion_to_armature  # noqa: E402
from smpl_fitting import fit_motion  # noqa: E402

from .conftest import evaluated_heads  # noqa: E402

FEET = ("left_ankle", "right_ankle", "left_foot", "right_foot")


def _sunk_walk():
    from tests.smpl_fitting.test_ground import corrupt

    clean = synthetic.generate_clip("walk", 100, direction="forward").joints.astype(float)
    return corrupt(clean, sink=0.04)


def _keyed_lowest_foot(bpy_mod, joints, ground_feet):
    fit = fit_motion(joints, ground_feet=ground_feet)
    motion = dict(joints=joints.astype(np.float32), fps=20.0, prompt="a person walks forward", seed=0,
                  retrieved=[], **fit.as_npz_fields())
    motion.pop("fit_model", None)
    bpy_mod.ops.wm.read_homefile(use_empty=True)
    arm, _ = motion_to_armature.import_motion(bpy_mod.context, motion)
    frames = range(bpy_mod.context.scene.frame_start, bpy_mod.context.scene.frame_start + len(joints))
    heads = evaluated_heads(bpy_mod, arm, frames, names=FEET)  # (F, 4, 3) world, z-up
    return float(heads[..., 2].min() - arm.matrix_world.translation.z)


def test_keyed_armature_feet_stand_on_the_floor(bpy_clean):
    joints = _sunk_walk()
    assert joints[:, [7, 8, 10, 11], 1].min() < -0.03  # the input goes 3+ cm through the floor
    assert _keyed_lowest_foot(bpy_clean, joints, ground_feet=True) > -0.01
    assert _keyed_lowest_foot(bpy_clean, joints, ground_feet=False) < -0.02  # the switch turns it off
