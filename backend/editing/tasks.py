"""Editing tasks as masks over one sampler.

Every task builds a :class:`~backend.editing.canvas.Canvas` (the source's frames, plus new frames where the
task adds motion) and a list of holes, and :func:`fill` generates each hole in its window of tokens (all samples
of the request in one batch), decodes it and stitches it in (``backend.editing.stitch``):

==========  ==============================================================================================
inpaint     regenerate frames [start, end) of a clip with a prompt
inbetween   clip A, a gap of ``frames`` new frames (given, or from the length estimator), clip B; B follows
            the gap (``place="follow"``, it is moved rigidly) or stays where it is (``place="world"``: the
            gap walks to it; B's joints stay exact)
prefix      continue after a clip: ``frames`` new frames after its end
suffix      lead into a clip: ``frames`` new frames before its start
outpaint    both: new frames before and after
loop        the last frames are regenerated so that the clip ends in its first pose (the last frame is the
            first frame of the next cycle, Blender's convention for cyclic actions); ``mode="return"``: it also
            ends where it started; ``mode="travel"``: it ends facing its start direction, moved on by
            ``loop_offset`` per cycle
bodypart    regenerate the tokens that drive a body part (arms, legs, upper, lower) over [start, end) and
            composite per joint (``backend.editing.bodypart``)
==========  ==============================================================================================

Frame numbers are at 20 fps. Results are :class:`EditedSample` (a ``GeneratedSample`` with the edit recorded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from backend.generation.sample import GeneratedSample, MAX_FRAMES, UNIT_LENGTH

from . import tokens as T
from .canvas import MARGIN, Canvas, plan_window, window_row
from .limits import LOOP_MODES, PLACES, TASKS, max_hole_frames  # noqa: F401
from .sampler import sample_rows
from .source import EditError, Source
from .stitch import apply_rigid, stitch

__all__ = ["EditedSample", "Hole", "fill", "inpaint", "inbetween", "prefix", "suffix", "outpaint", "loop",
           "bodypart", "while_", "split_while", "generate_prompts", "TASKS", "LOOP_MODES", "PLACES",
           "estimate_frames"]

DEFAULT_PROMPT = "a person moves"


@dataclass
class EditedSample(GeneratedSample):
    task: str = ""
    source: str | None = None
    edited: list = field(default_factory=list)    # [(start, end)] frames of the result that were generated
    changed: list = field(default_factory=list)   # [(lo, hi)] frames that differ from the source (with margins)
    part: str | None = None
    file_fields: dict = field(default_factory=dict)  # more fields for the motion file (loop_offset, ...)

    def result_fields(self) -> dict:
        """What a protocol result adds to a motion for an edit."""
        d = {"task": self.task, "source": self.source, "edited": [list(e) for e in self.edited],
             "changed": [list(c) for c in self.changed]}
        if self.part:
            d["part"] = self.part
        d.update({k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.file_fields.items()})
        return d

    def motion_fields(self) -> dict:
        """What the motion file records about the edit."""
        return {"edit_task": self.task, "edit_source": self.source or "",
                "edit_frames": np.asarray(self.edited, np.int64).reshape(-1, 2),
                "edit_changed": np.asarray(self.changed, np.int64).reshape(-1, 2), "edit_part": self.part or "",
                **self.file_fields}


@dataclass
class Hole:
    start: int
    end: int
    prompt: str
    right: str = "fixed"
    part: str | None = None


def _scaled(progress, lo, hi):
    if progress is None:
        return None
    return lambda stage, f: progress(stage, lo + (hi - lo) * float(f))


def fill(pipe, canvas: Canvas | list, holes: list[Hole], seed: int = 0, samples: int = 1, margin: int = MARGIN,
         use_retrieval: bool = True, progress: Callable | None = None, cancelled: Callable | None = None,
         **sampling):
    """Generate the holes one after another (each in its own token window, all samples in one batch).
    ``canvas``: one canvas for every sample, or a list of one per sample (same frames and given mask).
    Returns per sample (canvas, changed ranges, retrieved captions, retrieved ids, rigid moves)."""
    if not 1 <= samples:
        raise ValueError("samples must be >= 1")
    if isinstance(canvas, list):
        if len(canvas) != samples or any(not np.array_equal(c.real, canvas[0].real) for c in canvas):
            raise ValueError("one canvas per sample, all with the same frames")
        outs = [c.copy() for c in canvas]
    else:
        outs = [canvas.copy() for _ in range(samples)]
    n = outs[0].frames
    pad = -n % UNIT_LENGTH  # placeholder frames so that a hole at the end fills whole tokens (cut off again)
    if pad:
        outs = [Canvas(np.concatenate([c.features, np.zeros((pad, 263), np.float32)]),
                       np.concatenate([c.joints, np.repeat(c.joints[-1:], pad, 0)]),
                       np.concatenate([c.real, np.zeros(pad, bool)])) for c in outs]
    changed = [[] for _ in range(samples)]
    moves = [[] for _ in range(samples)]
    retrieved, retrieved_ids = [[] for _ in range(samples)], [[] for _ in range(samples)]
    for k, hole in enumerate(holes):
        win = plan_window(outs[0], hole.start, hole.end)
        blocks = None
        if hole.part is not None:
            from .bodypart import part_blocks
            blocks = part_blocks(pipe, hole.part)
        rows = [window_row(pipe, c, win, hole.prompt, blocks) for c in outs]
        prog = _scaled(progress, k / len(holes) * 0.9, (k + 1) / len(holes) * 0.9)
        toks = sample_rows(pipe, rows, seed=seed + 7919 * k, use_retrieval=use_retrieval, progress=prog,
                           cancelled=cancelled, **sampling)
        if prog is not None:
            prog("decode", 0.9)
        gen = T.decode(pipe, toks.ids1d, toks.ids2d, toks.lens)
        for i, c in enumerate(outs):
            st = stitch(c, gen[i], win.start, hole.start, hole.end, margin, hole.right)
            if hole.part is not None:
                from .bodypart import composite
                st = composite(c, st, hole.part)
            c.features, c.joints = st.features, st.joints
            c.real[hole.start:hole.end] = True
            changed[i].append(st.changed)
            moves[i].append((st.moved_from, st.shift))
            retrieved[i] += [x for x in toks.retrieved[i] if x not in retrieved[i]]
            retrieved_ids[i] += [x for x in toks.retrieved_ids[i] if x not in retrieved_ids[i]]
    if progress is not None:
        progress("joints", 0.95)
    if pad:
        outs = [Canvas(c.features[:n], c.joints[:n], c.real[:n]) for c in outs]
        changed = [[(lo, min(hi, n)) for lo, hi in ch] for ch in changed]
    return outs, changed, retrieved, retrieved_ids, moves


def _sample(task, prompt, i, seed, features, joints, src: Source, edited, changed, retrieved, ids, part=None,
            **file_fields) -> EditedSample:
    f = np.ascontiguousarray(features, dtype=np.float32)
    j = np.ascontiguousarray(joints, dtype=np.float32)
    return EditedSample(prompt=prompt, sample_index=i, seed=int(seed), joints=j, features=f, length=len(j),
                        retrieved=list(retrieved), retrieved_ids=list(ids), task=task, source=src.path,
                        edited=[tuple(int(x) for x in e) for e in edited],
                        changed=[tuple(int(x) for x in c) for c in changed], part=part, file_fields=file_fields)


def _frames(n: int, what: str, sides: int) -> int:
    """A number of new frames -> a whole number of tokens (rounded to the nearest 4), within the model's reach."""
    n4 = int(round(n / UNIT_LENGTH)) * UNIT_LENGTH
    if n4 < UNIT_LENGTH:
        raise EditError(f"{what} must be at least {UNIT_LENGTH} frames ({UNIT_LENGTH / 20:.1f} s)")
    top = max_hole_frames(sides)
    if n4 > top:
        raise EditError(f"{what} is {n4} frames ({n4 / 20:.1f} s); the model makes at most {top} frames "
                        f"({top / 20:.1f} s) at once next to given motion")
    return n4


