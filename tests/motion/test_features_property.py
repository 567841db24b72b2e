"""Property test: joints -> features -> joints recovers the canonical motion for varied walks."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.motion.features import canonicalize, features_to_joints, joints_to_features
from backend.motion.procedural import walking_motion


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    n=st.integers(2, 90),
    turn=st.floats(-720, 720),
    speed=st.floats(0.0, 4.0),
    start=st.floats(-180, 180),
    x=st.floats(-20, 20),
    z=st.floats(-20, 20),
    seed=st.integers(0, 1000),
)
def test_round_trip_property(n, turn, speed, start, x, z, seed):
    j = walking_motion(n, turn_degrees=turn, speed=speed, start_yaw_degrees=start, start_xz=(x, z), seed=seed)
    f = joints_to_features(j)
    assert f.shape == (n - 1, 263) and np.isfinite(f).all()
    err = np.abs(features_to_joints(f) - canonicalize(j)[:-1]).max() if n > 1 else 0.0
    assert err < 1e-4, err
