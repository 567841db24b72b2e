"""Any motion the product reads -> joints (T, 22, 3) at 20 fps and 263-d HumanML3D features (T, 263).

Readable: a motion ``.npz`` (this project's format, ``backend.motion.motion_file``), a HumanML3D joints
``.npy`` ((T, 22, 3), (T, 66) or (T, J>22, 3)) and a BVH whose joints carry the SMPL/HumanML3D names
(``pelvis``, ``left_hip`` ... or SMPL's ``L_Hip`` style; the project's own BVH export). Other frame rates are
resampled to 20 fps (linear); BVH lengths in centimetres are recognised by the body's height. Anything else
is refused with one :class:`MotionReadError` naming the file and the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.errors import InvalidInput
from backend.motion.skeleton import JOINT_NAMES, NUM_JOINTS

FPS = 20
MOTION_SUFFIXES = (".npz", ".npy", ".bvh")


class MotionReadError(InvalidInput):
    """A motion file that cannot be used: one line for people (protocol code invalid_params, exit 2)."""


@dataclass
class MotionInput:
    joints: np.ndarray      # (T, 22, 3) float32, metres, y-up, 20 fps
    features: np.ndarray    # (T, 263) float32, de-normalised
    path: str
    prompt: str = ""        # the file's own prompt (a generated motion .npz), if any

    @property
    def frames(self) -> int:
        return int(self.joints.shape[0])

    @property
    def seconds(self) -> float:
        return self.frames / FPS


def resample(joints: np.ndarray, fps: float) -> np.ndarray:
    """(T, J, 3) at ``fps`` -> 20 fps float32 (``backend.motion.timing.resample``)."""
    from backend.motion.timing import resample as to_fps

    return np.asarray(to_fps(np.asarray(joints), fps, FPS), dtype=np.float32)


def _canonical_name(name: str) -> str:
    n = name.split(":")[-1].split("|")[-1].lower()
    n = re.sub(r"^(m_avg_|smpl_|bip01_)", "", n)
    n = re.sub(r"^l_", "left_", n)
    n = re.sub(r"^r_", "right_", n)
    return n


def _bvh_joints(path: Path) -> tuple[np.ndarray, float]:
    from backend.motion.bvh import BVHError, bvh_positions, read_bvh

    try:
        b = read_bvh(path)
        pos, _ends = bvh_positions(b)
    except BVHError as exc:
        raise MotionReadError(str(exc)) from None
    except (ValueError, IndexError) as exc:
        raise MotionReadError(f"{path}: not a readable BVH ({exc})") from None
    index = {_canonical_name(n): i for i, n in enumerate(b["names"])}
    missing = [n for n in JOINT_NAMES if n not in index]
    if missing:
        raise MotionReadError(
            f"{path}: not the SMPL/HumanML3D skeleton (no joint named {', '.join(missing[:4])}"
            f"{' ...' if len(missing) > 4 else ''}); retarget it to SMPL first")
    j = pos[:, [index[n] for n in JOINT_NAMES]]
    height = float(np.median(j[:, 15, 1] - j[:, :, 1].min(axis=1)))
    if height > 20:  # centimetres
        j = j / 100.0
    return j.astype(np.float32), float(b["fps"])


def read_motion(path, what: str = "motion") -> MotionInput:
    """A motion file -> MotionInput; MotionReadError (one line naming the file) when it cannot be used."""
    from backend.editing.source import EditError, source_from_joints
    from backend.motion.motion_file import MotionFileError, load_joints_npy, load_motion

    p = Path(path).expanduser()
    if not p.is_file():
        raise MotionReadError(f"{what} file not found: {p}")
    suffix = p.suffix.lower()
    prompt, features, fps = "", None, float(FPS)
    try:
        if suffix == ".npy":
            joints = load_joints_npy(p)
        elif suffix == ".npz":
            m = load_motion(p)
            joints, features = m["joints"], m.get("features")
            prompt, fps = str(m.get("prompt", "") or ""), float(m.get("fps", FPS))
        elif suffix == ".bvh":
            joints, fps = _bvh_joints(p)
        else:
            raise MotionReadError(f"{p.name}: not a motion file (a motion .npz, a joints .npy or a BVH)")
    except MotionFileError as exc:
        raise MotionReadError(str(exc)) from None
    except OSError as exc:
        raise MotionReadError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    if not np.isfinite(fps) or fps <= 0:
        raise MotionReadError(f"{p}: frame rate {fps} is not usable")
    if abs(fps - FPS) > 1e-6:
        joints, features = resample(np.asarray(joints, np.float32), fps), None
    try:
        # upright=False: a take where someone lies, sleeps or crawls throughout is still a motion to find
        src = source_from_joints(joints, features, path=str(p), prompt=prompt, what=f"{what} {p.name}",
                                 upright=False)
    except EditError as exc:
        raise MotionReadError(str(exc)) from None
    if src.joints.shape[1] != NUM_JOINTS:  # pragma: no cover - check_skeleton refuses it
        raise MotionReadError(f"{p}: not the 22-joint skeleton")
    return MotionInput(joints=src.joints, features=src.features, path=str(p.resolve()), prompt=prompt)