def _range(src: Source, start: int, end: int) -> tuple[int, int]:
    if not (isinstance(start, (int, np.integer)) and isinstance(end, (int, np.integer))):
        raise EditError("frames must be whole numbers")
    n = src.frames
    if not 0 <= start < end <= n:
        if start >= end:
            raise EditError(f"the frame range [{start}, {end}) is empty")
        raise EditError(f"the frame range [{start}, {end}) is outside the source's {n} frames (0..{n})")
    sides = int(start > 0) + int(end < n)
    top = max_hole_frames(sides)
    if end - start > top:
        raise EditError(f"the frame range [{start}, {end}) is {end - start} frames ({(end - start) / 20:.1f} s); "
                        f"the model makes at most {top} frames ({top / 20:.1f} s) at once")
    return int(start), int(end)


def _common(kw):
    return {k: kw[k] for k in ("seed", "samples", "use_retrieval", "progress", "cancelled", "cond_scale",
                               "time_steps", "temperature", "topk", "res_cond_scale", "margin") if k in kw}


def inpaint(pipe, src: Source, start: int, end: int, prompt: str, place: str = "world", **kw) -> list[EditedSample]:
    """Regenerate frames [start, end) of ``src`` following ``prompt``. ``place="world"``: the frames after the
    hole stay where they are (the hole's root drift is spread over it, so a turn in the hole is turned back by
    its end); ``"follow"``: they keep their features but move rigidly to continue from where the hole ends."""
    if place not in PLACES:
        raise EditError(f"unknown placement {place!r}; use one of {', '.join(PLACES)}")
    a, b = _range(src, start, end)
    right = "fixed" if place == "world" else "follow"
    outs, changed, ret, ids, _ = fill(pipe, Canvas.of(src), [Hole(a, b, prompt, right=right)], **_common(kw))
    n = src.frames
    return [_sample("inpaint", prompt, i, kw.get("seed", 0), c.features, c.joints, src, [(a, b)],
                    changed[i] if place == "world" else [(changed[i][0][0], n)], ret[i], ids[i])
            for i, c in enumerate(outs)]


