"""The frames an edit works on, and the window of tokens the model sees around one hole.

A :class:`Canvas` is a run of frames at 20 fps: some hold given motion (``real``: a source clip's features and
world joints), the others are new frames to generate (placeholders). A hole is a frame range ``[start, end)``
to (re)generate; in-painting holes lie over real frames, the new frames of prefix/suffix/in-between tasks are
holes over placeholders.

The model generates at most 196 frames (49 tokens) at once, so each hole is edited inside a window of at most
49 tokens: its tokens plus up to ``CONTEXT_TOKENS`` (3 = 0.6 s) of given motion on each side, aligned so that
the hole starts on a token boundary. More context is not better: the starter model lets a long context outvote
the prompt. Measured on walks (10 seeds each): an in-painted 3 s "jumps in place" passed its check 0/10 with the
window filled (17 tokens of walking on each side) and 10/10 with 6; "sits down" after a walk passed 65 % with 6
context tokens, 85 % with 4 and 100 % with 3, while in-painted jumps, raised arms, lead-ins, in-betweens and
out-paints passed 100 % with 3, 4 or 6. Given frames are encoded one contiguous run at a time, so the placeholder frames
never leak into the encoding of the kept tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from backend.generation.sample import MAX_FRAMES, UNIT_LENGTH

from . import tokens as T
from .sampler import Row
from .limits import MAX_TOKENS, MIN_CONTEXT_TOKENS, max_hole_frames
from .source import EditError, Source

__all__ = ["Canvas", "Window", "plan_window", "window_row", "MAX_TOKENS", "MARGIN", "max_hole_frames"]

MARGIN = 8  # frames cross-faded on each side of a hole (2 tokens)
CONTEXT_TOKENS = 3  # given tokens used on each side of a hole (at most)
assert MAX_TOKENS == MAX_FRAMES // UNIT_LENGTH


@dataclass
class Canvas:
    features: np.ndarray        # (N, 263) float32 (placeholder rows: zeros)
    joints: np.ndarray          # (N, 22, 3) float32 world joints (placeholder rows: zeros)
    real: np.ndarray            # (N,) bool: the frame holds given motion

    @classmethod
    def of(cls, *parts) -> "Canvas":
        """Parts in order: a :class:`Source` (its frames, real) or an int (that many new frames)."""
        fs, js, rs = [], [], []
        for p in parts:
            if isinstance(p, Source):
                fs.append(p.features)
                js.append(p.joints)
                rs.append(np.ones(p.frames, bool))
            else:
                n = int(p)
                fs.append(np.zeros((n, 263), np.float32))
                js.append(np.zeros((n, 22, 3), np.float32))
                rs.append(np.zeros(n, bool))
        return cls(np.concatenate(fs).astype(np.float32), np.concatenate(js).astype(np.float32), np.concatenate(rs))

    def copy(self) -> "Canvas":
        return Canvas(self.features.copy(), self.joints.copy(), self.real.copy())

    @property
    def frames(self) -> int:
        return int(len(self.real))


@dataclass
class Window:
    start: int                  # first canvas frame of the window
    tokens: int                 # window length in tokens (frames = 4 * tokens)
    hole: tuple                 # token range [h0, h1) of the hole inside the window
    runs: list = field(default_factory=list)  # token ranges of given motion, each encoded on its own

    @property
    def end(self) -> int:
        return self.start + self.tokens * UNIT_LENGTH


def _given_before(real, a) -> int:
    n = 0
    while a - n - 1 >= 0 and real[a - n - 1]:
        n += 1
    return n


def _given_after(real, b) -> int:
    n = 0
    while b + n < len(real) and real[b + n]:
        n += 1
    return n


def plan_window(canvas: Canvas, start: int, end: int, max_tokens: int = MAX_TOKENS,
                context: int = CONTEXT_TOKENS) -> Window:
    """The token window for the hole [start, end) of ``canvas`` (see the module doc). EditError when the hole
    is empty, outside the canvas, or too long for the model with its context."""
    n = canvas.frames
    if not 0 <= start < end <= n:
        raise EditError(f"the hole [{start}, {end}) is empty or outside the {n} frames")
    h = -(-(end - start) // UNIT_LENGTH)
    # the hole's tokens start where the hole does, or end with the canvas when they would pass it; they may
    # cover < 4 given frames next to the hole (those lie in the cross-fade margin and are regenerated)
    s0 = min(start, n - h * UNIT_LENGTH)
    if s0 < 0:
        raise EditError(f"the hole [{start}, {end}) does not fit the {n} frames in whole tokens")
    before = _given_before(canvas.real, start) - (start - s0)
    after = _given_after(canvas.real, end)
    spill = s0 + h * UNIT_LENGTH - end
    avail_l = min(context, max(0, before) // UNIT_LENGTH)
    avail_r = min(context, max(0, after - spill) // UNIT_LENGTH)
    need = (MIN_CONTEXT_TOKENS if before else 0) + (MIN_CONTEXT_TOKENS if after > spill else 0)
    if h + need > max_tokens:
        sides = int(before > 0) + int(after > spill)
        raise EditError(f"the hole is {end - start} frames ({(end - start) / 20:.1f} s); the model makes at most "
                        f"{max_hole_frames(sides)} frames ({max_hole_frames(sides) / 20:.1f} s) at once with "
                        f"{MIN_CONTEXT_TOKENS * UNIT_LENGTH} frames of context on each side")
    room = max_tokens - h
    c_l = min(avail_l, room // 2)
    c_r = min(avail_r, room - c_l)
    c_l = min(avail_l, room - c_r)
    w0 = s0 - c_l * UNIT_LENGTH
    k = c_l + h + c_r
    runs = []
    if c_l:
        runs.append((0, c_l))
    if c_r:
        runs.append((c_l + h, k))
    # in-painting over given frames: the whole window is given motion, encode it at once (the hole's own
    # content is the context the kept tokens were encoded with)
    if canvas.real[w0:w0 + k * UNIT_LENGTH].all():
        runs = [(0, k)]
    return Window(start=w0, tokens=k, hole=(c_l, c_l + h), runs=runs)


def window_row(pipe, canvas: Canvas, win: Window, prompt: str, blocks=None) -> Row:
    """The sampler row of one window: given tokens encoded run by run; ``blocks`` (None = all six): the 2D
    token columns generated inside the hole (a body-part edit); the 1D tokens of the hole are always generated."""
    q = pipe.models.vq.num_quantizers
    dev = pipe.device
    k = win.tokens
    ids1d = torch.zeros(k, q, dtype=torch.long, device=dev)
    ids2d = torch.zeros(k, 6, q, dtype=torch.long, device=dev)
    covered = torch.zeros(k, dtype=torch.bool, device=dev)
    for t0, t1 in win.runs:
        f = canvas.features[win.start + t0 * UNIT_LENGTH: win.start + t1 * UNIT_LENGTH]
        a, b = T.encode(pipe, f)
        ids1d[t0:t1], ids2d[t0:t1] = a[0], b[0]
        covered[t0:t1] = True
    h0, h1 = win.hole
    keep1d = torch.ones(k, dtype=torch.bool, device=dev)
    keep1d[h0:h1] = False
    keep2d = torch.ones(k, 6, dtype=torch.bool, device=dev)
    if blocks is None:
        keep2d[h0:h1] = False
    else:
        for blk in blocks:
            keep2d[h0:h1, int(blk)] = False
    if not bool(covered[keep1d].all()):
        raise AssertionError("a kept token has no given motion under it")
    return Row(prompt=prompt, ids1d=ids1d, ids2d=ids2d, keep1d=keep1d, keep2d=keep2d)
