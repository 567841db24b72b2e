"""The Library panel's bpy-free parts (remomask_addon/core/library.py): a hit's window cut from its file at the
file's own frame rate, the refusals, and the preview cache's key."""

from __future__ import annotations

import os

import numpy as np
import pytest

from remomask_addon.core import library, motion_io, smpl_rig


def _motion_npz(path, T, fps):
    rng = np.random.default_rng(0)
    poses = rng.normal(0, 0.2, (T, 24, 3))
    trans = np.cumsum(rng.normal(0, 0.01, (T, 3)), axis=0)
    rest = smpl_rig.TEMPLATE_REST_JOINTS
    joints = smpl_rig.forward_kinematics(rest, poses, trans)[0][:, :22]
    np.savez(path, poses=poses, trans=trans, rest_joints=rest, joints=joints, fps=np.float32(fps),
             prompt=np.str_("a person dances"))
    return poses, trans, joints


def test_window_of_a_30_fps_motion_keeps_its_rotations(tmp_path):
    p = tmp_path / "take.npz"
    poses, trans, joints = _motion_npz(p, 300, 30.0)          # 10 s at 30 fps
    # a hit at 20-fps frames 40..236 = 2.0 .. 11.8 s -> the file's frames 60 .. 300 (clipped at its end)
    m = library.window_motion({"path": str(p), "start": 40, "end": 236, "start_s": 2.0, "end_s": 11.8})
    assert m["num_frames"] == 240 and m["fps"] == 30.0
    np.testing.assert_allclose(m["poses"], poses[60:300])
    np.testing.assert_allclose(m["trans"], trans[60:300])
    np.testing.assert_allclose(m["joints"], joints[60:300])
    assert m["prompt"] == "a person dances 2.0-10.0s"
    assert motion_io.validate_motion(m)["num_frames"] == 240  # a valid motion for key_motions


def test_window_of_a_joints_npy_and_the_refusals(tmp_path):
    j = np.tile(smpl_rig.TEMPLATE_REST_JOINTS[:22], (50, 1, 1)) + np.linspace(0, 1, 50)[:, None, None]
    np.save(tmp_path / "walk.npy", j)
    m = library.window_motion({"path": str(tmp_path / "walk.npy"), "start_s": 0.5, "end_s": 2.0})
    assert m["num_frames"] == 30 and m["prompt"] == "walk 0.5-2.0s"
    np.testing.assert_allclose(m["joints"], j[10:40], atol=1e-6)
    with pytest.raises(motion_io.MotionFileError, match="outside the file"):
        library.window_motion({"path": str(tmp_path / "walk.npy"), "start_s": 9.0, "end_s": 12.0})
    with pytest.raises(motion_io.MotionFileError, match="BVH windows cannot be keyed"):
        library.window_motion({"path": str(tmp_path / "take.bvh"), "start_s": 0, "end_s": 1})
    with pytest.raises(motion_io.MotionFileError, match="no such file"):
        library.window_motion({"path": str(tmp_path / "gone.npz"), "start_s": 0, "end_s": 1})


def test_preview_cache_key(tmp_path):
    f = tmp_path / "a.npy"
    f.write_bytes(b"1")
    hit = {"path": str(f), "start": 0, "end": 196}
    p = library.preview_path(tmp_path, hit, index="/lib")
    assert p.suffix == ".png" and p.parent == tmp_path
    assert library.preview_path(tmp_path, dict(hit), index="/lib") == p                 # stable
    assert library.preview_path(tmp_path, {**hit, "start": 98, "end": 294}, index="/lib") != p   # window
    assert library.preview_path(tmp_path, hit, index="/other") != p                     # index
    st = os.stat(f)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert library.preview_path(tmp_path, hit, index="/lib") != p                       # the file changed


def test_one_line():
    assert library.one_line("a\nb\n  c") == "a b c"
    assert len(library.one_line("x" * 2000)) == 600
