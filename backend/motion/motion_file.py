"""The project's motion file (``.npz``): validated, written atomically, read without pickle.

Fields (DESIGN.md section 3; T = number of frames)::

    joints        (T, 22, 3) float32   HumanML3D joint order, y-up, metres            required
    features      (T, 263) or (T-1, 263) float32   HumanML3D features (not normalised)
    poses         (T, 24, 3) float32   SMPL local axis-angle rotations (radians)
    trans         (T, 3) float32       SMPL root translation (metres, y-up)
    betas         (10,) float32        SMPL shape
    rest_joints   (24, 3) float32      SMPL rest joint positions for these betas
    fit_error_mm  (T,) float32         per-frame joint fitting error (mean, millimetres)
    fps           float                frames per second (20 for HumanML3D)
    prompt        str
    seed          int
    retrieved     list[str]            captions of the retrieved database motions
    format_version int                 1

Anything else given to ``save_motion`` as a keyword is stored too (numbers, strings, numeric arrays or
lists of strings; never Python objects) and comes back from ``load_motion`` under the same key.
"""

from __future__ import annotations

import keyword
from pathlib import Path

import numpy as np

from backend.atomic import atomic_write_stream

from .skeleton import FEATURE_DIM, NUM_JOINTS

FORMAT_VERSION = 1
SMPL_JOINTS = 24
NUM_BETAS = 10
_RESERVED = {"joints", "features", "poses", "trans", "betas", "rest_joints", "fit_error_mm", "fps", "prompt",
             "seed", "retrieved", "format_version"}


class MotionFileError(ValueError):
    """A motion file (or the data meant for one) is missing, malformed or inconsistent."""


def _array(name, value, shape_desc, check_shape, *, finite=True) -> np.ndarray:
    try:
        a = np.asarray(value)
    except Exception as e:
        raise MotionFileError(f"{name}: cannot convert to an array ({e})") from e
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise MotionFileError(f"{name}: must be numeric; got dtype {a.dtype}")
    if not check_shape(a.shape):
        raise MotionFileError(f"{name}: expected shape {shape_desc}; got {a.shape}")
    a = a.astype(np.float32)
    if finite and not np.isfinite(a).all():
        raise MotionFileError(f"{name}: contains NaN or infinite values")
    return a


def _validate(fields: dict) -> dict:
    """Check and convert every field; returns a new dict of numpy values ready for np.savez."""
    if fields.get("joints") is None:
        raise MotionFileError("joints: required")
    out = {}
    joints = _array("joints", fields["joints"], f"(T, {NUM_JOINTS}, 3) with T >= 1",
                    lambda s: len(s) == 3 and s[1:] == (NUM_JOINTS, 3) and s[0] >= 1)
    T = joints.shape[0]
    out["joints"] = joints
    specs = {
        "features": (f"({T}, {FEATURE_DIM}) or ({T - 1}, {FEATURE_DIM})",
                     lambda s: len(s) == 2 and s[1] == FEATURE_DIM and s[0] in (T, T - 1)),
        "poses": (f"({T}, {SMPL_JOINTS}, 3)", lambda s: s == (T, SMPL_JOINTS, 3)),
        "trans": (f"({T}, 3)", lambda s: s == (T, 3)),
        "betas": (f"({NUM_BETAS},)", lambda s: s == (NUM_BETAS,)),
        "rest_joints": (f"({SMPL_JOINTS}, 3)", lambda s: s == (SMPL_JOINTS, 3)),
        "fit_error_mm": (f"({T},)", lambda s: s == (T,)),
    }
    for name, (desc, check) in specs.items():
        if fields.get(name) is not None:
            out[name] = _array(name, fields[name], desc, check)
    if "fit_error_mm" in out and (out["fit_error_mm"] < 0).any():
        raise MotionFileError("fit_error_mm: must be >= 0")

    fps = fields.get("fps", 20)
    try:
        fps = float(np.asarray(fps).item())
    except Exception as e:
        raise MotionFileError(f"fps: must be a number; got {fps!r}") from e
    if not np.isfinite(fps) or fps <= 0:
        raise MotionFileError(f"fps: must be a positive number; got {fps}")
    out["fps"] = np.array(fps, dtype=np.float64)

    prompt = fields.get("prompt", "")
    if isinstance(prompt, np.ndarray) and prompt.ndim == 0:
        prompt = prompt.item()
    if not isinstance(prompt, str):
        raise MotionFileError(f"prompt: must be a string; got {type(prompt).__name__}")
    out["prompt"] = np.array(prompt, dtype=np.str_)

    seed = fields.get("seed", 0)
    if isinstance(seed, np.ndarray) and seed.ndim == 0:
        seed = seed.item()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise MotionFileError(f"seed: must be an integer; got {seed!r}")
    out["seed"] = np.array(int(seed), dtype=np.int64)

    retrieved = fields.get("retrieved", ())
    if isinstance(retrieved, str):
        raise MotionFileError("retrieved: must be a list of strings, not one string")
    if isinstance(retrieved, np.ndarray):
        retrieved = retrieved.tolist()
    retrieved = list(retrieved)
    if not all(isinstance(c, str) for c in retrieved):
        raise MotionFileError("retrieved: every item must be a string")
    out["retrieved"] = np.array(retrieved, dtype=np.str_) if retrieved else np.zeros(0, dtype="<U1")

    version = fields.get("format_version", FORMAT_VERSION)
    try:
        version = int(np.asarray(version).item())
    except Exception as e:
        raise MotionFileError(f"format_version: must be an integer; got {version!r}") from e
    if version > FORMAT_VERSION:
        raise MotionFileError(f"format_version {version} is newer than this reader ({FORMAT_VERSION})")
    out["format_version"] = np.array(FORMAT_VERSION, dtype=np.int64)

    for key, value in fields.items():
        if key in _RESERVED:
            continue
        if not key.isidentifier() or keyword.iskeyword(key):
            raise MotionFileError(f"extra field name {key!r} is not a plain identifier")
        if isinstance(value, str):
            out[key] = np.array(value, dtype=np.str_)
            continue
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            out[key] = np.array(list(value), dtype=np.str_)
            continue
        try:
            a = np.asarray(value)
        except Exception as e:
            raise MotionFileError(f"{key}: cannot convert to an array ({e})") from e
        if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool or a.dtype.kind == "U"):
            raise MotionFileError(f"{key}: only numbers, strings and numeric arrays can be stored; got {a.dtype}")
        out[key] = a
    return out


