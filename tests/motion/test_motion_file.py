"""Motion .npz: validation, atomic writes, round trip; HumanML3D joints .npy."""

import os

import numpy as np
import pytest

from backend.motion.features import joints_to_features
from backend.motion.motion_file import MotionFileError, load_joints_npy, load_motion, save_motion
from backend.motion.procedural import walking_motion

T = 30


def _full():
    j = walking_motion(T, turn_degrees=20)
    rng = np.random.default_rng(0)
    return dict(joints=j, features=joints_to_features(j), poses=rng.normal(size=(T, 24, 3)) * 0.1,
                trans=j[:, 0].astype(np.float64), betas=np.zeros(10), rest_joints=rng.normal(size=(24, 3)),
                fit_error_mm=np.abs(rng.normal(size=T)), fps=20, prompt="a person walks", seed=7,
                retrieved=["a man walks forward", "someone strolls"])


def test_round_trip_all_fields(tmp_path):
    d = _full()
    p = save_motion(tmp_path / "m.npz", **d, sampler="ts", guidance=4.5, ids=np.arange(3))
    assert p == tmp_path / "m.npz"
    m = load_motion(p)
    for k in ("joints", "features", "poses", "trans", "betas", "rest_joints", "fit_error_mm"):
        assert m[k].dtype == np.float32
        np.testing.assert_allclose(m[k], d[k], atol=1e-6)
    assert m["features"].shape == (T - 1, 263)
    assert m["fps"] == 20.0 and m["prompt"] == "a person walks" and m["seed"] == 7
    assert m["retrieved"] == ["a man walks forward", "someone strolls"]
    assert m["sampler"] == "ts" and m["guidance"] == 4.5 and m["ids"].tolist() == [0, 1, 2]
    assert m["format_version"] == 1
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary left


def test_minimal_and_defaults(tmp_path):
    j = walking_motion(5)
    m = load_motion(save_motion(tmp_path / "j.npz", joints=j))
    assert set(m) == {"joints", "fps", "prompt", "seed", "retrieved", "format_version"}
    assert m["retrieved"] == [] and m["prompt"] == "" and m["fps"] == 20.0
    # features of length T are accepted too
    save_motion(tmp_path / "k.npz", joints=j, features=np.zeros((5, 263)))


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(joints=np.zeros((T, 21, 3))), "joints: expected shape"),
        (dict(features=np.zeros((T - 2, 263))), "features: expected shape"),
        (dict(poses=np.zeros((T, 22, 3))), "poses: expected shape"),
        (dict(trans=np.zeros((T + 1, 3))), "trans"),
        (dict(betas=np.zeros(16)), "betas"),
        (dict(rest_joints=np.zeros((22, 3))), "rest_joints"),
        (dict(fit_error_mm=-np.ones(T)), "fit_error_mm: must be >= 0"),
        (dict(fps=0), "fps"),
        (dict(prompt=3), "prompt"),
        (dict(seed=1.5), "seed"),
        (dict(retrieved="one caption"), "retrieved"),
        (dict(retrieved=["ok", 3]), "retrieved"),
        (dict(joints=np.array([["a"]])), "numeric"),
    ],
)
def test_validation_errors_leave_nothing(tmp_path, change, message):
    d = _full()
    d.update(change)
    with pytest.raises(MotionFileError, match=message):
        save_motion(tmp_path / "m.npz", **d)
    assert os.listdir(tmp_path) == []


def test_nan_and_objects_rejected(tmp_path):
    d = _full()
    d["joints"] = d["joints"].copy()
    d["joints"][3, 4, 1] = np.nan
    with pytest.raises(MotionFileError, match="joints: contains NaN"):
        save_motion(tmp_path / "m.npz", **d)
    d = _full()
    d["poses"] = d["poses"].copy()
    d["poses"][0, 0, 0] = np.inf
    with pytest.raises(MotionFileError, match="poses: contains NaN"):
        save_motion(tmp_path / "m.npz", **d)
    with pytest.raises(MotionFileError, match="only numbers"):
        save_motion(tmp_path / "m.npz", **_full(), blob={"a": 1})
    assert os.listdir(tmp_path) == []


def test_missing_folder_and_existing_file_kept(tmp_path):
    with pytest.raises(MotionFileError, match="folder does not exist"):
        save_motion(tmp_path / "nope" / "m.npz", **_full())
    assert not (tmp_path / "nope").exists()
    good = save_motion(tmp_path / "m.npz", **_full())
    before = good.read_bytes()
    d = _full()
    d["trans"] = np.zeros((3, 3))
    with pytest.raises(MotionFileError):
        save_motion(good, **d)
    assert good.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]


def test_load_errors(tmp_path):
    with pytest.raises(MotionFileError, match="not found"):
        load_motion(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"garbage")
    with pytest.raises(MotionFileError, match="not a readable"):
        load_motion(tmp_path / "junk.npz")
    np.savez(tmp_path / "nojoints.npz", poses=np.zeros((3, 24, 3)))
    with pytest.raises(MotionFileError, match="no 'joints'"):
        load_motion(tmp_path / "nojoints.npz")
    np.savez(tmp_path / "nan.npz", joints=np.full((3, 22, 3), np.nan))
    with pytest.raises(MotionFileError, match="NaN"):
        load_motion(tmp_path / "nan.npz")
    np.savez(tmp_path / "obj.npz", joints=np.zeros((3, 22, 3)), prompt=np.array([{"x": 1}], dtype=object))
    with pytest.raises(MotionFileError):
        load_motion(tmp_path / "obj.npz")


def test_load_joints_npy(tmp_path):
    j = walking_motion(12)
    np.save(tmp_path / "a.npy", j)
    np.save(tmp_path / "b.npy", j.reshape(12, 66).astype(np.float64))
    np.save(tmp_path / "c.npy", np.concatenate([j, np.zeros((12, 30, 3), np.float32)], axis=1))
    for name in ("a", "b", "c"):
        out = load_joints_npy(tmp_path / f"{name}.npy")
        assert out.shape == (12, 22, 3) and out.dtype == np.float32
        np.testing.assert_allclose(out, j, atol=1e-6)
    np.save(tmp_path / "bad.npy", np.zeros((12, 65)))
    with pytest.raises(MotionFileError, match="expected shape"):
        load_joints_npy(tmp_path / "bad.npy")
    with pytest.raises(MotionFileError, match="not found"):
        load_joints_npy(tmp_path / "zzz.npy")
