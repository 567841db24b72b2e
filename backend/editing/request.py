"""The protocol's ``edit`` request and the ``timeline`` of ``generate``: validation (no torch) and running.

``edit`` params (unknown keys are refused):

- ``source`` (required): path of a motion ``.npz`` (or a joints ``.npy``); ``task`` (required): one of
  inpaint, inbetween, prefix, suffix, outpaint, loop, bodypart;
- ``frames`` ``[start, end)``: source frames at 20 fps (inpaint: required; bodypart: default the whole clip);
- ``part``: arms, legs, upper or lower (bodypart); ``prompt`` (every task but loop, where it defaults to the
  source's own prompt); ``to``: the second clip (inbetween); ``seconds``: new motion (prefix, suffix; outpaint:
  on each side, or ``[before, after]``; inbetween: the gap, default the length estimator's; loop: the seam,
  default about a quarter of the clip); ``mode``: return or travel (loop); ``place``: follow or world
  (inbetween, inpaint);
- ``seed``, ``samples``, ``cond_scale``, ``time_steps``, ``temperature``, ``topk``, ``use_retrieval``, ``fit``,
  ``out_dir``: as in generate.

Every check that does not need the model happens here, so bad input gets one ``invalid_params`` reply before
anything is queued: a missing or unreadable source, another skeleton, frames outside the clip, an empty hole, a
hole longer than the model makes at once, an unknown part, task or mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backend.serving import protocol as P

from .limits import (FPS, LOOP_MODES, PART_NAMES, PLACES,
                     TASKS, UNIT_LENGTH, max_hole_frames)
from .source import EditError, Source, load_source

__all__ = ["EditParams", "validate_edit", "run_edit", "EDIT_DEFAULTS"]

EDIT_DEFAULTS = {
    "frames": None, "part": None, "prompt": None, "to": None, "seconds": None, "mode": "return", "place": None,
    "seed": 0, "samples": 1, "cond_scale": None, "time_steps": None, "temperature": None, "topk": None,
    "use_retrieval": True, "fit": True, "out_dir": None, "ground_feet": True,
}
EDIT_KEYS = frozenset(EDIT_DEFAULTS) | {"source", "task"}
_NEEDS = {  # task -> (params it needs, params it takes)
    "inpaint": ({"frames", "prompt"}, {"place"}),
    "bodypart": ({"part", "prompt"}, {"frames"}),
    "inbetween": ({"to", "prompt"}, {"seconds", "place"}),
    "prefix": ({"seconds", "prompt"}, set()),
    "suffix": ({"seconds", "prompt"}, set()),
    "outpaint": ({"seconds", "prompt"}, set()),
    "loop": (set(), {"prompt", "seconds", "mode"}),
}
_SAMPLING = ("cond_scale", "time_steps", "temperature", "topk")


@dataclass
class EditParams:
    source: str
    task: str
    frames: tuple | None
    part: str | None
    prompt: str | None
    to: str | None
    seconds: Any
    mode: str
    place: str | None
    seed: int
    samples: int
    cond_scale: float | None
    time_steps: int | None
    temperature: float | None
    topk: float | None
    use_retrieval: bool
    fit: bool
    out_dir: str | None
    ground_feet: bool = True
    src: Source | None = field(default=None, repr=False, compare=False)
    to_src: Source | None = field(default=None, repr=False, compare=False)

    @property
    def prompts(self) -> list[str]:
        return [self.prompt or (self.src.prompt if self.src else "") or "edit"]

    def produce(self, generator, progress, cancelled) -> list:
        """Run through the generator (``run_generate`` calls this instead of ``generator.generate``)."""
        edit = getattr(generator, "edit", None)
        if not callable(edit):
            raise RuntimeError("this generator cannot edit motions")
        return edit(self, progress, cancelled)


def _bad(msg: str):
    raise P.ProtocolError(P.INVALID_PARAMS, msg)


def _new_frames(seconds: float, what: str, sides: int) -> int:
    n = int(round(seconds * FPS / UNIT_LENGTH)) * UNIT_LENGTH
    top = max_hole_frames(sides)
    if n < UNIT_LENGTH:
        _bad(f"{what} must be at least {UNIT_LENGTH / FPS:g} s")
    if n > top:
        _bad(f"{what} is {seconds:g} s; the model makes at most {top / FPS:g} s ({top} frames) at once here")
    return n


def _path(value, key) -> str:
    if not isinstance(value, str) or not value.strip() or "\x00" in value or len(value) > P.MAX_OUT_DIR_CHARS:
        P.bad_field(key, "must be the path of a motion file")
    return value


def validate_edit(params: dict) -> EditParams:
    """edit params -> EditParams with the source loaded; ProtocolError(invalid_params) with one clear message."""
    if not isinstance(params, dict):
        _bad("'params' must be an object")
    unknown = set(params) - EDIT_KEYS
    if unknown:
        _bad(f"unknown edit params: {P._names(unknown)}")
    for k in ("source", "task"):
        if k not in params:
            raise P.ProtocolError(P.INVALID_PARAMS, f"edit needs '{k}'", field=k, problem="edit needs {name}")
    task = params["task"]
    if task not in TASKS:
        _bad(f"unknown task {str(task)[:40]!r}; use one of {', '.join(TASKS)}")
    needs, takes = _NEEDS[task]
    for k in sorted(needs):
        if params.get(k) is None:
            raise P.ProtocolError(P.INVALID_PARAMS, f"task {task!r} needs '{k}'", field=k,
                                  problem=f"task {task!r} needs {{name}}")
    extra = {k for k in ("frames", "part", "to", "seconds", "mode", "place")
             if params.get(k) is not None and k not in needs | takes}
    if extra:
        _bad(f"task {task!r} does not take {P._names(extra)}")
    # sampling, seed, samples, fit, out_dir: the generate rules
    shared = ("seed", "samples", "use_retrieval", "fit", "out_dir", "ground_feet", *_SAMPLING)
    common = {k: params[k] for k in shared if k in params}
    g = P.validate_generate({"prompt": "x", **common})
    p = {**EDIT_DEFAULTS, **{k: v for k, v in params.items() if k in EDIT_DEFAULTS}}
    for k in shared:
        p[k] = getattr(g, k)
    try:
        src = load_source(_path(params["source"], "source"))
    except EditError as exc:
        _bad(str(exc))
    n = src.frames
    if p["prompt"] is not None:
        p["prompt"] = P.validate_prompt(p["prompt"])
    if p["part"] is not None and p["part"] not in PART_NAMES:
        _bad(f"unknown body part {str(p['part'])[:40]!r}; use one of {', '.join(PART_NAMES)}")
    if p["mode"] not in LOOP_MODES:
        _bad(f"unknown loop mode {str(p['mode'])[:40]!r}; use one of {', '.join(LOOP_MODES)}")
    if p["place"] is not None and p["place"] not in PLACES:
        _bad(f"unknown placement {str(p['place'])[:40]!r}; use one of {', '.join(PLACES)}")
    if task == "bodypart" and p["frames"] is None:
        p["frames"] = [0, n]
    if p["frames"] is not None:
        f = p["frames"]
        if not (isinstance(f, (list, tuple)) and len(f) == 2 and all(
                isinstance(x, int) and not isinstance(x, bool) for x in f)):
            P.bad_field("frames", "must be [start, end): two whole frame numbers at 20 fps")
        a, b = int(f[0]), int(f[1])
        if a >= b:
            _bad(f"the frame range [{a}, {b}) is empty")
        if a < 0 or b > n:
            _bad(f"the frame range [{a}, {b}) is outside the source's {n} frames (0..{n})")
        top = max_hole_frames(int(a > 0) + int(b < n))
        if b - a > top:
            _bad(f"the frame range [{a}, {b}) is {b - a} frames ({(b - a) / FPS:g} s); the model makes at most "
                 f"{top} frames ({top / FPS:g} s) at once")
        p["frames"] = (a, b)
    secs = p["seconds"]
    if secs is not None:
        if task == "outpaint" and isinstance(secs, (list, tuple)):
            if len(secs) != 2:
                P.bad_field("seconds", "for outpaint is one number or [before, after]")
            secs = [P.validate_seconds(x) for x in secs]
            for x, what in zip(secs, ("the motion before", "the motion after")):
                _new_frames(x, what, 1)
        else:
            secs = P.validate_seconds(secs)
            what = {"prefix": "the continuation", "suffix": "the lead-in", "outpaint": "each side",
                    "inbetween": "the gap", "loop": "the loop seam"}[task]
            _new_frames(secs, what, 2 if task in ("inbetween", "loop") else 1)
        p["seconds"] = secs
    to_src = None
    if task == "inbetween":
        try:
            to_src = load_source(_path(p["to"], "to"), what="second clip")
        except EditError as exc:
            _bad(str(exc))
    if task == "loop":
        seam = None if secs is None else int(round(secs * FPS / UNIT_LENGTH)) * UNIT_LENGTH
        if n < (seam or 12) + 18:
            _bad(f"the source is too short ({n} frames) to loop")
    out = EditParams(source=str(src.path), task=task, src=src, to_src=to_src,
                     **{k: p[k] for k in EDIT_DEFAULTS})
    if to_src is not None:
        out.to = str(to_src.path)
    return out


def run_edit(pipe, params: EditParams, progress=None, cancelled=None) -> list:
    """Run a validated edit on a loaded pipeline -> EditedSample per sample."""
    from . import tasks

    src = params.src if params.src is not None else load_source(params.source)
    kw = dict(seed=params.seed, samples=params.samples, use_retrieval=params.use_retrieval, progress=progress,
              cancelled=cancelled, **{k: getattr(params, k) for k in _SAMPLING})
    def frames(seconds):
        return int(round(seconds * FPS))

    t, secs = params.task, params.seconds
    if t == "inpaint":
        return tasks.inpaint(pipe, src, *params.frames, params.prompt, place=params.place or "world", **kw)
    if t == "bodypart":
        return tasks.bodypart(pipe, src, *params.frames, params.part, params.prompt, **kw)
    if t == "prefix":
        return tasks.prefix(pipe, src, frames(secs), params.prompt, **kw)
    if t == "suffix":
        return tasks.suffix(pipe, src, frames(secs), params.prompt, **kw)
    if t == "outpaint":
        before, after = secs if isinstance(secs, (list, tuple)) else (secs, secs)
        return tasks.outpaint(pipe, src, frames(before), frames(after), params.prompt, **kw)
    if t == "inbetween":
        to = params.to_src if params.to_src is not None else load_source(params.to, what="second clip")
        return tasks.inbetween(pipe, src, to, params.prompt, None if secs is None else frames(secs),
                               place=params.place or "follow", **kw)
    if t == "loop":
        return tasks.loop(pipe, src, params.prompt, mode=params.mode, frames=None if secs is None else frames(secs),
                          **kw)
    raise ValueError(f"unknown task {t!r}")
