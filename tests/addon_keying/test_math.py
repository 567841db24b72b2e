"""Pure numpy parts of the keying library (no bpy needed)."""

import os

import numpy as np
import pytest

from remomask_addon.core import coords, motion_io, smpl_rig
from remomask_addon.core.channels import bone_channels, resample_times

Rot = pytest.importorskip("scipy.spatial.transform").Rotation


def test_coords_rotation_and_roundtrip():
    C = coords.YUP_TO_ZUP
    assert np.allclose(C @ C.T, np.eye(3)) and np.isclose(np.linalg.det(C), 1.0)
    # up stays up, body forward (+Z in HumanML3D) becomes Blender -Y, left (+X) stays +X
    assert np.allclose(coords.points_to_zup([0, 1, 0]), [0, 0, 1])
    assert np.allclose(coords.points_to_zup([0, 0, 1]), [0, -1, 0])
    assert np.allclose(coords.points_to_zup([1, 0, 0]), [1, 0, 0])
    p = np.random.default_rng(0).normal(size=(5, 7, 3))
    assert np.allclose(coords.points_to_yup(coords.points_to_zup(p)), p)
    R = Rot.random(4, random_state=1).as_matrix()
    v = np.random.default_rng(2).normal(size=3)
    # rotating then converting == converting then rotating with the converted rotation
    assert np.allclose(coords.points_to_zup(R @ v), coords.rotations_to_zup(R) @ coords.points_to_zup(v))


def test_rotation_helpers_match_scipy():
    rng = np.random.default_rng(3)
    aa = rng.normal(size=(50, 3)) * 1.2
    aa[0] = 0.0
    aa[1] = [np.pi, 0, 0]
    m = smpl_rig.axis_angle_to_matrix(aa)
    assert np.allclose(m, Rot.from_rotvec(aa).as_matrix(), atol=1e-12)
    qa = smpl_rig.axis_angle_to_quaternion(np.concatenate([aa, [[1e-10, 0, 0]]]))
    assert np.allclose(smpl_rig.quaternion_to_matrix(qa[:-1]), m, atol=1e-12)
    assert np.allclose(qa[-1], [1, 5e-11, 0, 0])
    q = smpl_rig.matrix_to_quaternion(m)
    q_ref = Rot.from_matrix(m).as_quat()[:, [3, 0, 1, 2]]
    assert np.allclose(np.abs(np.sum(q * q_ref, -1)), 1.0, atol=1e-9)
    assert np.allclose(smpl_rig.quaternion_to_matrix(q), m, atol=1e-9)
    back = smpl_rig.axis_angle_to_matrix(smpl_rig.matrix_to_axis_angle(m))
    assert np.allclose(back, m, atol=1e-9)


def test_slerp_and_continuity():
    q0 = Rot.from_euler("z", 10, degrees=True).as_quat()[[3, 0, 1, 2]]
    q1 = Rot.from_euler("z", 90, degrees=True).as_quat()[[3, 0, 1, 2]]
    mid = smpl_rig.slerp(q0, -q1, 0.25)  # sign of q1 must not matter
    ang = Rot.from_quat(mid[[1, 2, 3, 0]]).as_euler("xyz", degrees=True)[2]
    assert ang == pytest.approx(30.0, abs=1e-6)
    seq = np.array([q0, -q0, q1, -q1])
    cont = smpl_rig.make_quaternions_continuous(seq)
    assert np.all(np.sum(cont[1:] * cont[:-1], -1) > 0)


def test_forward_kinematics_against_scipy_chain():
    rng = np.random.default_rng(4)
    poses = rng.normal(size=(3, 24, 3)) * 0.4
    trans = rng.normal(size=(3, 3))
    rest = smpl_rig.TEMPLATE_REST_JOINTS
    pos, glob = smpl_rig.forward_kinematics(rest, poses, trans)
    # left wrist by explicit chain composition
    chain = [0, 3, 6, 9, 13, 16, 18, 20]
    for t in range(3):
        G = np.eye(3)
        p = rest[0] + trans[t]
        for a, b in zip(chain[:-1], chain[1:]):
            G = G @ Rot.from_rotvec(poses[t, a]).as_matrix()
            p = p + G @ (rest[b] - rest[a])
        assert np.allclose(pos[t, 20], p)


