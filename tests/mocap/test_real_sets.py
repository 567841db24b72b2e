"""The two real sets of ../shared/data/mocap, read through the tables (skipped where the data is not present: it
is never part of the repository)."""

import collections

import numpy as np
import pytest

from backend.mocap import default_mocap_dir
from backend.mocap.clips import MAX_FRAMES, cut_windows, load_mocap_corpus
from backend.mocap.labels import M2M_EXCLUDED, PHRASES
from backend.mocap.read import below_floor, read_mocap_bvh
from backend.motion import skeleton as S
from backend.motion.features import features_to_joints, joints_to_features

ROOT = default_mocap_dir()
pytestmark = [pytest.mark.skipif(ROOT is None, reason="needs ../shared/data/mocap (real motion, not in the repo)"),
              pytest.mark.slow]  # reads all 61 takes (~10 s)
J = S.JOINT_INDEX


@pytest.fixture(scope="module")
def corpus():
    errors, dropped = [], []
    clips = load_mocap_corpus(ROOT, seed=0, errors=errors, dropped=dropped)
    return clips, errors, dropped


def _forward(j):
    across = j[:, J["left_hip"]] - j[:, J["right_hip"]]
    f = np.cross(across, [0.0, 1.0, 0.0])
    return f / np.linalg.norm(f, axis=-1, keepdims=True)


def test_every_usable_clip_reads_and_every_family_is_there(corpus):
    clips, errors, dropped = corpus
    assert errors == []
    fams = collections.Counter(c.family for c in clips)
    assert set(fams) == set(PHRASES)  # every labelled family has clips
    sources = {c.params["source"] for c in clips}
    assert not any(x in s for s in sources for x in M2M_EXCLUDED if f"-{x}.bvh" in s)
    assert sum(1 for s in sources if s.startswith(("salsa/", "indian/", "martial/"))) == 43
    assert all(c.length <= MAX_FRAMES for c in clips)
    assert all(below_floor(c.joints) == 0 for c in clips)
    assert len(dropped) <= 0.05 * len(clips)  # glitchy windows are rare, and said
    assert all(len(c.captions) >= 2 and c.caption == c.captions[0] for c in clips)


def test_cmu_durations_use_the_true_frame_rates(corpus):
    """The salsa headers say 120 fps; at the true 60 fps the set lasts about 917 s (the data README's figure)."""
    seconds = collections.Counter()
    for f in sorted((ROOT / "cmu_dance_acrnn" / "train_data_bvh" / "salsa").glob("*.bvh"))[:3]:
        c = read_mocap_bvh(f, fps=60)
        seconds["salsa3"] += c.source_frames / c.source_fps
        assert c.joints.shape[0] == pytest.approx(c.source_frames / 3, abs=1)  # 60 -> 20 fps
    assert 60 < seconds["salsa3"] < 120  # three of thirty clips of ~30 s each


def test_bodies_are_upright_facing_their_feet_and_on_the_floor(corpus):
    clips = corpus[0]
    for c in clips:
        # not standing on flat feet: on all fours, lying, flipping, sitting, kneeling, a run cycle's kicked-back feet
        if c.params["mirrored"] or c.family in ("crawl", "push_ups", "sleep", "backflip", "meditate", "tired",
                                                "kneel_tired", "run_stylised"):
            continue
        j = c.joints
        lowest = j[..., 1].min(-1)
        # feet on the floor: a tenth of the frames stand within 2 cm of it, none is 5 cm under it
        assert np.mean(np.abs(lowest) < 0.02) >= 0.1 and lowest.min() >= -0.05, c.params
        head_up = j[:, J["head"], 1] - j[:, 0, 1]
        assert np.median(head_up) > 0.3, c.params  # head above the pelvis
        toes = (j[:, J["left_foot"]] - j[:, J["left_ankle"]] + j[:, J["right_foot"]] - j[:, J["right_ankle"]])
        toes[:, 1] = 0
        cos = (toes * _forward(j)).sum(-1) / np.maximum(np.linalg.norm(toes, axis=-1), 1e-9)
        assert np.median(cos) > 0.5, c.params  # toes point where the hips face (left is +X when facing +Z)


def test_features_describe_the_clips(corpus):
    clips = corpus[0]
    for c in clips[::25]:
        f = joints_to_features(c.joints)
        assert np.isfinite(f).all()
        back = features_to_joints(f)
        # the features rebuild the (canonicalised) joints: bone lengths are the template's
        tmpl = S.bone_lengths(S.default_rest_joints()[None])[0]
        if c.params["mirrored"]:  # a mirrored body has the template's left lengths on its right
            tmpl = tmpl[list(S.MIRROR_INDEX)]
        np.testing.assert_allclose(S.bone_lengths(back), np.broadcast_to(tmpl, (len(back), len(tmpl))), atol=2e-3)


def test_mirrored_copies_swap_sides_in_motion_and_words(corpus):
    clips = corpus[0]
    jabs = [c for c in clips if c.family == "jab"]
    assert {(c.params["mirrored"], c.params["side"]) for c in jabs} == {
        (False, "left"), (False, "right"), (True, "left"), (True, "right")}
    for c in jabs:
        side = c.params["side"]
        assert all(side in cap for cap in c.captions)
        other = "right" if side == "left" else "left"
        assert not any(other in cap for cap in c.captions)
        # the named arm is the one that straightens furthest (a jab extends the arm)
        j = c.joints
        reach = {s: np.linalg.norm(j[:, J[f"{s}_wrist"]] - j[:, J[f"{s}_shoulder"]], axis=-1).max()
                 for s in ("left", "right")}
        assert reach[side] > reach[other] + 0.02, (c.params, reach)


def test_windows_cover_long_takes():
    c = read_mocap_bvh(next((ROOT / "cmu_dance_acrnn" / "train_data_bvh" / "martial").glob("*.bvh")), fps=120)
    w = cut_windows(c.joints)
    assert w[0][0] == 0 and w[-1][1] == len(c.joints)
    assert all(b - a <= MAX_FRAMES for a, b in w)
    assert all(w[i + 1][0] < w[i][1] for i in range(len(w) - 1))  # overlapping: no gap
