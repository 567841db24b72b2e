"""A motion-capture BVH -> the project's 22 joints at 20 fps on the template skeleton.

    clip = read_mocap_bvh("salsa/01.bvh", fps=60)      # fps overrides the header (the CMU salsa trap)
    clip.joints                                        # (T, 22, 3) float32, y-up, metres, 20 fps

Steps: the project's BVH reader and forward kinematics (per-frame offsets where the file has position channels
on other joints than the root), the skeleton's table (``skeletons``), resampling to 20 fps (linear in joint
positions: at 24-120 fps source rates the frames are dense enough that it changes bone lengths by well under a
millimetre, checked in the tests), then ``uniform_skeleton`` onto the template's bone lengths, the way the
official pipeline prepares HumanML3D, and the floor put at y = 0 (``put_on_floor``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.motion.bvh import BVHError, bvh_positions, read_bvh
from backend.motion.features import uniform_skeleton
from backend.motion.skeleton import FPS, default_rest_joints
from backend.motion.timing import resample

from .skeletons import SkeletonMap, find_map, map_joints


class MocapError(ValueError):
    """A file that cannot be read as motion capture on a known skeleton."""


@dataclass
class MocapClip:
    joints: np.ndarray  # (T, 22, 3) at 20 fps
    source: str  # the file
    skeleton: str  # the table used
    source_fps: float
    source_frames: int


def dataset_frame_rates(folder) -> dict:
    """A dataset's own statement of its frame rates (``readme.txt`` lines such as ``salsa framerate 60``), by
    sub-folder name; {} when there is none. The CMU clips' headers all say 120 fps; the salsa clips are 60."""
    rates = {}
    for name in ("readme.txt", "README.txt"):
        p = Path(folder) / name
        if p.is_file():
            for line in p.read_text(errors="replace").splitlines():
                m = re.match(r"\s*(\w+)\s+frame\s*rate\s+([\d.]+)", line, re.IGNORECASE)
                if m:
                    rates[m.group(1)] = float(m.group(2))
    return rates


def floor_height(joints: np.ndarray, band: float = 0.02, share: float = 0.1) -> float:
    """The height of the floor under a clip: the lowest height that the lowest joint of at least ``share`` of the
    frames comes within ``band`` m of. Optical capture has frames where a marker swap drops a foot through the
    floor (by up to 25 cm in the CMU Indian takes), scattered over many heights; taking the lowest joint of all
    would lift the whole clip by that much. Frames in the air (jumps) are above the floor and change nothing."""
    low = np.sort(np.asarray(joints, dtype=np.float64)[..., 1].min(axis=-1))
    need = max(2, int(np.ceil(share * len(low))))
    if len(low) < need:
        return float(low[0])
    within = np.searchsorted(low, low + band, side="right") - np.arange(len(low))
    return float(low[int(np.argmax(within >= need))])


def put_on_floor(joints: np.ndarray) -> np.ndarray:
    """The clip shifted so that ``floor_height`` is y = 0 (float64)."""
    j = np.array(joints, dtype=np.float64, copy=True)
    j[..., 1] -= floor_height(j)
    return j


GLITCH_DEPTH = 0.05


def below_floor(joints: np.ndarray, depth: float = GLITCH_DEPTH) -> int:
    """How many frames have a joint more than ``depth`` m below the floor (capture glitches)."""
    return int((np.asarray(joints)[..., 1].min(axis=-1) < -depth).sum())


def source_joints(path, smap: SkeletonMap | None = None) -> tuple[np.ndarray, float, SkeletonMap]:
    """The 22 joints at the file's own frame rate, in the project's axes and metres (before retargeting)."""
    try:
        b = read_bvh(path)
    except BVHError as exc:
        raise MocapError(str(exc)) from None
    smap = smap or find_map(b["names"])
    if smap is None:
        raise MocapError(f"{path}: the skeleton ({len(b['names'])} joints, e.g. {', '.join(b['names'][:4])}) "
                         f"is not one of the mapped skeletons")
    pos, ends = bvh_positions(b)
    return map_joints(smap, b["names"], pos, ends), float(b["fps"]), smap


def settled_range(joints: np.ndarray, factor: float = 8.0, calm: int = 3) -> tuple[int, int]:
    """[start, end) without the unsettled frames at a take's ends: the CMU takes start with 4-5 frames where
    joints jump by 5-130 cm per frame (the capture settling) against a median of millimetres. A frame-to-frame
    step is a jump when some joint moves more than ``factor`` times the take's median largest step; the take
    starts at the first run of ``calm`` calm steps and ends with the last such run."""
    j = np.asarray(joints, dtype=np.float64)
    n = j.shape[0]
    if n < 2 * calm + 2:
        return 0, n
    step = np.abs(np.diff(j, axis=0)).max(axis=(1, 2))
    calm_step = step <= factor * max(float(np.median(step)), 1e-6)
    run = np.convolve(calm_step.astype(int), np.ones(calm, int), "valid") == calm  # run[i]: steps i..i+calm-1
    ok = np.flatnonzero(run)
    if ok.size == 0:
        return 0, n
    start = int(ok[0])
    end = int(ok[-1] + calm) + 1  # frames up to the last calm step's end
    return start, end


def read_mocap_bvh(path, fps: float | None = None, smap: SkeletonMap | None = None) -> MocapClip:
    """Read one clip (see the module doc). ``fps``: the true frame rate when the header's is wrong."""
    j, header_fps, smap = source_joints(path, smap)
    src_fps = float(fps) if fps else header_fps
    a, b = settled_range(j)
    j = j[a:b]
    if j.shape[0] < 2:
        raise MocapError(f"{path}: fewer than two frames")
    j20 = resample(j, src_fps, FPS)
    if j20.shape[0] < 2:
        raise MocapError(f"{path}: shorter than one frame at {FPS} fps")
    j20 = put_on_floor(uniform_skeleton(j20, default_rest_joints()))
    # the first/last frames of a take can still be under the floor (the capture settling): cut them off
    ok = np.flatnonzero(j20[..., 1].min(axis=-1) >= -GLITCH_DEPTH)
    if ok.size < 2:
        raise MocapError(f"{path}: no frame is on or above the floor")
    j20 = j20[ok[0]:ok[-1] + 1]
    return MocapClip(j20.astype(np.float32), str(path), smap.name, src_fps, int(j.shape[0]))
