"""Synthetic stand-ins for tests and benchmarks: an SMPL-format model file (no gated data) and plausible
motions.

The synthetic model has the real key names and shapes of an SMPL ``.pkl`` (v_template (6890, 3), shapedirs
(6890, 3, 10), posedirs (6890, 3, 207), J_regressor (24, 6890) sparse, weights (6890, 24), kintree_table
(2, 24), f (13776, 3)): vertices lie on capsules around the bones of an SMPL-like skeleton, each J_regressor
row averages eight vertices placed symmetrically around its joint, and the shape directions are smooth
(linear) deformation fields, so shape changes move the joints plausibly. It is NOT the SMPL body.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from backend.atomic import atomic_write_bytes

from . import skeleton as sk

NUM_VERTS = 6890
NUM_FACES = 13776
#: Rest pose of the synthetic body: the template moved like SMPL's (pelvis below the origin).
SYNTH_REST_OFFSET = np.array([0.0, -0.22, 0.02])


def make_synthetic_smpl_data(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    rest = sk.TEMPLATE_REST_JOINTS + SYNTH_REST_OFFSET
    verts = np.zeros((NUM_VERTS, 3))
    weights = np.zeros((NUM_VERTS, 24))
    jreg = np.zeros((24, NUM_VERTS))
    cube = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float) * 0.015
    n = 0
    for j in range(24):
        verts[n:n + 8] = rest[j] + cube
        weights[n:n + 8, j] = 1.0
        jreg[j, n:n + 8] = 1.0 / 8.0
        n += 8
    bones = list(range(1, 24))
    per_bone = (NUM_VERTS - n) // len(bones)
    for b_i, c in enumerate(bones):
        p = sk.SMPL_PARENTS[c]
        count = per_bone if b_i < len(bones) - 1 else NUM_VERTS - n
        s = rng.uniform(0, 1, count)
        axis = rest[c] - rest[p]
        length = np.linalg.norm(axis)
        d = axis / max(length, 1e-9)
        helper = np.array([1.0, 0, 0]) if abs(d[0]) < 0.9 else np.array([0, 1.0, 0])
        e1 = np.cross(d, helper)
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(d, e1)
        ang = rng.uniform(0, 2 * np.pi, count)
        radius = 0.035 + 0.04 * (p in (0, 3, 6, 9))
        verts[n:n + count] = (rest[p] + s[:, None] * axis + radius * (np.cos(ang)[:, None] * e1
                                                                       + np.sin(ang)[:, None] * e2))
        wc = np.clip((s - 0.7) / 0.3, 0, 1) * 0.5
        weights[n:n + count, p] = 1 - wc
        weights[n:n + count, c] += wc
        n += count
    pelvis = rest[0]
    shapedirs = np.zeros((NUM_VERTS, 3, 10))
    shapedirs[:, :, 0] = 0.06 * (verts - pelvis)                           # overall size
    below = verts[:, 1] < pelvis[1]
    shapedirs[below, 1, 1] = 0.06 * (verts[below, 1] - pelvis[1])          # leg length
    shapedirs[:, 0, 2] = 0.05 * (verts[:, 0] - pelvis[0])                  # width
    arm = np.abs(verts[:, 0]) > 0.17
    shapedirs[arm, 0, 3] = 0.05 * (verts[arm, 0] - np.sign(verts[arm, 0]) * 0.17)  # arm length
    above = verts[:, 1] > pelvis[1]
    shapedirs[above, 1, 4] = 0.04 * (verts[above, 1] - pelvis[1])          # torso length
    for k in range(5, 10):
        a = rng.normal(0, 0.01, (3, 3))
        shapedirs[:, :, k] = (verts - pelvis) @ a.T
    posedirs = rng.normal(0, 1e-3, (NUM_VERTS, 3, 207))
    base = rng.integers(0, NUM_VERTS - 3, NUM_FACES)
    faces = np.stack([base, base + 1, base + 2], 1).astype(np.uint32)
    parents = np.array(sk.SMPL_PARENTS, dtype=np.int64)
    parents[0] = 4294967295
    kintree = np.stack([parents, np.arange(24)]).astype(np.int64)
    from scipy import sparse  # noqa: PLC0415
    return {
        "v_template": verts, "shapedirs": shapedirs, "posedirs": posedirs,
        "J_regressor": sparse.csc_matrix(jreg), "weights": weights, "kintree_table": kintree, "f": faces,
        "bs_type": "lrotmin", "bs_style": "lbs",
    }


def write_synthetic_smpl_model(folder: str | os.PathLike, gender: str = "neutral", seed: int = 0) -> Path:
    """Write ``<folder>/smpl/SMPL_<GENDER>.pkl`` (the layout ``smplx.create`` reads) and return the file."""
    path = Path(folder) / "smpl" / f"SMPL_{gender.upper()}.pkl"
    return atomic_write_bytes(path, pickle.dumps(make_synthetic_smpl_data(seed), protocol=2))


def random_plausible_poses(n: int, rng: np.random.Generator, min_bend: float = 0.45) -> np.ndarray:
    """(n, 24, 3) independent random poses within loose human ranges; knees and elbows are one-way hinges
    bent by at least ``min_bend`` radians (so the limb twist is determined by the joints)."""
    poses = rng.normal(0.0, 0.2, (n, 24, 3))
    poses[:, 0] = rng.normal(0, 0.6, (n, 3))
    poses[:, [1, 2]] = rng.normal(0, 0.35, (n, 2, 3))
    poses[:, [16, 17]] = rng.normal(0, 0.4, (n, 2, 3))
    for j in (sk.L_KNEE, sk.R_KNEE):
        poses[:, j] = 0
        poses[:, j, 0] = rng.uniform(min_bend, 2.0, n)
    poses[:, sk.L_ELBOW] = 0
    poses[:, sk.L_ELBOW, 1] = -rng.uniform(min_bend, 2.0, n)
    poses[:, sk.R_ELBOW] = 0
    poses[:, sk.R_ELBOW, 1] = rng.uniform(min_bend, 2.0, n)
    poses[:, [sk.L_HAND, sk.R_HAND]] = 0
    return poses


def smooth_motion(t: int, rng: np.random.Generator, fps: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth, plausible motion: poses (t, 24, 3) and trans (t, 3) (walk-like travel with turning)."""
    time = np.arange(t) / fps
    poses = np.zeros((t, 24, 3))
    for j in range(22):
        amp = rng.uniform(0.05, 0.3, 3)
        freq = rng.uniform(0.2, 1.2, 3)
        phase = rng.uniform(0, 2 * np.pi, 3)
        poses[:, j] = amp * np.sin(2 * np.pi * freq * time[:, None] + phase)
    for j in (sk.L_KNEE, sk.R_KNEE):
        poses[:, j] = 0
        poses[:, j, 0] = 0.7 + 0.6 * np.sin(2 * np.pi * rng.uniform(0.4, 1.0) * time + rng.uniform(0, 6))
    for j, sign in ((sk.L_ELBOW, -1), (sk.R_ELBOW, 1)):
        poses[:, j] = 0
        poses[:, j, 1] = sign * (0.8 + 0.6 * np.sin(2 * np.pi * rng.uniform(0.3, 0.9) * time + rng.uniform(0, 6)))
    for j in (16, 17):  # arms down-ish from the T-pose
        poses[:, j, 2] += (1.0 if j == 17 else -1.0) * 0.9
    heading = rng.uniform(-0.5, 0.5) * time + rng.uniform(0, 2 * np.pi)
    poses[:, 0, 1] += heading
    speed = rng.uniform(0.3, 1.4)
    step = np.stack([np.sin(heading), np.zeros(t), np.cos(heading)], 1) * speed / fps
    trans = np.cumsum(step, axis=0)
    trans[:, 1] = 0.05 * np.sin(2 * np.pi * 1.5 * time)
    return poses, trans
