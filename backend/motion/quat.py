"""Small vectorised quaternion helpers (numpy, float64, scalar-first ``(w, x, y, z)``, Hamilton product).

All functions broadcast over leading dimensions. They exist because the HumanML3D feature code needs the
exact minimal-arc "rotation between two vectors" and scalar-first products; for anything else
``scipy.spatial.transform.Rotation`` is used.
"""

from __future__ import annotations

import numpy as np

IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


def qmul(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Hamilton product q * r (apply r first, then q)."""
    q = np.asarray(q, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    w0, x0, y0, z0 = np.moveaxis(q, -1, 0)
    w1, x1, y1, z1 = np.moveaxis(r, -1, 0)
    return np.stack(
        (
            w0 * w1 - x0 * x1 - y0 * y1 - z0 * z1,
            w0 * x1 + x0 * w1 + y0 * z1 - z0 * y1,
            w0 * y1 - x0 * z1 + y0 * w1 + z0 * x1,
            w0 * z1 + x0 * y1 - y0 * x1 + z0 * w1,
        ),
        axis=-1,
    )


def qinv(q: np.ndarray) -> np.ndarray:
    """Conjugate (the inverse of a unit quaternion)."""
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def qnormalize(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4) (broadcasting)."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    u = q[..., 1:]
    w = q[..., :1]
    uv = np.cross(u, v)
    uuv = np.cross(u, uv)
    return v + 2.0 * (w * uv + uuv)


def qbetween(v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
    """The minimal-arc unit quaternion rotating direction v0 onto direction v1 (w >= 0).

    For exactly opposite directions (where the minimal arc is not unique) a half turn about an axis
    perpendicular to v0 is returned instead of NaN.
    """
    v0 = np.asarray(v0, dtype=np.float64)
    v1 = np.asarray(v1, dtype=np.float64)
    v0, v1 = np.broadcast_arrays(v0, v1)
    axis = np.cross(v0, v1)
    w = np.sqrt((v0**2).sum(-1) * (v1**2).sum(-1)) + (v0 * v1).sum(-1)
    q = np.concatenate([w[..., None], axis], axis=-1)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    scale = np.sqrt((v0**2).sum(-1) * (v1**2).sum(-1))[..., None]
    bad = (n <= 1e-9 * np.maximum(scale, 1e-300))[..., 0]
    if np.any(bad):
        # opposite vectors: rotate by pi about any axis perpendicular to v0
        a = v0[bad]
        trial = np.where(np.abs(a[:, :1]) < 0.9 * np.linalg.norm(a, axis=-1, keepdims=True),
                         np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
        perp = np.cross(a, trial)
        perp /= np.linalg.norm(perp, axis=-1, keepdims=True)
        q = q.copy()
        q[bad] = np.concatenate([np.zeros((len(a), 1)), perp], axis=-1)
        n = np.linalg.norm(q, axis=-1, keepdims=True)
    return q / n


def qyaw(half_angle: np.ndarray) -> np.ndarray:
    """Quaternion (cos a, 0, sin a, 0): a rotation by 2a about +Y."""
    a = np.asarray(half_angle, dtype=np.float64)
    z = np.zeros_like(a)
    return np.stack([np.cos(a), z, np.sin(a), z], axis=-1)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) -> (..., 3, 3) rotation matrices (q need not be normalised)."""
    q = np.asarray(q, dtype=np.float64)
    w, x, y, z = np.moveaxis(q, -1, 0)
    s = 2.0 / (q * q).sum(-1)
    m = np.stack(
        (
            1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
            s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
            s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
        ),
        axis=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def quat_to_cont6d(q: np.ndarray) -> np.ndarray:
    """(..., 4) -> (..., 6): the first two columns of the rotation matrix, column 0 then column 1."""
    m = quat_to_matrix(q)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def cont6d_to_matrix(d6: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt; the inverse of ``quat_to_cont6d`` for rotations."""
    d6 = np.asarray(d6, dtype=np.float64)
    x = d6[..., 0:3] / np.linalg.norm(d6[..., 0:3], axis=-1, keepdims=True)
    z = np.cross(x, d6[..., 3:6])
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)
