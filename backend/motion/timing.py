"""Frame-rate conversion of joint (or any per-frame) arrays."""

from __future__ import annotations

import numpy as np

from .skeleton import FPS


def resample(x: np.ndarray, src_fps: float, dst_fps: float = FPS) -> np.ndarray:
    """Linear resampling along the first axis from ``src_fps`` to ``dst_fps``. Sample k is at time k / dst_fps from
    the first frame (times are exact; the clip ends at the last whole output frame inside it). Fewer than two frames,
    or the same rate, come back as a copy. Error bound: max|x''| h^2 / 8 with h = 1 / src_fps."""
    n = x.shape[0]
    if n < 2 or abs(src_fps - dst_fps) < 1e-9:
        return x.copy()
    duration = (n - 1) / src_fps
    t = np.arange(int(np.floor(duration * dst_fps + 1e-9)) + 1) / dst_fps
    pos = t * src_fps
    i0 = np.clip(np.floor(pos).astype(int), 0, n - 1)
    i1 = np.clip(i0 + 1, 0, n - 1)
    w = (pos - i0).reshape((-1,) + (1,) * (x.ndim - 1))
    return x[i0] * (1 - w) + x[i1] * w