def bodypart(pipe, src: Source, start: int, end: int, part: str, prompt: str, **kw) -> list[EditedSample]:
    """Regenerate the tokens that drive ``part`` over frames [start, end); every other joint keeps the source."""
    from .bodypart import check_part

    part = check_part(part)
    a, b = _range(src, start, end)
    outs, changed, ret, ids, _ = fill(pipe, Canvas.of(src), [Hole(a, b, prompt, part=part)], **_common(kw))
    return [_sample("bodypart", prompt, i, kw.get("seed", 0), c.features, c.joints, src, [(a, b)], changed[i],
                    ret[i], ids[i], part=part) for i, c in enumerate(outs)]


def prefix(pipe, src: Source, frames: int, prompt: str, **kw) -> list[EditedSample]:
    """Continue after ``src``: ``frames`` new frames (rounded to whole tokens) after its last frame."""
    n = _frames(frames, "the continuation", 1)
    t = src.frames
    outs, changed, ret, ids, _ = fill(pipe, Canvas.of(src, n), [Hole(t, t + n, prompt)], **_common(kw))
    return [_sample("prefix", prompt, i, kw.get("seed", 0), c.features, c.joints, src, [(t, t + n)], changed[i],
                    ret[i], ids[i]) for i, c in enumerate(outs)]


def suffix(pipe, src: Source, frames: int, prompt: str, **kw) -> list[EditedSample]:
    """Lead into ``src``: ``frames`` new frames before its first frame."""
    n = _frames(frames, "the lead-in", 1)
    outs, changed, ret, ids, _ = fill(pipe, Canvas.of(n, src), [Hole(0, n, prompt)], **_common(kw))
    return [_sample("suffix", prompt, i, kw.get("seed", 0), c.features, c.joints, src, [(0, n)], changed[i],
                    ret[i], ids[i]) for i, c in enumerate(outs)]


