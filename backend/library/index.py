"""A motion library: every motion file under a folder, embedded window by window with the Part-TMR motion
tower into a FAISS index, so that a text or an example motion finds the moment inside a long take.

Index folder (default ``FOLDER/.remomask-library/``), replaced whole on every update (``atomic_dir``: a failed
or interrupted run leaves the previous index as it was):

- ``index.json``: ``format``, ``folder`` (absolute), ``window``/``stride`` (frames at 20 fps), ``model``
  (``fingerprint`` of the Part-TMR weights + normaliser + padding, ``label``, ``dim``), ``files``
  (relative path -> ``size``, ``mtime_ns``, ``frames``, ``seconds``, ``prompt``, ``rows`` [first, end) into the
  window table), ``windows`` (one ``[file, start, end]`` per row, frames), ``errors`` (file -> message).
- ``embeddings.npy`` (N, D) float32, L2-normalised, one row per window (kept so that an update re-embeds only
  files whose size or mtime changed).
- ``faiss.index``: an exact ``IndexFlatIP`` over the rows (inner product = cosine).

Windows: a clip of at most ``window`` frames is one window; a longer one is cut into windows of ``window``
frames every ``stride`` frames, the last one ending at the clip's end.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from backend.atomic import atomic_dir
from backend.errors import InvalidInput, UserError

from .embed import MotionEmbedder
from .reading import FPS, MOTION_SUFFIXES, MotionReadError, read_motion

FORMAT = 1
INDEX_DIR_NAME = ".remomask-library"
META, EMB, FAISS = "index.json", "embeddings.npy", "faiss.index"
WINDOW, STRIDE = 196, 98
#: The one hidden folder that is indexed: the add-on's joints read back from the actions of the folder's .blend
#: files (remomask_addon/blender/blend_actions.py).
BLEND_ACTIONS_DIR = ".remomask-blend-actions"


class LibraryError(InvalidInput):
    """A library folder or index that cannot be used (one line for people)."""


class ModelMismatch(UserError):
    """The index was built with another model: its embeddings cannot be compared with this model's."""


def default_index_dir(folder: str | os.PathLike) -> Path:
    return Path(folder).expanduser().resolve() / INDEX_DIR_NAME


def windows_of(frames: int, window: int = WINDOW, stride: int = STRIDE) -> list[tuple[int, int]]:
    """[start, end) frame ranges covering a clip of ``frames`` frames."""
    if frames <= window:
        return [(0, frames)]
    starts = list(range(0, frames - window + 1, stride))
    if starts[-1] + window < frames:
        starts.append(frames - window)
    return [(s, s + window) for s in starts]


def motion_files(folder: Path, skip: Path | None = None) -> list[Path]:
    """Motion files under ``folder`` (sorted), skipping hidden folders (but ``BLEND_ACTIONS_DIR``) and files and
    ``skip``."""
    out = []
    for root, dirs, files in os.walk(folder):
        r = Path(root)
        dirs[:] = sorted(d for d in dirs if (not d.startswith(".") or d == BLEND_ACTIONS_DIR)
                         and (skip is None or (r / d).resolve() != skip))
        for f in sorted(files):
            if not f.startswith(".") and Path(f).suffix.lower() in MOTION_SUFFIXES:
                out.append(r / f)
    return out


@dataclass
class IndexReport:
    index_dir: Path
    files: int = 0
    windows: int = 0
    embedded: list[str] = field(default_factory=list)   # files (re-)embedded this run
    reused: int = 0
    removed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    rebuilt_for_model: bool = False

    def to_dict(self) -> dict:
        return {"index": str(self.index_dir), "files": self.files, "windows": self.windows,
                "embedded": self.embedded, "reused": self.reused, "removed": self.removed,
                "errors": self.errors, "seconds": round(self.seconds, 3), "rebuilt_for_model": self.rebuilt_for_model}


