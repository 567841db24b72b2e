"""Bad input gives one clear FitError; the CLI (single file and folder mode) writes complete files only."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from smpl_fitting import FitError, FitResult, fit_motion, skeleton as sk
from smpl_fitting.__main__ import main
from smpl_fitting.synthetic import smooth_motion

REPO = Path(__file__).resolve().parents[2]


def motion(t=40, seed=0):
    poses, trans = smooth_motion(t, np.random.default_rng(seed))
    return sk.forward_kinematics(sk.TEMPLATE_REST_JOINTS, poses, trans)[:, :22].astype(np.float32)


def test_fit_error_is_a_value_error():
    assert issubclass(FitError, ValueError)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((0, 22, 3)), "zero frames"),
    (np.zeros((10, 21, 3)), r"shape \(T, 22, 3\)"),
    (np.zeros((22, 3)), r"shape \(T, 22, 3\)"),
    (np.zeros((10, 22, 3)), "coincide"),
    ("walk", "numeric array|shape"),
])
def test_bad_shapes(bad, message):
    with pytest.raises(FitError, match=message):
        fit_motion(bad)


def test_nan_and_inf_frames_are_named():
    j = motion()
    j[7, 3, 1] = np.nan
    with pytest.raises(FitError, match="NaN or inf.*frame 7"):
        fit_motion(j)
    j = motion()
    j[2, 0, 0] = np.inf
    with pytest.raises(FitError, match="frame 2"):
        fit_motion(j, refine=False)


def test_single_frame_and_two_frames():
    for t in (1, 2):
        res = fit_motion(motion(5)[:t])
        assert isinstance(res, FitResult) and res.poses.shape == (t, 24, 3)
        assert res.fit_error_mm.max() < 1.0


def test_npz_fields():
    fields = fit_motion(motion(), refine=False).as_npz_fields()
    assert {k: fields[k].shape for k in ("poses", "trans", "betas", "rest_joints", "fit_error_mm")} == {
        "poses": (40, 24, 3), "trans": (40, 3), "betas": (10,), "rest_joints": (24, 3), "fit_error_mm": (40,)}
    assert all(fields[k].dtype == np.float32 for k in ("poses", "trans", "betas", "rest_joints", "fit_error_mm"))


def test_progress_callback_reaches_done():
    seen = []
    fit_motion(motion(), progress=lambda stage, frac: seen.append((stage, frac)))
    stages = [s for s, _ in seen]
    assert stages[0] == "body" and "ik" in stages and "refine" in stages and seen[-1] == ("done", 1.0)
    assert all(0.0 <= f <= 1.0 for _, f in seen)


def test_cli_single_file_keeps_fields(tmp_path, capsys):
    src = tmp_path / "motion.npz"
    np.savez(src, joints=motion(), features=np.zeros((40, 263), np.float32), fps=np.array(20.0),
             prompt=np.array("a person walks"), seed=np.array(3))
    out = tmp_path / "fitted.npz"
    assert main(["--in", str(src), "--out", str(out), "--quiet"]) == 0
    with np.load(out) as data:
        assert str(data["prompt"]) == "a person walks" and data["features"].shape == (40, 263)
        assert data["poses"].shape == (40, 24, 3) and data["fit_error_mm"].mean() < 5.0
        np.testing.assert_allclose(data["joints"], motion())
    assert "mean joint error" in capsys.readouterr().out


def test_cli_bad_input_writes_nothing(tmp_path, capsys):
    src = tmp_path / "bad.npz"
    j = motion()
    j[0, 0, 0] = np.nan
    np.savez(src, joints=j)
    out = tmp_path / "out.npz"
    assert main(["--in", str(src), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "NaN" in err and "bad.npz" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [src]
    assert main(["--in", str(tmp_path / "missing.npz"), "--quiet"]) == 2
    assert main(["--in", str(src), "--smpl-model", str(tmp_path / "nope"), "--quiet"]) == 2


def test_cli_folder_mode(tmp_path, capsys):
    np.save(tmp_path / "a.npy", motion(30, 1))
    np.savez(tmp_path / "b.npz", joints=motion(30, 2), fps=np.array(20.0))
    bad = motion(30, 3)
    bad[:] = np.nan
    np.savez(tmp_path / "c.npz", joints=bad)
    out_dir = tmp_path / "out"
    assert main(["--dir", str(tmp_path), "--out-dir", str(out_dir), "--quiet", "--no-refine"]) == 1
    assert sorted(p.name for p in out_dir.iterdir()) == ["a_smpl.npz", "b_smpl.npz"]
    with np.load(out_dir / "a_smpl.npz") as data:
        assert data["poses"].shape == (30, 24, 3) and float(data["fps"]) == 20.0
    assert "fitted 2 of 3" in capsys.readouterr().out


def test_module_entry_point_help():
    proc = subprocess.run([sys.executable, "-m", "smpl_fitting", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "--smpl-model" in proc.stdout and "--dir" in proc.stdout


def test_t_pose_gives_zero_pose_and_garbage_stays_finite():
    tpose = np.repeat(sk.TEMPLATE_REST_JOINTS[None, :22], 5, 0) + [0.0, 0.9, 0.0]
    res = fit_motion(tpose, ground_feet=False)
    assert np.abs(res.poses).max() < 1e-6
    np.testing.assert_allclose(res.joints[:, :22], tpose, atol=1e-9)
    # grounded: the same zero pose, the whole body raised by the 2.5 cm its toes were sunk into the floor
    res = fit_motion(tpose)
    assert np.abs(res.poses).max() < 1e-6
    np.testing.assert_allclose(res.joints[:, :22], tpose + [0.0, 0.025, 0.0], atol=1e-6)
    garbage = np.random.default_rng(0).normal(0, 0.5, (12, 22, 3))
    garbage[4] = 0.0
    garbage[4, 5] = 1.0  # a frame with 21 coincident joints
    res = fit_motion(garbage)
    assert all(np.all(np.isfinite(a)) for a in (res.poses, res.trans, res.joints, res.fit_error_mm))


def test_unusable_device_is_a_fit_error():
    with pytest.raises(FitError, match="device"):
        fit_motion(motion(), device="no-such-device")
