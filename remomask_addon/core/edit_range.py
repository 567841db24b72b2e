"""The Edit panel's frame arithmetic, bpy-free: which frame range an edit acts on (taken from the timeline), which
part of the action is read back and sent to the generator, the hole in the generator's 20 fps frames, and which
scene frames the result may write (``EditPlan``).

Scene frames are the timeline's integer frames at the scene's frame rate; "source frames" are the 20 fps samples
of the read-back motion (``blender/read_back.py``), source frame 0 at scene frame ``read[0]``.

Never touching what the user did not ask for is decided here: ``EditPlan.clip`` is the window of scene frames an
edit may replace keys in, and the hole sent to the generator is shrunk by the generator's cross-fade margin
(``MARGIN``, 8 frames = 0.4 s at 20 fps, ``backend/editing/canvas.py``) on every side that has given motion, so
that the frames the generator changes (``changed``: the hole plus its margins) stay inside the range the user
picked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FPS = 20.0
#: The generator's cross-fade margin on each side of a hole, source frames (backend/editing/canvas.MARGIN).
MARGIN = 8
#: Frames per token (the smallest hole).
UNIT = 4
#: The longest hole next to given motion on both sides (backend/editing/limits.max_hole_frames(2)).
MAX_HOLE = 180
#: Seconds of the action read on each side of a range (the generator looks at 0.6 s of it).
CONTEXT_S = 2.0
#: The body parts an edit can change, and the SMPL bones whose keys it writes.
PART_BONES = {
    "arms": ("left_collar", "right_collar", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
             "left_wrist", "right_wrist", "left_hand", "right_hand"),
    "legs": ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_foot",
             "right_foot"),
    "upper": ("spine1", "spine2", "spine3", "neck", "head", "left_collar", "right_collar", "left_shoulder",
              "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand"),
    "lower": ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
              "left_foot", "right_foot"),
}
#: The operations of the Edit panel -> the generator's edit task.
OPS = {"REGENERATE": "inpaint", "INBETWEEN": "inpaint", "EXTEND": "prefix", "LEAD_IN": "suffix", "LOOP": "loop",
       "BODYPART": "bodypart"}


class EditRangeError(ValueError):
    """The edit cannot be made on this range or action (the message says why)."""


@dataclass(frozen=True)
class FrameRange:
    """Scene frames ``start..end`` (both included) and where they came from (shown in the panel)."""

    start: int
    end: int
    source: str

    @property
    def label(self) -> str:
        return f"{self.start}-{self.end} ({self.source})"


def range_from_timeline(*, preview=None, selected_keys=(), markers=(), typed=None) -> FrameRange:
    """The range an edit acts on: the preview range if set, else the selected keyframes' range (two different
    frames at least), else two selected markers, else the typed range. ``preview``/``typed``: (start, end) or
    None; ``selected_keys``, ``markers``: frames."""
    if preview is not None:
        return _checked(preview[0], preview[1], "preview range")
    keys = sorted({int(round(f)) for f in selected_keys})
    if len(keys) >= 2:
        return _checked(keys[0], keys[-1], "selected keys")
    marks = sorted({int(f) for f in markers})
    if len(marks) == 2:
        return _checked(marks[0], marks[1], "selected markers")
    if typed is not None:
        return _checked(typed[0], typed[1], "typed range")
    raise EditRangeError("No frame range: set a preview range, select keys or two markers, or type a range.")


def _checked(a, b, source: str) -> FrameRange:
    a, b = int(a), int(b)
    if b <= a:
        raise EditRangeError(f"The {source} {a}-{b} is empty: its end must come after its start.")
    return FrameRange(a, b, source)


def check_inside(rng: FrameRange, action_range) -> None:
    """A range outside the action's keys (or not overlapping them at all) is refused."""
    lo, hi = int(math.floor(action_range[0])), int(math.ceil(action_range[1]))
    if rng.start < lo or rng.end > hi:
        raise EditRangeError(f"The range {rng.start}-{rng.end} ({rng.source}) is outside the action's keys "
                             f"({lo}-{hi}); use Extend or Lead In to add motion beyond them.")


