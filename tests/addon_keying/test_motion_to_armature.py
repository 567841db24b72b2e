"""The one motion -> armature path (blender/motion_to_armature.py): one action naming for every caller, one
armature per motion unless laid out on the NLA, retargeting onto any other rig with the temporary SMPL source
removed again, and nothing left behind on an error."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from remomask_addon.blender import headless, motion_to_armature  # noqa: E402
from remomask_addon.core import motion_io  # noqa: E402
from tests.retarget.rigs import build_armature, mixamo_bones, target_joints  # noqa: E402

pytestmark = pytest.mark.blender


def _counts():
    return tuple(len(getattr(bpy.data, k)) for k in ("objects", "actions", "armatures", "meshes"))


def test_every_caller_names_actions_after_the_prompt(bpy_clean, motion_factory, npz_writer, tmp_path):
    scene = bpy.context.scene
    keyed = motion_to_armature.key_motions(scene, [motion_factory(T=10, prompt="a person waves"),
                                                   motion_factory(T=12, seed=1, prompt="a person bows")],
                                           with_body=False)
    assert [a.name for a in keyed.actions] == ["a person waves", "a person bows"]
    assert len(set(keyed.armatures)) == 2 and keyed.strips == []          # one armature per motion
    path = npz_writer(tmp_path / "file_stem.npz", motion_factory(T=10, prompt="a person jumps"))
    keyed = motion_to_armature.key_motions(scene, [str(path)], with_body=False)   # a path is loaded
    assert keyed.actions[0].name == "a person jumps" and keyed.actions[0]["remomask_prompt"] == "a person jumps"
    _, arm, action = headless.scene_from_motion(str(path), with_mannequin=False)
    assert action.name == "a person jumps" and arm.animation_data.action == action


def test_nla_onto_one_armature_and_onto_a_given_smpl_armature(bpy_clean, motion_factory):
    scene = bpy.context.scene
    ms = [motion_factory(T=20, seed=i, prompt=f"take {i}") for i in range(2)]
    keyed = motion_to_armature.key_motions(scene, ms, nla=True, with_body=False)
    arm = keyed.armature
    assert keyed.armatures == [arm, arm] and len(keyed.strips) == 2 and arm.animation_data.action is None
    before = _counts()
    again = motion_to_armature.key_motions(scene, [motion_factory(T=8, prompt="take 2")], armature=arm)
    assert again.armature == arm and _counts() == (before[0], before[1] + 1, before[2], before[3])


def test_a_non_smpl_rig_is_reached_by_retargeting(bpy_clean, motion_factory):
    scene = bpy.context.scene
    rig = build_armature(bpy, "Hero", mixamo_bones(target_joints()))
    before = _counts()
    keyed = motion_to_armature.key_motions(scene, [motion_io.validate_motion(motion_factory(T=15, prompt="walk"))],
                                           armature=rig, bone_map="mixamo")
    assert keyed.armatures == [rig] and rig.animation_data.action == keyed.actions[0]
    assert keyed.actions[0].name == "walk" and keyed.actions[0]["remomask_prompt"] == "walk"
    # one new action; the temporary SMPL source armature and its action are gone
    assert _counts() == (before[0], before[1] + 1, before[2], before[3])
    assert motion_to_armature.RETARGET_SOURCE_NAME not in bpy.data.objects


def test_an_error_leaves_nothing_behind(bpy_clean, motion_factory, monkeypatch):
    scene = bpy.context.scene
    before = _counts()
    real = motion_to_armature._keying()

    def half_then_fail(armature, motion, **kw):
        real.key_motion(armature, motion, **kw)
        raise RuntimeError("disk full")

    monkeypatch.setattr(motion_to_armature, "_keying", lambda: type(real)(**{**vars(real),
                                                                            "key_motion": half_then_fail}))
    with pytest.raises(RuntimeError, match="disk full"):
        motion_to_armature.key_motions(scene, [motion_factory(T=10)])
    assert _counts() == before
    with pytest.raises(ValueError, match="no motions"):
        motion_to_armature.key_motions(scene, [])
    bad = motion_factory(T=10)
    bad["poses"] = np.zeros((10, 23, 3))
    with pytest.raises(motion_io.MotionFileError, match="motion 2: 'poses'"):
        motion_to_armature.key_motions(scene, [motion_factory(T=10), bad])
    assert _counts() == before
