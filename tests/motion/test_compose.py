"""Joining feature sequences (backend.motion.compose): cross-fade frames, and the joined motion continues
from where the first part ended."""

import numpy as np
import pytest

from backend.motion.compose import join_features
from backend.motion.features import features_to_joints, joints_to_features
from backend.motion.procedural import walking_motion


def test_crossfade_frames():
    a = np.zeros((20, 263), np.float32)
    b = np.ones((30, 263), np.float32)
    j = join_features([a, b], blend=8)
    assert j.shape == (42, 263) and j.dtype == np.float32
    assert (j[:12] == 0).all() and (j[20:] == 1).all()
    mid = j[12:20, 0]
    assert np.all(np.diff(mid) > 0) and 0 < mid[0] < mid[-1] < 1
    assert np.array_equal(join_features([a, b], blend=0), np.concatenate([a, b]))
    assert np.array_equal(join_features([a]), a)


def test_joined_walk_continues_from_the_first_part():
    walk = joints_to_features(walking_motion(80))
    a, b = walk[:40], walk[40:]
    joined = join_features([a, b], blend=0)
    assert np.allclose(features_to_joints(joined), features_to_joints(walk), atol=1e-4)
    # with a cross-fade the motion still covers the first part, then travels as far as the second part does
    j = features_to_joints(join_features([a, b], blend=8))
    ja, jb = features_to_joints(a), features_to_joints(b)
    assert np.allclose(j[:32], ja[:32], atol=1e-5)
    travel_b = np.linalg.norm(jb[-1, 0, [0, 2]] - jb[8, 0, [0, 2]])
    travel_joined = np.linalg.norm(j[-1, 0, [0, 2]] - j[40, 0, [0, 2]])
    assert travel_joined == pytest.approx(travel_b, rel=0.02)
    assert np.linalg.norm(np.diff(j, axis=0), axis=-1).max() < 3 * np.linalg.norm(np.diff(
        features_to_joints(walk), axis=0), axis=-1).max()   # no pop at the join


def test_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        join_features([])
    with pytest.raises(ValueError, match="same D"):
        join_features([np.zeros((20, 263)), np.zeros((20, 262))])
    with pytest.raises(ValueError, match="longer than"):
        join_features([np.zeros((20, 263)), np.zeros((8, 263))], blend=8)