def snap_to_keys(rng: FrameRange, key_frames) -> FrameRange:
    """In-between: the gap between the user's keys around ``rng``: from the last key at or before its start to
    the first key at or after its end."""
    keys = sorted({int(round(f)) for f in key_frames})
    before = [k for k in keys if k <= rng.start]
    after = [k for k in keys if k >= rng.end]
    if not before or not after:
        raise EditRangeError(f"In-between needs keys before and after the range {rng.start}-{rng.end}.")
    return FrameRange(before[-1], after[0], f"keys around the {rng.source}")


@dataclass(frozen=True)
class EditPlan:
    """What one edit reads, asks for and may write.

    read: scene frames read back (inclusive); scene_fps; task and its parameters (``frames`` [a, b) in source
    frames, ``seconds``, ``part``, ``mode``); clip: the scene frames the result may write (inclusive, None for
    open), bones: the SMPL bones whose keys are written (None: all)."""

    op: str
    task: str
    read: tuple
    scene_fps: float
    clip: tuple
    frames: tuple | None = None
    seconds: float | None = None
    part: str | None = None
    mode: str | None = None
    bones: tuple | None = None

    @property
    def ratio(self) -> float:
        """Scene frames per source frame."""
        return self.scene_fps / FPS

    def source_frames(self) -> int:
        """How many 20 fps samples ``read_back`` makes of ``read``."""
        return int(math.floor((self.read[1] - self.read[0]) * FPS / self.scene_fps + 1e-6)) + 1

    def params(self, source: str, prompt: str, *, seed: int = 0, samples: int = 1, out_dir: str | None = None) -> dict:
        """The edit request's params (``backend/editing/request.py``)."""
        p = {"source": source, "task": self.task, "seed": int(seed), "samples": int(samples), "fit": True,
             "ground_feet": False}
        if self.task != "loop" or prompt.strip():
            p["prompt"] = prompt.strip()
        if self.task == "inpaint":
            p["frames"], p["place"] = list(self.frames), "world"
        elif self.task == "bodypart":
            p["frames"], p["part"] = list(self.frames), self.part
        elif self.task in ("prefix", "suffix"):
            p["seconds"] = float(self.seconds)
        elif self.task == "loop":
            p["mode"] = self.mode
        if out_dir:
            p["out_dir"] = out_dir
        return p

    def start_frame(self, result_frames: int) -> float:
        """The scene frame of the result's first frame (a lead-in starts before the read part)."""
        if self.task == "suffix":
            return self.read[0] - (result_frames - self.source_frames()) * self.ratio
        return float(self.read[0])

    def window(self, changed, result_frames: int) -> tuple[int, int] | None:
        """The scene frames (inclusive) to rewrite: the result's changed source frames ``[(a, b), ...]`` mapped to
        the scene and kept inside ``clip``; None when nothing changed there."""
        if not changed:
            return None
        start = self.start_frame(result_frames)
        a = min(int(c[0]) for c in changed)
        b = max(int(c[1]) for c in changed)
        f0 = int(math.floor(start + a * self.ratio + 1e-6))
        f1 = int(math.ceil(start + (b - 1) * self.ratio - 1e-6))
        lo = f0 if self.clip[0] is None else max(f0, self.clip[0])
        hi = f1 if self.clip[1] is None else min(f1, self.clip[1])
        return (lo, hi) if hi >= lo else None


def _context(rng_lo: int, rng_hi: int, action_range, scene_fps: float) -> tuple[int, int]:
    ctx = int(math.ceil(CONTEXT_S * scene_fps))
    lo, hi = int(math.floor(action_range[0])), int(math.ceil(action_range[1]))
    return max(lo, rng_lo - ctx), min(hi, rng_hi + ctx)


