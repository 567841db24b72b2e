"""SMPL path through smplx with a synthetic SMPL-format model file (real key names and shapes, no gated data)."""

import pickle

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from smpl_fitting import FitError, fit_motion, skeleton as sk
from smpl_fitting.synthetic import random_plausible_poses, smooth_motion

pytest.importorskip("smplx")


def test_synthetic_file_has_the_smpl_layout(smpl_dir):
    with open(smpl_dir / "smpl" / "SMPL_NEUTRAL.pkl", "rb") as fh:
        data = pickle.load(fh, encoding="latin1")
    shapes = {k: tuple(np.shape(data[k])) for k in
              ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")}
    assert shapes == {"v_template": (6890, 3), "shapedirs": (6890, 3, 10), "posedirs": (6890, 3, 207),
                      "J_regressor": (24, 6890), "weights": (6890, 24), "kintree_table": (2, 24),
                      "f": (13776, 3)}
    np.testing.assert_allclose(data["weights"].sum(1), 1.0)
    np.testing.assert_allclose(np.asarray(data["J_regressor"].sum(1)).ravel(), 1.0)


def test_our_fk_equals_smplx(smpl_body, rng):
    poses = random_plausible_poses(16, rng)
    trans = rng.normal(0, 1, (16, 3))
    betas = rng.normal(0, 1, 10)
    joints, verts = smpl_body.smplx_forward(poses, trans, betas, return_vertices=True)
    assert verts.shape == (16, 6890, 3)
    np.testing.assert_allclose(sk.forward_kinematics(smpl_body.rest_joints(betas), poses, trans), joints, atol=2e-6)
    # plausible body: upright, about 1.6-1.8 m from ankles to head at beta = 0
    rest = smpl_body.rest_joints()
    assert 1.3 < rest[sk.HEAD, 1] - rest[sk.L_ANKLE, 1] < 1.8


def geodesic_deg(a, b):
    return np.degrees(Rotation.from_matrix(np.swapaxes(a, -1, -2) @ b).magnitude())


def test_ground_truth_motion_roundtrip(smpl_dir, smpl_body, rng):
    poses, trans = smooth_motion(100, rng)
    truth = smpl_body.smplx_forward(poses, trans)
    res = fit_motion(truth[:, :22].astype(np.float32), smpl_model_dir=str(smpl_dir))
    assert res.model == "smpl"
    err = np.linalg.norm(res.joints[:, :22] - truth[:, :22], axis=-1) * 1000
    assert err.mean() < 5.0 and err.max() < 15.0
    # the fitted parameters through smplx itself give the same joints (the convention the keying relies on)
    back = smpl_body.smplx_forward(res.poses, res.trans, res.betas)
    np.testing.assert_allclose(back, res.joints, atol=1e-4)
    np.testing.assert_allclose(res.rest_joints, smpl_body.rest_joints(), atol=1e-9)
    # pose recovered where the joints determine it: pelvis, spine3 and the (hinged, bent) limbs
    g_truth, g_fit = sk.global_rotations(poses), sk.global_rotations(res.poses)
    bent = (poses[:, sk.L_KNEE, 0] > 0.45) & (poses[:, sk.R_KNEE, 0] > 0.45)
    for j in (0, 9):
        assert geodesic_deg(g_truth[:, j], g_fit[:, j]).max() < 3.0, j
    for j in (1, 2, 4, 5):
        assert geodesic_deg(g_truth[bent, j], g_fit[bent, j]).max() < 5.0, j
    for shoulder, elbow in ((16, 18), (17, 19)):
        ok = np.abs(poses[:, elbow, 1]) > 0.45  # elbow bent: the arm's plane fixes the shoulder twist
        for j in (shoulder, elbow):
            assert geodesic_deg(g_truth[ok, j], g_fit[ok, j]).max() < 5.0, j


def test_ground_truth_independent_poses(smpl_dir, smpl_body, rng):
    poses = random_plausible_poses(48, rng)
    trans = rng.normal(0, 1, (48, 3))
    truth = smpl_body.smplx_forward(poses, trans)
    res = fit_motion(truth[:, :22], smpl_model_dir=smpl_dir)
    err = np.linalg.norm(res.joints[:, :22] - truth[:, :22], axis=-1) * 1000
    assert err.mean() < 5.0 and err.max() < 15.0
    g_truth, g_fit = sk.global_rotations(poses), sk.global_rotations(res.poses)
    for j in (0, 9, 1, 2, 4, 5, 16, 17, 18, 19):
        assert np.median(geodesic_deg(g_truth[:, j], g_fit[:, j])) < 2.0, j
        assert geodesic_deg(g_truth[:, j], g_fit[:, j]).max() < 8.0, j


def test_fit_betas_recovers_body_shape(smpl_dir, smpl_body, rng):
    betas = rng.normal(0, 1.5, 10)
    poses, trans = smooth_motion(60, rng)
    truth = smpl_body.smplx_forward(poses, trans, betas)
    fixed = fit_motion(truth[:, :22], smpl_model_dir=smpl_dir, refine=False)
    fitted = fit_motion(truth[:, :22], smpl_model_dir=smpl_dir, fit_betas=True)
    assert fixed.fit_error_mm.mean() > 10.0  # the mean shape cannot reach these joints
    err = np.linalg.norm(fitted.joints[:, :22] - truth[:, :22], axis=-1) * 1000
    assert err.mean() < 5.0 and err.max() < 15.0
    bl = sk.bone_lengths
    np.testing.assert_allclose(bl(fitted.rest_joints)[1:22], bl(smpl_body.rest_joints(betas))[1:22], atol=3e-3)
    np.testing.assert_allclose(smpl_body.smplx_forward(fitted.poses, fitted.trans, fitted.betas), fitted.joints,
                               atol=1e-4)


def test_wrong_model_folder(tmp_path):
    joints = np.zeros((4, 22, 3))
    joints[:] = sk.TEMPLATE_REST_JOINTS[:22]
    with pytest.raises(FitError, match="does not exist"):
        fit_motion(joints, smpl_model_dir=str(tmp_path / "nope"))
    with pytest.raises(FitError, match="SMPL_NEUTRAL.pkl"):
        fit_motion(joints, smpl_model_dir=str(tmp_path))
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(b"not a pickle")
    with pytest.raises(FitError, match="could not load SMPL model"):
        fit_motion(joints, smpl_model_dir=str(tmp_path))
    with pytest.raises(FitError, match="gender"):
        fit_motion(joints, smpl_model_dir=str(tmp_path), gender="robot")


def test_fit_with_smpl_files_carries_the_shaped_body_mesh(smpl_dir, smpl_body, rng):
    """With SMPL files the fit also returns the zero-pose body (for the add-on's SMPL mesh), consistent with the
    fitted rest joints; the skeleton-only fit returns none."""
    from smpl_fitting import fit_motion

    betas = rng.normal(scale=0.8, size=10)
    poses = np.zeros((6, 24, 3))
    poses[:, 18, 2] = np.linspace(0.0, 1.0, 6)          # bend an elbow
    joints = smpl_body.smplx_forward(poses, np.zeros((6, 3)), betas)[:, :22]
    res = fit_motion(joints, smpl_model_dir=str(smpl_dir), fit_betas=True)
    fields = res.as_npz_fields()
    v, f, w = fields["body_vertices"], fields["body_faces"], fields["body_weights"]
    assert v.shape == (6890, 3) and f.shape == (13776, 3) and w.shape == (6890, 24)
    assert f.min() >= 0 and f.max() < 6890 and np.allclose(w.sum(axis=1), 1.0, atol=1e-4)
    jreg = smpl_body.model.J_regressor.double().numpy()
    np.testing.assert_allclose(jreg @ v.astype(np.float64), res.rest_joints, atol=1e-4)
    _, verts = smpl_body.smplx_forward(np.zeros((1, 24, 3)), np.zeros((1, 3)), res.betas, return_vertices=True)
    np.testing.assert_allclose(verts[0], v, atol=1e-4)
    assert "body_vertices" not in fit_motion(joints).as_npz_fields()
