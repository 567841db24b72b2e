"""Armature -> motion, the inverse of keying: an armature's animation read back as the 22 SMPL/HumanML3D joints
(T, 22, 3), y-up metres, 20 fps — the form the generator's editing and describe requests take.

The joints are the evaluated pose bones' heads in world space (an SMPL armature's bone heads sit at its joints),
evaluated on the scene's whole frames (where the keys are) and resampled to 20 fps with Catmull-Rom splines
(numpy; exact when the scene runs at 20 fps). Another rig is read through a
bone map (SMPL joint name -> the rig's bone); nothing is keyed, selected or changed: the scene's current frame is
restored.
"""

from __future__ import annotations

import math

import numpy as np

from ..core import coords, smpl_rig
from .keying import scene_fps_of
from .render_presets import motion_frame_range

FPS = 20.0
JOINT_NAMES = smpl_rig.SMPL_JOINT_NAMES[:22]


class ReadBackError(ValueError):
    """The armature cannot be read as a motion (the message says why)."""


def sample_frames(lo: float, hi: float, scene_fps: float, fps: float = FPS) -> np.ndarray:
    """Scene frames (fractional) of 20 fps samples covering [lo, hi]."""
    if hi < lo:
        raise ReadBackError(f"empty frame range {lo}..{hi}")
    n = int(math.floor((hi - lo) * fps / scene_fps + 1e-6)) + 1
    return lo + np.arange(n) * (scene_fps / fps)


def resample(values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """``values`` (N, ...) at integer times 0..N-1 -> values at fractional ``times`` (Catmull-Rom; ends clamped)."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    t = np.clip(np.asarray(times, dtype=np.float64), 0, n - 1)
    i = np.minimum(np.floor(t).astype(int), max(n - 2, 0))
    u = (t - i).reshape((-1,) + (1,) * (v.ndim - 1))
    if n == 1:
        return np.repeat(v, len(t), axis=0)
    p0, p1, p2, p3 = (v[np.clip(i + d, 0, n - 1)] for d in (-1, 0, 1, 2))
    return 0.5 * (2 * p1 + (p2 - p0) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u ** 2 + (3 * p1 - p0 - 3 * p2 + p3) * u ** 3)


def armature_joints(armature, *, scene, frame_range=None, bone_map: dict | None = None) -> np.ndarray:
    """(T, 22, 3) float32 joints of ``armature`` at 20 fps over ``frame_range`` (scene frames, inclusive; default:
    the armature's animation). ``bone_map``: SMPL joint name -> bone of this rig (default: the SMPL names)."""
    if armature is None or armature.type != "ARMATURE":
        raise ReadBackError("Select an armature to read.")
    names = [(bone_map or {}).get(n, n) for n in JOINT_NAMES]
    missing = [f"{j} ({b})" if b != j else j for j, b in zip(JOINT_NAMES, names) if b not in armature.pose.bones]
    if missing:
        raise ReadBackError(f"'{armature.name}' has no bone for {', '.join(missing[:6])}"
                            f"{' ...' if len(missing) > 6 else ''}; give a bone map")
    lo, hi = frame_range if frame_range is not None else motion_frame_range(scene, armature)
    lo, hi = int(math.floor(lo)), int(math.ceil(hi))
    samples = sample_frames(float(lo), float(hi), scene_fps_of(scene))
    current = (scene.frame_current, scene.frame_subframe)
    out = np.empty((hi - lo + 1, len(names), 3))
    try:
        import bpy

        for k, f in enumerate(range(lo, hi + 1)):
            scene.frame_set(f)
            ev = armature.evaluated_get(bpy.context.evaluated_depsgraph_get())
            mw = ev.matrix_world
            for i, n in enumerate(names):
                out[k, i] = tuple(mw @ ev.pose.bones[n].head)
    finally:
        scene.frame_set(current[0], subframe=current[1])
    return coords.points_to_yup(resample(out, samples - lo)).astype(np.float32)
