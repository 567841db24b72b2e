"""A small folder in the layout of ../shared/data/mocap, made from procedural motion (for tests without the
data): CMU-style salsa takes on the DAZ skeleton (y-up, cm, headers saying 120 fps for 60 fps clips, the
dataset's readme.txt saying so) and Mesh2Motion-style clips (z-up, facing -Y, metres, 24 fps)."""

from pathlib import Path

import numpy as np

from backend.mocap.skeletons import DAZ_CMU, MESH2MOTION
from backend.motion import skeleton as S
from backend.motion.bvh import write_bvh
from backend.motion.procedural import walking_params

J = S.JOINT_INDEX


def daz_bvh(path: Path, rest, rot, root, fps: float) -> Path:
    """The motion (the template's rest, local rotations with spine3's at zero, root positions) as a BVH on the DAZ
    skeleton of the CMU release: its joint names, no spine3 (chest -> neck), the toes as the ankles' end sites,
    centimetres."""
    names_of = {k: v for k, v in DAZ_CMU.joints.items() if isinstance(v, str)}
    names_of["pelvis"] = "hip"
    keep = [k for k, nm in enumerate(S.JOINT_NAMES) if nm not in ("spine3", "left_foot", "right_foot")]
    names, parents, offsets = [], [], []
    for k in keep:
        p = S.PARENTS[k]
        while p >= 0 and p not in keep:
            p = S.PARENTS[p]
        names.append(names_of[S.JOINT_NAMES[k]])
        parents.append(keep.index(p) if p >= 0 else -1)
        offsets.append(rest[k] - (rest[p] if p >= 0 else 0))
    ends = {names.index(DAZ_CMU.joints[f"{s}_ankle"]): (rest[J[f"{s}_foot"]] - rest[J[f"{s}_ankle"]]) * 100
            for s in ("left", "right")}
    return write_bvh(path, names, parents, np.array(offsets) * 100, rot[:, keep], root * 100, fps=fps,
                     end_sites=ends)


def m2m_bvh(path: Path, rest, rot, root, fps: float) -> Path:
    """The motion as a BVH on Mesh2Motion's rig as Blender exports it: its names, z-up, facing -Y, metres."""
    names_of = {k: v for k, v in MESH2MOTION.joints.items() if isinstance(v, str)}
    names_of["pelvis"] = "pelvis"
    names = [names_of[nm] for nm in S.JOINT_NAMES]
    offsets = np.array([rest[k] - (rest[p] if p >= 0 else 0) for k, p in enumerate(S.PARENTS)])
    A = MESH2MOTION.axes  # project = A @ source, so source rows are v @ A
    return write_bvh(path, names, S.PARENTS, offsets @ A, rot @ A, root @ A, fps=fps)


def _daz(path: Path, n: int, seed: int):
    rest, rot, root = walking_params(n, turn_degrees=90, seed=seed)
    rot = rot.copy()
    rot[:, J["spine3"]] = 0.0
    # the header says 120 fps; the motion was made at 20 fps and is written as if captured at 60 (3x frames)
    t = np.arange(3 * n - 2) / 3
    i0 = np.minimum(np.floor(t).astype(int), n - 2)
    w = (t - i0)[:, None, None]
    rot60 = rot[i0] * (1 - w) + rot[i0 + 1] * w
    root60 = root[i0] * (1 - w[:, :, 0]) + root[i0 + 1] * w[:, :, 0]
    daz_bvh(path, rest, rot60, root60, fps=120)


def _m2m(path: Path, n: int, seed: int):
    rest, rot, root = walking_params(n, turn_degrees=0, speed=0.0, seed=seed)
    m2m_bvh(path, rest, rot, root, fps=24)


def make_fake_mocap(root: Path, salsa_takes: int = 4) -> Path:
    cmu = root / "cmu_dance_acrnn" / "train_data_bvh"
    (cmu / "salsa").mkdir(parents=True)
    (cmu / "readme.txt").write_text("salsa  framerate 60\n")
    for i in range(salsa_takes):
        _daz(cmu / "salsa" / f"{i + 1:02d}.bvh", 120, seed=i)
    m2m = root / "mesh2motion_cc0" / "bvh"
    m2m.mkdir(parents=True)
    for i, name in enumerate(("jumping-jacks", "pushup", "fighting-left-jab", "levitate-idle")):
        _m2m(m2m / f"animation-human-{name}.bvh", 60, seed=10 + i)
    (m2m / "animation-human-broken.bvh").write_text("HIERARCHY\nROOT x {")  # not a label: never read
    return root
