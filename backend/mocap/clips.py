"""Real-motion clips for the corpus: windows of <= 196 frames, mirrored copies, captions from labels and from what
the motion measures.

    from backend.mocap.clips import load_mocap_corpus
    clips = load_mocap_corpus("../shared/data/mocap", seed=0)       # list of backend.synthetic.corpus.Clip

Nothing here is written to disk: training reads the data from the folder the user names (never from the
repository). Windows are cut where the body moves least between 60 % and 100 % of the longest window, and
overlap by ``overlap`` frames so that no moment is only ever seen at a window's edge. The mirrored copy swaps
left and right (``mirror_joints``) and the side words of its captions. Each window gets its own floor
(``put_on_floor``): long optical takes drift by centimetres.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from backend.motion.features import foot_contacts, mirror_joints
from backend.motion.skeleton import FPS
from backend.synthetic.captions import SUBJECTS
from backend.synthetic.wording import everyday, typo_variant
from backend.synthetic.checks import root_yaw
from backend.synthetic.corpus import Clip

from .labels import M2M_EXCLUDED, PHRASES, TEMPO, TRAVEL, TURNING, family_for
from .read import GLITCH_DEPTH, MocapError, below_floor, dataset_frame_rates, put_on_floor, read_mocap_bvh

MAX_FRAMES = 196
MIN_FRAMES = 24


def cut_windows(joints: np.ndarray, max_len: int = MAX_FRAMES, min_len: int = MIN_FRAMES,
                overlap: int = 40) -> list[tuple[int, int]]:
    """[(start, end)) windows covering the whole clip, each min_len..max_len frames (a clip shorter than
    min_len gives none), cut at the frame of least joint speed in the last 40 % of the longest window."""
    n = int(joints.shape[0])
    if n < min_len:
        return []
    if n <= max_len:
        return [(0, n)]
    speed = np.zeros(n)
    speed[1:] = np.linalg.norm(np.diff(joints, axis=0), axis=-1).sum(-1)
    out, start = [], 0
    while n - start > max_len:
        lo, hi = start + int(0.6 * max_len), start + max_len
        end = lo + int(np.argmin(speed[lo:hi + 1]))
        out.append((start, end))
        start = max(end - overlap, start + 1)
    if n - start < min_len:  # a short remainder: the last full window instead
        start = n - max_len
    out.append((start, n))
    return out


def extend_short(joints: np.ndarray, min_len: int = 2 * MIN_FRAMES, loop_tol: float = 0.03) -> np.ndarray:
    """A clip shorter than ``min_len``: a loop (its last frame repeats its first within ``loop_tol`` m at every
    joint) is played again until it is long enough; any other clip holds its first and last poses (a jab, a nod
    starts and ends standing). Longer clips come back unchanged."""
    n = int(joints.shape[0])
    if n >= min_len or n < 2:
        return joints
    if np.abs(joints[-1] - joints[0]).max() <= loop_tol:
        cycle = joints[:-1]
        reps = int(np.ceil((min_len - 1) / len(cycle)))
        # each cycle continues from where the previous one left the root (horizontal travel accumulates)
        step = joints[-1, 0] - joints[0, 0]
        step[1] = 0.0
        parts = [cycle + k * step for k in range(reps)] + [joints[-1:] + (reps - 1) * step]
        return np.concatenate(parts).astype(joints.dtype)
    pad = min_len - n
    before, after = pad // 2, pad - pad // 2
    return np.concatenate([np.repeat(joints[:1], before, 0), joints, np.repeat(joints[-1:], after, 0)]).astype(
        joints.dtype)


def measure(j: np.ndarray) -> dict:
    """What captions may say about a window: mean joint speed (m/s), root path length (m), turning (deg)."""
    root = j[:, 0, [0, 2]]
    return {"speed": float(np.linalg.norm(np.diff(j, axis=0), axis=-1).mean() * FPS) if len(j) > 1 else 0.0,
            "travel": float(np.linalg.norm(np.diff(root, axis=0), axis=-1).sum()),
            "turn": float(np.degrees(np.abs(np.diff(root_yaw(j))).sum())) if len(j) > 1 else 0.0}


def swap_sides(text: str) -> str:
    return re.sub(r"\b(left|right)\b", lambda m: "right" if m.group(1) == "left" else "left", text)


def captions_for(family: str, side: str | None, m: dict, tempo: str | None, rng: np.random.Generator,
                 n: int = 4) -> list[str]:
    """Up to n distinct captions: subject + a phrase of the family + at most one measured modifier."""
    phrases = PHRASES[family]
    mods = [""]
    if tempo:
        mods += TEMPO[tempo]
    if m["travel"] > 1.5:
        mods += TRAVEL["moving"]
    elif m["travel"] < 0.3:
        mods += TRAVEL["in_place"]
    if m["turn"] > 300:
        mods += TURNING
    out: list[str] = []
    for _ in range(8 * n):
        if len(out) >= n:
            break
        subject = SUBJECTS[int(rng.integers(len(SUBJECTS)))]
        phrase = phrases[int(rng.integers(len(phrases)))].format(side=side or "")
        mod = mods[int(rng.integers(len(mods)))]
        c = everyday(subject, [re.sub(r"\s+", " ", f"{phrase} {mod}").strip()], "{s} {a}", rng)
        if c not in out:
            out.append(c)
    return out


def _sources(root: Path):
    """(path, dataset, key, fps override) for every clip of the two sets found under root."""
    cmu = root / "cmu_dance_acrnn" / "train_data_bvh"
    if cmu.is_dir():
        rates = dataset_frame_rates(cmu)
        for sub in sorted(p for p in cmu.iterdir() if p.is_dir()):
            for f in sorted(sub.glob("*.bvh")):
                yield f, "cmu", sub.name, rates.get(sub.name)
    m2m = root / "mesh2motion_cc0" / "bvh"
    if m2m.is_dir():
        for f in sorted(m2m.glob("animation-human-*.bvh")):
            key = f.stem[len("animation-human-"):]
            if key not in M2M_EXCLUDED:
                yield f, "mesh2motion", key, None


def load_mocap_corpus(root, seed: int = 0, mirror: bool = True, captions_per_clip: int = 4,
                      overlap: int = 40, errors: list | None = None, dropped: list | None = None) -> list[Clip]:
    """Every window of every usable clip under ``root`` (and its mirror), as corpus clips with captions.
    Unreadable files are skipped and reported in ``errors`` (when given) as 'path: reason'; windows with capture
    glitches (a joint more than 5 cm under the floor) are left out and reported in ``dropped``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    items = []
    for path, dataset, key, fps in _sources(root):
        label = family_for(dataset, key)
        if label is None:
            continue
        try:
            clip = read_mocap_bvh(path, fps=fps)
        except MocapError as exc:
            if errors is not None:
                errors.append(str(exc))
            continue
        joints = extend_short(clip.joints)
        for a, b in cut_windows(joints, overlap=overlap):
            w = put_on_floor(joints[a:b]).astype(np.float32)
            bad = below_floor(w)
            if bad:
                if dropped is not None:
                    dropped.append(f"{path.parent.name}/{path.name} frames {a}-{b}: {bad} frames more than "
                                   f"{GLITCH_DEPTH * 100:.0f} cm under the floor (capture glitches); left out")
                continue
            items.append((label, path, a, b, w))
    # tempo words relative to the family's own median speed
    speeds: dict[str, list[float]] = {}
    measures = [measure(j) for *_, j in items]
    for (label, *_), m in zip(items, measures):
        speeds.setdefault(label[0], []).append(m["speed"])
    med = {f: float(np.median(v)) for f, v in speeds.items()}
    out = []
    for ((fam, side), path, a, b, j), m in zip(items, measures):
        tempo = "fast" if m["speed"] > 1.25 * med[fam] else "slow" if m["speed"] < 0.75 * med[fam] else None
        for mirrored in ((False, True) if mirror else (False,)):
            jj = mirror_joints(j).astype(np.float32) if mirrored else j
            s = ({"left": "right", "right": "left"}[side] if mirrored and side else side)
            caps = typo_variant(captions_for(fam, s, m, tempo, rng, captions_per_clip), rng)
            params = {"source": f"{path.parent.name}/{path.name}", "window": [int(a), int(b)],
                      "mirrored": mirrored, "side": s, "tempo": tempo, **{k: round(v, 3) for k, v in m.items()}}
            contacts = foot_contacts(jj) > 0.5
            out.append(Clip(joints=jj, caption=caps[0], family=fam, params=params,
                            contacts=np.vstack([contacts, contacts[-1:]]), captions=tuple(caps)))
    return out