def outpaint(pipe, src: Source, frames_before: int, frames_after: int, prompt: str, **kw) -> list[EditedSample]:
    """New motion before and after ``src`` (each side generated next to it)."""
    n1 = _frames(frames_before, "the motion before", 1)
    n2 = _frames(frames_after, "the motion after", 1)
    t = src.frames
    holes = [Hole(0, n1, prompt), Hole(n1 + t, n1 + t + n2, prompt)]
    outs, changed, ret, ids, _ = fill(pipe, Canvas.of(n1, src, n2), holes, **_common(kw))
    return [_sample("outpaint", prompt, i, kw.get("seed", 0), c.features, c.joints, src,
                    [(0, n1), (n1 + t, n1 + t + n2)], changed[i], ret[i], ids[i]) for i, c in enumerate(outs)]


def estimate_frames(pipe, prompt: str, seed: int = 0, lo: int = 8, hi: int | None = None) -> int:
    """The length estimator's length for ``prompt`` (frames, whole tokens), clamped to [lo, hi]."""
    import torch

    hi = max_hole_frames(2) if hi is None else hi
    est = pipe.models.length_estimator
    if est is None:
        return max(lo, min(hi, 40))
    gen = torch.Generator(device=pipe.device)
    gen.manual_seed(int(seed))
    with torch.inference_mode():
        emb = pipe._encode(pipe.length_text_encoder, [prompt])
        tok = int(est.sample_tokens(emb, gen).clamp(1, MAX_FRAMES // UNIT_LENGTH)[0])
    return max(lo, min(hi, tok * UNIT_LENGTH))


def inbetween(pipe, src: Source, to: Source, prompt: str, frames: int | None = None, place: str = "follow",
              **kw) -> list[EditedSample]:
    """``src``, a generated gap of ``frames`` (None: the length estimator's, for ``place="world"`` at least
    the time to cover the distance at 1.5 m/s), then ``to``."""
    if place not in PLACES:
        raise EditError(f"unknown placement {place!r}; use one of {', '.join(PLACES)}")
    if frames is None:
        frames = estimate_frames(pipe, prompt, kw.get("seed", 0))
        if place == "world":
            dist = float(np.linalg.norm(to.joints[0, 0, [0, 2]] - src.joints[-1, 0, [0, 2]]))
            frames = max(frames, int(np.ceil(dist / 1.5 * 20)))
            frames = min(frames, max_hole_frames(2))
    n = _frames(frames, "the gap", 2)
    t = src.frames
    right = "fixed" if place == "world" else "follow"
    outs, changed, ret, ids, _ = fill(pipe, Canvas.of(src, n, to), [Hole(t, t + n, prompt, right=right)],
                                      **_common(kw))
    end = t + n + to.frames
    return [_sample("inbetween", prompt, i, kw.get("seed", 0), c.features, c.joints, src, [(t, t + n)],
                    changed[i] if place == "world" else [(changed[i][0][0], end)], ret[i], ids[i],
                    inbetween_to=to.path or "", inbetween_place=place)
            for i, c in enumerate(outs)]


def loop(pipe, src: Source, prompt: str | None = None, mode: str = "return", frames: int | None = None,
         **kw) -> list[EditedSample]:
    """Make ``src`` cyclic: its last ``frames`` frames (default about a quarter of the clip, 12-40 frames)
    before the final one are regenerated so that the final frame is the first frame of the next cycle."""
    if mode not in LOOP_MODES:
        raise EditError(f"unknown loop mode {mode!r}; use one of {', '.join(LOOP_MODES)}")
    prompt = prompt or src.prompt or DEFAULT_PROMPT
    t = src.frames
    if frames is None:
        frames = min(40, max(12, t // 4))
    h = _frames(frames, "the loop seam", 2)
    if h + 2 * MARGIN + 2 > t:
        raise EditError(f"the source is too short ({t} frames) for a {h}-frame loop seam")
    body = Source(src.joints[:t - 1], src.features[:t - 1], src.path, src.prompt)
    canvas = Canvas.of(body, src)  # ... the clip without its last frame, then the next cycle
    p0 = t - 1
    right = "fixed" if mode == "return" else "yaw"
    outs, changed, ret, ids, moves = fill(pipe, canvas, [Hole(p0 - h, p0, prompt, right=right)], **_common(kw))
    res = []
    for i, c in enumerate(outs):
        lo, hi = changed[i][0]
        m_r = hi - p0  # the next cycle's first frames were cross-faded: the clip's own first frames follow
        f, j = src.features.copy(), src.joints.copy()
        f[lo:p0 + 1], j[lo:p0 + 1] = c.features[lo:p0 + 1], c.joints[lo:p0 + 1]
        head = c.joints[p0:hi]
        shift = moves[i][0][1]
        if shift is not None:  # travel: the next cycle was moved on; bring its first frames back
            head = apply_rigid(np.linalg.inv(shift), head)
        f[:m_r], j[:m_r] = c.features[p0:hi], head
        ch = [(0, m_r), (lo, t)] if m_r else [(lo, t)]
        res.append(_sample("loop", prompt, i, kw.get("seed", 0), f, j, src, [(p0 - h, p0)], ch, ret[i], ids[i],
                           loop_mode=mode, loop_offset=np.asarray(j[p0, 0] - j[0, 0], np.float32)))
    return res


# ---- "X while Y" -------------------------------------------------------------------------------------------
_WHILE = re.compile(r"\s*,?\s+while\s+", re.IGNORECASE)
_ES = ("s", "sh", "ch", "x", "z")


def _third_person(gerund: str) -> str:
    """'waving' -> 'waves', 'clapping' -> 'claps', 'raising' -> 'raises', 'punching' -> 'punches'."""
    stem = gerund[:-3]
    if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "aeiouls":
        stem = stem[:-1]
    elif stem[-1:] in ("v", "c", "z") or (len(stem) > 2 and stem[-1] == "s" and stem[-2] in "aeiou"):
        stem += "e"
    if stem.endswith(_ES):
        return stem + "es"
    if len(stem) > 1 and stem[-1] == "y" and stem[-2] not in "aeiou":
        return stem[:-1] + "ies"
    return stem + "s"


# "X and Y at the same time" / "X and Y simultaneously" and "Y as she X" say "X while Y" too; there the arm action
# (the part that becomes the arms edit) is whichever part starts with one of these verbs
_TOGETHER_END = re.compile(r"\s*,?\s*(?:(?:all\s+)?at\s+the\s+same\s+time|simultaneously)$", re.IGNORECASE)
_AS = re.compile(r"\s*,?\s+as\s+(?:he|she|they)\s+", re.IGNORECASE)
_ARM_VERBS = frozenset("wave clap punch jab raise lift throw point cheer applaud box salute beckon".split())


def _arm_verb(word: str) -> bool:
    """'waves', 'waving', 'wave', 'clapping', 'punches', 'raising' ... (an arm action)."""
    from backend.generation.prompt_parts import _base

    base = _base(word)
    return base in _ARM_VERBS or base + "e" in _ARM_VERBS


def _together(text: str) -> tuple[str, str] | None:
    """(whole-body part, arm part) of "X and Y at the same time", "X and Y simultaneously" or "Y as she X"; None
    when the prompt is none of these, or neither part (or both) is an arm action."""
    from backend.generation.prompt_parts import _AND, _subject_of

    if _TOGETHER_END.search(text):
        parts = _AND.split(_TOGETHER_END.sub("", text), maxsplit=1)
    else:
        parts = _AS.split(text, maxsplit=1)
        if len(parts) == 2:
            parts = parts[::-1]                       # "Y as she X": X is the base
    if len(parts) != 2 or not all(parts):
        return None
    subjects = [_subject_of(p) for p in parts]
    bodies = [p[len(s) + 1:] if s else p for p, s in zip(parts, subjects)]
    arms = [_arm_verb(b.split(" ", 1)[0]) for b in bodies]
    if arms[0] == arms[1]:
        return None
    x, y = (0, 1) if arms[1] else (1, 0)
    subject = subjects[0] or subjects[1]
    # split_while gives the arm part the base part's subject
    return (parts[x] if subjects[x] or not subject else f"{subject} {parts[x]}"), bodies[y]


def split_while(prompt: str) -> tuple[str, str] | None:
    """``"a person walks forward while waving with the right hand"`` -> ``("a person walks forward",
    "a person waves with the right hand")``; also "X and Y at the same time" / "... simultaneously" and "Y as she
    X" where one part is an arm action (``"walking and waving at the same time"`` -> ``("a person walks",
    "a person waves")``); None when the prompt has none of these between two actions."""
    from backend.generation.prompt_parts import _subject_of

    text = " ".join(str(prompt).split()).strip(" .!")
    parts = _WHILE.split(text, maxsplit=1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        pair = _together(text)
        if pair is None:
            return None
        parts = list(pair)
    x, y = parts
    subject = _subject_of(x)
    if subject is None:
        words = x.split(" ", 1)
        if words[0].lower().endswith("ing") and len(words[0]) > 4:
            words[0] = _third_person(words[0].lower())
        x, subject = f"a person {' '.join(words)}", "a person"
    words = y.split(" ", 1)
    if words[0].lower() in ("he", "she", "they") and len(words) == 2:
        y = words[1]
        words = y.split(" ", 1)
    if _subject_of(y):
        return x, y
    first = words[0].lower()
    if first.endswith("ing") and len(first) > 4:
        words[0] = _third_person(first)
    return x, f"{subject} {' '.join(words)}"


def while_(pipe, prompt_x: str, prompt_y: str, frames: int | None = None, part: str = "arms", prompt: str = "",
           **kw) -> list[EditedSample]:
    """"X while Y": generate X, then a body-part edit (the arms by default) of the whole motion with Y. X is
    generated like any prompt (read in the model's training words unless ``literal``); the edit uses Y as typed."""
    from .bodypart import check_part
    from .source import source_from_joints

    check_part(part)
    c = _common(kw)
    gen_kw = {k: c[k] for k in ("seed", "samples", "use_retrieval", "cond_scale", "time_steps", "temperature",
                                "topk", "res_cond_scale") if k in c}
    if kw.get("candidates") is not None:  # X's draws, as the request asked (the edit itself draws once)
        gen_kw["candidates"] = kw["candidates"]
    base = pipe.generate([prompt_x], None if frames is None else [int(frames)], compose_sequences=False,
                         cancelled=c.get("cancelled"), progress=_scaled(c.get("progress"), 0.0, 0.4),
                         literal=bool(kw.get("literal", False)), **gen_kw)
    srcs = [source_from_joints(b.joints, b.features) for b in base]
    n = srcs[0].frames
    c["progress"] = _scaled(c.get("progress"), 0.4, 1.0)
    outs, changed, ret, ids, _ = fill(pipe, [Canvas.of(s) for s in srcs], [Hole(0, n, prompt_y, part=part)], **c)
    out = [_sample("while", prompt or f"{prompt_x} while {prompt_y}", i, kw.get("seed", 0), o.features,
                   o.joints, srcs[i], [(0, n)], changed[i], list(base[i].retrieved) + ret[i],
                   list(base[i].retrieved_ids) + ids[i], part=part) for i, o in enumerate(outs)]
    for s, b in zip(out, base):  # how X was read ("read ... as ...")
        s.warnings = [w for w in b.warnings or [] if w.startswith("read ")]
    return out


def generate_prompts(pipe, prompts, lengths, **kw) -> list:
    """The pipeline's generation where "X while Y" prompts become X + a body-part edit of the arms with Y (for
    models that compose prompts part by part); other prompts are generated as usual. Prompt-major order."""
    out = []
    for i, p in enumerate(prompts):
        frames = None if lengths is None else [lengths[i]]
        pair = split_while(p)
        if pair is None:
            out += pipe.generate([p], frames, **kw)
        else:
            kw2 = {k: v for k, v in kw.items() if k != "compose_sequences"}
            out += while_(pipe, pair[0], pair[1], None if frames is None else frames[0], prompt=p, **kw2)
    return out
