"""Prompt timelines (bpy-free): timeline markers -> the parts of one long motion, the generator requests for it
(``generate`` with a ``timeline``) and for re-doing one part (``edit``, task ``inpaint``), and where a part and its
transitions lie in the motion's 20 fps frames and in the scene's frames.

Markers: each marker whose name is a prompt starts a part at its frame; the part lasts until the next marker,
a marker named ``end`` (any case) or, for the last part, the scene's end frame. The backend generates the parts
and re-generates 0.8 s around every join (``backend/editing/timeline.py``), so one continuous motion comes back,
exactly as long as the parts together.

Part frames: the backend makes every part a whole number of 4-frame tokens (``round(seconds * 5)``) and
re-generates ``TRANSITION_TOKENS`` tokens on each side of a join; a part owns the transition into it. So part i
spans ``[b_i - lead_i, b_(i+1) - lead_(i+1))`` of the motion (``b``: cumulative token boundaries in frames, ``lead``:
8 frames, or less for a one-token part). A copy of that rule (``part_frames``) is checked against the backend's
``generate_timeline`` by the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

#: Motion frame rate of the generator.
FPS = 20.0
#: Frames per token.
UNIT = 4
#: Tokens re-generated on each side of a join (``backend/editing/timeline.py``).
TRANSITION_TOKENS = 2
#: Protocol limits (``backend/editing/limits.py``; checked by tests/addon_rootline).
MIN_PART_SECONDS = 1.0
MAX_TIMELINE_SECONDS = 300.0
MAX_TIMELINE_PARTS = 64
#: The longest hole the generator in-paints at once with context on both sides (frames, 9 s).
MAX_HOLE_FRAMES = 180
#: Frames the backend cross-fades on each side of an in-painted hole (``backend/editing/stitch.py``).
STITCH_MARGIN = 8
#: Marker names that end the timeline.
END_NAMES = ("end",)


class TimelineError(ValueError):
    """A timeline that cannot be generated (the message says why, for the user)."""


@dataclass(frozen=True)
class Plan:
    """The parts of a timeline: ``prompts``, ``seconds`` each, the scene frame the motion starts at, and each
    part's scene frames ``[first, next)`` as the markers set them."""

    prompts: tuple
    seconds: tuple
    start_frame: int
    scene_frames: tuple

    @property
    def total_seconds(self) -> float:
        return float(sum(self.seconds))


def plan_from_markers(markers, scene_fps: float, scene_end: int) -> Plan:
    """markers: ``(name, frame)`` pairs (any order). Returns the Plan; raises TimelineError with one message."""
    if not (scene_fps > 0):
        raise TimelineError(f"The scene's frame rate must be positive, not {scene_fps}.")
    ms = sorted(((str(n).strip(), int(f)) for n, f in markers), key=lambda m: m[1])
    if not ms:
        raise TimelineError("Add timeline markers named with prompts (e.g. 'walks forward' at frame 1, "
                            "'sits down' at frame 120), and an 'end' marker or the scene end after the last.")
    parts, frames = [], []
    for i, (name, f) in enumerate(ms):
        if name.lower() in END_NAMES:
            break
        nxt = ms[i + 1][1] if i + 1 < len(ms) else int(scene_end) + 1
        if not name:
            raise TimelineError(f"The marker at frame {f} has no name: name it with a prompt (or 'end').")
        if nxt <= f:
            raise TimelineError(f"Markers '{name}' and '{ms[i + 1][0]}' are on the same frame {f}.")
        parts.append(name)
        frames.append((f, nxt))
    if not parts:
        raise TimelineError("The first marker is 'end': put prompt markers before it.")
    seconds = tuple((b - a) / float(scene_fps) for a, b in frames)
    for p, s in zip(parts, seconds):
        if s < MIN_PART_SECONDS:
            raise TimelineError(f"'{p[:40]}' lasts {s:.2f} s; every part needs at least {MIN_PART_SECONDS:g} s "
                                "(move the next marker).")
    if len(parts) > MAX_TIMELINE_PARTS:
        raise TimelineError(f"The timeline has {len(parts)} parts; at most {MAX_TIMELINE_PARTS}.")
    if sum(seconds) > MAX_TIMELINE_SECONDS:
        raise TimelineError(f"The timeline lasts {sum(seconds):.1f} s; at most {MAX_TIMELINE_SECONDS:g} s.")
    return Plan(tuple(parts), seconds, frames[0][0], tuple(frames))


def part_tokens(seconds) -> list[int]:
    return [int(round(float(s) * FPS / UNIT)) for s in seconds]


