"""Search a motion library index (backend/library/index.py) by text or by an example motion.

Text: the Part-TMR text embedding of the query against every window (cosine). Example: the example's motion
embedding (its first ``window`` frames) against every window. Hits are ranked by score; a window that
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

MAX_K = 1000


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
            if any(min(b, y) - max(a, x) >= 0.5 * min(b - a, y - x) for x, y in taken.get(rel, [])):
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
    m = motion if isinstance(motion, MotionInput) else read_motion(motion, what="example motion")
    window = int(lib.meta.get("window", embedder.pad_len))
    return search_embedding(lib, embedder.embed([m.features[:window]])[0], k)
