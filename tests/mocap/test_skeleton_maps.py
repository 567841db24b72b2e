"""The skeleton tables, checked without the data: a known motion written as a BVH on each source skeleton (its
names, axes, units, frame rate) must read back as the same 22 joints."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from backend.mocap.read import (MocapError, below_floor, floor_height, put_on_floor, read_mocap_bvh, settled_range,
                                 source_joints)
from backend.motion.timing import resample
from backend.mocap.skeletons import DAZ_CMU, MESH2MOTION, pelvis_fraction
from backend.motion import skeleton as S
from backend.motion.bvh import write_bvh
from backend.motion.features import uniform_skeleton
from backend.motion.procedural import fk, walking_params
from tests.mocap.fake_sets import daz_bvh, m2m_bvh

J = S.JOINT_INDEX
EXACT = [n for n in S.JOINT_NAMES if n not in ("pelvis", "spine3")]  # joints each table names one-to-one


def _walk(n=60, fps=20):
    rest, rot, root = walking_params(n, turn_degrees=120, seed=2)
    rot = rot.copy()
    rot[:, J["spine3"]] = 0.0  # DAZ has no spine3: its chest -> neck bone is rigid
    t = np.arange(n) / fps
    return rest, rot, root, fk(rest, rot, root), t


def _daz_without_foot_joints(tmp_path):
    """DAZ: the toe is an end site, so the template's foot joints are not written as joints."""
    rest, rot, root, joints, _ = _walk()
    return daz_bvh(tmp_path / "daz.bvh", rest, rot, root, fps=20), joints


def test_pelvis_fraction_is_the_templates():
    f = pelvis_fraction()
    assert 0.3 < f < 0.6
    r = S.default_rest_joints()
    hips = (r[J["left_hip"]] + r[J["right_hip"]]) / 2
    np.testing.assert_allclose((hips + f * (r[J["spine1"]] - hips))[1], r[0, 1], atol=1e-6)


def test_daz_table_reads_a_known_motion(tmp_path):
    p, expected = _daz_without_foot_joints(tmp_path)
    j, fps, smap = source_joints(p)
    assert smap is DAZ_CMU and fps == pytest.approx(20)
    idx = [J[n] for n in EXACT]
    np.testing.assert_allclose(j[:, idx], expected[:, idx], atol=1e-5)  # names, cm -> m, end-site toes
    assert np.abs(j[:, 0] - expected[:, 0]).max() < 0.02  # the pelvis is placed between hips and spine1
    assert np.abs(j[:, J["spine3"]] - expected[:, J["spine3"]]).max() < 0.03


def test_mesh2motion_table_reads_a_known_motion_in_z_up(tmp_path):
    rest, rot, root, expected, _ = _walk()
    A = MESH2MOTION.axes
    p = m2m_bvh(tmp_path / "m2m.bvh", rest, rot, root, fps=20)
    j, _, smap = source_joints(p)
    assert smap is MESH2MOTION
    idx = [J[n] for n in S.JOINT_NAMES if n != "pelvis"]
    np.testing.assert_allclose(j[:, idx], expected[:, idx], atol=1e-5)
    # the source really was z-up: its head is high on z, not y
    up = (expected[0, J["head"]] - expected[0, 0]) @ A
    assert up[2] > 0.4 and abs(up[1]) < 0.1


def test_rotations_conjugate_like_vectors():
    """The test's own premise: rotating by (A^T r) in the source frame is rotating by r in the project frame."""
    A = MESH2MOTION.axes
    r = np.array([0.3, -0.7, 0.2])
    v = np.array([0.1, 0.5, -0.4])
    lhs = A @ Rotation.from_rotvec(r @ A).apply(v @ A)
    np.testing.assert_allclose(lhs, Rotation.from_rotvec(r).apply(v), atol=1e-12)


@pytest.mark.parametrize("src_fps", [24.0, 60.0, 120.0])
def test_resampling_to_20_fps_keeps_time(src_fps):
    t = np.arange(int(4 * src_fps) + 1) / src_fps
    x = np.stack([np.sin(t), np.cos(2 * t)], -1)
    y = resample(x, src_fps, 20)
    t20 = np.arange(len(y)) / 20
    assert len(y) == 81  # 4 s -> 81 frames at 20 fps
    # linear interpolation's error bound: max|f''| h^2 / 8, with |f''| <= 4 for cos(2t)
    bound = 4 / (8 * src_fps ** 2)
    err = np.abs(y - np.stack([np.sin(t20), np.cos(2 * t20)], -1)).max()
    assert err <= bound + 1e-12, (err, bound)


