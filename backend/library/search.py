"""Search a motion library index (backend/library/index.py) by text or by an example motion.

Text: the Part-TMR text embedding of the query against every window (cosine). Example: the example's motion
embedding (its first ``window`` frames) against every window, then the best ``rerank.POOL`` windows re-ranked on
the motion itself (``rerank.py``: a mirror-, position-, facing- and speed-invariant pose distance), so that a
copy of a take finds that take first. Hits are ranked by score; a window that
overlaps a better hit of the same file by half or more is skipped, so that one moment is not listed several
times through its overlapping windows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .embed import MotionEmbedder
from .index import EMB, FAISS, LibraryError, ModelMismatch, default_index_dir, read_meta
from .reading import FPS, MotionInput, read_motion
from .rerank import POOL, JointsCache, combined_score, pose_distances

MAX_K = 1000
_JOINTS = JointsCache()


@dataclass
class LibraryIndex:
    path: Path
    meta: dict
    index: object  # faiss.Index

    @property
    def folder(self) -> Path:
        return Path(self.meta["folder"])

    def __len__(self) -> int:
        return len(self.meta["windows"])


def resolve_index_dir(path: str | os.PathLike) -> Path:
    """An index folder, or a motion folder holding the default one."""
    p = Path(path).expanduser().resolve()
    if not (p / "index.json").is_file() and (default_index_dir(p) / "index.json").is_file():
        return default_index_dir(p)
    return p


def load_index(path: str | os.PathLike, embedder: MotionEmbedder | None = None) -> LibraryIndex:
    """Read an index; with ``embedder``, refuse (ModelMismatch) one built with another model."""
    import faiss

    d = resolve_index_dir(path)
    meta = read_meta(d)
    if embedder is not None:
        fp = meta.get("model", {}).get("fingerprint")
        if fp != embedder.fingerprint:
            raise ModelMismatch(
                f"the library index {d} was built with another model ({meta.get('model', {}).get('label') or fp}); "
                f"search it with that model (--models) or rebuild it with 'remomask library index "
                f"{meta.get('folder', 'FOLDER')}' for this one")
    try:
        if (d / FAISS).is_file():
            index = faiss.read_index(str(d / FAISS))
        else:
            emb = np.load(d / EMB, allow_pickle=False)
            index = faiss.IndexFlatIP(emb.shape[1])
            index.add(np.ascontiguousarray(emb, np.float32))
    except (OSError, RuntimeError, ValueError) as exc:
        raise LibraryError(f"{d}: the index data cannot be read ({exc}); rebuild it") from None
    if index.ntotal != len(meta.get("windows", [])):
        raise LibraryError(f"{d}: the index holds {index.ntotal} windows but its table {len(meta['windows'])}; "
                           "rebuild it")
    return LibraryIndex(d, meta, index)


def _overlaps(a: int, b: int, taken: list[tuple[int, int]]) -> bool:
    """[a, b) overlaps one of ``taken`` by half (of the shorter) or more."""
    return any(min(b, y) - max(a, x) >= 0.5 * min(b - a, y - x) for x, y in taken)


def search_embedding(lib: LibraryIndex, query: np.ndarray, k: int = 10) -> list[dict]:
    """One L2-normalised query (D,) -> up to k hits {path, file, start, end, start_s, end_s, score, prompt}."""
    if not 1 <= int(k) <= MAX_K:
        raise ValueError(f"k must be in 1..{MAX_K}")
    n = len(lib)
    q = np.ascontiguousarray(np.asarray(query, np.float32).reshape(1, -1))
    if q.shape[1] != lib.index.d:
        raise ModelMismatch(f"query embeddings are {q.shape[1]}-d but the index holds {lib.index.d}-d ones")
    pool = min(n, max(4 * int(k), int(k) + 16))
    while True:
        sims, idx = lib.index.search(q, pool)
        hits: list[dict] = []
        taken: dict[str, list[tuple[int, int]]] = {}
        for s, i in zip(sims[0], idx[0]):
            if i < 0:
                continue
            rel, a, b = lib.meta["windows"][int(i)]
            if _overlaps(a, b, taken.get(rel, [])):
                continue
            taken.setdefault(rel, []).append((a, b))
            f = lib.meta["files"].get(rel, {})
            hits.append({"file": rel, "path": str(lib.folder / rel), "start": int(a), "end": int(b),
                         "start_s": round(a / FPS, 2), "end_s": round(b / FPS, 2), "score": round(float(s), 4),
                         "frames": f.get("frames"), "prompt": f.get("prompt", "")})
            if len(hits) >= k:
                return hits
        if pool >= n:
            return hits
        pool = min(n, pool * 4)


def search_text(embedder: MotionEmbedder, lib: LibraryIndex, text: str, k: int = 10) -> list[dict]:
    text = " ".join(str(text).split())
    if not text:
        raise LibraryError("the search text is empty")
    return search_embedding(lib, embedder.embed_text([text])[0], k)


def search_like(embedder: MotionEmbedder, lib: LibraryIndex, motion: MotionInput | str, k: int = 10) -> list[dict]:
    from backend.editing.source import source_from_joints
    from backend.motion.features import mirror_joints

    m = motion if isinstance(motion, MotionInput) else read_motion(motion, what="example motion")
    window = int(lib.meta.get("window", embedder.pad_len))
    if not 1 <= int(k) <= MAX_K:
        raise ValueError(f"k must be in 1..{MAX_K}")
    example = m.joints[:window]
    # the pool: the best windows for the example or for its mirror (a mirrored take can embed far from its
    # original), each window once with the better cosine; the POOL (or k) best of them are re-ranked
    mirrored = source_from_joints(mirror_joints(example), what="example motion", upright=False).features
    pool: dict[tuple[str, int], dict] = {}
    for q in embedder.embed([m.features[:window], mirrored]):
        for h in search_embedding(lib, q, max(int(k), POOL)):
            key = (h["file"], h["start"])
            if key not in pool or h["score"] > pool[key]["score"]:
                pool[key] = h
    hits: list[dict] = []
    taken: dict[str, list[tuple[int, int]]] = {}
    best = sorted(pool.values(), key=lambda h: -h["score"])[:max(int(k), POOL)]
    for h in rerank_hits(example, best):
        if not _overlaps(h["start"], h["end"], taken.get(h["file"], [])):
            taken.setdefault(h["file"], []).append((h["start"], h["end"]))
            hits.append(h)
    return hits[:k]


def rerank_hits(example: np.ndarray, hits: list[dict]) -> list[dict]:
    """Re-rank embedding hits by ``rerank.combined_score`` of their cosine and pose distance. Each hit keeps
    its cosine as ``embedding_score`` and gets ``pose_distance`` (metres; None when its file cannot be read any
    more: such a hit is scored as the farthest one read)."""
    wins = []
    for h in hits:
        j = _JOINTS.get(h["path"])
        wins.append(j[h["start"]:h["end"]] if j is not None and len(j) >= h["end"] > h["start"] else None)
    ok = [i for i, w in enumerate(wins) if w is not None]
    d = np.full(len(hits), np.nan)
    if ok:
        d[ok] = pose_distances(example, [wins[i] for i in ok])
    finite = d[np.isfinite(d)]
    worst = float(finite.max()) if len(finite) else 0.0
    out = []
    for h, di in zip(hits, d):
        cos = h["score"]
        h = dict(h, embedding_score=cos, pose_distance=round(float(di), 4) if np.isfinite(di) else None)
        h["score"] = round(combined_score(cos, float(di) if np.isfinite(di) else worst), 4)
        out.append(h)
    return sorted(out, key=lambda h: -h["score"])
