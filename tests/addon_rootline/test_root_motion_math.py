"""core/root_motion.py without Blender: in place removes the horizontal travel and keeps the pose; extraction
splits the hips' motion into a ground-projected root and the hips relative to it, exactly."""

import numpy as np
import pytest

from remomask_addon.core import coords, smpl_rig
from remomask_addon.core import root_motion as rm
from tests.addon_keying.conftest import make_motion

FPS = 20.0


def _hips_and_joints(T=80, seed=1, turn=0.6):
    """Hips pose matrices (z-up, rest rotation = identity at the rest pelvis) and the 24 joints (z-up)."""
    m = make_motion(T=T, seed=seed, turn=turn)
    joints, glob = smpl_rig.forward_kinematics(m["rest_joints"], m["poses"], m["trans"])
    P = np.broadcast_to(np.eye(4), (T, 4, 4)).copy()
    P[:, :3, :3] = coords.rotations_to_zup(glob[:, 0])
    P[:, :3, 3] = coords.points_to_zup(joints[:, 0])
    rest = np.eye(4)
    rest[:3, 3] = coords.points_to_zup(m["rest_joints"][0])
    return P, rest, coords.points_to_zup(joints), m


def _moved(joints, P_old, P_new):
    """The joints carried rigidly by the hips from P_old to P_new."""
    h = np.concatenate([joints, np.ones(joints.shape[:2] + (1,))], -1)
    return np.einsum("tij,tkj->tki", P_new @ np.linalg.inv(P_old), h)[..., :3]


def test_in_place_removes_travel_and_keeps_the_pose():
    P, _, J, _ = _hips_and_joints()
    assert np.ptp(P[:, 0, 3]) + np.ptp(P[:, 1, 3]) > 1.0          # the source travels metres
    Q = rm.in_place(P)
    np.testing.assert_allclose(Q[:, :2, 3], np.broadcast_to(P[0, :2, 3], (len(P), 2)), atol=1e-12)
    np.testing.assert_array_equal(Q[:, 2, 3], P[:, 2, 3])         # height kept
    np.testing.assert_array_equal(Q[:, :3, :3], P[:, :3, :3])     # turning kept
    J2 = _moved(J, P, Q)
    # joints relative to the hips' ground projection: unchanged
    rel = lambda j, p: j - np.concatenate([p[:, None, :2, 3], np.zeros((len(p), 1, 1))], -1)  # noqa: E731
    np.testing.assert_allclose(rel(J2, Q), rel(J, P), atol=1e-6)
    assert np.abs(rm.horizontal_travel(Q)).max() < 1e-12


@pytest.mark.parametrize("smooth_s", [0.0, 0.1, 0.25])
def test_extract_recomposes_the_hips_exactly(smooth_s):
    P, rest, _, _ = _hips_and_joints()
    root_rest = np.eye(4)
    root_local, hips_local = rm.extract_root(P, rest, root_rest, fps=FPS, smooth_s=smooth_s)
    root_pose = root_rest[None] @ root_local
    again = root_pose @ np.linalg.inv(root_rest) @ rest @ hips_local
    np.testing.assert_allclose(again, P, atol=1e-9)
    # the root stays on the floor, upright (a pure turn about Z)
    np.testing.assert_allclose(root_pose[:, 2, 3], 0.0, atol=1e-12)
    np.testing.assert_allclose(root_pose[:, :3, 2], np.broadcast_to([0.0, 0.0, 1.0], (len(P), 3)), atol=1e-12)
    # it carries the travel: within 5 cm of the hips' ground projection (exact without smoothing)
    err = np.linalg.norm(root_pose[:, :2, 3] - P[:, :2, 3], axis=-1)
    assert err.max() < (1e-9 if smooth_s == 0 else 0.05)
    # the hips keep only a small horizontal offset from it
    assert np.abs(hips_local[:, :2, 3]).max() < (1e-9 if smooth_s == 0 else 0.05)


def test_extract_root_follows_the_facing():
    """make_motion turns at 0.6 rad/s about the vertical: the root's yaw grows at that rate."""
    P, rest, _, m = _hips_and_joints(T=100, turn=0.6)
    root_local, _ = rm.extract_root(P, rest, np.eye(4), fps=FPS, smooth_s=0.0)
    yaw = rm.yaw_about_z(root_local[:, :3, :3])
    t = np.arange(len(P)) / FPS
    slope = np.polyfit(t, yaw, 1)[0]
    assert slope == pytest.approx(0.6, abs=0.03)
    # the motion's own pelvis tilt (0.15 rad about x) is not carried by the root
    assert np.abs(root_local[:, 2, :2]).max() < 1e-12


def test_yaw_is_the_twist_about_z():
    angles = np.linspace(-3.0, 9.0, 50)
    tilt = smpl_rig.axis_angle_to_matrix(np.array([0.3, 0.0, 0.0]))
    R = rm.rot_z(angles) @ tilt
    np.testing.assert_allclose(rm.yaw_about_z(R), angles, atol=1e-9)


def test_smoothing_keeps_constants_and_lowers_noise():
    x = np.full((30, 2), 3.5)
    np.testing.assert_allclose(rm.gaussian_smooth(x, 2.0), x, atol=1e-12)
    rng = np.random.default_rng(0)
    n = rng.normal(size=200)
    assert rm.gaussian_smooth(n, 3.0).std() < 0.4 * n.std()
    ramp = np.linspace(0.0, 5.0, 40)[:, None]          # a steady drift passes unchanged, ends included
    np.testing.assert_allclose(rm.gaussian_smooth(ramp, 4.0), ramp, atol=1e-12)


def test_bad_input_raises_root_motion_error():
    with pytest.raises(rm.RootMotionError, match="fps"):
        rm.root_track(np.eye(4)[None], np.eye(4), np.eye(4), fps=0.0)
    with pytest.raises(rm.RootMotionError, match="F, 4, 4"):
        rm.root_track(np.zeros((0, 4, 4)), np.eye(4), np.eye(4), fps=20.0)
