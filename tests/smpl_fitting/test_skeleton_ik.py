"""Skeleton tables, FK, rotation helpers and the analytic IK (no SMPL files)."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from smpl_fitting import fit_motion, skeleton as sk
from smpl_fitting.ik import continuous_rotvecs, kabsch, rest_from_joints, solve_ik, swing
from smpl_fitting.synthetic import random_plausible_poses, smooth_motion


def adjacent_angles_deg(poses):
    """(T, J, 3) axis-angle -> (T-1, J) rotation angle between consecutive frames, degrees."""
    t, j = poses.shape[:2]
    a = Rotation.from_rotvec(poses[:-1].reshape(-1, 3))
    b = Rotation.from_rotvec(poses[1:].reshape(-1, 3))
    return np.degrees((a.inv() * b).magnitude()).reshape(t - 1, j)


def other_body():
    """A rest skeleton with proportions unlike the template (longer legs, wider hips, tilted spine)."""
    rest = sk.TEMPLATE_REST_JOINTS * 0.92
    rest[[1, 2], 0] *= 1.3
    legs = [4, 5, 7, 8, 10, 11]
    rest[legs, 1] *= 1.1
    rest[[3, 6, 9, 12, 13, 14, 15]] += [0.0, 0.0, 0.02]
    return rest + [0.1, 0.9, -0.3]


def test_tables():
    assert len(sk.SMPL_JOINT_NAMES) == len(sk.SMPL_PARENTS) == 24
    assert sk.SMPL_PARENTS[0] == -1
    assert all(0 <= p < j for j, p in enumerate(sk.SMPL_PARENTS) if j)
    assert sk.SMPL_JOINT_NAMES[sk.L_WRIST] == "left_wrist" and sk.SMPL_PARENTS[sk.L_HAND] == sk.L_WRIST
    assert sk.HML_TO_SMPL == tuple(range(22))


def test_forward_kinematics_zero_pose_and_pelvis_rotation():
    rest = other_body()
    trans = np.array([[0.5, 0.0, -1.0]])
    out = sk.forward_kinematics(rest, np.zeros((1, 24, 3)), trans)
    np.testing.assert_allclose(out[0], rest + trans, atol=1e-12)
    poses = np.zeros((1, 24, 3))
    poses[0, 0] = [0, np.pi / 2, 0]  # turn left 90 degrees about y: the pelvis rotates about itself
    out = sk.forward_kinematics(rest, poses, trans)
    np.testing.assert_allclose(out[0, 0], rest[0] + trans[0], atol=1e-12)
    d = rest[sk.L_HIP] - rest[0]
    np.testing.assert_allclose(out[0, sk.L_HIP] - out[0, 0], [d[2], d[1], -d[0]], atol=1e-12)


def test_place_hands_extends_forearm():
    rest = sk.TEMPLATE_REST_JOINTS
    j = sk.forward_kinematics(rest, random_plausible_poses(5, np.random.default_rng(0)))[:, :22]
    out = sk.place_hands(j, rest)
    for hand, wrist, elbow in ((22, 20, 18), (23, 21, 19)):
        fore = j[:, wrist] - j[:, elbow]
        d = out[:, hand] - j[:, wrist]
        np.testing.assert_allclose(np.linalg.norm(d, axis=-1), np.linalg.norm(rest[hand] - rest[wrist]), rtol=1e-9)
        cos = np.sum(d * fore, -1) / np.linalg.norm(d, axis=-1) / np.linalg.norm(fore, axis=-1)
        np.testing.assert_allclose(cos, 1.0, atol=1e-9)


def test_swing_and_kabsch(rng):
    a = rng.normal(size=(50, 3))
    a /= np.linalg.norm(a, axis=-1, keepdims=True)
    b = rng.normal(size=(50, 3))
    b /= np.linalg.norm(b, axis=-1, keepdims=True)
    b[0] = -a[0]  # antiparallel case
    r = swing(a, b)
    np.testing.assert_allclose(np.einsum("tij,tj->ti", r, a), b, atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-9)
    truth = Rotation.random(20, random_state=3).as_matrix()
    src = rng.normal(size=(4, 3))
    np.testing.assert_allclose(kabsch(src, np.einsum("tij,kj->tki", truth, src)), truth, atol=1e-9)


def test_continuous_rotvecs_through_pi():
    angles = np.linspace(0, 4 * np.pi, 200)  # two full turns about y
    mats = Rotation.from_rotvec(np.stack([0 * angles, angles, 0 * angles], 1)).as_matrix()[:, None]
    v = continuous_rotvecs(mats)[:, 0]
    steps = np.linalg.norm(np.diff(v, axis=0), axis=-1)
    assert steps.max() < 0.1  # no jump to the opposite axis at pi
    np.testing.assert_allclose(Rotation.from_rotvec(v).as_matrix(), mats[:, 0], atol=1e-9)


def test_ik_exact_on_independent_poses(rng):
    rest = other_body()
    poses = random_plausible_poses(64, rng)
    trans = rng.normal(0, 1, (64, 3))
    joints = sk.forward_kinematics(rest, poses, trans)
    res = solve_ik(joints[:, :22], rest)
    back = sk.forward_kinematics(rest, res.poses, res.trans)
    assert np.abs(back[:, :22] - joints[:, :22]).max() < 1e-9
    # rotations fixed by the joints: pelvis, spine3 (three children) and the hinge limbs (bent >= 25 deg)
    truth = sk.global_rotations(poses)
    for j in (0, 9, 1, 2, 4, 5, 16, 17, 18, 19):
        geo = Rotation.from_matrix(np.swapaxes(truth[:, j], -1, -2) @ res.global_mats[:, j]).magnitude()
        assert np.degrees(geo).max() < 0.01, j


def test_rest_from_joints_matches_input_proportions(rng):
    rest = other_body()
    poses, trans = smooth_motion(60, rng)
    joints = sk.forward_kinematics(rest, poses, trans)[:, :22]
    built = rest_from_joints(joints)
    np.testing.assert_allclose(sk.bone_lengths(built)[1:22], sk.bone_lengths(rest)[1:22], atol=1e-9)
    assert abs(built[:, 1].min()) < 1e-12  # stands on y = 0
    assert built[sk.HEAD, 1] > built[0, 1] > built[sk.L_ANKLE, 1]  # upright T-pose
    assert built[sk.L_WRIST, 0] > 0.4 > -0.4 > built[sk.R_WRIST, 0]  # arms out, left is +x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_skeleton_only_fit_on_synthetic_motion(seed):
    rng = np.random.default_rng(seed)
    rest = other_body()
    poses, trans = smooth_motion(120, rng)
    joints = sk.forward_kinematics(rest, poses, trans)[:, :22].astype(np.float32)
    res = fit_motion(joints, ground_feet=False)  # accuracy to the input (grounding moves feet on purpose)
    assert res.poses.shape == (120, 24, 3) and res.trans.shape == (120, 3)
    assert res.rest_joints.shape == (24, 3) and res.betas.shape == (10,) and res.fit_error_mm.shape == (120,)
    err = np.linalg.norm(res.joints[:, :22] - joints, axis=-1) * 1000
    assert err.mean() < 5.0 and err.max() < 15.0
    np.testing.assert_allclose(res.fit_error_mm, err.mean(axis=1), atol=1e-3)
    # documented convention: world joints = FK(rest_joints, poses, trans)
    np.testing.assert_allclose(sk.forward_kinematics(res.rest_joints, res.poses, res.trans), res.joints, atol=1e-9)
    # smooth input at 20 fps -> no flips, and the axis-angle vectors themselves are continuous
    assert adjacent_angles_deg(res.poses).max() < 30.0
    assert np.linalg.norm(np.diff(res.poses, axis=0), axis=-1).max() < 1.0
    # knees and elbows bend the right way
    assert np.all(res.poses[:, sk.L_KNEE, 0] > -0.05) and np.all(res.poses[:, sk.R_KNEE, 0] > -0.05)


def test_noisy_input_refinement_beats_ik(rng):
    rest = other_body()
    poses, trans = smooth_motion(100, rng)
    clean = sk.forward_kinematics(rest, poses, trans)[:, :22]
    noisy = clean + rng.normal(0, 0.003, clean.shape)
    ik_only = fit_motion(noisy, refine=False, ground_feet=False)
    refined = fit_motion(noisy, ground_feet=False)
    assert refined.fit_error_mm.mean() < 5.0
    assert refined.fit_error_mm.mean() < 0.8 * ik_only.fit_error_mm.mean()
    assert adjacent_angles_deg(refined.poses).max() < adjacent_angles_deg(ik_only.poses).max()


def test_foot_lock_pins_sliding_contact(rng):
    from smpl_fitting.optimize import FOOT_JOINTS, detect_contacts

    rest = other_body()
    t = 60
    poses = np.zeros((t, 24, 3))
    poses[:, 16, 2] = -1.0
    poses[:, 17, 2] = 1.0
    trans = np.zeros((t, 3))
    joints = sk.forward_kinematics(rest, poses, trans)[:, :22]
    joints[:, sk.L_FOOT, 0] += np.linspace(0, 0.01, t)  # 1 cm of slow foot slide on the floor
    mask, locked = detect_contacts(joints)
    assert mask[:, FOOT_JOINTS.index(sk.L_FOOT)].all()
    free = fit_motion(joints, foot_lock=False, ground_feet=False)  # the refinement's own foot-locking term
    pinned = fit_motion(joints, foot_lock=True, ground_feet=False)
    drift_free = np.ptp(free.joints[:, sk.L_FOOT, 0])
    drift_pinned = np.ptp(pinned.joints[:, sk.L_FOOT, 0])
    assert drift_pinned < 0.5 * drift_free
    assert pinned.fit_error_mm.mean() < 5.0
