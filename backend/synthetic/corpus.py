"""Clips, two-part sequences and corpora."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from . import captions, wording
from .families import SIDES, END_STATE, FAMILIES, PLANNERS, START_STATE, sample_params
from .kinematics import FPS, Controls, solve
from .plan import extend, smoothstep
from .skeleton import CONTACT_JOINTS, make_body

MIN_FRAMES, MAX_FRAMES = 40, 196
SEQUENCE_SHARE = 0.25
WHILE_SHARE = 0.12
# "X while Y": a locomotion with an upper-body action over it ("walks forward while waving")
WHILE_LOCO = ("walk", "jog", "run", "side_step")
WHILE_UPPER = ("wave", "clap", "raise_arms")
WHILE_JOINERS = captions.WHILE_JOINERS
_SPLIT_CODE = {"train": 0, "test": 1, "all": 2}


@dataclass
class Clip:
    joints: np.ndarray        # (T, 22, 3) float32, y-up, metres, 20 fps
    caption: str
    family: str               # a family name, or "first+second" for a two-part sequence
    params: dict              # sampled parameters (a sequence: {"parts": [params, params]}), plus
    #                           "template" (index/indices into captions.TEMPLATES) and "body_scale"
    contacts: np.ndarray      # (T, 4) bool: left_ankle, left_foot, right_ankle, right_foot
    fps: int = FPS
    seed: int | None = field(default=None)
    captions: tuple = ()      # other phrasings of the same parameters (caption_variants); may be empty

    @property
    def length(self) -> int:
        return int(self.joints.shape[0])


def _rng(rng_or_seed) -> np.random.Generator:
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    if isinstance(rng_or_seed, (int, np.integer)) or isinstance(rng_or_seed, np.random.SeedSequence):
        return np.random.default_rng(rng_or_seed)
    raise TypeError("rng_or_seed must be a numpy Generator, a SeedSequence or an int")


def _plan(family, body, rng, params, max_frames):
    """Plan one family's controls within max_frames, reducing counts when the first plan is too long."""
    if family not in PLANNERS:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    given = dict(params)
    for _ in range(8):
        p = sample_params(family, rng, given, max_frames=max_frames)
        c = PLANNERS[family](body, rng, p)
        if c.T <= max_frames:
            return c, p
        if "count" in p and p["count"] > 1 and "count" not in params:
            given["count"] = p["count"] - 1
        elif "steps" in p and p["steps"] > 3 and "steps" not in params:
            given["steps"] = p["steps"] - 1
    if c.T > max_frames:
        raise ValueError(f"{family} with {params} does not fit in {max_frames} frames")
    return c, p


def _public(p: dict) -> dict:
    return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in p.items()}


def _pad(c: Controls, rng, min_frames: int) -> Controls:
    if c.T >= min_frames:
        return c
    extra = min_frames - c.T
    first = int(rng.integers(0, extra + 1))
    return extend(extend(c, first, at_start=True), extra - first)


def _alive(c: Controls, rng) -> None:
    """Small, slow, left/right-symmetric drift of the trunk and head (nobody stands perfectly still)."""
    from scipy.ndimage import gaussian_filter1d

    n = rng.standard_normal((2, c.T + 40))
    n = gaussian_filter1d(n, 8.0, axis=1, mode="wrap")[:, 20:-20]
    n /= np.maximum(n.std(axis=1, keepdims=True), 1e-9)
    c.spine_pitch = c.spine_pitch + 0.02 * n[0]
    c.head_pitch = c.head_pitch + 0.05 * n[1]


def _finish(c: Controls, body, rng, family, caption, params, seed) -> Clip:
    _alive(c, rng)
    joints = solve(c, body).astype(np.float32)
    # (left_ankle, left_foot, right_ankle, right_foot): a rolling foot keeps only its toe planted
    heel = c.heel & c.contact
    contacts = np.stack([c.contact[:, 0] & ~heel[:, 0], c.contact[:, 0],
                         c.contact[:, 1] & ~heel[:, 1], c.contact[:, 1]], 1)
    assert contacts.shape[1] == len(CONTACT_JOINTS)
    params = dict(params, body_scale=float(body.scale))
    return Clip(joints=joints, caption=caption, family=family, params=params, contacts=contacts, seed=seed)


def generate_clip(family: str, rng_or_seed, split: str = "all", **params) -> Clip:
    """One captioned clip of `family` ("walk", ... or "walk+wave" for a two-part sequence).

    Parameters not given are sampled. The caption uses the training templates for split="train", the
    held-out ones for split="test", any for "all"."""
    seed = int(rng_or_seed) if isinstance(rng_or_seed, (int, np.integer)) else None
    rng = _rng(rng_or_seed)
    if "&" in family:
        a, b = family.split("&", 1)
        return generate_while(a, b, rng, split=split, params_a=params.get("params_a"),
                              params_b=params.get("params_b"), seed=seed)
    if "+" in family:
        a, b = family.split("+", 1)
        return generate_sequence(a, b, rng, split=split, params_a=params.get("params_a"),
                                 params_b=params.get("params_b"), seed=seed)
    body = make_body(rng, params.pop("body_scale", None))
    c, p = _plan(family, body, rng, params, MAX_FRAMES)
    c = _pad(c, rng, MIN_FRAMES)
    pred, tpl = captions.predicate(family, p, rng, split)
    subject = captions.SUBJECTS[int(rng.integers(len(captions.SUBJECTS)))]
    return _finish(c, body, rng, family, captions.sentence(subject, [pred], rng),
                   dict(_public(p), template=tpl), seed)


