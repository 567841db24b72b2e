"""Which moments a sequence still shows, and where (numpy only, no bpy).

A motion that travels is shown at evenly spaced moments along its own path. A motion that stays in place (sit,
jump, kick, wave) would stack its figures on one spot and hide the key pose, so it is shown at the moments that
show the action (in each of k equal time segments, the pose farthest from the clip's mean pose: a jump's apex, a
wave's raised hand) and its figures are spread side by side along the camera's horizontal axis, as the papers'
figures do. ``highlight`` (a frame range, e.g. the edited hole of an edit) gets at least a third of the figures.
"""

from __future__ import annotations

import numpy as np

FIGURE_WIDTH = 0.7  # metres between spread figures (a body is about 0.5 m wide with its arms down)


def travels(root_xy: np.ndarray, width: float = FIGURE_WIDTH) -> bool:
    """True when the root's horizontal path spans at least one figure width."""
    r = np.asarray(root_xy, dtype=np.float64)
    return len(r) > 1 and float(np.ptp(r, axis=0).max()) >= width


def _extremes(points: np.ndarray, k: int, lo: int, hi: int) -> list[int]:
    """k frame indices in [lo, hi): first, last, and in each inner segment the most extreme pose."""
    n = hi - lo
    if k >= n:
        return list(range(lo, hi))
    pts = np.asarray(points[lo:hi], dtype=np.float64)
    rel = pts - pts[:, :1, :] * np.array([1.0, 1.0, 0.0])  # root-relative horizontally, height kept
    feat = rel.reshape(n, -1)
    score = np.linalg.norm(feat - feat.mean(axis=0), axis=1)
    picks = [0, n - 1]
    edges = np.linspace(0, n, k + 1)
    for s in range(1, k - 1):
        a, b = int(np.ceil(edges[s])), int(np.floor(edges[s + 1]))
        pad = int((b - a) * 0.2)  # keep away from the segment's ends so neighbours never coincide
        a, b = a + pad, max(a + pad + 1, b - pad)
        picks.append(a + int(np.argmax(score[a:b])))
    return sorted(lo + p for p in set(picks))


def choose_frames(points: np.ndarray, k: int, highlight: tuple[int, int] | None = None) -> list[int]:
    """Indices into ``points`` (F, P, 3), world positions per frame with the root first, of the k figures."""
    f = len(points)
    k = max(2, min(int(k), f))
    if highlight is not None:
        a, b = max(0, int(highlight[0])), min(f, int(highlight[1]))
        if b > a:
            inner = max(2, -(-k // 3))
            chosen = set(_extremes(points, min(inner, b - a), a, b))
            rest = [i for i in choose_frames(points, k - len(chosen)) if all(abs(i - c) > 1 for c in chosen)]
            return sorted(chosen | set(rest[:k - len(chosen)]))
    if travels(points[:, 0, :2]):
        return sorted(set(int(round(x)) for x in np.linspace(0, f - 1, k)))
    return _extremes(points, k, 0, f)


def figure_width(points: np.ndarray, right_xy: np.ndarray, pad: float = 0.15) -> float:
    """How wide the figures look along the camera's right axis: the widest pose's extent plus a gap."""
    right = np.asarray(right_xy, dtype=np.float64)[:2]
    right = right / np.linalg.norm(right)
    extent = np.ptp(np.asarray(points, dtype=np.float64)[..., :2] @ right, axis=-1).max()
    return max(FIGURE_WIDTH, float(extent) + pad)


def spread_offsets(root_xy: np.ndarray, right_xy: np.ndarray, width: float = FIGURE_WIDTH) -> np.ndarray:
    """(k, 2) horizontal offsets for the figures: none for a motion that travels, else side by side along the
    camera's right axis, centred, one figure width apart, in time order (left to right as seen)."""
    r = np.asarray(root_xy, dtype=np.float64)
    k = len(r)
    if travels(r, width):
        return np.zeros((k, 2))
    right = np.asarray(right_xy, dtype=np.float64)[:2]
    right = right / np.linalg.norm(right)
    along = (np.arange(k) - (k - 1) / 2.0) * width
    return along[:, None] * right[None, :]
