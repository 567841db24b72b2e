"""The ReMoMask retrieval database: four .npy files in the official layout.

Layout (as written by the official ``build_rag_database.py`` and read by its retriever):

- ``motion_ids.npy``       (N,) str   entry names ``<motion>_<n>``; the part before the first ``_``
                                      names the source motion (used for de-duplication)
- ``all_captions.npy``     (N,) str   the caption of each entry
- ``encoded_motions.npy``  (N, 1, D) float  Part-TMR motion embeddings, L2-normalised
- ``encoded_texts.npy``    (N, 1, D) float  Part-TMR text embeddings of the captions, L2-normalised

The official release also ships optional files (``tag_lists.npy``, ``motion_tokens.npy``); the
retriever never reads them. Everything is read with ``allow_pickle=False``: string arrays saved from
Python lists are plain unicode arrays; an object (pickled) array is refused.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from backend.atomic import atomic_dir, atomic_write_stream

log = logging.getLogger(__name__)

MOTION_IDS = "motion_ids.npy"
CAPTIONS = "all_captions.npy"
MOTION_EMB = "encoded_motions.npy"
TEXT_EMB = "encoded_texts.npy"
REQUIRED_FILES = (MOTION_IDS, CAPTIONS, MOTION_EMB, TEXT_EMB)
KNOWN_OPTIONAL_FILES = ("tag_lists.npy", "motion_tokens.npy")
# The official release may ship a small debug stub as database/; below this size we say so.
SMALL_DATABASE = 1000


class DatabaseError(ValueError):
    """A retrieval database is missing, malformed or inconsistent."""


def motion_group(motion_id: str) -> str:
    """The source-motion name of an entry: the part of its id before the first '_'."""
    return motion_id.split("_")[0]


@dataclass
class MotionDatabase:
    """Validated retrieval database held in memory (float32, contiguous)."""

    motion_ids: np.ndarray  # (N,) str
    captions: np.ndarray  # (N,) str
    motion_emb: np.ndarray  # (N, Dm) float32, as stored (the official files are already normalised)
    text_emb: np.ndarray  # (N, Dt) float32, as stored
    path: Path | None = None
    groups: np.ndarray = field(init=False)  # (N,) int64 group index of each entry
    max_group_size: int = field(init=False)
    ignored_files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.motion_ids)
        if n == 0:
            raise DatabaseError(f"retrieval database {self.path or ''} is empty (0 entries)")
        for name, arr in (("captions", self.captions), ("motion_emb", self.motion_emb),
                          ("text_emb", self.text_emb)):
            if len(arr) != n:
                raise DatabaseError(
                    f"retrieval database {self.path or ''}: {n} motion ids but {len(arr)} {name}")
        _, inverse, counts = np.unique(np.array([motion_group(str(m)) for m in self.motion_ids]),
                                       return_inverse=True, return_counts=True)
        self.groups = inverse.astype(np.int64)
        self.max_group_size = int(counts.max())

    def __len__(self) -> int:
        return len(self.motion_ids)

    @property
    def motion_dim(self) -> int:
        return int(self.motion_emb.shape[1])

    @property
    def text_dim(self) -> int:
        return int(self.text_emb.shape[1])

    @property
    def num_groups(self) -> int:
        return int(self.groups.max()) + 1


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err) or "Object arrays" in str(err):
            raise DatabaseError(
                f"{path}: holds a pickled object array; only plain numeric/string arrays are read "
                f"(re-save it with np.save(path, np.asarray(list_of_str)))") from err
        raise DatabaseError(f"{path}: not a readable .npy file ({err})") from err
    except (OSError, EOFError) as err:
        raise DatabaseError(f"{path}: not a readable .npy file ({err})") from err


def _strings(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.ndim != 1:
        raise DatabaseError(f"{path}: expected a 1-D array of strings, got shape {arr.shape}")
    if arr.dtype.kind not in "US":
        raise DatabaseError(f"{path}: expected strings, got dtype {arr.dtype}")
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8")
    return arr


def _embeddings(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.dtype.kind not in "fiu":
        raise DatabaseError(f"{path}: expected a float array, got dtype {arr.dtype}")
    if arr.ndim == 3:
        # Official layout (N, 1, D); the official reader takes [:, 0, :].
        arr = arr[:, 0, :]
    elif arr.ndim != 2:
        raise DatabaseError(f"{path}: expected shape (N, 1, D) or (N, D), got {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise DatabaseError(f"{path}: contains NaN or infinite values")
    return arr


def load_database(directory: str | os.PathLike) -> MotionDatabase:
    """Read and validate ``directory``'s four database files. Raises DatabaseError with the reason."""
    d = Path(directory)
    if not d.is_dir():
        raise DatabaseError(f"retrieval database folder not found: {d}")
    missing = [f for f in REQUIRED_FILES if not (d / f).is_file()]
    if missing:
        raise DatabaseError(f"retrieval database {d} lacks {', '.join(missing)} "
                            f"(needs {', '.join(REQUIRED_FILES)})")
    ids = _strings(_load_npy(d / MOTION_IDS), d / MOTION_IDS)
    caps = _strings(_load_npy(d / CAPTIONS), d / CAPTIONS)
    m = _embeddings(_load_npy(d / MOTION_EMB), d / MOTION_EMB)
    t = _embeddings(_load_npy(d / TEXT_EMB), d / TEXT_EMB)
    ignored = sorted(p.name for p in d.iterdir() if p.is_file() and p.name not in REQUIRED_FILES)
    db = MotionDatabase(ids, caps, m, t, path=d, ignored_files=ignored)
    if ignored:
        log.info("retrieval database %s: not used by retrieval: %s", d, ", ".join(ignored))
    if len(db) < SMALL_DATABASE:
        log.warning("retrieval database %s has only %d entries: this looks like a debug stub; "
                    "retrieval quality will be poor (rebuild it with build_database)", d, len(db))
    return db