def split_by_take(clips: list[Clip], test_every: int = 8, min_takes: int = 4) -> tuple[list[Clip], list[Clip]]:
    """(train, test) split by source take, so that no window of a test take (or its mirror) is trained on: in
    every family with at least ``min_takes`` takes, every ``test_every``-th take (in name order) is a test take.
    Families with fewer takes (the hand-keyed set has one per action) are all training."""
    takes: dict[str, list[str]] = {}
    for c in clips:
        takes.setdefault(c.family, [])
        if c.params["source"] not in takes[c.family]:
            takes[c.family].append(c.params["source"])
    test_takes = set()
    for fam, srcs in takes.items():
        if len(srcs) >= min_takes:
            test_takes.update(s for i, s in enumerate(sorted(srcs)) if i % test_every == test_every // 2)
    train = [c for c in clips if c.params["source"] not in test_takes]
    test = [c for c in clips if c.params["source"] in test_takes]
    return train, test


def balance_families(clips: list[Clip], min_per_family: int) -> list[Clip]:
    """Families with fewer than ``min_per_family`` windows get theirs repeated (the training loader crops a
    different part and picks another of the captions each time) so that a short hand-keyed action is not
    drowned by 15 minutes of salsa."""
    by: dict[str, list[Clip]] = {}
    for c in clips:
        by.setdefault(c.family, []).append(c)
    out = []
    for fam, cs in by.items():
        reps = max(1, int(np.ceil(min_per_family / len(cs))))
        out += (cs * reps)[:max(len(cs), min_per_family)]
    return out
