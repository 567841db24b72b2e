"""The Library panel's bpy-free parts: a search hit's window as a motion to key, where its preview still is
cached, and the one-line texts the panel shows.

A hit of the protocol's ``library_search`` names a file of the library (``path``) and a window of it in seconds
(``start_s``, ``end_s``; frames at 20 fps in ``start``/``end``). ``window_motion`` reads that file with
``motion_io`` (a motion ``.npz`` or a joints ``.npy``) and cuts the window at the file's own frame rate, so a
fitted motion keeps its SMPL rotations. BVH files are indexed and found by the backend, but the add-on cannot
read them: ``window_motion`` refuses them with one message.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from . import motion_io

#: Arrays of a motion dict with one row per frame (cut with the window); the rest is per motion.
_PER_FRAME = ("poses", "trans", "joints", "fit_error_mm")


def window_motion(hit: dict) -> dict:
    """The hit's window of its file as a motion dict (``motion_io.validate_motion``'s keys); MotionFileError
    with one message when the file cannot be read or the window is outside it."""
    path = str(hit.get("path") or "")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".bvh":
        raise motion_io.MotionFileError(
            f"{os.path.basename(path)}: BVH windows cannot be keyed by the add-on; import the BVH with Blender's "
            "BVH importer, or convert it to a motion file with 'remomask' first")
    m = motion_io.load_any(path)
    fps = float(m.get("fps") or motion_io.DEFAULT_FPS)
    n = int(m["num_frames"])
    a = int(round(float(hit.get("start_s", 0.0)) * fps))
    b = int(round(float(hit.get("end_s", n / fps)) * fps))
    a, b = max(0, min(a, n - 1)), min(n, b)
    if b - a < 2:
        raise motion_io.MotionFileError(f"{os.path.basename(path)}: the window {hit.get('start_s')}-"
                                        f"{hit.get('end_s')} s is outside the file ({n} frames at {fps:g} fps); "
                                        "index the folder again")
    out = dict(m)
    for k in _PER_FRAME:
        if out.get(k) is not None:
            out[k] = np.asarray(out[k])[a:b].copy()
    out["num_frames"] = b - a
    name = out.get("prompt") or os.path.splitext(os.path.basename(path))[0]
    out["prompt"] = f"{name} {a / fps:.1f}-{b / fps:.1f}s"
    return out


def preview_path(cache_dir: str | os.PathLike, hit: dict, index: str = "") -> Path:
    """Where the sequence still of ``hit``'s window is cached: one PNG per (index, file, window, the file's
    size and modification time), so a changed file gets a new still."""
    path = str(hit.get("path") or "")
    try:
        st = os.stat(path)
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        stamp = "missing"
    key = "\0".join([str(index), path, str(hit.get("start")), str(hit.get("end")), stamp])
    digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:24]
    return Path(cache_dir) / f"{digest}.png"


def window_label(hit: dict) -> str:
    """'12.3-22.1 s' for a hit."""
    return f"{float(hit.get('start_s', 0.0)):.1f}-{float(hit.get('end_s', 0.0)):.1f} s"


def one_line(message: str, limit: int = 600) -> str:
    """A backend message as one line for the panel (first line, shortened)."""
    text = " ".join(str(message or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