def keep_first_entries(directory: str | os.PathLike, n: int, append: dict | None = None) -> MotionDatabase:
    """Rewrite ``directory``'s database with only its first ``n`` entries, followed by the entries of ``append``
    when given (``{"motion_ids", "captions", "motion_emb", "text_emb"}``: (M,) strings and (M, D) embeddings).
    The four files are replaced together, as one folder. Used to ship a model without the entries of data that
    may not be redistributed, and to add entries made without it."""
    d = Path(directory)
    load_database(d)  # valid before anything is written
    arrays = {name: np.load(d / name, allow_pickle=False) for name in REQUIRED_FILES}
    if not 0 < n <= len(arrays[MOTION_IDS]):
        raise DatabaseError(f"retrieval database {d}: cannot keep {n} of {len(arrays[MOTION_IDS])} entries")
    arrays = {name: arr[:n] for name, arr in arrays.items()}
    if append:
        for name, key in ((MOTION_IDS, "motion_ids"), (CAPTIONS, "captions")):
            arrays[name] = np.concatenate([arrays[name].astype(str), np.asarray(append[key], dtype=str)])
        for name, key in ((MOTION_EMB, "motion_emb"), (TEXT_EMB, "text_emb")):
            add = np.asarray(append[key], dtype=np.float32)
            arrays[name] = np.concatenate([arrays[name], add.reshape(len(add), 1, -1)])
    with atomic_dir(d) as tmp:
        for name, arr in arrays.items():
            np.save(tmp / name, arr, allow_pickle=False)
    return load_database(d)


# ----------------------------------------------------------------------------- building
def _normalise(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


def pad_or_crop(motion: np.ndarray, length: int = 224) -> np.ndarray:
    """Official database convention: motions longer than ``length`` are cut to their first
    ``length`` frames, shorter ones are padded with zero frames (after normalisation)."""
    motion = np.asarray(motion, dtype=np.float32)
    if motion.shape[0] >= length:
        return motion[:length]
    pad = np.zeros((length - motion.shape[0], motion.shape[1]), dtype=np.float32)
    return np.concatenate([motion, pad], axis=0)


def _atomic_write(out_dir: Path, arrays: dict[str, np.ndarray]) -> None:
    """A new folder appears whole; in an existing one each file is replaced atomically (other files stay)."""
    out_dir = Path(out_dir)
    if not out_dir.exists():
        with atomic_dir(out_dir) as tmp:
            for name, arr in arrays.items():
                np.save(tmp / name, arr, allow_pickle=False)
        return
    for name, arr in arrays.items():
        atomic_write_stream(out_dir / name, lambda fh, arr=arr: np.save(fh, arr, allow_pickle=False),
                            make_parents=False)


def build_database(text_model, motion_model, motions: Sequence[np.ndarray], captions: Sequence[str],
                   ids: Sequence[str], out_dir: str | os.PathLike, *, max_motion_length: int = 224,
                   batch_size: int = 64, parts_fn: Callable | None = None,
                   progress: Callable[[float], None] | None = None) -> MotionDatabase:
    """Encode (motion, caption, id) triples and write the four database files in the official layout.

    - ``text_model``: a TextEncoder (``encode(list[str]) -> (B, D)``), normally the Part-TMR text side.
    - ``motion_model``: has ``encode_motion(parts: list[Tensor (B, T, d_part)]) -> (B, D)`` (Part-TMR).
    - ``motions``: per entry a (T, 263) HumanML3D feature array, ALREADY normalised with the dataset's
      Mean/Std (as the official script does); cut/padded to ``max_motion_length`` frames here.
    - ``ids``: entry names ``<motion>_<n>``; entries sharing ``<motion>`` are de-duplicated at retrieval.
    Both embeddings are L2-normalised before saving, as in the official script.
    """
    import torch

    if parts_fn is None:
        from backend.models.part_tmr import whole2parts as parts_fn
    n = len(motions)
    if n == 0:
        raise DatabaseError("build_database: no motions given")
    if not (len(captions) == len(ids) == n):
        raise DatabaseError(f"build_database: {n} motions, {len(captions)} captions, {len(ids)} ids")
    ids = [str(i) for i in ids]
    if len(set(ids)) != n:
        raise DatabaseError("build_database: motion ids must be unique")
    for i, m in enumerate(motions):
        if np.ndim(m) != 2 or np.shape(m)[0] == 0:
            raise DatabaseError(f"build_database: motion {ids[i]} has shape {np.shape(m)}, "
                                f"expected (T>0, features)")
    device = next(motion_model.parameters()).device if hasattr(motion_model, "parameters") else "cpu"
    m_out, t_out = [], []
    with torch.inference_mode():
        for s in range(0, n, batch_size):
            batch = np.stack([pad_or_crop(m, max_motion_length) for m in motions[s:s + batch_size]])
            parts = [p.to(device) for p in parts_fn(torch.from_numpy(batch))]
            m_out.append(motion_model.encode_motion(parts).float().cpu().numpy())
            t_out.append(np.asarray(text_model.encode(list(captions[s:s + batch_size])).float().cpu()))
            if progress:
                progress(min(1.0, (s + batch_size) / n))
    m_emb = _normalise(np.concatenate(m_out))
    t_emb = _normalise(np.concatenate(t_out))
    _atomic_write(Path(out_dir), {
        MOTION_IDS: np.asarray(ids, dtype=str),
        CAPTIONS: np.asarray([str(c) for c in captions], dtype=str),
        MOTION_EMB: m_emb[:, None, :],
        TEXT_EMB: t_emb[:, None, :],
    })
    return load_database(out_dir)
