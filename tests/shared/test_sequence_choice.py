"""Which moments a sequence still shows, and where (remomask_addon/core/sequence.py, no bpy)."""

import numpy as np

from remomask_addon.core import sequence


def _jump(frames=60, apex=37):
    """An in-place jump: 5 points (root first), the body lifted 0.4 m around frame ``apex``."""
    t = np.arange(frames)
    lift = 0.4 * np.exp(-0.5 * ((t - apex) / 3.0) ** 2)
    body = np.array([[0, 0, 1.0], [0.1, 0, 0.5], [-0.1, 0, 0.5], [0, 0, 1.6], [0.2, 0, 1.3]])
    pts = np.repeat(body[None], frames, axis=0).astype(float)
    pts[:, :, 2] += lift[:, None]
    return pts


def test_in_place_motion_shows_its_extreme_moment_and_is_spread():
    pts = _jump()
    idx = sequence.choose_frames(pts, 5)
    assert idx[0] == 0 and idx[-1] == len(pts) - 1 and len(idx) == 5 and idx == sorted(idx)
    assert any(abs(i - 37) <= 1 for i in idx), idx  # the apex, which even spacing (0, 15, 30, 44, 59) misses
    assert min(np.diff(idx)) >= 3
    off = sequence.spread_offsets(pts[idx, 0, :2], np.array([1.0, 0.0]))
    assert np.allclose(np.diff(off[:, 0]), sequence.FIGURE_WIDTH) and np.allclose(off[:, 1], 0)
    assert abs(off[:, 0].mean()) < 1e-9  # centred on where the body stands


def test_travelling_motion_keeps_even_spacing_and_its_own_path():
    pts = _jump()
    pts[:, :, 0] += np.linspace(0, 3.0, len(pts))[:, None]  # walks 3 m
    idx = sequence.choose_frames(pts, 4)
    assert idx == [0, 20, 39, 59]
    assert not sequence.spread_offsets(pts[idx, 0, :2], np.array([0.0, 1.0])).any()


def test_highlight_gets_a_third_of_the_figures():
    pts = _jump()
    idx = sequence.choose_frames(pts, 8, highlight=(20, 30))
    assert len(idx) == 8 and sum(20 <= i < 30 for i in idx) >= 3
    assert len(set(idx)) == len(idx) and idx == sorted(idx)


def test_figure_width_follows_the_pose():
    pts = _jump()
    assert sequence.figure_width(pts, np.array([1.0, 0.0])) == sequence.FIGURE_WIDTH  # narrow body: the minimum
    wide = pts.copy()
    wide[:, 4, 0] = 0.9  # an arm held out 0.9 m
    assert abs(sequence.figure_width(wide, np.array([1.0, 0.0]), pad=0.1) - 1.1) < 1e-9