def _to_python(fields: dict) -> dict:
    d = dict(fields)
    d["fps"] = float(d["fps"])
    d["prompt"] = str(d["prompt"])
    d["seed"] = int(d["seed"])
    d["format_version"] = int(d["format_version"])
    d["retrieved"] = [str(c) for c in d["retrieved"].tolist()]
    for k, v in d.items():
        if k not in _RESERVED and isinstance(v, np.ndarray) and v.ndim == 0:
            d[k] = v.item()
    return d


def save_motion(path, *, joints, features=None, poses=None, trans=None, betas=None, rest_joints=None,
                fit_error_mm=None, fps=20, prompt="", seed=0, retrieved=(), **extra) -> Path:
    """Validate and write a motion ``.npz`` atomically (temporary file in the same folder, then
    ``os.replace``). On any error raises ``MotionFileError`` and leaves no file behind (an existing file
    at ``path`` is left untouched). Returns the path written."""
    path = Path(path)
    fields = dict(joints=joints, features=features, poses=poses, trans=trans, betas=betas,
                  rest_joints=rest_joints, fit_error_mm=fit_error_mm, fps=fps, prompt=prompt, seed=seed,
                  retrieved=retrieved, **extra)
    data = _validate(fields)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise MotionFileError(f"folder does not exist: {folder}")
    if path.is_dir():
        raise MotionFileError(f"{path} is a folder")
    try:
        atomic_write_stream(path, lambda fh: np.savez_compressed(fh, **data), make_parents=False)
    except OSError as e:
        raise MotionFileError(f"cannot write {path}: {e}") from e
    return path


def load_motion(path) -> dict:
    """Read and validate a motion ``.npz``. Returns a dict: arrays as float32 numpy arrays, ``fps``
    float, ``prompt`` str, ``seed`` int, ``retrieved`` list of str, ``format_version`` int; optional
    fields that the file lacks are absent; extra fields as stored (0-d values as Python scalars)."""
    path = Path(path)
    if not path.is_file():
        raise MotionFileError(f"motion file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            raw = {k: z[k] for k in z.files}
    except Exception as e:
        raise MotionFileError(f"{path} is not a readable motion .npz: {e}") from e
    if "joints" not in raw:
        raise MotionFileError(f"{path}: no 'joints' array (fields: {sorted(raw)})")
    try:
        data = _validate(raw)
    except MotionFileError as e:
        raise MotionFileError(f"{path}: {e}") from None
    return _to_python(data)


def load_joints_npy(path) -> np.ndarray:
    """Read a HumanML3D-style joints ``.npy``: (T, 22, 3), (T, 66), or (T, J>22, 3) of which the first 22
    joints are kept (as the reference does with its 52-joint files). Returns float32 (T, 22, 3)."""
    path = Path(path)
    if not path.is_file():
        raise MotionFileError(f"joints file not found: {path}")
    try:
        a = np.load(path, allow_pickle=False)
    except Exception as e:
        raise MotionFileError(f"{path} is not a readable .npy array: {e}") from e
    if not isinstance(a, np.ndarray) or not np.issubdtype(a.dtype, np.number):
        raise MotionFileError(f"{path}: expected a numeric array; got {getattr(a, 'dtype', type(a))}")
    if a.ndim == 2 and a.shape[1] == NUM_JOINTS * 3:
        a = a.reshape(a.shape[0], NUM_JOINTS, 3)
    elif a.ndim == 3 and a.shape[2] == 3 and a.shape[1] >= NUM_JOINTS:
        a = a[:, :NUM_JOINTS]
    else:
        raise MotionFileError(f"{path}: expected shape (T, 22, 3) or (T, 66); got {a.shape}")
    if a.shape[0] < 1:
        raise MotionFileError(f"{path}: no frames")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise MotionFileError(f"{path}: contains NaN or infinite values")
    return a
