"""Mean/std normalisation of 263-d motion features (HumanML3D conventions; numpy, torch by duck typing).

``fit_normalizer`` computes the statistics the way the HumanML3D mean/variance script does: the mean
per dimension, the (population) standard deviation per dimension, and then every std *group* replaced by
its average:

    [0:1] root rotation velocity | [1:3] root xz velocity | [3:4] root height | [4:67] ric positions |
    [67:193] 6D rotations | [193:259] joint velocities | [259:263] foot contacts

The root groups (the first three) and the foot-contact group are then divided by ``feat_bias``: 1.0
gives HumanML3D's own ``Std.npy``; 5.0 gives what MoMask-family VQ training writes to its ``meta/std.npy``
(the root and contact dimensions weighted up five times).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.atomic import atomic_write_stream

from .skeleton import FEATURE_DIM, FEATURE_SLICES

# (slice, scaled by feat_bias?) in the order of the reference script
STD_GROUPS = (
    (FEATURE_SLICES["root_rot_velocity"], True),
    (FEATURE_SLICES["root_linear_velocity"], True),
    (FEATURE_SLICES["root_y"], True),
    (FEATURE_SLICES["ric"], False),
    (FEATURE_SLICES["rot6d"], False),
    (FEATURE_SLICES["local_velocity"], False),
    (FEATURE_SLICES["foot_contact"], True),
)


class NormalizerError(ValueError):
    """Bad or missing normalisation statistics."""


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "new_tensor")


def _check_stats(mean, std, where: str = "") -> tuple[np.ndarray, np.ndarray]:
    where = f" ({where})" if where else ""
    mean = np.asarray(mean)
    std = np.asarray(std)
    if mean.ndim != 1 or std.ndim != 1 or mean.shape != std.shape or mean.shape[0] == 0:
        raise NormalizerError(f"mean and std must be equal-length 1-D arrays; got {mean.shape} and {std.shape}{where}")
    if not (np.issubdtype(mean.dtype, np.number) and np.issubdtype(std.dtype, np.number)):
        raise NormalizerError(f"mean and std must be numeric; got {mean.dtype} and {std.dtype}{where}")
    if not (np.isfinite(mean).all() and np.isfinite(std).all()):
        raise NormalizerError(f"mean/std contain NaN or infinite values{where}")
    if (std <= 0).any():
        bad = np.flatnonzero(std <= 0)[:5].tolist()
        raise NormalizerError(f"std must be > 0 everywhere; dims {bad}... are not{where}")
    return mean.astype(np.float32), std.astype(np.float32)


class Normalizer:
    """``normalize(x) = (x - mean) / std``; ``denormalize(x) = x * std + mean`` over the last axis.

    Works on numpy arrays (result float32 unless x is float64) and on torch tensors (result on x's
    device and dtype) without importing torch.
    """

    def __init__(self, mean, std):
        self.mean, self.std = _check_stats(mean, std)

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def _stats_like(self, x):
        if x.shape[-1] != self.dim:
            raise ValueError(f"last dimension must be {self.dim}; got shape {tuple(x.shape)}")
        if _is_torch(x):
            return x.new_tensor(self.mean), x.new_tensor(self.std)
        if np.asarray(x).dtype == np.float64:
            return self.mean.astype(np.float64), self.std.astype(np.float64)
        return self.mean, self.std

    def normalize(self, x):
        if not _is_torch(x):
            x = np.asarray(x)
            if x.dtype != np.float64:
                x = x.astype(np.float32)
        mean, std = self._stats_like(x)
        return (x - mean) / std

    def denormalize(self, x):
        if not _is_torch(x):
            x = np.asarray(x)
            if x.dtype != np.float64:
                x = x.astype(np.float32)
        mean, std = self._stats_like(x)
        return x * std + mean

    @classmethod
    def load(cls, directory) -> "Normalizer":
        """Read ``mean.npy`` and ``std.npy`` (or HumanML3D's ``Mean.npy`` / ``Std.npy``) from a folder."""
        d = Path(directory)
        if not d.is_dir():
            raise FileNotFoundError(f"normalizer folder not found: {d}")
        arrays = []
        for name in ("mean", "std"):
            candidates = [d / f"{name}.npy", d / f"{name.capitalize()}.npy"]
            path = next((p for p in candidates if p.is_file()), None)
            if path is None:
                raise FileNotFoundError(f"{d} has no {name}.npy (nor {name.capitalize()}.npy)")
            try:
                arrays.append(np.load(path, allow_pickle=False))
            except Exception as e:  # corrupt file, pickled object, ...
                raise NormalizerError(f"cannot read {path}: {e}") from e
        mean, std = _check_stats(arrays[0], arrays[1], where=str(d))
        return cls(mean, std)

    def save(self, directory) -> None:
        """Write ``mean.npy`` and ``std.npy`` into an existing folder (each file atomically)."""
        d = Path(directory)
        if not d.is_dir():
            raise FileNotFoundError(f"folder not found: {d}")
        for name, arr in (("mean", self.mean), ("std", self.std)):
            atomic_write_stream(d / f"{name}.npy", lambda fh, arr=arr: np.save(fh, arr), make_parents=False)

    def __repr__(self) -> str:
        return f"Normalizer(dim={self.dim})"


def fit_normalizer(feature_arrays, feat_bias: float = 1.0) -> Normalizer:
    """Fit mean/std over a list of (T_i, 263) feature arrays (all frames pooled), HumanML3D style.

    Arrays containing NaN are skipped, like the reference script does; an error is raised if nothing
    is left. ``feat_bias`` divides the root and foot-contact std groups (see the module docstring).
    """
    if feat_bias <= 0 or not np.isfinite(feat_bias):
        raise ValueError(f"feat_bias must be a positive number; got {feat_bias}")
    total = None
    n = 0
    kept = []
    for i, a in enumerate(feature_arrays):
        a = np.asarray(a, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != FEATURE_DIM:
            raise ValueError(f"feature array {i} has shape {a.shape}; expected (T, {FEATURE_DIM})")
        if np.isnan(a).any() or not np.isfinite(a).all():
            continue
        kept.append(a)
        total = a.sum(0) if total is None else total + a.sum(0)
        n += a.shape[0]
    if n == 0:
        raise ValueError("no usable frames to fit a normalizer on (empty input or every array had NaN)")
    mean = total / n
    var = sum(((a - mean) ** 2).sum(0) for a in kept) / n
    std = np.sqrt(var)
    for sl, biased in STD_GROUPS:
        std[sl] = std[sl].mean() / (feat_bias if biased else 1.0)
    if (std <= 0).any():
        # a group that never varies (e.g. all contacts equal) would divide by zero; use 1 there
        std[std <= 0] = 1.0
    return Normalizer(mean, std)
