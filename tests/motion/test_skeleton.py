"""Skeleton constants and the default rest skeleton."""

import numpy as np

from backend.motion import skeleton as S


def test_constants_consistent():
    assert S.NUM_JOINTS == 22 and S.FPS == 20 and S.FEATURE_DIM == 263
    assert len(S.JOINT_NAMES) == 22 and len(set(S.JOINT_NAMES)) == 22
    assert S.PARENTS == (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
    assert all(p < j for j, p in enumerate(S.PARENTS))
    assert S.RAW_OFFSETS.shape == (22, 3)
    assert S.JOINT_NAMES[S.FACE_JOINTS[0]] == "right_hip" and S.JOINT_NAMES[S.FACE_JOINTS[3]] == "left_shoulder"
    assert [S.JOINT_NAMES[i] for i in S.LEFT_FOOT] == ["left_ankle", "left_foot"]
    assert [S.JOINT_NAMES[i] for i in S.RIGHT_FOOT] == ["right_ankle", "right_foot"]
    sizes = {k: s.stop - s.start for k, s in S.FEATURE_SLICES.items()}
    assert sizes == {"root_rot_velocity": 1, "root_linear_velocity": 2, "root_y": 1, "ric": 63, "rot6d": 126,
                     "local_velocity": 66, "foot_contact": 4}
    assert S.BODY_PART_DIMS == {"root": 7, "right_leg": 50, "left_leg": 50, "backbone": 60, "right_arm": 60,
                                "left_arm": 60}


def test_default_rest_joints():
    r = S.default_rest_joints()
    assert r.shape == (22, 3) and r.dtype == np.float32
    feet = list(S.LEFT_FOOT) + list(S.RIGHT_FOOT)
    assert abs(r[feet, 1].min()) < 1e-7 and r[:, 1].min() > -1e-7
    np.testing.assert_allclose(r[0, [0, 2]], 0.0, atol=1e-7)
    assert 1.3 < r[S.JOINT_INDEX["head"], 1] < 1.9  # adult
    assert r[S.JOINT_INDEX["left_hip"], 0] > 0 > r[S.JOINT_INDEX["right_hip"], 0]  # left side is +X
    assert r[S.JOINT_INDEX["left_foot"], 2] > r[S.JOINT_INDEX["left_ankle"], 2]  # toes forward (+Z)
    # legs, spine and head bones roughly along their RAW_OFFSETS direction; arms out sideways (T-pose)
    par = np.array(S.PARENTS)
    d = r - r[par]
    d[1:] /= np.linalg.norm(d[1:], axis=-1, keepdims=True)
    arms = [S.JOINT_INDEX[f"{s}_{n}"] for s in ("left", "right") for n in ("shoulder", "elbow", "wrist")]
    body = [j for j in range(1, 22) if j not in arms]
    assert ((d[body] * S.RAW_OFFSETS[body]).sum(-1) > 0.5).all()
    assert (np.abs(d[arms, 0]) > 0.9).all()
    r[0, 0] = 5.0  # a fresh copy each call
    assert S.default_rest_joints()[0, 0] == 0.0