def generate_sequence(first: str, second: str, rng_or_seed, split: str = "all", params_a=None,
                      params_b=None, seed=None) -> Clip:
    """Two actions chained ("walks forward, then waves"): the second starts where the first ends."""
    rng = _rng(rng_or_seed)
    for f in (first, second):
        if f not in PLANNERS:
            raise ValueError(f"unknown family {f!r}")
    if END_STATE[first] != START_STATE[second]:
        raise ValueError(f"{first} ends {END_STATE[first]}ing but {second} starts {START_STATE[second]}ing")
    body = make_body(rng)
    ca, pa = _plan(first, body, rng, params_a or {}, 110)
    gap = int(rng.integers(2, 7))
    cb, pb = _plan(second, body, rng, params_b or {}, MAX_FRAMES - ca.T - gap)
    cb = cb.transformed(float(ca.root[-1, 0]), float(ca.root[-1, 1]), float(ca.yaw[-1]))
    # absorb any small mismatch of the end/start poses over the first frames of the second part
    n = min(8, cb.T)
    w = (1 - smoothstep(np.arange(n) / n))
    for name in ("root", "dy", "feet", "arms", "spine_pitch", "pelvis_pitch", "head_pitch"):
        arr = getattr(cb, name)
        delta = getattr(ca, name)[-1] - arr[0]
        arr[:n] += w.reshape((n,) + (1,) * (arr.ndim - 1)) * delta
    c = Controls.concat([extend(ca, gap), cb])
    c = _pad(c, rng, MIN_FRAMES)
    preds, tpls = [], []
    for fam, p in ((first, pa), (second, pb)):
        t, i = captions.predicate(fam, p, rng, split)
        preds.append(t)
        tpls.append(i)
    subject = captions.SUBJECTS[int(rng.integers(len(captions.SUBJECTS)))]
    return _finish(c, body, rng, f"{first}+{second}", captions.sentence(subject, preds, rng),
                   {"parts": [_public(pa), _public(pb)], "template": tpls, "boundary": int(ca.T + gap)}, seed)


def parts_of(family: str) -> list[str]:
    """The families of a clip's family name: 'walk' -> [walk]; 'walk+wave' (then) and 'walk&wave' (while)
    -> [walk, wave]."""
    return re.split(r"[+&]", family)


def is_compound(family: str) -> bool:
    return len(parts_of(family)) > 1


def _while_caption(loco: str, upper: str, pa: dict, pb: dict, rng, split: str) -> tuple[str, list[int]]:
    """"a man walks forward while waving the right hand" or "a man waves the right hand while walking
    forward": the second part is always an -ing phrase."""
    (ta, ia), (tb, ib) = captions.predicate(loco, pa, rng, split), captions.predicate(upper, pb, rng, split)
    subject = captions.SUBJECTS[int(rng.integers(len(captions.SUBJECTS)))]
    if rng.random() < 0.35:
        preds, joiner = [tb, wording.progressive(ta)], "{s} {a} while {b}"
    else:
        preds = [ta, wording.progressive(tb)]
        joiner = WHILE_JOINERS[int(rng.integers(len(WHILE_JOINERS)))]
    return captions.sentence(subject, preds, rng, joiner=joiner, keep_second=True), [ia, ib]


