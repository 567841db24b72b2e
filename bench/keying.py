"""Keying speed: bulk F-Curve writes (keying.key_motion) vs the per-key keyframe_insert path.

Run: /work/venv/bin/python bench/keying.py [--frames 196] [--repeat 5]
Prints the median time to key a frames x 24-bone SMPL motion both ways and checks that both
give the same keys.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bpy  # noqa: E402

from remomask_addon.blender import anim_compat, armature, keying  # noqa: E402
from remomask_addon.core import channels, motion_io, smpl_rig  # noqa: E402


def synthetic_motion(T: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    t = np.arange(T) / 20.0
    poses = np.zeros((T, 24, 3))
    for j in range(24):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        poses[:, j] = np.outer(0.4 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t), axis)
    trans = np.stack([np.zeros(T), np.zeros(T), 1.2 * t], -1)
    return {"poses": poses, "trans": trans, "rest_joints": smpl_rig.TEMPLATE_REST_JOINTS,
            "fps": 20.0, "prompt": "bench"}


def per_key_insert(arm, quats, loc, start_frame=1):
    """The slow path the add-on avoids: set each channel and keyframe_insert frame by frame."""
    from remomask_addon.blender import anim_compat as ac

    action, slot = ac.new_action("per-key", arm)
    ac.assign_action(arm, action, slot)
    pbs = [arm.pose.bones[n] for n in smpl_rig.SMPL_JOINT_NAMES]
    root = pbs[0]
    for pb in pbs:
        pb.rotation_mode = "QUATERNION"
    for k in range(quats.shape[0]):
        f = start_frame + k
        root.location = loc[k]
        root.keyframe_insert("location", frame=f, group=root.name)
        for j, pb in enumerate(pbs):
            pb.rotation_quaternion = quats[k, j]
            pb.keyframe_insert("rotation_quaternion", frame=f, group=pb.name)
    return action


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=196)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    bpy.ops.wm.read_homefile(use_empty=True)
    arm = armature.build_smpl_armature(bpy.context, None, "SMPL")
    motion = synthetic_motion(args.frames)
    rest = armature.armature_rest_matrices(arm)

    bulk, convert, slow, bulk30 = [], [], [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        keying.key_motion(arm, motion, scene_fps=30)
        bulk30.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        a_bulk = keying.key_motion(arm, motion, scene_fps=20)
        bulk.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        quats, loc = channels.bone_channels(rest, motion_io.validate_motion(motion), 20.0)
        convert.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        a_slow = per_key_insert(arm, quats, loc)
        slow.append(time.perf_counter() - t0)

    # same keys both ways
    worst = 0.0
    for fc in anim_compat.fcurves(a_bulk):
        other = anim_compat.find_fcurve(a_slow, fc.data_path, fc.array_index)
        f1, v1 = anim_compat.read_keys(fc)
        f2, v2 = anim_compat.read_keys(other)
        assert np.array_equal(f1, f2)
        worst = max(worst, float(np.abs(v1 - v2).max()))

    n_keys = args.frames * (24 * 4 + 3)
    med_b, med_c, med_s, med_30 = (statistics.median(x) for x in (bulk, convert, slow, bulk30))
    print(f"Blender {bpy.app.version_string}, {args.frames} frames x 24 bones ({n_keys} keys), "
          f"median (min) of {args.repeat}")

    def row(label, xs):
        print(f"  {label:<58}{statistics.median(xs) * 1000:7.1f} ms ({min(xs) * 1000:.1f})")

    row("key_motion at 20 fps (validate+convert+bulk write+assign)", bulk)
    row("  of which numpy conversion (bone_channels)", convert)
    n30 = len(channels.resample_times(args.frames, 20.0, 30.0))
    row(f"key_motion resampled to 30 fps ({n30} frames)", bulk30)
    row("per-key keyframe_insert at 20 fps (values precomputed)", slow)
    print(f"  speed-up: {med_s / med_b:.1f}x; largest key difference between the two: {worst:.2e}")
    print(f"  target < 50 ms: {'met' if med_b < 0.05 else 'MISSED'}")
    bpy.ops.wm.read_homefile(use_empty=True)


if __name__ == "__main__":
    main()