def test_resample_times():
    s = resample_times(196, 20.0, 30.0)
    # 195 source intervals = 9.75 s = 292.5 scene frames: 293 samples, none past the end
    assert len(s) == 293 and s[0] == 0 and s[-1] == pytest.approx(292 * 2 / 3)
    assert np.allclose(resample_times(5, 20.0, 10.0), [0, 2, 4])
    assert np.allclose(np.diff(s), 20 / 30)
    assert len(resample_times(1, 20, 30)) == 1


def test_bone_channels_match_the_matrix_formula(motion_factory):
    """L_j = B_j^T (C R_j C^T) B_j for arbitrary bone rest orientations."""
    m = motion_io.validate_motion(motion_factory(T=6, seed=2, amp=1.5))
    rest = np.tile(np.eye(4), (24, 1, 1))
    rest[:, :3, :3] = Rot.random(24, random_state=3).as_matrix()
    rest[:, :3, 3] = np.random.default_rng(0).normal(size=(24, 3))
    q, loc = bone_channels(rest, m)
    B = rest[:, :3, :3]
    W = coords.rotations_to_zup(smpl_rig.axis_angle_to_matrix(m["poses"]))
    L = np.swapaxes(B, -1, -2)[None] @ W @ B[None]
    assert np.allclose(smpl_rig.quaternion_to_matrix(q), L, atol=1e-9)
    pelvis = coords.points_to_zup(m["rest_joints"][0] + m["trans"])
    assert np.allclose(rest[0, :3, 3] + loc @ B[0].T, pelvis, atol=1e-9)


def test_bone_channels_identity_rest_is_converted_smpl(motion_factory):
    m = motion_io.validate_motion(motion_factory(T=10))
    rest = np.tile(np.eye(4), (24, 1, 1))
    q, loc = bone_channels(rest, m)
    R = coords.rotations_to_zup(smpl_rig.axis_angle_to_matrix(m["poses"]))
    assert np.allclose(smpl_rig.quaternion_to_matrix(q), R, atol=1e-6)
    assert np.allclose(loc, coords.points_to_zup(m["rest_joints"][0] + m["trans"]), atol=1e-6)
    # resampled to 40 fps: every other output sample is an input sample
    q2, loc2 = bone_channels(rest, m, 40.0)
    assert q2.shape[0] == 19 and np.allclose(loc2[::2], loc, atol=1e-6)
    assert np.allclose(np.abs(np.sum(q2[::2] * q, -1)), 1.0, atol=1e-6)


def test_swing_ik_reproduces_joint_positions(motion_factory):
    src = motion_factory(T=30, seed=5)
    m = motion_io.motion_from_joints(src["joints"], prompt="x")
    assert m["approximate_rotations"]
    pos, _ = smpl_rig.forward_kinematics(m["rest_joints"], m["poses"], m["trans"])
    err = np.linalg.norm(pos[:, :22] - src["joints"], axis=-1)
    assert err.max() < 2e-3, err.max()
    # bone lengths come from the data
    L = np.linalg.norm(m["rest_joints"][4] - m["rest_joints"][1])
    assert L == pytest.approx(np.linalg.norm(src["joints"][0, 4] - src["joints"][0, 1]), rel=1e-4)


def test_swing_ik_on_a_different_skeleton_is_exact():
    """Joints from a skeleton with other proportions and hip/collar placement (like real
    HumanML3D output) are still reproduced: the rest skeleton is fitted to the data."""
    rng = np.random.default_rng(11)
    rest = smpl_rig.TEMPLATE_REST_JOINTS * 0.9 + rng.normal(scale=0.03, size=(24, 3))
    poses = rng.normal(scale=0.3, size=(25, 24, 3))
    trans = np.cumsum(rng.normal(scale=0.02, size=(25, 3)), axis=0)
    joints, _ = smpl_rig.forward_kinematics(rest, poses, trans)
    m = motion_io.motion_from_joints(joints[:, :22])
    pos, _ = smpl_rig.forward_kinematics(m["rest_joints"], m["poses"], m["trans"])
    err = np.linalg.norm(pos[:, :22] - joints[:, :22], axis=-1)
    assert err.max() < 1e-3, err.max()


