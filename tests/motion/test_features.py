"""joints <-> 263-d HumanML3D features."""

import numpy as np
import pytest

from backend.motion import skeleton as S
from backend.motion.features import (
    canonicalize,
    features_to_joints,
    foot_contacts,
    joints_to_features,
    merge_body_parts,
    recover_root,
    split_body_parts,
    uniform_skeleton,
)
from backend.motion.procedural import walking_motion


@pytest.mark.parametrize("turn", [0.0, 90.0, 300.0, -250.0])
def test_round_trip_walk(turn):
    j = walking_motion(100, turn_degrees=turn)
    f = joints_to_features(j)
    assert f.shape == (99, 263) and f.dtype == np.float32
    rec = features_to_joints(f)
    assert rec.shape == (99, 22, 3) and rec.dtype == np.float32
    err = np.abs(rec - canonicalize(j)[:-1]).max()
    assert err < 1e-4, err


def test_canonicalize_properties():
    j = walking_motion(60, turn_degrees=45, start_yaw_degrees=-70, start_xz=(3.0, 2.0))
    c = canonicalize(j)
    assert abs(c[..., 1].min()) < 1e-6  # on the floor
    np.testing.assert_allclose(c[0, 0, [0, 2]], 0.0, atol=1e-6)  # frame-0 root over the origin
    # frame 0 faces +Z: facing = up x (hip across + shoulder across)
    r_hip, l_hip, r_sdr, l_sdr = S.FACE_JOINTS
    across = c[0, r_hip] - c[0, l_hip] + c[0, r_sdr] - c[0, l_sdr]
    fwd = np.cross([0, 1, 0], across)
    fwd /= np.linalg.norm(fwd)
    np.testing.assert_allclose(fwd, [0, 0, 1], atol=1e-6)
    # rigid: bone lengths unchanged
    np.testing.assert_allclose(S.bone_lengths(c), S.bone_lengths(j), atol=1e-5)


