"""Read and validate motion files with numpy only (no bpy, no scipy, no torch).

Two inputs:
- the generator's motion ``.npz`` (DESIGN.md section 3): ``poses`` (T,24,3) SMPL local
  axis-angle in the HumanML3D y-up frame, ``trans`` (T,3), ``rest_joints`` (24,3), and optionally
  ``joints`` (T,22,3), ``betas``, ``fit_error_mm``, ``fps``, ``prompt``, ``seed``, ``retrieved``;
- a joints-only ``.npy`` (T,22,3) HumanML3D joints (y-up metres), or a ``.npz`` holding ``joints``
  but no ``poses``. It is turned into SMPL-style
  rotations by ``motion_from_joints``: a *swing-only* IK (no twist: a limb's roll about its own
  axis is not recoverable from joint positions and stays at the parent's), so joint positions are
  reproduced (up to bone-length variation) but hands/feet/head orientation is approximate.

Everything raises ``MotionFileError`` (a ValueError) with one clear message; nothing is
written anywhere.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from . import smpl_rig

DEFAULT_FPS = 20.0
#: The newest motion-file format this reader understands: a copy of backend.motion.motion_file.FORMAT_VERSION
#: (checked by tests/shared/test_shared_facts.py). A file without the field is version 1.
FORMAT_VERSION = 1


class MotionFileError(ValueError):
    """A motion file or motion dict that cannot be used (message says why)."""


def _where(source) -> str:
    return f"{source}: " if source else ""


_EXPECTED = {"poses": "(T, 24, 3)", "trans": "(T, 3)", "rest_joints": "(24, 3)"}


def _array(data, key, source, required=True, flat_tail=None):
    if key not in data or data[key] is None:
        if required:
            raise MotionFileError(f"{_where(source)}missing '{key}' (expected shape {_EXPECTED.get(key, '?')}); "
                                  f"found {sorted(data.keys())}")
        return None
    try:
        arr = np.asarray(data[key], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MotionFileError(f"{_where(source)}'{key}' is not numeric ({exc})") from None
    if flat_tail and arr.ndim == 2 and arr.shape[1] == int(np.prod(flat_tail)):
        arr = arr.reshape((arr.shape[0],) + tuple(flat_tail))
    return arr


def _metadata(motion, source):
    """(fps, prompt, seed, retrieved) from a motion mapping, with defaults."""
    fps = DEFAULT_FPS
    if motion.get("fps") is not None:
        try:
            fps = float(np.asarray(motion["fps"]).reshape(()))
        except (TypeError, ValueError):
            raise MotionFileError(f"{_where(source)}'fps' must be a single number") from None
        if not np.isfinite(fps) or fps <= 0:
            raise MotionFileError(f"{_where(source)}'fps' must be positive, got {fps}")
    prompt = ""
    if motion.get("prompt") is not None:
        p = np.asarray(motion["prompt"])
        prompt = str(p.reshape(()) if p.size == 1 else " ".join(map(str, p.ravel())))
    seed = None
    if motion.get("seed") is not None:
        try:
            seed = int(np.asarray(motion["seed"]).reshape(()))
        except (TypeError, ValueError):
            seed = None
    retrieved = []
    if motion.get("retrieved") is not None:
        retrieved = [str(x) for x in np.asarray(motion["retrieved"]).ravel()]
    return fps, prompt, seed, retrieved


def _check_version(motion, source) -> None:
    if "format_version" not in motion:
        return
    try:
        version = int(np.asarray(motion["format_version"]).reshape(()))
    except (TypeError, ValueError):
        raise MotionFileError(f"{_where(source)}'format_version' must be an integer") from None
    if version > FORMAT_VERSION:
        raise MotionFileError(f"{_where(source)}motion-file format {version} is newer than this add-on reads "
                              f"({FORMAT_VERSION}); update the ReMoMask add-on")


def validate_motion(motion, source=None) -> dict:
    """Check a motion mapping and return a clean dict (float64 arrays, python scalars).

    Keys of the result: poses (T,24,3), trans (T,3), rest_joints (24,3), joints (T,22,3) or None,
    betas (10,) or None, fit_error_mm (T,) or None, fps (float), prompt (str), seed (int or None),
    retrieved (list of str), num_frames (int).
    """
    if not hasattr(motion, "keys"):
        raise MotionFileError(f"{_where(source)}a motion must be a mapping of arrays, got {type(motion).__name__}")
    _check_version(motion, source)
    poses = _array(motion, "poses", source, flat_tail=(24, 3))
    if poses.ndim != 3 or poses.shape[1:] != (24, 3):
        raise MotionFileError(f"{_where(source)}'poses' must have shape (T, 24, 3), got {poses.shape}")
    T = poses.shape[0]
    if T < 1:
        raise MotionFileError(f"{_where(source)}the motion has no frames")
    trans = _array(motion, "trans", source)
    if trans.shape != (T, 3):
        raise MotionFileError(f"{_where(source)}'trans' must have shape ({T}, 3) to match 'poses', got {trans.shape}")
    rest = _array(motion, "rest_joints", source)
    if rest.shape != (24, 3):
        raise MotionFileError(f"{_where(source)}'rest_joints' must have shape (24, 3), got {rest.shape}")
    joints = _array(motion, "joints", source, required=False)
    if joints is not None and joints.shape != (T, 22, 3):
        raise MotionFileError(f"{_where(source)}'joints' must have shape ({T}, 22, 3), got {joints.shape}")
    betas = _array(motion, "betas", source, required=False)
    fit_err = _array(motion, "fit_error_mm", source, required=False)
    if fit_err is not None and fit_err.shape != (T,):
        raise MotionFileError(f"{_where(source)}'fit_error_mm' must have shape ({T},), got {fit_err.shape}")
    for key, arr in (("poses", poses), ("trans", trans), ("rest_joints", rest), ("joints", joints)):
        if arr is not None and not np.all(np.isfinite(arr)):
            raise MotionFileError(f"{_where(source)}'{key}' contains NaN or infinite values")

    fps, prompt, seed, retrieved = _metadata(motion, source)
    body = _body_mesh(motion, source)

    return {
        "poses": poses, "trans": trans, "rest_joints": rest, "joints": joints, "betas": betas,
        "fit_error_mm": fit_err, "fps": fps, "prompt": prompt, "seed": seed,
        "retrieved": retrieved, "num_frames": int(T), "body_mesh": body,
    }


def _body_mesh(motion, source):
    """The optional SMPL body (written by the backend when it fitted with the user's SMPL files):
    (vertices (V,3) y-up, faces (F,3) int, weights (V,24)), or None."""
    keys = ("body_vertices", "body_faces", "body_weights")
    present = [k for k in keys if motion.get(k) is not None]
    if not present:
        return None
    if len(present) != 3:
        raise MotionFileError(f"{_where(source)}the body mesh needs all of {', '.join(keys)}; "
                              f"found only {', '.join(present)}")
    v = _array(motion, "body_vertices", source)
    w = _array(motion, "body_weights", source)
    f = np.asarray(motion["body_faces"])
    if v.ndim != 2 or v.shape[1] != 3 or w.shape != (v.shape[0], 24):
        raise MotionFileError(f"{_where(source)}'body_vertices' must be (V, 3) and 'body_weights' (V, 24); "
                              f"got {v.shape} and {w.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer) or \
            (f.size and (f.min() < 0 or f.max() >= v.shape[0])):
        raise MotionFileError(f"{_where(source)}'body_faces' must be (F, 3) vertex indices below {v.shape[0]}")
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(w))):
        raise MotionFileError(f"{_where(source)}the body mesh contains NaN or infinite values")
    return v, f.astype(np.int64), w


def load_motion(path) -> dict:
    """Load and validate a motion ``.npz`` written by the generator (no pickles are loaded)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MotionFileError(f"{path}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise MotionFileError(f"{path}: not a readable motion .npz ({exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise MotionFileError(f"{path}: expected a .npz archive, found a single array "
                              "(use load_joints for a joints-only .npy)")
    try:
        with data:
            contents = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise MotionFileError(f"{path}: not a readable motion .npz ({exc})") from None
    _check_version(contents, path)
    if "poses" not in contents and "joints" in contents:
        # a joints-only archive (e.g. the generator before SMPL fitting): approximate rotations
        fps, prompt, seed, retrieved = _metadata(contents, path)
        motion = motion_from_joints(contents["joints"], fps=fps, prompt=prompt, source=path)
        motion["seed"], motion["retrieved"] = seed, retrieved
    else:
        motion = validate_motion(contents, source=path)
    motion["source"] = path
    return motion


def load_joints(path, fps: float = DEFAULT_FPS, rest_joints=None) -> dict:
    """Load a joints-only ``.npy`` (T, 22, 3), y-up metres, and turn it into a motion dict
    (swing-only IK, see ``motion_from_joints``)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MotionFileError(f"{path}: no such file")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise MotionFileError(f"{path}: not a readable .npy array ({exc})") from None
    if isinstance(arr, np.lib.npyio.NpzFile):
        arr.close()
        raise MotionFileError(f"{path}: this is a .npz archive; use load_motion")
    prompt = os.path.splitext(os.path.basename(path))[0]
    motion = motion_from_joints(arr, fps=fps, prompt=prompt, rest_joints=rest_joints, source=path)
    motion["source"] = path
    return motion


def load_any(path) -> dict:
    """``load_motion`` for .npz, ``load_joints`` for .npy."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext == ".npz":
        return load_motion(path)
    if ext == ".npy":
        return load_joints(path)
    raise MotionFileError(f"{path}: unsupported file type '{ext}' (expected .npz motion or .npy joints)")


# --------------------------------------------------------------------------- joints-only IK
def _unit(v):
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-9)


def _frame(up, lateral):
    """Orthonormal frames (..., 3, 3) with columns (x=lateral, y=up, z=x cross y)."""
    y = _unit(up)
    x = _unit(lateral - np.sum(lateral * y, -1, keepdims=True) * y)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def _swing(u, v):
    """Rotation matrices (..., 3, 3) taking unit vectors u to v by the shortest arc."""
    c = np.sum(u * v, -1, keepdims=True)
    axis = np.cross(u, v)
    q = np.concatenate([1.0 + c, axis], -1)
    anti = (1.0 + c[..., 0]) < 1e-8
    if np.any(anti):  # 180 degrees: any axis perpendicular to u
        ua = u[anti]
        perp = np.cross(ua, np.array([1.0, 0.0, 0.0]))
        bad = np.linalg.norm(perp, axis=-1) < 1e-6
        perp[bad] = np.cross(ua[bad], np.array([0.0, 1.0, 0.0]))
        q[anti] = np.concatenate([np.zeros((ua.shape[0], 1)), _unit(perp)], -1)
    return smpl_rig.quaternion_to_matrix(q)


#: Joints whose full orientation is taken from two directions: (joint, up child, left, right).
_FRAME_JOINTS = {0: (3, 1, 2), 9: (12, 13, 14)}
#: Joints whose rotation is the swing toward their single child.
_SWING_CHILD = {1: 4, 2: 5, 3: 6, 4: 7, 5: 8, 6: 9, 7: 10, 8: 11, 12: 15, 13: 16, 14: 17,
                16: 18, 17: 19, 18: 20, 19: 21}


def rest_from_joints(joints) -> np.ndarray:
    """A (24, 3) rest skeleton fitted to ``joints`` (T, 22, 3).

    Bones below a frame joint (pelvis -> hips/spine1, spine3 -> neck/collars) take their mean
    offset in that joint's local frame, placed in the template's rest frame, so the frame fit is
    exact for a rigid skeleton; every other bone takes the template's direction and the mean
    length from the data; hands keep the template offsets; feet on y = template foot height."""
    tpl = smpl_rig.TEMPLATE_REST_JOINTS
    rest = np.zeros((24, 3))
    frame_children = {}
    for k, (up, left, right) in _FRAME_JOINTS.items():
        f_pose = _frame(joints[:, up] - joints[:, k], joints[:, left] - joints[:, right])  # (T, 3, 3)
        f_tpl = _frame(tpl[up] - tpl[k], tpl[left] - tpl[right])
        for c in (up, left, right):
            local = np.einsum("tba,tb->ta", f_pose, joints[:, c] - joints[:, k]).mean(0)
            frame_children[c] = f_tpl @ local
    for j in range(1, 24):
        p = smpl_rig.SMPL_PARENTS[j]
        off = tpl[j] - tpl[p]
        if j in frame_children:
            off = frame_children[j]
        elif j < 22:
            length = float(np.mean(np.linalg.norm(joints[:, j] - joints[:, p], axis=-1)))
            off = _unit(off) * length
        rest[j] = rest[p] + off
    rest[:, 1] += tpl[:, 1].min() - rest[:, 1].min()
    return rest


def motion_from_joints(joints, fps: float = DEFAULT_FPS, prompt: str = "", rest_joints=None,
                       source=None) -> dict:
    """Approximate SMPL rotations for HumanML3D joints (T, 22, 3) y-up: swing-only IK.

    The pelvis and spine3 get full orientations from two directions each (spine + hip line,
    neck + collar line); every other joint with a child gets the shortest-arc rotation that
    points its bone at the child's observed position; end joints (feet, head, wrists, hands)
    keep their parent's orientation. No twist is recovered. Returns a motion dict like
    ``validate_motion``'s with ``joints`` set and ``approximate_rotations`` True.
    """
    j = np.asarray(joints, dtype=np.float64) if not isinstance(joints, np.ndarray) else joints.astype(np.float64)
    if j.ndim != 3 or j.shape[1:] != (22, 3):
        raise MotionFileError(f"{_where(source)}joints must have shape (T, 22, 3), got {j.shape}")
    if j.shape[0] < 1:
        raise MotionFileError(f"{_where(source)}the motion has no frames")
    if not np.all(np.isfinite(j)):
        raise MotionFileError(f"{_where(source)}joints contain NaN or infinite values")
    rest = rest_from_joints(j) if rest_joints is None else np.asarray(rest_joints, dtype=np.float64)
    T = j.shape[0]
    glob = np.tile(np.eye(3), (T, 24, 1, 1))
    local = np.tile(np.eye(3), (T, 24, 1, 1))
    for k in range(24):
        p = smpl_rig.SMPL_PARENTS[k]
        g_par = glob[:, p] if p >= 0 else np.tile(np.eye(3), (T, 1, 1))
        if k in _FRAME_JOINTS:
            up, left, right = _FRAME_JOINTS[k]
            f_pose = _frame(j[:, up] - j[:, k], j[:, left] - j[:, right])
            f_rest = _frame(rest[up] - rest[k], rest[left] - rest[right])
            glob[:, k] = f_pose @ f_rest.T
        elif k in _SWING_CHILD:
            c = _SWING_CHILD[k]
            u = _unit(np.einsum("tab,b->ta", g_par, rest[c] - rest[k]))
            v = _unit(j[:, c] - j[:, k])
            glob[:, k] = _swing(u, v) @ g_par
        else:
            glob[:, k] = g_par
        local[:, k] = np.swapaxes(g_par, -1, -2) @ glob[:, k]
    poses = smpl_rig.matrix_to_axis_angle(local)
    trans = j[:, 0] - rest[0]
    motion = validate_motion({"poses": poses, "trans": trans, "rest_joints": rest, "joints": j,
                              "fps": fps, "prompt": prompt}, source=source)
    motion["approximate_rotations"] = True
    return motion
