"""What happens to a generated sample after the model: SMPL fitting, the motion file, the BVH.

Thin adapters: they call ``smpl_fitting.fit_motion`` (when importable; else fitting is skipped and the
caller is told why), ``backend.motion.motion_file.save_motion`` (the one motion-file writer) and
``backend.motion.bvh.write_bvh``.
"""

from __future__ import annotations

import inspect
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backend.motion.motion_file import save_motion

from .protocol import FPS

log = logging.getLogger("remomask.server")


@dataclass
class Fit:
    fields: dict            # npz fields: poses (T,24,3), trans (T,3), betas (10,), fit_error_mm (T,), ...
    raw: Any                # the FitResult (poses, trans, rest_joints for the BVH)
    mean_error_mm: float | None


def _import(module: str, name: str):
    try:
        mod = __import__(module, fromlist=[name])
        return getattr(mod, name)
    except (ImportError, AttributeError):
        return None


_FITTER_OVERRIDE = None


def set_fitter(spec: str | None):
    """Use ``module:function`` instead of smpl_fitting.fit_motion (the hidden --fitter option, for tests)."""
    global _FITTER_OVERRIDE
    if spec is None:
        _FITTER_OVERRIDE = None
        return
    module, sep, name = spec.partition(":")
    fn = _import(module, name) if sep else None
    if not callable(fn):
        raise ValueError(f"--fitter must name a function as module:function, got {spec!r}")
    _FITTER_OVERRIDE = fn


def _fit_function():
    return _FITTER_OVERRIDE or _import("smpl_fitting", "fit_motion")


def fitter_available() -> bool:
    return _fit_function() is not None


def foot_contacts_of(features) -> np.ndarray | None:
    """The generator's foot-contact predictions (T, 4) (HumanML3D feature channels 259:263: left ankle, left
    foot, right ankle, right foot) of a sample's (T, 263) features, or None."""
    if features is None:
        return None
    f = np.asarray(features)
    if f.ndim != 2 or f.shape[1] != 263 or not np.all(np.isfinite(f[:, 259:263])):
        return None
    return f[:, 259:263].astype(np.float64)


def fit_joints(joints: np.ndarray, smpl_dir: str | None = None, progress=None, device: str | None = None,
               ground_feet: bool = True, contacts=None) -> Fit:
    """joints (T,22,3) -> SMPL fit (``smpl_dir``: the user's SMPL model folder, else skeleton-only).
    ``progress(stage, fraction)`` is passed on when fit_motion accepts it. ``ground_feet``: feet on the
    floor (fit_motion's switch; passed only when off, and ``contacts`` (T, 4) only when given, so a fitter
    without them still works). Raises RuntimeError when smpl_fitting is not installed; fit_motion's own
    errors propagate."""
    fit_motion = _fit_function()
    if fit_motion is None:
        raise RuntimeError("SMPL fitting (smpl_fitting) is not installed")
    kwargs = {"progress": progress} if progress is not None else {}
    if not ground_feet:
        kwargs["ground_feet"] = False
    elif contacts is not None and len(contacts) in (len(joints), len(joints) - 1):
        kwargs["contacts"] = np.asarray(contacts, dtype=np.float64)
    if smpl_dir:
        kwargs["smpl_model_dir"] = str(smpl_dir)
    if device:
        kwargs["device"] = device
    res = _call_filtered(fit_motion, np.asarray(joints, dtype=np.float32), **kwargs)
    if hasattr(res, "as_npz_fields"):
        fields = dict(res.as_npz_fields())
    else:
        fields = {k: getattr(res, k) for k in ("poses", "trans", "betas", "fit_error_mm") if hasattr(res, k)}
    err = fields.get("fit_error_mm", getattr(res, "fit_error_mm", None))
    mean = None
    if err is not None:
        m = float(np.mean(np.asarray(err, dtype=np.float64)))
        mean = m if np.isfinite(m) else None
    return Fit(fields=fields, raw=res, mean_error_mm=mean)