def test_feature_layout_on_walk():
    j = walking_motion(80, turn_degrees=0.0, start_yaw_degrees=0.0, speed=1.0)
    f = joints_to_features(j).astype(np.float64)
    c = canonicalize(j).astype(np.float64)
    # root height is the canonical root y
    np.testing.assert_allclose(f[:, 3], c[:-1, 0, 1], atol=1e-6)
    # walking straight ahead at 1 m/s: forward velocity ~ 0.05 m per frame, little sideways / turning
    assert abs(f[10:-10, 2].mean() - 0.05) < 0.005
    assert abs(f[10:-10, 1].mean()) < 0.005
    assert np.abs(f[1:, 0]).max() < 0.02
    # ric of frame 0 (facing +Z, root at origin) equals the canonical joints minus root xz
    ric0 = f[0, S.FEATURE_SLICES["ric"]].reshape(21, 3)
    expect = c[0, 1:] - c[0, 0] * np.array([1, 0, 1])
    np.testing.assert_allclose(ric0, expect, atol=1e-5)
    # 6D rotations are orthonormal column pairs
    d6 = f[:, S.FEATURE_SLICES["rot6d"]].reshape(-1, 21, 6)
    np.testing.assert_allclose(np.linalg.norm(d6[..., :3], axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(d6[..., 3:], axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose((d6[..., :3] * d6[..., 3:]).sum(-1), 0.0, atol=1e-5)
    # local velocity of the root: its displacement to the next frame in the current facing frame
    v0 = f[:, S.FEATURE_SLICES["local_velocity"]].reshape(-1, 22, 3)[:, 0]
    np.testing.assert_allclose(np.linalg.norm(v0, axis=-1), np.linalg.norm(c[1:, 0] - c[:-1, 0], axis=-1), atol=1e-6)


def test_foot_contacts_known_stance():
    rest = S.default_rest_joints()
    T = 10
    j = np.repeat(rest[None], T, axis=0).copy()
    # the right foot (ankle + toe) lifts and moves 10 cm per frame from frame 5 on; the left stays planted
    for t in range(5, T):
        j[t, list(S.RIGHT_FOOT), 2] += 0.1 * (t - 4)
        j[t, list(S.RIGHT_FOOT), 1] += 0.05
    f = joints_to_features(j)
    contacts = f[:, S.FEATURE_SLICES["foot_contact"]]
    np.testing.assert_array_equal(contacts[:, :2], 1.0)  # left ankle, left foot
    np.testing.assert_array_equal(contacts[:3, 2:], 1.0)  # right still planted up to frame 3->4
    np.testing.assert_array_equal(contacts[4:, 2:], 0.0)  # moving from 4->5 on
    # the threshold is on the squared displacement per frame
    slow = np.repeat(rest[None], 3, axis=0).copy()
    slow[1:, list(S.LEFT_FOOT), 0] += np.array([0.04, 0.08])[:, None]  # 4 cm per frame: 0.0016 m^2 < 0.002
    np.testing.assert_array_equal(foot_contacts(slow)[:, :2], 1.0)
    np.testing.assert_array_equal(foot_contacts(slow, feet_threshold=0.001)[:, :2], 0.0)


def test_batch_shapes():
    a = walking_motion(40, turn_degrees=30, seed=1)
    b = walking_motion(40, turn_degrees=-60, seed=2)
    batch = np.stack([a, b])
    fb = joints_to_features(batch)
    assert fb.shape == (2, 39, 263)
    np.testing.assert_allclose(fb[1], joints_to_features(b), atol=1e-6)
    jb = features_to_joints(fb)
    assert jb.shape == (2, 39, 22, 3)
    np.testing.assert_allclose(jb[0], features_to_joints(fb[0]), atol=1e-6)
    # deeper batch, and a torch-free "tensor-like" path is just numpy here
    deep = features_to_joints(fb[None])
    assert deep.shape == (1, 2, 39, 22, 3)
    q, p = recover_root(fb)
    assert q.shape == (2, 39, 4) and p.shape == (2, 39, 3)


def test_bad_input():
    with pytest.raises(ValueError, match="shape"):
        joints_to_features(np.zeros((10, 21, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        joints_to_features(np.zeros((1, 22, 3)))
    bad = walking_motion(5)
    bad[2, 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        joints_to_features(bad)
    with pytest.raises(ValueError, match="263"):
        features_to_joints(np.zeros((5, 262)))


def test_body_parts_split_merge():
    f = joints_to_features(walking_motion(30, turn_degrees=40))
    parts = split_body_parts(f)
    assert [p.shape[-1] for p in parts] == [7, 50, 50, 60, 60, 60]
    # every feature dim is covered; only spine3 (12 dims) appears three times
    allidx = np.concatenate([S.BODY_PART_FEATURES[n] for n in S.BODY_PART_NAMES])
    assert set(allidx.tolist()) == set(range(263))
    assert len(allidx) == 263 + 2 * 12
    # root part = root data (4) + root local velocity (3)
    np.testing.assert_array_equal(parts[0][:, :4], f[:, :4])
    np.testing.assert_array_equal(parts[0][:, 4:], f[:, 193:196])
    # right leg starts with the right hip's ric, ends with the right foot contacts
    np.testing.assert_array_equal(parts[1][:, :3], f[:, 4 + 3 * 1:4 + 3 * 2])
    np.testing.assert_array_equal(parts[1][:, -2:], f[:, 261:263])
    np.testing.assert_array_equal(parts[2][:, -2:], f[:, 259:261])
    np.testing.assert_allclose(merge_body_parts(parts), f, atol=1e-6)
    # the shared joint is averaged
    parts[3] = parts[3].copy()
    k = S.BODY_PARTS["backbone"].index(9)
    parts[3][:, 12 * k] += 3.0
    merged = merge_body_parts(parts)
    np.testing.assert_allclose(merged[:, 4 + 3 * 8], f[:, 4 + 3 * 8] + 1.0, atol=1e-5)
    np.testing.assert_allclose(merge_body_parts(parts, shared="left_arm"), f, atol=1e-6)


def test_uniform_skeleton_changes_bone_lengths_only():
    j = walking_motion(30, turn_degrees=60)
    target = S.default_rest_joints() * 1.1
    u = uniform_skeleton(j, target)
    bl = S.bone_lengths(u)
    np.testing.assert_allclose(bl, np.broadcast_to(S.bone_lengths(target), bl.shape), atol=1e-5)
    # same bone directions
    par = np.array(S.PARENTS)[1:]
    d0 = j[:, 1:] - j[:, par]
    d1 = u[:, 1:] - u[:, par]
    cos = (d0 * d1).sum(-1) / np.linalg.norm(d0, axis=-1) / np.linalg.norm(d1, axis=-1)
    assert cos.min() > 1 - 1e-6


def _yaw_of(v):
    return np.arctan2(v[0], v[2])


def test_official_ik_facing_quirk_is_kept():
    """The official IK's facing uses (left hip - right hip) + (right shoulder - left shoulder) (its unpacking
    swaps the hips), while the canonicalisation uses (right - left) for both. On a static pose whose hips
    are twisted against the shoulders, frames >= 1 are expressed in the IK facing and frame 0 in the
    identity (= canonical facing): their ric positions differ by the yaw between the two facings."""
    from scipy.spatial.transform import Rotation

    rest = S.default_rest_joints().astype(np.float64)
    lower = [S.JOINT_INDEX[n] for n in ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                                         "right_ankle", "left_foot", "right_foot")]
    twist = Rotation.from_euler("y", 35, degrees=True)
    pose = rest.copy()
    pose[lower] = twist.apply(rest[lower] - rest[0]) + rest[0]
    j = np.repeat(pose[None], 6, axis=0)
    f = joints_to_features(j).astype(np.float64)
    c = canonicalize(j)[0].astype(np.float64)
    r_hip, l_hip, r_sdr, l_sdr = S.FACE_JOINTS
    up = np.array([0.0, 1.0, 0.0])
    canon_fwd = np.cross(up, c[r_hip] - c[l_hip] + c[r_sdr] - c[l_sdr])
    ik_fwd = np.cross(up, c[l_hip] - c[r_hip] + c[r_sdr] - c[l_sdr])
    delta = _yaw_of(ik_fwd) - _yaw_of(canon_fwd)
    assert abs(_yaw_of(canon_fwd)) < 1e-6 and abs(delta) > np.deg2rad(5)
    ric = f[:, S.FEATURE_SLICES["ric"]].reshape(-1, 21, 3)
    np.testing.assert_allclose(ric[1], Rotation.from_euler("y", -delta).apply(ric[0]), atol=1e-5)
    # the jump from identity (frame 0) to the IK facing (frame 1) shows up as rotation velocity (half angle)
    assert f[0, 0] == pytest.approx(-delta / 2, abs=1e-5)
    np.testing.assert_allclose(f[1:, 0], 0.0, atol=1e-6)
    # ... and decoding still gives the canonical joints back
    np.testing.assert_allclose(features_to_joints(f), canonicalize(j)[:-1], atol=1e-5)


def test_torch_input_accepted():
    torch = pytest.importorskip("torch")
    f = joints_to_features(walking_motion(20, turn_degrees=50))
    out = features_to_joints(torch.from_numpy(f)[None])
    assert isinstance(out, np.ndarray) and out.shape == (1, 19, 22, 3)
    np.testing.assert_allclose(out[0], features_to_joints(f), atol=1e-6)
    parts = split_body_parts(torch.from_numpy(f))
    assert [tuple(p.shape) for p in parts][1] == (19, 50)


def test_degenerate_poses_stay_finite():
    from scipy.spatial.transform import Rotation

    r = S.default_rest_joints().astype(np.float64)
    side = Rotation.from_euler("z", 90, degrees=True).apply(r)  # lying on its side: no horizontal facing
    arm_up = r.copy()  # left arm straight up: bone opposite to its rest direction (0, -1, 0)
    for a, b in ((16, 18), (18, 20)):
        arm_up[b] = arm_up[a] + [0.0, np.linalg.norm(r[b] - r[a]), 0.0]
    zero_bone = r.copy()
    zero_bone[20] = zero_bone[18]
    for pose in (side, arm_up, zero_bone):
        j = np.repeat(pose[None], 4, axis=0)
        f = joints_to_features(j)
        assert np.isfinite(f).all()
        np.testing.assert_allclose(features_to_joints(f), canonicalize(j)[:-1], atol=1e-5)
    # two frames is the minimum
    assert joints_to_features(np.stack([r, r + 0.01])).shape == (1, 263)


def test_mirror():
    from backend.motion.features import mirror_joints

    assert S.MIRROR_INDEX[S.JOINT_INDEX["left_wrist"]] == S.JOINT_INDEX["right_wrist"]
    assert S.MIRROR_INDEX[S.JOINT_INDEX["head"]] == S.JOINT_INDEX["head"]
    j = walking_motion(40, turn_degrees=70)
    m = mirror_joints(j)
    np.testing.assert_allclose(mirror_joints(m), j, atol=1e-6)
    np.testing.assert_allclose(S.bone_lengths(m), S.bone_lengths(j)[..., list(S.MIRROR_INDEX)], atol=1e-5)
    f, fm = joints_to_features(j), joints_to_features(m)
    # a left turn becomes a right turn; the left foot contacts become the right ones
    np.testing.assert_allclose(fm[1:, 0], -f[1:, 0], atol=1e-4)
    np.testing.assert_array_equal(fm[:, 259:261], f[:, 261:263])