def test_swing_ik_with_noisy_lengths_stays_close(motion_factory):
    src = motion_factory(T=30, seed=6)
    j = src["joints"] + np.random.default_rng(0).normal(scale=0.004, size=src["joints"].shape)
    m = motion_io.motion_from_joints(j)
    pos, _ = smpl_rig.forward_kinematics(m["rest_joints"], m["poses"], m["trans"])
    err = np.linalg.norm(pos[:, :22] - j, axis=-1)
    assert err.mean() < 0.015 and err.max() < 0.06


# ----------------------------------------------------------------- file validation
def test_load_motion_roundtrip(tmp_path, motion_factory, npz_writer):
    p = npz_writer(tmp_path / "m.npz", motion_factory(T=12, prompt="jump twice", seed=9))
    m = motion_io.load_motion(p)
    assert m["num_frames"] == 12 and m["prompt"] == "jump twice" and m["seed"] == 9
    assert m["fps"] == 20.0 and m["retrieved"] == ["a man walks", "someone strolls"]
    assert m["poses"].dtype == np.float64 and m["source"] == os.fspath(p)
    again = motion_io.validate_motion(m)  # a validated dict validates again (None = absent)
    assert np.array_equal(again["poses"], m["poses"]) and again["seed"] == 9
    m["joints"] = None
    assert motion_io.validate_motion(m)["joints"] is None


def test_joints_only_npz(tmp_path, motion_factory):
    src = motion_factory(T=15, seed=4, prompt="kick")
    p = tmp_path / "joints.npz"
    np.savez(p, joints=src["joints"], fps=np.float32(20), prompt=np.array("kick"), seed=np.int64(3))
    m = motion_io.load_motion(p)
    assert m["approximate_rotations"] and m["prompt"] == "kick" and m["seed"] == 3 and m["num_frames"] == 15
    pos, _ = smpl_rig.forward_kinematics(m["rest_joints"], m["poses"], m["trans"])
    assert np.abs(pos[:, :22] - src["joints"]).max() < 2e-3
    assert motion_io.load_any(p)["approximate_rotations"]


@pytest.mark.parametrize("mutate, message", [
    (lambda d: (d.pop("poses"), d.pop("joints")), "missing 'poses'"),
    (lambda d: d.update(poses=d["poses"][:, :22]), "'poses' must have shape (T, 24, 3)"),
    (lambda d: d.update(trans=d["trans"][:-1]), "'trans' must have shape (12, 3)"),
    (lambda d: d.update(rest_joints=d["rest_joints"][:22]), "'rest_joints' must have shape (24, 3)"),
    (lambda d: d["poses"].__setitem__((3, 4, 0), np.nan), "'poses' contains NaN"),
    (lambda d: d.update(fps=np.float32(0)), "'fps' must be positive"),
    (lambda d: d.update(joints=d["joints"][:, :20]), "'joints' must have shape (12, 22, 3)"),
])
def test_bad_motion_files(tmp_path, motion_factory, npz_writer, mutate, message):
    d = motion_factory(T=12)
    mutate(d)
    p = npz_writer(tmp_path / "bad.npz", d)
    with pytest.raises(motion_io.MotionFileError) as ei:
        motion_io.load_motion(p)
    assert message in str(ei.value) and "bad.npz" in str(ei.value)


def test_unreadable_files(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(motion_io.MotionFileError, match="not a readable motion .npz"):
        motion_io.load_motion(junk)
    with pytest.raises(motion_io.MotionFileError, match="no such file"):
        motion_io.load_motion(tmp_path / "missing.npz")
    obj = tmp_path / "obj.npz"
    np.savez(obj, poses=np.array([{"a": 1}], dtype=object))
    with pytest.raises(motion_io.MotionFileError, match="not a readable motion .npz"):
        motion_io.load_motion(obj)  # pickled objects are refused, never loaded
    single = tmp_path / "single.npz"
    with open(single, "wb") as fh:
        np.save(fh, np.zeros((3, 22, 3)))  # a .npy payload behind a .npz name
    with pytest.raises(motion_io.MotionFileError, match="found a single array"):
        motion_io.load_motion(single)
    arr = tmp_path / "j.npy"
    np.save(arr, np.zeros((5, 21, 3)))
    with pytest.raises(motion_io.MotionFileError, match=r"shape \(T, 22, 3\)"):
        motion_io.load_joints(arr)
    with pytest.raises(motion_io.MotionFileError, match="unsupported file type"):
        motion_io.load_any(tmp_path / "x.bvh")
