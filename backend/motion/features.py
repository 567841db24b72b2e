"""Joints <-> the 263-d HumanML3D motion features (pure numpy).

Layout of one feature frame (``skeleton.FEATURE_SLICES``)::

    [0]        root rotation velocity: half the yaw change from this frame to the next (radians)
    [1:3]      root linear velocity x, z: root displacement to the next frame, in the next frame's facing frame
    [3]        root height (y)
    [4:67]     "ric": joints 1..21 relative to the root (x, z) and the floor (y), rotated to face +Z
    [67:193]   continuous 6D rotations of joints 1..21 (first two rotation-matrix columns) from the
               HumanML3D inverse kinematics (bone directions vs. ``RAW_OFFSETS``, root = facing yaw)
    [193:259]  joint velocities (22 x 3) to the next frame, rotated into this frame's facing frame
    [259:263]  foot contacts: left ankle, left foot, right ankle, right foot (1 = squared displacement
               to the next frame below ``feet_threshold``)

T joint frames give T-1 feature frames. ``features_to_joints`` is the official "recover from ric"
decoder: it integrates the yaw and the root velocity and puts the ric positions back into the world.

Behaviour matches the official HumanML3D ``process_file`` (after its optional skeleton uniformisation,
which is ``uniform_skeleton`` here), including its quirks: the inverse-kinematics facing direction uses
(left hip - right hip) + (right shoulder - left shoulder) and is smoothed with a Gaussian (sigma 20
frames); the root rotation of frame 0 is the identity; arm chains are parented to the root rotation.
One deliberate difference: where the facing direction passes 180 degrees away from frame 0's, the
official ``arcsin`` of the relative-rotation quaternion picks the wrong branch for that one frame (the
quaternion's w turns negative); here the quaternion is flipped to w >= 0 first, so the decoded yaw is
right on such frames too. Every other frame is identical.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from . import quat as Q
from .skeleton import (
    BODY_PART_FEATURES,
    BODY_PART_NAMES,
    BODY_PARTS,
    FACE_JOINTS,
    FEATURE_DIM,
    FEATURE_SLICES,
    KINEMATIC_CHAINS,
    LEFT_FOOT,
    LEG_LENGTH_JOINTS,
    MIRROR_INDEX,
    NUM_JOINTS,
    PARENTS,
    RAW_OFFSETS,
    RIGHT_FOOT,
    SHARED_PART_JOINT,
)

_UP = np.array([0.0, 1.0, 0.0])
_FORWARD = np.array([0.0, 0.0, 1.0])


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_joints(joints, min_frames: int = 1) -> np.ndarray:
    j = _to_numpy(joints)
    if j.ndim < 2 or j.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints must have shape (..., T, {NUM_JOINTS}, 3); got {j.shape}")
    if j.ndim < 3 or j.shape[-3] < min_frames:
        raise ValueError(f"joints need at least {min_frames} frame(s); got shape {j.shape}")
    if not np.issubdtype(j.dtype, np.number):
        raise ValueError(f"joints must be numeric; got dtype {j.dtype}")
    j = j.astype(np.float64)
    if not np.isfinite(j).all():
        raise ValueError("joints contain NaN or infinite values")
    return j


def _facing_quat_from_across(across: np.ndarray) -> np.ndarray:
    """Yaw quaternion turning the facing direction (up x across) onto +Z."""
    across = across / np.linalg.norm(across, axis=-1, keepdims=True).clip(1e-12)
    forward = np.cross(_UP, across)
    n = np.linalg.norm(forward, axis=-1, keepdims=True)
    forward = np.where(n > 1e-9, forward / n.clip(1e-12), _FORWARD)
    return Q.qbetween(forward, np.broadcast_to(_FORWARD, forward.shape))


def _canonicalize(j: np.ndarray) -> np.ndarray:
    """(T, 22, 3) float64 -> floor at y=0, frame-0 root over the origin, frame 0 facing +Z."""
    j = j.copy()
    j[..., 1] -= j[..., 1].min()
    root0 = j[0, 0] * np.array([1.0, 0.0, 1.0])
    j -= root0
    r_hip, l_hip, r_sdr, l_sdr = FACE_JOINTS
    across = (j[0, r_hip] - j[0, l_hip]) + (j[0, r_sdr] - j[0, l_sdr])
    q0 = _facing_quat_from_across(across)
    return Q.qrot(np.broadcast_to(q0, j.shape[:-1] + (4,)), j)


def canonicalize(joints) -> np.ndarray:
    """The official canonicalisation of one sequence (T, 22, 3) (or a batch (..., T, 22, 3)): put the
    lowest joint over all frames on y = 0, move frame 0's root to x = z = 0 and turn the whole motion
    about +Y so that frame 0 faces +Z (facing = up x (hip across + shoulder across)). float32 out."""
    j = _check_joints(joints)
    flat = j.reshape((-1,) + j.shape[-3:])
    out = np.stack([_canonicalize(s) for s in flat]) if len(flat) else flat
    return out.reshape(j.shape).astype(np.float32)


def mirror_joints(joints) -> np.ndarray:
    """Mirror a motion (..., 22, 3) left-right (x -> -x, left and right joints swapped), the HumanML3D
    augmentation. float32."""
    j = _check_joints(joints)
    out = j[..., list(MIRROR_INDEX), :].copy()
    out[..., 0] *= -1
    return out.astype(np.float32)


def foot_contacts(joints, feet_threshold: float = 0.002) -> np.ndarray:
    """(T, 22, 3) -> (T-1, 4) float: left ankle, left foot, right ankle, right foot; 1 where the squared
    displacement to the next frame is below ``feet_threshold`` (m^2 per frame)."""
    j = _check_joints(joints, min_frames=2)
    idx = list(LEFT_FOOT) + list(RIGHT_FOOT)
    d2 = ((j[..., 1:, idx, :] - j[..., :-1, idx, :]) ** 2).sum(-1)
    return (d2 < feet_threshold).astype(np.float64)


def _ik_quats(j: np.ndarray, smooth_forward: bool = True) -> np.ndarray:
    """The HumanML3D inverse kinematics of one sequence: (T, 22, 3) -> (T, 22, 4) local quaternions.

    Joint 0 holds the facing yaw (world -> body facing +Z), identity at frame 0. Each chain starts from
    that root rotation; a joint's local rotation maps its RAW_OFFSETS direction (in the parent's frame)
    onto its bone direction by the minimal arc.
    """
    T = j.shape[0]
    # The official IK unpacks the face joints as (l_hip, r_hip, sdr_r, sdr_l) while receiving
    # (r_hip, l_hip, r_sdr, l_sdr): its "across" is (left hip - right hip) + (right sdr - left sdr).
    # Kept as is, because the released models were trained on features made this way.
    a, b, c, d = FACE_JOINTS
    across = (j[:, b] - j[:, a]) + (j[:, c] - j[:, d])
    across = across / np.linalg.norm(across, axis=-1, keepdims=True).clip(1e-12)
    forward = np.cross(_UP, across)
    if smooth_forward:
        forward = gaussian_filter1d(forward, 20, axis=0, mode="nearest")
    n = np.linalg.norm(forward, axis=-1, keepdims=True)
    forward = np.where(n > 1e-9, forward / n.clip(1e-12), _FORWARD)
    root = Q.qbetween(forward, np.broadcast_to(_FORWARD, forward.shape))
    root[0] = Q.IDENTITY

    quats = np.zeros((T, NUM_JOINTS, 4))
    quats[..., 0] = 1.0
    quats[:, 0] = root
    for chain in KINEMATIC_CHAINS:
        R = root
        for parent, child in zip(chain[:-1], chain[1:]):
            u = np.broadcast_to(RAW_OFFSETS[child], (T, 3))
            v = j[:, child] - j[:, parent]
            v = v / np.linalg.norm(v, axis=-1, keepdims=True).clip(1e-12)
            local = Q.qmul(Q.qinv(R), Q.qbetween(u, v))
            quats[:, child] = local
            R = Q.qmul(R, local)
    return quats


def _features_one(j: np.ndarray, feet_threshold: float) -> np.ndarray:
    """One canonicalised sequence (T, 22, 3) float64 -> (T-1, 263) float64."""
    T = j.shape[0]
    contacts = foot_contacts(j, feet_threshold)  # (T-1, 4)

    quats = _ik_quats(j, smooth_forward=True)
    cont6d = Q.quat_to_cont6d(quats)  # (T, 22, 6)
    r_rot = quats[:, 0]  # world -> facing frame

    # root displacement to the next frame, in the next frame's facing frame
    velocity = Q.qrot(r_rot[1:], j[1:, 0] - j[:-1, 0])
    # relative yaw from frame t to t+1; w >= 0 picks the shortest arc (see the module docstring)
    r_vel = Q.qmul(r_rot[1:], Q.qinv(r_rot[:-1]))
    r_vel = r_vel * np.where(r_vel[:, :1] < 0, -1.0, 1.0)
    root_rot_vel = np.arcsin(np.clip(r_vel[:, 2:3], -1.0, 1.0))

    # rotation-invariant positions: relative to the root in xz, turned to face +Z
    local = j.copy()
    local[..., 0] -= local[:, 0:1, 0]
    local[..., 2] -= local[:, 0:1, 2]
    local = Q.qrot(r_rot[:, None, :], local)
    root_y = local[:, 0, 1:2]

    # joint velocities, in the current frame's facing frame
    local_vel = Q.qrot(r_rot[:-1, None, :], j[1:] - j[:-1])

    return np.concatenate(
        [
            root_rot_vel,
            velocity[:, [0, 2]],
            root_y[:-1],
            local[:-1, 1:].reshape(T - 1, -1),
            cont6d[:-1, 1:].reshape(T - 1, -1),
            local_vel.reshape(T - 1, -1),
            contacts,
        ],
        axis=-1,
    )


def joints_to_features(joints, feet_threshold: float = 0.002) -> np.ndarray:
    """Joints (T, 22, 3) in metres, y-up (or a batch (..., T, 22, 3)) -> features (T-1, 263) float32
    (batch: (..., T-1, 263)). The motion is canonicalised first (see ``canonicalize``)."""
    j = _check_joints(joints, min_frames=2)
    flat = j.reshape((-1,) + j.shape[-3:])
    out = [_features_one(_canonicalize(s), float(feet_threshold)) for s in flat]
    out = np.stack(out) if out else np.zeros((0, j.shape[-3] - 1, FEATURE_DIM))
    return out.reshape(j.shape[:-3] + (j.shape[-3] - 1, FEATURE_DIM)).astype(np.float32)


def _check_features(features) -> np.ndarray:
    f = _to_numpy(features)
    if f.ndim < 2 or f.shape[-1] != FEATURE_DIM:
        raise ValueError(f"features must have shape (..., T, {FEATURE_DIM}); got {f.shape}")
    if not np.issubdtype(f.dtype, np.number):
        raise ValueError(f"features must be numeric; got dtype {f.dtype}")
    return f.astype(np.float64)


def recover_root(features):
    """(..., T, 263) -> (yaw quaternions (..., T, 4) world->facing, root positions (..., T, 3)).

    The yaw starts at 0 and accumulates the rotation velocities; the root xz starts at the origin and
    accumulates the linear velocities rotated back into the world; root y is read directly.
    """
    f = _check_features(features)
    rot_vel = f[..., 0]
    ang = np.zeros_like(rot_vel)
    ang[..., 1:] = np.cumsum(rot_vel[..., :-1], axis=-1)
    r_quat = Q.qyaw(ang)
    step = np.zeros(f.shape[:-1] + (3,))
    step[..., 1:, 0] = f[..., :-1, 1]
    step[..., 1:, 2] = f[..., :-1, 2]
    step = Q.qrot(Q.qinv(r_quat), step)
    r_pos = np.cumsum(step, axis=-2)
    r_pos[..., 1] = f[..., 3]
    return r_quat, r_pos


def features_to_joints(features) -> np.ndarray:
    """Features (..., T, 263) -> joints (..., T, 22, 3) float32, y-up, metres (the official
    recover-from-ric). Accepts numpy arrays or CPU/GPU torch tensors (returns numpy)."""
    f = _check_features(features)
    r_quat, r_pos = recover_root(f)
    ric = f[..., FEATURE_SLICES["ric"]].reshape(f.shape[:-1] + (NUM_JOINTS - 1, 3))
    pos = Q.qrot(Q.qinv(r_quat)[..., None, :], ric)
    pos[..., 0] += r_pos[..., None, 0]
    pos[..., 2] += r_pos[..., None, 2]
    return np.concatenate([r_pos[..., None, :], pos], axis=-2).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# Part-TMR body parts
# ---------------------------------------------------------------------------------------------------------
def split_body_parts(features) -> list:
    """(..., 263) -> [root (...,7), right_leg (...,50), left_leg (...,50), backbone (...,60),
    right_arm (...,60), left_arm (...,60)], in ``BODY_PART_NAMES`` order and element order. Works on
    numpy arrays and torch tensors alike (plain integer indexing)."""
    if features.shape[-1] != FEATURE_DIM:
        raise ValueError(f"features must end in {FEATURE_DIM}; got shape {tuple(features.shape)}")
    return [features[..., BODY_PART_FEATURES[name]] for name in BODY_PART_NAMES]


def merge_body_parts(parts, shared: str = "avg") -> np.ndarray:
    """Inverse of ``split_body_parts`` (numpy). Joint 9 (spine3) appears in the backbone and both arms;
    ``shared`` picks its value: "avg" (mean of the three, the reference default), "backbone",
    "right_arm" or "left_arm"."""
    if len(parts) != len(BODY_PART_NAMES):
        raise ValueError(f"expected {len(BODY_PART_NAMES)} parts; got {len(parts)}")
    parts = [_to_numpy(p).astype(np.float64) for p in parts]
    lead = parts[0].shape[:-1]
    out = np.zeros(lead + (FEATURE_DIM,))
    for name, p in zip(BODY_PART_NAMES, parts):
        if p.shape != lead + (len(BODY_PART_FEATURES[name]),):
            raise ValueError(f"part {name!r} has shape {p.shape}; expected {lead + (len(BODY_PART_FEATURES[name]),)}")
        out[..., BODY_PART_FEATURES[name]] = p
    # the 12 values (ric 3, rot 6, vel 3) of the shared joint inside each part holding it
    per_part = {}
    for name in ("backbone", "right_arm", "left_arm"):
        k = BODY_PARTS[name].index(SHARED_PART_JOINT)
        per_part[name] = (BODY_PART_FEATURES[name][12 * k:12 * k + 12],
                          parts[BODY_PART_NAMES.index(name)][..., 12 * k:12 * k + 12])
    target = per_part["backbone"][0]
    if shared == "avg":
        out[..., target] = sum(v for _, v in per_part.values()) / 3.0
    elif shared in per_part:
        out[..., target] = per_part[shared][1]
    else:
        raise ValueError(f"shared must be 'avg', 'backbone', 'right_arm' or 'left_arm'; got {shared!r}")
    return out.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# Skeleton uniformisation (the optional first step of the official pipeline)
# ---------------------------------------------------------------------------------------------------------
def skeleton_offsets(rest_joints) -> np.ndarray:
    """(22, 3) joints -> (22, 3) offsets: RAW_OFFSETS directions scaled by the bone lengths."""
    r = _check_joints(np.asarray(rest_joints)[None])[0]
    par = np.array(PARENTS)
    par[0] = 0
    lengths = np.linalg.norm(r - r[par], axis=-1)
    return RAW_OFFSETS * lengths[:, None]


def forward_kinematics_quats(quats, root_pos, offsets) -> np.ndarray:
    """(T, 22, 4) local quaternions as made by the HumanML3D IK, (T, 3) root positions, (22, 3) offsets
    -> (T, 22, 3) joints (each chain starts from the root rotation, as in the reference)."""
    quats = np.asarray(quats, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.float64)
    out = np.zeros(quats.shape[:-1] + (3,))
    out[..., 0, :] = root_pos
    for chain in KINEMATIC_CHAINS:
        R = quats[..., 0, :]
        for parent, child in zip(chain[:-1], chain[1:]):
            R = Q.qmul(R, quats[..., child, :])
            out[..., child, :] = Q.qrot(R, np.broadcast_to(offsets[child], R.shape[:-1] + (3,))) + out[..., parent, :]
    return out


def uniform_skeleton(joints, target_rest_joints) -> np.ndarray:
    """Retarget a motion (T, 22, 3) onto the bone lengths of ``target_rest_joints`` (22, 3) the way the
    official pipeline does before feature extraction: the root trajectory is scaled by the ratio of
    leg lengths (right hip->knee->ankle), the pose is re-posed by the IK rotations (without facing smoothing)."""
    j = _check_joints(joints, min_frames=1)
    if j.ndim != 3:
        raise ValueError(f"uniform_skeleton takes one sequence (T, 22, 3); got {j.shape}")
    src = skeleton_offsets(j[0])
    tgt = skeleton_offsets(target_rest_joints)
    a, b = LEG_LENGTH_JOINTS
    src_len = np.abs(src[a]).max() + np.abs(src[b]).max()
    tgt_len = np.abs(tgt[a]).max() + np.abs(tgt[b]).max()
    scale = tgt_len / src_len
    quats = _ik_quats(j, smooth_forward=False)
    return forward_kinematics_quats(quats, j[:, 0] * scale, tgt).astype(np.float32)