def generate_while(loco: str, upper: str, rng_or_seed, split: str = "all", params_a=None, params_b=None,
                   seed=None) -> Clip:
    """An upper-body action over a locomotion ("walks forward while waving"): the walk's legs, root and trunk,
    the action's arms (a one-handed wave keeps the other arm swinging), cross-faded over 0.3 s at each end."""
    rng = _rng(rng_or_seed)
    if loco not in WHILE_LOCO or upper not in WHILE_UPPER:
        raise ValueError(f"'{loco} while {upper}': the first must be one of {WHILE_LOCO}, the second one of "
                         f"{WHILE_UPPER}")
    body = make_body(rng)
    ca, pa = _plan(loco, body, rng, params_a or {}, MAX_FRAMES)
    ca = _pad(ca, rng, 60)
    cb, pb = _plan(upper, body, rng, params_b or {}, ca.T)
    start = int(rng.integers(0, ca.T - cb.T + 1))
    n = min(6, cb.T // 4)
    w = np.ones(cb.T)
    w[:n], w[cb.T - n:] = smoothstep(np.arange(n) / n), smoothstep(np.arange(n)[::-1] / n)
    arms = [SIDES.index(pb["hand"])] if upper == "wave" else [0, 1]
    seg = slice(start, start + cb.T)
    for k in arms:
        mixed = (1 - w)[:, None, None] * ca.arms[seg, k] + w[:, None, None] * cb.arms[:, k]
        ca.arms[seg, k] = mixed / np.maximum(np.linalg.norm(mixed, axis=-1, keepdims=True), 1e-9)
    ca.spine_roll[seg] += cb.spine_roll
    ca.head_pitch[seg] += cb.head_pitch
    caption, tpls = _while_caption(loco, upper, pa, pb, rng, split)
    return _finish(ca, body, rng, f"{loco}&{upper}", caption,
                   {"parts": [_public(pa), _public(pb)], "template": tpls, "window": [start, start + cb.T]}, seed)


def caption_variants(clip: Clip, n: int, rng_or_seed, split: str = "train") -> list[str]:
    """Up to ``n`` distinct captions of the clip: its own first, then new phrasings of the same parameters
    (other subjects, synonyms, templates of the same split, joiners), like the several captions per motion
    of HumanML3D. Fewer when the templates cannot say it more ways."""
    rng = _rng(rng_or_seed)
    fams = parts_of(clip.family)
    parts = clip.params["parts"] if len(fams) == 2 else [clip.params]
    out = [clip.caption]
    for _ in range(4 * n):
        if len(out) >= n:
            break
        if "&" in clip.family:
            c = _while_caption(fams[0], fams[1], parts[0], parts[1], rng, split)[0]
            if c not in out:
                out.append(c)
            continue
        preds = [captions.predicate(f, p, rng, split)[0] for f, p in zip(fams, parts)]
        subject = captions.SUBJECTS[int(rng.integers(len(captions.SUBJECTS)))]
        c = captions.sentence(subject, preds, rng)
        if c not in out:
            out.append(c)
    return out


def _pairs():
    return [(a, b) for a in FAMILIES for b in FAMILIES if a != b and END_STATE[a] == START_STATE[b]]


def make_corpus(n: int, seed: int, split: str = "train", sequence_share: float = SEQUENCE_SHARE,
                captions_per_clip: int = 1, while_share: float = WHILE_SHARE) -> list[Clip]:
    """n captioned clips. Clip i uses SeedSequence(seed, spawn_key=(split, i)), so the train and test
    splits never share a clip seed; the test split's captions use only held-out templates. With
    ``captions_per_clip`` > 1 every clip also gets ``clip.captions`` (caption_variants, its own first) from a
    separate random stream, so the clips themselves do not change."""
    if split not in _SPLIT_CODE:
        raise ValueError(f"split must be 'train', 'test' or 'all', not {split!r}")
    if n < 0:
        raise ValueError("n must be >= 0")
    pairs = _pairs()
    clips = []
    for i in range(n):
        ss = np.random.SeedSequence(int(seed), spawn_key=(_SPLIT_CODE[split], i))
        rng = np.random.default_rng(ss)
        r = rng.random()
        if r < sequence_share:
            a, b = pairs[int(rng.integers(len(pairs)))]
            clip = generate_sequence(a, b, rng, split=split)
        elif r < sequence_share + while_share:
            a = WHILE_LOCO[int(rng.integers(len(WHILE_LOCO)))]
            clip = generate_while(a, WHILE_UPPER[int(rng.integers(len(WHILE_UPPER)))], rng, split=split)
        else:
            fam = FAMILIES[(i + int(seed)) % len(FAMILIES)]
            clip = generate_clip(fam, rng, split=split)
        clip.seed = int(ss.generate_state(1)[0])
        if captions_per_clip > 1:
            vrng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(_SPLIT_CODE[split], i, 1)))
            vs = caption_variants(clip, captions_per_clip, vrng, split)
            clip.captions = tuple(wording.typo_variant(vs, vrng) if split == "train" else vs)
        clips.append(clip)
    return clips


def corpus_stats(clips: list[Clip]) -> dict:
    """Counts per family, lengths (frames), distinct captions and templates, vocabulary."""
    fam = Counter()
    templates: dict[str, set] = {}
    words = Counter()
    for c in clips:
        parts = parts_of(c.family)
        tpl = c.params.get("template")
        tpl = tpl if isinstance(tpl, list) else [tpl]
        for f, t in zip(parts, tpl):
            fam[f] += 1
            templates.setdefault(f, set()).add(t)
        words.update(re.findall(r"[a-z0-9']+", c.caption.lower()))
    lengths = np.array([c.length for c in clips]) if clips else np.zeros(0)
    return {
        "clips": len(clips),
        "sequences": sum("+" in c.family for c in clips),
        "while": sum("&" in c.family for c in clips),
        "families": dict(sorted(fam.items())),
        "templates_per_family": {f: len(s) for f, s in sorted(templates.items())},
        "distinct_captions": len({c.caption for c in clips}),
        "frames": {"min": int(lengths.min()) if len(lengths) else 0,
                   "mean": float(lengths.mean()) if len(lengths) else 0.0,
                   "max": int(lengths.max()) if len(lengths) else 0,
                   "total": int(lengths.sum())},
        "hours": float(lengths.sum() / FPS / 3600) if len(lengths) else 0.0,
        "vocabulary_size": len(words),
        "vocabulary": sorted(words),
    }
