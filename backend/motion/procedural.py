"""Procedural test motions on the default skeleton (pure numpy + scipy), for tests and demos.

``fk(rest, rotvecs, root)`` is plain forward kinematics on ``PARENTS``: local axis-angle rotations
(T, 22, 3) about each joint, rest offsets taken from ``rest`` (22, 3).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from .skeleton import FPS, JOINT_INDEX, NUM_JOINTS, PARENTS, default_rest_joints


def fk(rest: np.ndarray, rotvecs: np.ndarray, root: np.ndarray) -> np.ndarray:
    """rest (J, 3), local axis-angle rotvecs (T, J, 3), root positions (T, 3) -> joints (T, J, 3) float64.
    The root rotation is rotvecs[:, 0]; a joint's world position is parent world position + parent
    world rotation applied to (rest[j] - rest[parent])."""
    rest = np.asarray(rest, dtype=np.float64)
    rotvecs = np.asarray(rotvecs, dtype=np.float64)
    T, J = rotvecs.shape[:2]
    local = Rotation.from_rotvec(rotvecs.reshape(-1, 3)).as_matrix().reshape(T, J, 3, 3)
    glob = np.zeros_like(local)
    pos = np.zeros((T, J, 3))
    parents = PARENTS if J == NUM_JOINTS else None
    if parents is None:
        raise ValueError("fk here expects the 22-joint HumanML3D skeleton")
    for j in range(J):
        p = parents[j]
        if p < 0:
            glob[:, j] = local[:, j]
            pos[:, j] = root
        else:
            glob[:, j] = glob[:, p] @ local[:, j]
            pos[:, j] = pos[:, p] + np.einsum("tij,j->ti", glob[:, p], rest[j] - rest[p])
    return pos


def walking_motion(n_frames: int = 120, turn_degrees: float = 90.0, speed: float = 1.2,
                   start_yaw_degrees: float = 30.0, start_xz=(0.7, -1.3), seed: int = 0) -> np.ndarray:
    """A walking-like motion (n_frames, 22, 3) float32 at 20 fps: the root moves forward while the body
    turns by ``turn_degrees`` in total, legs and arms swing, the spine twists and bobs. Not
    physically exact (feet slide a little); meant to exercise every part of the representation."""
    rest, rot, root = walking_params(n_frames, turn_degrees, speed, start_yaw_degrees, start_xz, seed)
    return fk(rest, rot, root).astype(np.float32)


def walking_params(n_frames: int = 120, turn_degrees: float = 90.0, speed: float = 1.2,
                   start_yaw_degrees: float = 30.0, start_xz=(0.7, -1.3), seed: int = 0):
    """The parameters behind ``walking_motion``: (rest (22, 3), local axis-angle rotations (T, 22, 3),
    root positions (T, 3)), all float64; ``fk(*walking_params(...))`` gives the joints."""
    rng = np.random.default_rng(seed)
    rest = default_rest_joints().astype(np.float64)
    t = np.arange(n_frames) / FPS
    phase = 2 * np.pi * 0.9 * t
    yaw = np.deg2rad(start_yaw_degrees) + np.deg2rad(turn_degrees) * t / max(t[-1], 1e-9)
    rot = np.zeros((n_frames, NUM_JOINTS, 3))
    rot[:, 0, 1] = yaw
    rot[:, 0, 0] = 0.05 * np.sin(2 * phase)
    J = JOINT_INDEX
    swing = 0.5 * np.sin(phase)
    rot[:, J["left_hip"], 0] = -swing
    rot[:, J["right_hip"], 0] = swing
    rot[:, J["left_knee"], 0] = 0.6 * np.clip(np.sin(phase + 1.2), 0, None)
    rot[:, J["right_knee"], 0] = 0.6 * np.clip(np.sin(phase + 1.2 + np.pi), 0, None)
    rot[:, J["left_ankle"], 0] = 0.2 * np.sin(phase + 0.4)
    rot[:, J["right_ankle"], 0] = -0.2 * np.sin(phase + 0.4)
    rot[:, J["spine1"], 1] = 0.15 * np.sin(phase)
    rot[:, J["spine3"], 2] = 0.05 * np.sin(phase)
    rot[:, J["neck"], 0] = 0.1 * np.sin(0.5 * phase)
    # arms down from the T-pose, then swinging opposite to the legs
    rot[:, J["left_shoulder"], 2] = -1.2
    rot[:, J["right_shoulder"], 2] = 1.2
    rot[:, J["left_shoulder"], 0] = swing
    rot[:, J["right_shoulder"], 0] = -swing
    rot[:, J["left_elbow"], 1] = 0.4 + 0.2 * np.sin(phase)
    rot[:, J["right_elbow"], 1] = -0.4 - 0.2 * np.sin(phase)
    rot += rng.normal(scale=0.01, size=rot.shape) * (np.arange(NUM_JOINTS) > 0)[None, :, None]
    heading = np.stack([np.sin(yaw), np.zeros_like(yaw), np.cos(yaw)], -1)
    root = np.cumsum(heading * speed / FPS, axis=0)
    root += np.array([start_xz[0], rest[0, 1] - 0.03, start_xz[1]])
    root[:, 1] += 0.02 * np.sin(2 * phase)
    return rest, rot, root
