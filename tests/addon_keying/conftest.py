"""Fixtures for the keying tests: synthetic SMPL motions written with our own numpy FK, and a clean
bpy scene per test (bpy is imported only when a test asks for it)."""

from __future__ import annotations

import numpy as np
import pytest

from remomask_addon.core import smpl_rig


def make_motion(T=60, fps=20.0, seed=0, prompt="a person walks forward", yaw0=0.0, speed=1.2,
                turn=0.6, amp=0.35):
    """A smooth, plausible random SMPL motion (y-up): every joint swings with a few sinusoids,
    the root turns slowly and walks along its heading. Returns a dict in the .npz layout."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / fps
    poses = np.zeros((T, 24, 3))
    for j in range(1, 24):
        for _ in range(2):
            axis = rng.normal(size=3)
            axis /= np.linalg.norm(axis)
            f = rng.uniform(0.3, 1.5)
            ph = rng.uniform(0, 2 * np.pi)
            poses[:, j] += np.outer(amp * np.sin(2 * np.pi * f * t + ph), axis)
    yaw = yaw0 + turn * t
    tilt = 0.15 * np.sin(2 * np.pi * 0.7 * t)
    root = smpl_rig.axis_angle_to_matrix(np.stack([np.zeros(T), yaw, np.zeros(T)], -1)) @ \
        smpl_rig.axis_angle_to_matrix(np.stack([tilt, np.zeros(T), np.zeros(T)], -1))
    poses[:, 0] = smpl_rig.matrix_to_axis_angle(root)
    # walk along the heading (body forward is +Z in y-up)
    heading = np.stack([np.sin(yaw), np.zeros(T), np.cos(yaw)], -1)
    trans = np.cumsum(heading * speed / fps, axis=0) - heading[0] * speed / fps
    trans[:, 1] = 0.03 * np.sin(2 * np.pi * 1.8 * t)
    rest = smpl_rig.TEMPLATE_REST_JOINTS.copy()
    joints24, _ = smpl_rig.forward_kinematics(rest, poses, trans)
    return {
        "joints": joints24[:, :22].astype(np.float32),
        "poses": poses.astype(np.float32),
        "trans": trans.astype(np.float32),
        "betas": np.zeros(10, np.float32),
        "rest_joints": rest.astype(np.float32),
        "fit_error_mm": np.zeros(T, np.float32),
        "fps": np.float32(fps),
        "prompt": np.array(prompt),
        "seed": np.int64(seed),
        "retrieved": np.array(["a man walks", "someone strolls"]),
    }


def write_npz(path, motion):
    np.savez(path, **motion)
    return path


@pytest.fixture
def motion_factory():
    return make_motion


@pytest.fixture
def npz_writer():
    return write_npz


@pytest.fixture
def bpy_clean():
    """bpy with an empty scene; skipped where bpy is not installed."""
    bpy = pytest.importorskip("bpy")
    bpy.ops.wm.read_homefile(use_empty=True)
    yield bpy
    bpy.ops.wm.read_homefile(use_empty=True)


def evaluated_heads(bpy, armature, frames, names=smpl_rig.SMPL_JOINT_NAMES):
    """World positions (len(frames), len(names), 3) of pose-bone heads, evaluated per frame."""
    scene = bpy.context.scene
    out = np.empty((len(frames), len(names), 3))
    for k, f in enumerate(frames):
        scene.frame_set(int(f))
        dg = bpy.context.evaluated_depsgraph_get()
        ev = armature.evaluated_get(dg)
        mw = ev.matrix_world
        for i, n in enumerate(names):
            out[k, i] = tuple(mw @ ev.pose.bones[n].head)
    return out


@pytest.fixture
def heads_evaluator():
    return evaluated_heads