def _hole(read, clip_lo: int, clip_hi: int, scene_fps: float, n: int) -> tuple[int, int]:
    """Source frames [a, b) of the hole whose changed frames (with margins) stay in scene frames clip_lo..clip_hi."""
    r = FPS / scene_fps
    s = int(math.ceil((clip_lo - read[0]) * r - 1e-6))
    e = int(math.floor((clip_hi - read[0]) * r + 1e-6)) + 1
    a = s + (MARGIN if s > 0 else 0)
    b = e - (MARGIN if e < n else 0)
    if b - a < UNIT:
        need = (2 * MARGIN + UNIT) / FPS
        raise EditRangeError(f"The range {clip_lo}-{clip_hi} is too short to regenerate: it needs at least "
                             f"{need:.1f} s ({int(math.ceil(need * scene_fps))} frames) inside the action.")
    if b - a > MAX_HOLE:
        raise EditRangeError(f"The range {clip_lo}-{clip_hi} is {(b - a + 2 * MARGIN) / FPS:.1f} s; the generator "
                             f"makes at most {MAX_HOLE / FPS:.0f} s at once. Pick a shorter range.")
    return a, b


def plan_edit(op: str, rng: FrameRange | None, action_range, scene_fps: float, *, key_frames=(), seconds=None,
              part: str | None = None, mode: str = "return") -> EditPlan:
    """The plan of one Edit-panel operation on an action whose keys span ``action_range`` (scene frames).

    REGENERATE, BODYPART: ``rng`` (inside the action) is rewritten, nothing outside it; INBETWEEN: the gap
    between the user's keys around ``rng`` (``key_frames``) is rewritten, the keys themselves are not; EXTEND /
    LEAD_IN: ``seconds`` of new motion after the end / before the start (the last / first 0.4 s of the action
    blend into it); LOOP: the whole action, its seam regenerated (``mode`` return | travel)."""
    if op not in OPS:
        raise EditRangeError(f"Unknown edit {op!r}.")
    if not scene_fps > 0:
        raise EditRangeError("The scene's frame rate must be positive.")
    task = OPS[op]
    lo, hi = int(math.floor(action_range[0])), int(math.ceil(action_range[1]))
    if hi <= lo:
        raise EditRangeError("The action has a single key: there is no motion to edit.")
    if op in ("REGENERATE", "INBETWEEN", "BODYPART"):
        if rng is None:
            raise EditRangeError("No frame range: set a preview range, select keys or two markers, or type one.")
        if op == "INBETWEEN":
            rng = snap_to_keys(rng, key_frames)
        check_inside(rng, action_range)
        read = _context(rng.start, rng.end, action_range, scene_fps)
        plan = EditPlan(op, task, read, float(scene_fps), (rng.start, rng.end))
        clip = (rng.start + 1, rng.end - 1) if op == "INBETWEEN" else (rng.start, rng.end)
        a, b = _hole(read, clip[0], clip[1], scene_fps, plan.source_frames())
        if op == "BODYPART":
            if part not in PART_BONES:
                raise EditRangeError(f"Unknown body part {part!r}; use one of {', '.join(PART_BONES)}.")
            return EditPlan(op, task, read, float(scene_fps), clip, frames=(a, b), part=part, bones=PART_BONES[part])
        return EditPlan(op, task, read, float(scene_fps), clip, frames=(a, b))
    if op in ("EXTEND", "LEAD_IN"):
        if seconds is None or not (UNIT / FPS <= float(seconds) <= 9.4):
            raise EditRangeError("Give the new motion's length: 0.2 to 9.4 seconds.")
        ctx = int(math.ceil(CONTEXT_S * scene_fps))
        if op == "EXTEND":
            return EditPlan(op, task, (max(lo, hi - ctx), hi), float(scene_fps), (max(lo, hi - ctx), None),
                            seconds=float(seconds))
        return EditPlan(op, task, (lo, min(hi, lo + ctx)), float(scene_fps), (None, min(hi, lo + ctx)),
                        seconds=float(seconds))
    if mode not in ("return", "travel"):
        raise EditRangeError(f"Unknown loop mode {mode!r}; use return or travel.")
    return EditPlan(op, task, (lo, hi), float(scene_fps), (lo, hi), mode=mode)
