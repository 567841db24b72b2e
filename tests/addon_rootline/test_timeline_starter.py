"""The prompt timeline with nothing faked: four prompt markers x 5 s -> Generate Timeline -> the real backend
(``python -m backend.server`` with the shipped starter, SMPL fit) -> one keyed action of 20 s at the scene's
30 fps; the armature's joints read back at 20 fps pass each part's semantic check (the suite's checks, at least
80 % over 5 samples); then Redo Part re-does part 2 through the generator's in-painting."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

import remomask_addon  # noqa: E402
from backend.synthetic import checks as C  # noqa: E402
from backend.train.evaluate import _squat  # noqa: E402
from remomask_addon.blender import anim_compat, read_back  # noqa: E402
from remomask_addon.blender import timeline as btl  # noqa: E402
from remomask_addon.core import timeline as tl  # noqa: E402
from remomask_addon.ops import session  # noqa: E402
from remomask_addon.ui import preferences  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]   # the starter through the real backend

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PARTS = ("a person walks forward", "a person jumps in place", "a person waves with the right hand",
         "a person does a squat")
CHECKS = (C.check_walk_forward, C.check_jump, lambda j: C.check_wave(j, "right"), _squat)
SAMPLES = 5


class _Settings:
    python = sys.executable
    models_dir = os.path.join(REPO, "backend", "starter")
    project_dir = REPO
    device = "cpu"
    remote = None
    token = None
    place_takes = "BESIDE"

    def problem(self):
        return None


@pytest.fixture
def scene(monkeypatch):
    remomask_addon.register()
    bpy.ops.wm.read_homefile(use_empty=True)
    sc = bpy.context.scene
    sc.render.fps = 30
    for i, p in enumerate(PARTS):
        sc.timeline_markers.new(p, frame=1 + 150 * i)
    sc.timeline_markers.new("end", frame=601)
    monkeypatch.setattr(preferences, "settings", lambda context=None: _Settings())
    yield sc
    session.stop_backend()
    session.remove_timer()
    bpy.ops.wm.read_homefile(use_empty=True)
    remomask_addon.unregister()


def test_four_prompt_timeline_with_the_starter(scene):
    props = scene.remomask
    props.samples, props.seed = SAMPLES, 0
    assert bpy.ops.remomask.timeline_generate(synchronous=True, timeout=900) == {"FINISHED"}, props.status
    assert not props.status_is_error, props.status
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert len(arms) == SAMPLES
    frames20 = tl.part_frames([5.0] * 4)
    passed = []
    for arm in arms:
        action = arm.animation_data.action
        assert btl.record_of(action)["prompts"] == list(PARTS)
        assert tuple(action.frame_range) == (1.0, 599.0)             # 400 frames at 20 fps -> 19.95 s at 30 fps
        joints = read_back.armature_joints(arm, scene=scene, frame_range=(1, 599))
        assert joints.shape == (399, 22, 3)    # 20 fps samples within the keyed 598 / 30 s (the last is 19.95 s)
        passed.append([bool(fn(joints[a:b])) for fn, (a, b) in zip(CHECKS, frames20)])
    rates = np.mean(passed, axis=0)
    print("\npart pass rates over samples:", dict(zip(PARTS, rates)))
    # starter 2's first run squatted and stayed down over a 5 s part; retrained (issue #16) every part passes again
    assert (rates >= 0.8).all(), rates

    # Redo Part 2 with a new prompt: a new version; the previous action is kept
    arm = arms[0]
    bpy.context.view_layer.objects.active = arm
    previous = arm.animation_data.action
    before = read_back.armature_joints(arm, scene=scene, frame_range=(1, 599))
    assert bpy.ops.remomask.timeline_redo_part(part=2, prompt="a person waves with the left hand",
                                               synchronous=True, timeout=900) == {"FINISHED"}, props.status
    version = arm.animation_data.action
    assert version != previous and btl.record_of(version)["prompts"][1] == "a person waves with the left hand"
    hole = tl.segment_hole([5.0] * 4, 1)
    (a0, a1), (b0, b1) = tl.untouched_frames(400, hole)
    first = 1 + int(a1 * 1.5)
    last = 1 + int(np.ceil((b0 - 1) * 1.5))
    old = {(fc.data_path, fc.array_index): fc for fc in anim_compat.fcurves(previous)}
    for fc in anim_compat.fcurves(version):
        o = old[(fc.data_path, fc.array_index)]
        for k_new, k_old in zip(fc.keyframe_points, o.keyframe_points):
            if k_old.co[0] < first or k_old.co[0] > last:
                assert tuple(k_new.co) == tuple(k_old.co)
    after = read_back.armature_joints(arm, scene=scene, frame_range=(1, 599))
    assert np.abs(after[hole[0]:hole[1]] - before[hole[0]:hole[1]]).max() > 0.05       # part 2 was re-done
    np.testing.assert_array_equal(after[:a1 - 2], before[:a1 - 2])                      # the rest plays as before
    np.testing.assert_array_equal(after[b0 + 2:], before[b0 + 2:])
    print("part 2 redone as 'waves with the left hand':", C.check_wave(after[slice(*frames20[1])], "left"))
