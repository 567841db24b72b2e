"""Describe a motion: the captions and motions of the model's retrieval database closest to it.

This is retrieval, not free-form captioning: the answer is always one of the database's own captions
(motion -> text: cosine between the motion's Part-TMR embedding and ``db.text_emb``, identical captions
given once), plus the closest database motions (motion -> motion with ``db.motion_emb``, one entry per source
motion, the id before the first ``_``). Scores are cosine similarities in [-1, 1].
"""

from __future__ import annotations

import numpy as np

from backend.retrieval.database import motion_group

from .embed import MotionEmbedder, _l2n
from .reading import FPS, MotionInput, read_motion

MAX_K = 100


def _top(sims: np.ndarray, keys: list[str], k: int) -> list[int]:
    """Rows by score descending (ties: lower row), the first of each key, at most k."""
    order = np.lexsort((np.arange(len(sims)), -sims))
    seen: set[str] = set()
    out: list[int] = []
    for i in order:
        key = keys[int(i)]
        if key in seen:
            continue
        seen.add(key)
        out.append(int(i))
        if len(out) >= k:
            break
    return out


def describe_embedding(emb: np.ndarray, db, k: int = 5) -> dict:
    """One motion embedding (D,) against a MotionDatabase -> {"captions": [...], "motions": [...]}."""
    e = _l2n(np.asarray(emb, np.float32).reshape(1, -1))[0]
    caps = [str(c) for c in db.captions]
    ids = [str(i) for i in db.motion_ids]
    st = _l2n(db.text_emb) @ e
    sm = _l2n(db.motion_emb) @ e
    captions = [{"caption": caps[i], "score": round(float(st[i]), 4), "id": ids[i]}
                for i in _top(st, [" ".join(c.lower().split()) for c in caps], k)]
    motions = [{"id": ids[i], "caption": caps[i], "score": round(float(sm[i]), 4)}
               for i in _top(sm, [motion_group(m) for m in ids], k)]
    return {"captions": captions, "motions": motions}


def describe_motion(embedder: MotionEmbedder, motion: MotionInput | str, k: int = 5) -> dict:
    """A motion (file path or MotionInput) -> the closest database captions and motions, with the source's
    frames and seconds. The whole clip is embedded (cut to the model's window when longer)."""
    if not 1 <= int(k) <= MAX_K:
        raise ValueError(f"k must be in 1..{MAX_K}")
    m = motion if isinstance(motion, MotionInput) else read_motion(motion)
    if embedder.db is None:
        raise ValueError("no retrieval database loaded")
    emb = embedder.embed([m.features])[0]
    out = describe_embedding(emb, embedder.db, int(k))
    note = None
    if m.frames > embedder.pad_len:
        note = (f"the motion has {m.frames} frames; the model sees its first {embedder.pad_len} "
                f"({embedder.pad_len / FPS:g} s): index it with 'remomask library index' to search inside it")
    return {"source": m.path, "frames": m.frames, "seconds": round(m.seconds, 3), "prompt": m.prompt,
            **out, "warnings": [note] if note else []}