def _bounds_and_leads(seconds):
    tok = part_tokens(seconds)
    bounds = [0]
    for t in tok:
        bounds.append(bounds[-1] + t * UNIT)
    max_tok = 196 // UNIT
    # a part of more than 49 tokens is generated in equal chunks; the transition into it is cut to its first
    # chunk's tokens - 1
    lead = [0] + [min(TRANSITION_TOKENS, _first_chunk(t, max_tok) - 1) * UNIT for t in tok[1:]]
    return bounds, lead


def _first_chunk(tokens: int, max_tok: int) -> int:
    n = -(-tokens // max_tok)
    return tokens // n + (1 if tokens % n else 0)


def part_frames(seconds) -> list[tuple[int, int]]:
    """Each part's frames ``[a, b)`` in the generated motion (20 fps), the transition into it included."""
    bounds, lead = _bounds_and_leads(seconds)
    n = len(bounds) - 1
    return [(bounds[i] - lead[i], bounds[i + 1] - (lead[i + 1] if i + 1 < n else 0)) for i in range(n)]


def segment_hole(seconds, index: int) -> tuple[int, int]:
    """The frames ``[a, b)`` (20 fps) to re-generate for part ``index`` of a timeline of parts lasting ``seconds``:
    the part, the transition into it and the transition out of it, whole tokens."""
    bounds, lead = _bounds_and_leads(seconds)
    n = len(bounds) - 1
    if not 0 <= index < n:
        raise TimelineError(f"There is no part {index + 1}; the timeline has {n}.")
    a = bounds[index] - lead[index]
    b = bounds[index + 1] + (lead[index + 1] if index + 1 < n else 0)
    if b - a > MAX_HOLE_FRAMES:
        raise TimelineError(f"Part {index + 1} with its transitions is {(b - a) / FPS:.1f} s long; the generator "
                            f"re-does at most {MAX_HOLE_FRAMES / FPS:g} s at once. Split it with another marker.")
    return a, b


def untouched_frames(total: int, hole) -> tuple[tuple[int, int], tuple[int, int]]:
    """The frames of a ``total``-frame motion that an in-paint of ``hole`` leaves bit for bit: before and after the
    hole's stitch margins."""
    a, b = hole
    return (0, max(0, a - STITCH_MARGIN)), (min(total, b + STITCH_MARGIN), total)


def scene_span(frames20, start_frame: int, scene_fps: float) -> tuple[int, int]:
    """Scene frames ``[first, last]`` covering the 20 fps frames ``[a, b)`` of a motion keyed from ``start_frame``."""
    a, b = frames20
    r = float(scene_fps) / FPS
    return int(start_frame + math.floor(a * r + 1e-6)), int(start_frame + math.ceil((b - 1) * r - 1e-6))


@dataclass(frozen=True)
class TimelineRequest:
    """``generate`` with a ``timeline``: one continuous motion per sample from the parts."""

    method: ClassVar[str] = "generate"

    prompts: tuple
    seconds: tuple
    seed: int = 0
    samples: int = 1
    use_retrieval: bool = True
    ground_feet: bool = True
    out_dir: str | None = None

    def to_params(self) -> dict:
        params = {"timeline": [{"prompt": p, "seconds": float(s)} for p, s in zip(self.prompts, self.seconds)],
                  "seed": int(self.seed), "samples": int(self.samples), "use_retrieval": bool(self.use_retrieval),
                  "fit": True, "ground_feet": bool(self.ground_feet)}
        if self.out_dir:
            params["out_dir"] = self.out_dir
        return params


@dataclass(frozen=True)
class SegmentEditRequest:
    """``edit``, task ``inpaint``: re-generate ``frames`` (20 fps, ``segment_hole``) of the timeline motion file
    ``source`` with ``prompt``; everything else stays where it is (``place="world"``)."""

    method: ClassVar[str] = "edit"

    source: str
    frames: tuple
    prompt: str
    seed: int = 0
    use_retrieval: bool = True
    ground_feet: bool = True
    out_dir: str | None = None

    def to_params(self) -> dict:
        params = {"source": self.source, "task": "inpaint", "frames": [int(self.frames[0]), int(self.frames[1])],
                  "prompt": self.prompt, "place": "world", "seed": int(self.seed), "samples": 1,
                  "use_retrieval": bool(self.use_retrieval), "fit": True, "ground_feet": bool(self.ground_feet)}
        if self.out_dir:
            params["out_dir"] = self.out_dir
        return params