def read_meta(index_dir: Path) -> dict:
    p = Path(index_dir) / META
    if not p.is_file():
        raise LibraryError(f"no motion library index at {index_dir} (make one with 'remomask library index FOLDER')")
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LibraryError(f"{p}: unreadable index ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LibraryError(f"{p}: not a motion library index of format {FORMAT}")
    return meta


def _load_old(index_dir: Path, fingerprint: str) -> tuple[dict, np.ndarray | None, bool]:
    """(old meta, old embeddings) for reuse; ({}, None, mismatch) when there is nothing reusable."""
    if not (index_dir / META).is_file():
        return {}, None, False
    try:
        meta = read_meta(index_dir)
        emb = np.load(index_dir / EMB, allow_pickle=False)
    except (LibraryError, OSError, ValueError):
        return {}, None, False
    if meta.get("model", {}).get("fingerprint") != fingerprint:
        return {}, None, True
    if emb.ndim != 2 or emb.shape[0] != len(meta.get("windows", [])):
        return {}, None, False
    return meta, emb, False


def _write(index_dir: Path, meta: dict, emb: np.ndarray) -> None:
    import faiss

    index = faiss.IndexFlatIP(emb.shape[1])
    if len(emb):
        index.add(np.ascontiguousarray(emb, np.float32))
    with atomic_dir(index_dir) as tmp:
        np.save(tmp / EMB, emb, allow_pickle=False)
        faiss.write_index(index, str(tmp / FAISS))
        (tmp / META).write_text(json.dumps(meta, indent=1), encoding="utf-8")


def build_index(embedder: MotionEmbedder, folder: str | os.PathLike, index_dir: str | os.PathLike | None = None, *,
                window: int = WINDOW, stride: int = STRIDE, batch_size: int = 32,
                progress: Callable[[float, str], None] | None = None) -> IndexReport:
    """Index (or update the index of) every motion file under ``folder``. Files whose size and mtime are
    unchanged keep their embeddings; new or changed ones are (re-)embedded; vanished ones are dropped; an
    unreadable one is reported in ``errors`` and left out. Raises LibraryError for a missing or empty folder
    or when no file could be read; nothing is written then."""
    t0 = time.monotonic()
    if not 1 <= stride <= window:
        raise LibraryError("the stride must be in 1..window")
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise LibraryError(f"motion folder not found: {folder}")
    index_dir = Path(index_dir).expanduser().resolve() if index_dir else default_index_dir(folder)
    files = motion_files(folder, skip=index_dir)
    if not files:
        raise LibraryError(f"no motion files (.npz, .npy, .bvh) under {folder}")
    old, old_emb, mismatch = _load_old(index_dir, embedder.fingerprint)
    if old and (old.get("window"), old.get("stride")) != (window, stride):
        old, old_emb = {}, None
    old_files = old.get("files", {})
    report = IndexReport(index_dir=index_dir, rebuilt_for_model=mismatch)
    new_files: dict[str, dict] = {}
    windows: list[list] = []
    chunks: list[np.ndarray] = []
    for n, path in enumerate(files):
        rel = path.relative_to(folder).as_posix()
        if progress:
            progress(n / len(files), rel)
        try:
            st = path.stat()
        except OSError as exc:
            report.errors[rel] = f"cannot be read ({exc.strerror or exc})"
            continue
        prev = old_files.get(rel)
        if prev and prev.get("size") == st.st_size and prev.get("mtime_ns") == st.st_mtime_ns and old_emb is not None:
            a, b = prev["rows"]
            rows = old_emb[a:b]
            entry = {k: v for k, v in prev.items() if k != "rows"}
            wins = [w[1:] for w in old["windows"][a:b]]
            report.reused += 1
        else:
            try:
                m = read_motion(path)
            except MotionReadError as exc:
                report.errors[rel] = exc.message
                continue
            wins = windows_of(m.frames, window, stride)
            rows = embedder.embed([m.features[s:e] for s, e in wins], batch_size=batch_size)
            entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "frames": m.frames,
                     "seconds": round(m.seconds, 3), "prompt": m.prompt}
            report.embedded.append(rel)
        entry["rows"] = [len(windows), len(windows) + len(wins)]
        windows.extend([rel, int(s), int(e)] for s, e in wins)
        chunks.append(np.asarray(rows, np.float32))
        new_files[rel] = entry
    report.removed = sorted(set(old_files) - set(new_files) - set(report.errors))
    report.files, report.windows = len(new_files), len(windows)
    if not windows:
        detail = "; ".join(f"{k}: {v}" for k, v in list(report.errors.items())[:3])
        raise LibraryError(f"no motion under {folder} could be read ({len(report.errors)} file(s) failed: {detail})")
    emb = np.ascontiguousarray(np.concatenate(chunks), np.float32)
    meta = {"format": FORMAT, "folder": str(folder), "window": window, "stride": stride, "fps": FPS,
            "model": {"fingerprint": embedder.fingerprint, "label": embedder.label, "dim": int(emb.shape[1]),
                      "pad_len": embedder.pad_len},
            "files": new_files, "windows": windows, "errors": report.errors,
            "updated_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write(index_dir, meta, emb)
    if progress:
        progress(1.0, "written")
    report.seconds = time.monotonic() - t0
    return report
