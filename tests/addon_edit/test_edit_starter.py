"""The Edit panel with nothing faked: the real generator process (``python -m backend.server`` on the shipped
starter model) answers the panel's Regenerate Range on an SMPL armature keyed with a starter walk, and on a
Mixamo-named rig the walk was retargeted onto (edited through the same retarget path); the range does
what the prompt says (the suite's jump check, ``backend/synthetic/checks.py``) for at least 4 of 5 seeds, the keys
outside the range are bit-identical and the seams stay below the walk's own 99th percentile joint step."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

import scenes  # noqa: E402
from remomask_addon.blender import motion_to_armature, read_back  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SEEDS = 5


@pytest.fixture
def real_client(addon, monkeypatch, tmp_path):
    from remomask_addon.core import client as client_mod
    from remomask_addon.ops import session

    c = client_mod.BackendClient(sys.executable, str(REPO / "backend" / "starter"), "cpu", project_dir=str(REPO),
                                 env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    monkeypatch.setattr(session, "_CLIENT", c)
    monkeypatch.setattr(session, "get_client", lambda settings: c)
    session._JOBS.clear()
    yield c
    c.stop()


@pytest.mark.parametrize("kind", ["smpl", "mixamo"])
def test_regenerate_range_jumps_with_the_starter(real_client, tmp_path, kind):
    from backend.synthetic.checks import check_jump
    from remomask_addon.ops import session

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 20, 1.0
    rid = real_client.request("generate", {"prompt": "a person walks forward", "length_s": 8.0, "seed": 1,
                                           "out_dir": str(tmp_path)})
    events = real_client.wait(rid, timeout=240)
    res = next(e for e in events if "result" in e)["result"]
    bone_map = None
    if kind == "smpl":
        arm, walk = motion_to_armature.import_motion(bpy.context, res["motions"][0]["path"], with_mannequin=False)
    else:                                   # the walk retargeted onto a Mixamo-named rig, edited there
        from remomask_addon.core.bone_map import load_bone_map
        arm = scenes.mixamo_rig(bpy)
        walk = motion_to_armature.key_motions(scene, [res["motions"][0]["path"]], armature=arm, placement=None,
                                              select=False).actions[0]
        scene.remomask.bone_map = 'mixamo'
        bone_map = dict(load_bone_map("mixamo"))
    for o in scene.objects:
        o.select_set(o == arm)
    bpy.context.view_layer.objects.active = arm
    snap = scenes.snapshot(walk)
    src = read_back.armature_joints(arm, scene=scene, bone_map=bone_map)
    p99 = np.percentile(np.linalg.norm(np.diff(src, axis=0), axis=-1).max(axis=1), 99)
    ep = scene.remomask_edit
    ep.prompt, ep.range_start, ep.range_end = "a person jumps in place", 60, 130
    lifts, seams, times = [], [], []
    for seed in range(SEEDS):
        ep.seed = seed
        t0 = time.perf_counter()
        assert bpy.ops.remomask.edit(op='REGENERATE', synchronous=True, timeout=240) == {'FINISHED'}, \
            scene.remomask.status
        times.append(time.perf_counter() - t0)
        new = arm.animation_data.action
        w = tuple(new["remomask_edit_window"])
        assert 60 <= w[0] < w[1] <= 130
        scenes.assert_identical(scenes.outside(snap, w), scenes.outside(scenes.snapshot(new), w))
        out = read_back.armature_joints(arm, scene=scene, bone_map=bone_map)
        lifts.append(check_jump(out[w[0] - 1:w[1]]))
        step = np.linalg.norm(np.diff(out, axis=0), axis=-1).max(axis=1)
        for f in w:
            seams.append(float(step[f - 4:f + 2].max()))
            assert step[f - 4:f + 2].max() <= p99 + 0.01, (seed, f, step[f - 4:f + 2].max(), p99)
        assert bpy.ops.remomask.edit_use_version(action=walk.name) == {'FINISHED'}
        assert not session._JOBS
    print(f"{kind}: window {w}; pelvis lifts (m): {[round(c.value, 3) for c in lifts]}; largest seam step "
          f"{max(seams) * 100:.1f} cm/frame (walk p99 {p99 * 100:.1f}); edit round trip "
          f"{min(times):.2f}-{max(times):.2f} s")
    assert np.mean([bool(c) for c in lifts]) >= 0.8, [c.detail for c in lifts]
    assert os.path.isdir(tmp_path)
