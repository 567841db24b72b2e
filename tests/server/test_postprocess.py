"""run_generate's fit / write / BVH adapters, with stand-ins for smpl_fitting and the writers."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

from backend.serving import postprocess
from backend.serving.generators import Cancelled
from backend.serving.jobs import ProgressMapper, run_generate
from backend.serving.protocol import validate_generate
from scipy.spatial.transform import Rotation

from tests.server.standin import StandIn, procedural_joints


PARENTS24 = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)


def smpl_fk(rest, poses, trans):
    """SMPL convention: pelvis at rest[0] + trans, pos[j] = pos[p] + R_world[p] @ (rest[j] - rest[p])."""
    t = poses.shape[0]
    local = Rotation.from_rotvec(poses.reshape(-1, 3)).as_matrix().reshape(t, 24, 3, 3)
    world, out = np.zeros_like(local), np.zeros((t, 24, 3))
    for j, p in enumerate(PARENTS24):
        if p < 0:
            world[:, j], out[:, j] = local[:, j], rest[0] + trans
        else:
            world[:, j] = world[:, p] @ local[:, j]
            out[:, j] = out[:, p] + world[:, p] @ (rest[j] - rest[p])
    return out


def bvh_fk(parents, offsets, rotations, root_trans):
    """BVH convention: root at root_trans, pos[j] = pos[p] + R_world[p] @ offsets[j]."""
    t, n = rotations.shape[:2]
    local = Rotation.from_rotvec(rotations.reshape(-1, 3)).as_matrix().reshape(t, n, 3, 3)
    world, out = np.zeros_like(local), np.zeros((t, n, 3))
    for j, p in enumerate(parents):
        if p < 0:
            world[:, j], out[:, j] = local[:, j], root_trans
        else:
            world[:, j] = world[:, p] @ local[:, j]
            out[:, j] = out[:, p] + world[:, p] @ offsets[j]
    return out


class FakeFit:
    """Shaped like smpl_fitting.FitResult, with self-consistent rest joints, poses, trans and joints."""

    def __init__(self, joints, err=12.5):
        t = joints.shape[0]
        rng = np.random.default_rng(t)
        rest22 = procedural_joints(1, 0.0, 0.0)[0].astype(np.float64)
        self.rest_joints = np.concatenate([rest22, rest22[20:22] + [[0.08, 0, 0], [-0.08, 0, 0]]])
        self.poses = rng.normal(0, 0.3, (t, 24, 3))
        self.trans = joints[:, 0].astype(np.float64) - self.rest_joints[0]
        self.betas = np.zeros(10)
        self.fit_error_mm = np.full(t, err)
        self.joints = smpl_fk(self.rest_joints, self.poses, self.trans)

    def as_npz_fields(self):
        return {k: np.asarray(getattr(self, k), np.float32)
                for k in ("poses", "trans", "betas", "rest_joints", "fit_error_mm")}


@pytest.fixture
def fake_fitting(monkeypatch):
    calls = {"fit": 0, "bvh": []}

    def fit_motion(joints, *, smpl_model_dir=None, progress=None, device="cpu"):
        calls["fit"] += 1
        calls["device"] = device
        calls["smpl_model_dir"] = smpl_model_dir
        assert joints.dtype == np.float32 and joints.shape[1:] == (22, 3)
        if progress is not None:
            progress("ik", 0.5)
        if calls.get("fail_on") == calls["fit"]:
            raise ValueError("did not converge")
        calls["last_fit"] = FakeFit(joints)
        return calls["last_fit"]

    def write_bvh(path, names, parents, offsets, rotations, root_trans, fps=20, channel_order="ZXY"):
        calls["bvh"].append(dict(path=Path(path), names=names, parents=parents, offsets=offsets,
                                 rotations=rotations, root_trans=root_trans, fps=fps))
        Path(path).write_text("HIERARCHY\n")

    monkeypatch.setitem(sys.modules, "smpl_fitting", types.SimpleNamespace(fit_motion=fit_motion))
    monkeypatch.setitem(sys.modules, "backend.motion.bvh", types.SimpleNamespace(write_bvh=write_bvh))
    monkeypatch.setitem(sys.modules, "backend.motion.motion_file", None)  # force the built-in writer
    return calls


def _params(tmp_path, **kw):
    return validate_generate({"prompt": "a person kicks", "samples": 2, "length_s": 1.0, "out_dir": str(tmp_path), **kw})


def test_fit_fields_reach_the_file_and_the_result(tmp_path, fake_fitting):
    events = []
    out = run_generate(StandIn(), _params(tmp_path), tmp_path, lambda s, f: events.append((s, f)), lambda: False,
                       bvh=True)
    assert fake_fitting["fit"] == 2
    assert [m["fit_error_mm"] for m in out.motions] == [pytest.approx(12.5)] * 2
    assert out.warnings == []
    with np.load(out.motions[0]["path"]) as z:
        assert z["poses"].shape == (20, 24, 3) and z["trans"].shape == (20, 3) and z["betas"].shape == (10,)
        np.testing.assert_allclose(z["fit_error_mm"], 12.5)
        np.testing.assert_allclose(z["trans"] + z["rest_joints"][0], z["joints"][:, 0], atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a_person_kicks_s0_0.bvh", "a_person_kicks_s0_0.npz", "a_person_kicks_s1_1.bvh", "a_person_kicks_s1_1.npz"]
    # the BVH arguments reproduce the fitted SMPL joints under the BVH forward kinematics
    b = fake_fitting["bvh"][-1]
    assert b["names"][0] == "pelvis" and len(b["names"]) == 24 and b["fps"] == 20
    fit = fake_fitting["last_fit"]
    np.testing.assert_allclose(bvh_fk(b["parents"], b["offsets"], b["rotations"], b["root_trans"]), fit.joints,
                               atol=1e-6)
    np.testing.assert_allclose(fit.joints[:, 0], np.load(out.motions[1]["path"])["joints"][:, 0], atol=1e-5)
    stages = [s for s, _ in events]
    assert stages.index("fit") > stages.index("decode") and stages.index("write") > stages.index("fit")
    assert fake_fitting["smpl_model_dir"] is None and fake_fitting["device"] == "cpu"


def test_failed_fit_keeps_the_joints(tmp_path, fake_fitting):
    fake_fitting["fail_on"] = 2
    out = run_generate(StandIn(), _params(tmp_path), tmp_path, lambda *a: None, lambda: False, bvh=True)
    assert out.motions[0]["fit_error_mm"] == pytest.approx(12.5) and out.motions[1]["fit_error_mm"] is None
    assert any("did not converge" in w for w in out.warnings)
    assert any("BVH needs the SMPL fit" in w for w in out.warnings)
    with np.load(out.motions[1]["path"]) as z:
        assert "poses" not in z.files and z["joints"].shape == (20, 22, 3)


def test_save_motion_adapter_passes_the_fields(tmp_path, monkeypatch, fake_fitting):
    """Every motion file goes through the one writer, backend.motion.motion_file.save_motion."""
    got = {}

    def save_motion(path, **fields):
        got.update(fields, path=path)
        Path(path).write_bytes(b"npz")

    monkeypatch.setattr(postprocess, "save_motion", save_motion)
    out = run_generate(StandIn(), _params(tmp_path, samples=1, seed=3), tmp_path, lambda *a: None, lambda: False)
    assert Path(got["path"]).name == "a_person_kicks_s3_0.npz" and got["seed"] == 3
    assert got["prompt"] == "a person kicks" and got["poses"].shape == (20, 24, 3) and got["fps"] == 20
    assert {"joints", "features", "trans", "betas", "fit_error_mm", "retrieved"} <= set(got)
    assert out.motions[0]["path"] == str(got["path"])


@pytest.mark.parametrize("when", ["fit", "write"])
def test_cancel_during_fit_or_write_leaves_nothing(tmp_path, fake_fitting, when):
    state = {"writes": 0}
    real_save = postprocess.save_sample

    def counting_save(*a, **k):
        real_save(*a, **k)
        state["writes"] += 1

    postprocess.save_sample, saved = counting_save, postprocess.save_sample
    try:
        def cancelled():
            return fake_fitting["fit"] >= 1 if when == "fit" else state["writes"] >= 1

        with pytest.raises(Cancelled):
            run_generate(StandIn(), _params(tmp_path), tmp_path, lambda *a: None, cancelled, bvh=True)
    finally:
        postprocess.save_sample = saved
    assert list(tmp_path.iterdir()) == []


def test_fallback_writer_is_atomic_and_complete(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "backend.motion.motion_file", None)
    monkeypatch.setitem(sys.modules, "smpl_fitting", None)
    params = validate_generate({"prompt": "ünïcødé wave 👋", "length_s": 0.2, "out_dir": str(tmp_path)})
    out = run_generate(StandIn(), params, tmp_path, lambda *a: None, lambda: False)
    (p,) = list(tmp_path.iterdir())
    assert p.name == "n_c_d_wave_s0_0.npz" and oct(p.stat().st_mode & 0o777) != oct(0o600)
    with np.load(p) as z:
        assert set(z.files) == {"joints", "features", "fps", "prompt", "seed", "retrieved", "format_version"}
        assert str(z["prompt"]) == "ünïcødé wave 👋" and z["joints"].shape == (4, 22, 3)
    assert out.warnings and "not installed" in out.warnings[0]


def test_progress_mapper_is_monotonic_and_bounded():
    seen = []
    m = ProgressMapper(lambda s, f: seen.append(f), fit=True, min_interval=0)
    for stage, f in [("text", 0.5), ("tokens", 0.2), ("tokens", float("nan")), ("decode", 7), ("x", "bad")]:
        m.generation(stage, f)
    m.fitting(1, 2)
    m.writing(2, 2)
    assert seen == sorted(seen) and seen[0] == pytest.approx(0.425) and seen[-1] == 1.0
    assert all(0 <= f <= 1 for f in seen)


def test_slug_and_unique_path(tmp_path):
    assert postprocess.slug("A person JUMPS, twice!") == "a_person_jumps_twice"
    assert postprocess.slug("!!!") == "motion"
    assert len(postprocess.slug("x" * 300)) == 40
    (tmp_path / "a.npz").write_bytes(b"")
    taken = set()
    assert postprocess.unique_path(tmp_path, "a", ".npz", taken).name == "a-2.npz"
    assert postprocess.unique_path(tmp_path, "a", ".npz", taken).name == "a-3.npz"


def test_captions_from_strings_dicts_and_objects():
    item = types.SimpleNamespace(caption="a man runs")
    assert postprocess.captions(["a", {"caption": "b", "id": 3}, {"text": "c"}, item]) == [
        "a", "b", "c", "a man runs"]
    assert postprocess.captions(None) == []


def test_writer_failure_is_a_write_error_and_leaves_nothing(tmp_path, monkeypatch):
    from backend.serving.jobs import WriteError
    n = {"calls": 0}

    def save_motion(path, **fields):
        n["calls"] += 1
        if n["calls"] == 2:
            raise ValueError("features must be finite")
        Path(path).write_bytes(b"npz")

    monkeypatch.setattr(postprocess, "save_motion", save_motion)
    monkeypatch.setitem(sys.modules, "smpl_fitting", None)
    with pytest.raises(WriteError, match="a_person_kicks_s1_1.npz: features must be finite"):
        run_generate(StandIn(), _params(tmp_path), tmp_path, lambda *a: None, lambda: False)
    assert list(tmp_path.iterdir()) == []