def captions(retrieved) -> list[str]:
    """Retrieved items -> caption strings (items may be strings, or dicts/objects with a caption)."""
    out = []
    for item in retrieved or []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            out.append(str(item.get("caption", item.get("text", item))))
        else:
            out.append(str(getattr(item, "caption", item)))
    return out


def slug(prompt: str, limit: int = 40) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", prompt.lower()).strip("_")[:limit].strip("_")
    return s or "motion"


def unique_path(out_dir: Path, stem: str, suffix: str, taken: set) -> Path:
    """out_dir/stem.suffix, or stem-2, stem-3 ... if that exists or is already used in this batch."""
    n = 1
    while True:
        p = out_dir / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
        if p not in taken and not p.exists():
            taken.add(p)
            return p
        n += 1


def _call_filtered(fn, *args, **kwargs):
    """Call fn with only the keyword arguments it accepts (unless it takes **kwargs)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(*args, **kwargs)
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return fn(*args, **kwargs)


def save_sample(path: Path, sample, fit: Fit | None):
    """Write one motion file atomically (joints, features, prompt, seed, retrieved, fps, fit fields)."""
    fields: dict[str, Any] = {
        "joints": np.asarray(sample.joints, dtype=np.float32),
        "features": None if getattr(sample, "features", None) is None
        else np.asarray(sample.features, dtype=np.float32),
        "fps": FPS,
        "prompt": sample.prompt,
        "seed": int(sample.seed),
        "retrieved": captions(getattr(sample, "retrieved", None)),
    }
    if fit is not None:
        fields.update(fit.fields)
    if callable(getattr(sample, "motion_fields", None)):  # an edit's record (source, task, frames ...)
        fields.update(sample.motion_fields())
    save_motion(path, **{k: v for k, v in fields.items() if v is not None})


# The SMPL kinematic tree (names and parents), used when smpl_fitting.skeleton is not importable.
_SMPL_NAMES = ("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
               "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
               "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
               "left_hand", "right_hand")
_SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)


def smpl_tree():
    names = _import("smpl_fitting.skeleton", "SMPL_JOINT_NAMES") or _SMPL_NAMES
    parents = _import("smpl_fitting.skeleton", "SMPL_PARENTS") or _SMPL_PARENTS
    return tuple(names), tuple(int(p) for p in parents)


def bvh_arrays(fit: Fit) -> dict:
    """Fitted SMPL motion -> write_bvh's arguments: offsets from the rest joints (root: its rest position),
    rotations = the local axis-angle poses, root_trans = the pelvis' world position (rest + trans)."""
    raw = fit.raw
    poses = np.asarray(getattr(raw, "poses", fit.fields.get("poses")), dtype=np.float64)
    trans = np.asarray(getattr(raw, "trans", fit.fields.get("trans")), dtype=np.float64)
    rest = np.asarray(getattr(raw, "rest_joints", fit.fields.get("rest_joints")), dtype=np.float64)
    names, parents = smpl_tree()
    offsets = np.array([rest[j] if p < 0 else rest[j] - rest[p] for j, p in enumerate(parents)])
    return {"names": names, "parents": parents, "offsets": offsets, "rotations": poses,
            "root_trans": rest[0] + trans}


def write_bvh_for(path: Path, fit: Fit) -> str | None:
    """BVH from the fitted rotations. Returns None on success, else why it was skipped."""
    write_bvh = _import("backend.motion.bvh", "write_bvh")
    if write_bvh is None:
        return "the BVH writer (backend.motion.bvh) is not installed"
    if getattr(fit.raw, "rest_joints", fit.fields.get("rest_joints")) is None:
        return "the fit has no rest joints"
    a = bvh_arrays(fit)
    write_bvh(path, a["names"], a["parents"], a["offsets"], a["rotations"], a["root_trans"], fps=FPS)
    return None
