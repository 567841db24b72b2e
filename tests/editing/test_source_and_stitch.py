"""Sources (skeleton checks, files) and stitching geometry, without a model: synthetic clips stand in for the
decoded motion."""

import numpy as np
import pytest

from backend.editing.canvas import Canvas, plan_window
from backend.editing.measures import joint_steps
from backend.editing.source import EditError, check_skeleton, load_source, source_from_joints
from backend.editing.stitch import place, rot_y, stitch, world_yaw
from backend.motion.features import features_to_joints
from backend.motion.motion_file import save_motion
from backend.synthetic import generate_clip


@pytest.fixture(scope="module")
def walk():
    return source_from_joints(generate_clip("walk", 5).joints)  # 81 frames


@pytest.fixture(scope="module")
def turn():
    return source_from_joints(generate_clip("turn", 3).joints)


def _rebuild(src_like, features):
    """Joints of ``features`` integrated from the first frame of ``src_like`` (its world place)."""
    f, j = src_like.features, src_like.joints
    return place(features, world_yaw(f[0], j[0]), j[0, 0], j[0, 0, 1] - f[0, 3])


def test_features_from_joints_rebuild_them(walk, turn):
    for s in (walk, turn):
        assert s.features.shape == (s.frames, 263)
        np.testing.assert_allclose(_rebuild(s, s.features), s.joints, atol=1e-5)


def test_world_yaw_follows_a_turned_body(walk):
    f, j = walk.features[10], walk.joints[10]
    y0 = world_yaw(f, j)
    for th in (0.4, -2.5):
        assert np.isclose(np.angle(np.exp(1j * (world_yaw(f, j @ rot_y(th).T) - y0 - th))), 0, atol=1e-6)


@pytest.mark.parametrize("bad,msg", [
    (lambda j: j[:, :21], "21 joints"),
    (lambda j: j[..., [0, 2, 1]], "not a body in metres with y up"),
    (lambda j: j * 100, "not a body in metres"),
    (lambda j: j[:, ::-1], "not in the HumanML3D order"),
    (lambda j: j[:5], "at least 8 are needed"),
    (lambda j: np.where(np.arange(len(j))[:, None, None] == 3, np.nan, j), "NaN"),
    (lambda j: j[..., 0], "shape"),
])
def test_other_skeletons_are_refused(walk, bad, msg):
    with pytest.raises(EditError, match=msg):
        check_skeleton(bad(walk.joints.copy()))


def test_load_source_files(walk, tmp_path):
    g = features_to_joints(walk.features)  # a generated-style file: joints = features_to_joints(features)
    save_motion(tmp_path / "m.npz", joints=g, features=walk.features, prompt="walks")
    s = load_source(tmp_path / "m.npz")
    assert np.array_equal(s.features, walk.features) and np.array_equal(s.joints, g) and s.prompt == "walks"
    # features that do not describe the joints are recomputed from them
    save_motion(tmp_path / "bad.npz", joints=g, features=walk.features[::-1].copy())
    assert not np.array_equal(load_source(tmp_path / "bad.npz").features, walk.features[::-1])
    np.save(tmp_path / "j.npy", walk.joints)
    assert np.array_equal(load_source(tmp_path / "j.npy").joints, walk.joints)
    save_motion(tmp_path / "fast.npz", joints=g, fps=30)
    for name, msg in (("fast.npz", "30 fps"), ("nope.npz", "not found"), ("m.txt", "not found")):
        with pytest.raises(EditError, match=msg):
            load_source(tmp_path / name)
    (tmp_path / "m.bvh").write_text("x")
    with pytest.raises(EditError, match="must be a motion .npz"):
        load_source(tmp_path / "m.bvh")


def test_stitch_keeps_the_source_outside_and_meets_it_after(walk, turn):
    gen = turn.features[:40]  # another motion (a turn) in the hole, window starting at frame 16
    st = stitch(Canvas.of(walk), np.concatenate([walk.features[16:24], gen]), 16, 24, 56, margin=8)
    lo, hi = st.changed
    assert (lo, hi) == (16, 64)
    for a, b in ((st.joints, walk.joints), (st.features, walk.features)):
        assert np.array_equal(a[:lo], b[:lo]) and np.array_equal(a[hi:], b[hi:])
    # features and joints describe the same motion, and the root meets the source at the first untouched frame
    rebuilt = _rebuild(walk, st.features)
    np.testing.assert_allclose(rebuilt, st.joints, atol=1e-4)
    assert np.linalg.norm(rebuilt[hi, 0] - walk.joints[hi, 0]) < 1e-3
    assert abs(np.angle(np.exp(1j * (world_yaw(st.features[hi], rebuilt[hi]) - world_yaw(walk.features[hi],
                                                                                        walk.joints[hi]))))) < 1e-4


def test_stitch_right_modes(walk, turn):
    gen = np.concatenate([walk.features[16:24], turn.features[:40]])
    c = Canvas.of(walk)
    for mode in ("yaw", "follow"):
        st = stitch(c, gen, 16, 24, 56, margin=8, right=mode)
        assert np.array_equal(st.features[st.changed[1]:], walk.features[st.changed[1]:])
        np.testing.assert_allclose(_rebuild(walk, st.features), st.joints, atol=1e-4)  # moved along, consistent
        assert st.moved_from == 64 and st.shift is not None
    yaw = stitch(c, gen, 16, 24, 56, margin=8, right="yaw")
    np.testing.assert_allclose(yaw.shift[:3, :3], np.eye(3), atol=1e-5)  # yaw mode: a pure translation


def test_hole_at_the_start_leads_into_the_clip(walk, turn):
    c = Canvas.of(24, walk)
    st = stitch(c, np.concatenate([turn.features[:24], walk.features[:12]]), 0, 0, 24, margin=8)
    lo, hi = st.changed
    assert (lo, hi) == (0, 32)
    assert np.array_equal(st.joints[hi:], c.joints[hi:]) and np.array_equal(st.features[hi:], c.features[hi:])
    steps = joint_steps(st.joints)
    assert steps[hi - 1] < 0.1  # continuous into the clip


def test_window_planning():
    c = Canvas.of(source_from_joints(generate_clip("walk", 5).joints))  # 81 frames
    w = plan_window(c, 30, 50)
    assert w.hole == (3, 8) and w.start == 18 and w.tokens == 11 and w.runs == [(0, 11)]
    end = plan_window(c, 60, 81)  # at the clip's end: hole tokens end with the canvas
    assert end.start + end.tokens * 4 <= 81 and end.start + end.hole[0] * 4 <= 60
    gap = Canvas.of(source_from_joints(generate_clip("walk", 5).joints), 40, source_from_joints(
        generate_clip("wave", 1).joints))
    g = plan_window(gap, 81, 121)
    assert g.runs == [(0, 3), (13, 16)]  # given runs encoded on their own
    for a, b, msg in ((10, 10, "empty"), (-4, 10, "outside"), (0, 82, "outside")):
        with pytest.raises(EditError, match=msg):
            plan_window(c, a, b)
    long = Canvas.of(*[source_from_joints(generate_clip("walk", s).joints) for s in (5, 6, 7)])
    with pytest.raises(EditError, match="at most 180 frames"):
        plan_window(long, 20, 204)
