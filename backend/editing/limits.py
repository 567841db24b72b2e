"""Names and limits of editing that the protocol checks (pure Python: no torch, no numpy)."""

from __future__ import annotations

UNIT_LENGTH = 4               # frames per token (backend.generation.pipeline.UNIT_LENGTH)
MAX_TOKENS = 49               # 196 frames: the longest motion the model makes at once
MIN_CONTEXT_TOKENS = 2        # given tokens wanted on a side of a hole that has given motion next to it
FPS = 20

TASKS = ("inpaint", "inbetween", "prefix", "suffix", "outpaint", "loop", "bodypart")
PART_NAMES = ("arms", "legs", "upper", "lower")
LOOP_MODES = ("return", "travel")
PLACES = ("follow", "world")


def max_hole_frames(sides: int = 2) -> int:
    """The longest hole the model can make at once with given motion on ``sides`` sides (0, 1 or 2)."""
    return (MAX_TOKENS - sides * MIN_CONTEXT_TOKENS) * UNIT_LENGTH

# generate's timeline
MAX_TIMELINE_PARTS = 64
MAX_TIMELINE_SECONDS = 300.0
MIN_PART_SECONDS = 1.0        # a part must be longer than the transitions on its two sides