def test_header_frame_rate_override_changes_duration(tmp_path):
    """The CMU salsa trap: a 60 fps clip whose header says 120 fps lasts twice as long once told the truth."""
    p, _ = _daz_without_foot_joints(tmp_path)  # 60 frames written with a 20 fps header
    as_written = read_mocap_bvh(p)
    told = read_mocap_bvh(p, fps=10)
    assert as_written.joints.shape[0] == 60 and told.joints.shape[0] == 2 * 60 - 1
    assert told.source_fps == 10


def test_clip_is_retargeted_to_the_template_and_on_the_floor(tmp_path):
    p, expected = _daz_without_foot_joints(tmp_path)
    c = read_mocap_bvh(p)
    assert c.joints.dtype == np.float32 and c.joints.shape == (60, 22, 3)
    tmpl = S.bone_lengths(S.default_rest_joints()[None])[0]
    lengths = S.bone_lengths(c.joints)
    np.testing.assert_allclose(lengths, np.broadcast_to(tmpl, lengths.shape), atol=1e-4)
    lowest = c.joints[..., 1].min(-1)
    assert lowest.min() >= -1e-6 and np.mean(lowest < 0.02) >= 0.1
    ref = put_on_floor(uniform_skeleton(expected, S.default_rest_joints()))
    assert np.abs(c.joints - ref).max() < 0.05  # only the pelvis/spine3 placement differs


def test_unknown_skeleton_is_refused_with_one_message(tmp_path):
    rest, rot, root = walking_params(10)
    names = [f"bone{i}" for i in range(22)]
    offs = np.array([rest[k] - (rest[p] if p >= 0 else 0) for k, p in enumerate(S.PARENTS)])
    p = write_bvh(tmp_path / "odd.bvh", names, S.PARENTS, offs, rot, root)
    with pytest.raises(MocapError, match="not one of the mapped skeletons"):
        read_mocap_bvh(p)
    (tmp_path / "broken.bvh").write_text("HIERARCHY\nROOT x {")
    with pytest.raises(MocapError):
        read_mocap_bvh(tmp_path / "broken.bvh")


def test_floor_ignores_scattered_glitches_and_jumps():
    rng = np.random.default_rng(0)
    n = 200
    j = np.zeros((n, 22, 3))
    j[..., 1] = 0.5 + rng.uniform(0, 1, (n, 22))
    j[:, 10, 1] = 0.30 + 0.005 * rng.standard_normal(n)  # a foot on a floor at 30 cm
    j[50:70, 10, 1] += np.linspace(0, 0.4, 20)  # a jump
    j[100:112, 10, 1] = 0.30 - np.linspace(0.08, 0.25, 12)  # a marker glitch through the floor
    assert floor_height(j) == pytest.approx(0.30, abs=0.02)
    assert below_floor(put_on_floor(j)) == 12  # the glitch frames stay visible to the window filter


def test_settled_range_cuts_the_capture_settling():
    t = np.arange(300) / 120
    j = np.zeros((300, 22, 3))
    j[..., 0] = 0.1 * np.sin(2 * np.pi * t)[:, None]
    j[:3] += np.array([0.9, -0.5, 0.3])[:, None, None] * np.array([1.0, 0.5, 0.2])[:, None, None]
    a, b = settled_range(j)
    assert a == 3 and b == 300


def test_heldout_prompts_are_never_training_captions():
    """Every caption the training templates can make (subject + phrase + modifier, and the everyday forms of
    backend.synthetic.wording: imperative, -ing), against the held-out prompts: no held-out prompt is one of them,
    nor contains a whole training phrase in any of those forms."""
    import itertools
    import re

    from backend.mocap.heldout import HELDOUT_PROMPTS
    from backend.mocap.labels import PHRASES, TEMPO, TRAVEL, TURNING
    from backend.synthetic.captions import SUBJECTS
    from backend.synthetic.wording import imperative, progressive

    mods = [""] + [w for ws in TEMPO.values() for w in ws] + [w for ws in TRAVEL.values() for w in ws] + TURNING
    train = set()
    for fam, phrases in PHRASES.items():
        for subj, ph, mod, side in itertools.product(SUBJECTS, phrases, mods, ("left", "right")):
            pred = re.sub(r"\s+", " ", f"{ph.format(side=side)} {mod}").strip()
            train.update({f"{subj} {pred}", progressive(pred), f"{subj} {progressive(pred)}", imperative(pred)})
    assert set(HELDOUT_PROMPTS) <= set(PHRASES)
    for fam, prompts in HELDOUT_PROMPTS.items():
        for p in prompts:
            assert p not in train, p
            forms = [ph.format(side=s) for ph in PHRASES[fam] for s in ("left", "right")]
            forms += [g for f in forms for g in (progressive(f), imperative(f)) if g and " " in g]  # a phrase
            assert not any(f and re.search(rf"\b{re.escape(f)}\b", p) for f in forms), p
