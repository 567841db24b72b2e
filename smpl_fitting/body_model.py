"""Body models with one interface: SMPL through ``smplx`` (user's model files) or skeleton-only FK.

``smplx`` (and the SMPL files) carry the Max Planck non-commercial license; ``smplx`` is imported lazily, only
when the user points to SMPL model files, and none of its code is copied here.

SMPL joints are ``J_regressor @ (v_template + shapedirs . betas)`` posed by rigid forward kinematics (pose
blend shapes move vertices, not joints), so with the rest joints ``J(betas) = J0 + Jdirs . betas`` extracted
from the loaded model, the fit runs on our own FK and reproduces ``smplx``'s joints exactly.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np

from . import skeleton as sk
from .errors import FitError

NUM_BETAS = 10


class SkeletonBody:
    """Skeleton-only body: fixed rest joints, no shape space."""

    kind = "skeleton"
    has_shape = False

    def __init__(self, rest_joints: np.ndarray):
        rest = np.asarray(rest_joints, dtype=np.float64)
        if rest.shape != (sk.NUM_SMPL_JOINTS, 3) or not np.all(np.isfinite(rest)):
            raise FitError(f"rest_joints must be a finite (24, 3) array, got shape {rest.shape}")
        self.j0 = rest
        self.jdirs = np.zeros((sk.NUM_SMPL_JOINTS, 3, NUM_BETAS))

    def rest_joints(self, betas: np.ndarray | None = None) -> np.ndarray:
        if betas is None:
            return self.j0.copy()
        return self.j0 + self.jdirs @ np.asarray(betas, dtype=np.float64)[:NUM_BETAS]

    def joints(self, poses: np.ndarray, trans: np.ndarray, betas: np.ndarray | None = None) -> np.ndarray:
        """World joints (T, 24, 3) of local axis-angle ``poses`` (T, 24, 3) and ``trans`` (T, 3)."""
        return sk.forward_kinematics(self.rest_joints(betas), poses, trans)


def find_smpl_file(model_dir: str | os.PathLike, gender: str = "neutral") -> Path:
    """The ``SMPL_<GENDER>.pkl`` that ``smplx`` would read for ``model_dir`` (the folder, its ``smpl/``
    sub-folder, or the file itself)."""
    g = str(gender).lower()
    if g not in ("neutral", "male", "female"):
        raise FitError(f"gender must be 'neutral', 'male' or 'female', got {gender!r}")
    path = Path(model_dir).expanduser()
    if path.is_file():
        return path
    name = f"SMPL_{g.upper()}.pkl"
    tried = [path / name, path / "smpl" / name]
    for cand in tried:
        if cand.is_file():
            return cand
    if not path.exists():
        raise FitError(f"SMPL model folder {str(path)!r} does not exist")
    raise FitError(f"no SMPL model file in {str(path)!r}: looked for " + ", ".join(str(c) for c in tried))


class SMPLBody:
    """SMPL body model read from the user's files through ``smplx`` (imported here, lazily)."""

    kind = "smpl"
    has_shape = True

    def __init__(self, model_dir: str | os.PathLike, gender: str = "neutral"):
        path = find_smpl_file(model_dir, gender)
        try:
            import smplx  # noqa: PLC0415  (lazy on purpose: non-commercial license, optional dependency)
            import torch  # noqa: PLC0415
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise FitError(f"SMPL model files need the 'smplx' package (pip install smplx): {exc}") from exc
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning for 10-beta files
                model = smplx.SMPL(str(path), gender=str(gender).lower(), num_betas=NUM_BETAS)
        except FitError:
            raise
        except Exception as exc:  # corrupt file, chumpy pickles, wrong layout
            raise FitError(f"could not load SMPL model {str(path)!r}: {type(exc).__name__}: {exc}") from exc
        self.path = path
        self.model = model
        self._torch = torch
        with torch.no_grad():
            v_t = model.v_template.double()                        # (V, 3)
            dirs = model.shapedirs.double()[..., :NUM_BETAS]       # (V, 3, B)
            jreg = model.J_regressor.double()                      # (24, V)
            if jreg.shape[0] != sk.NUM_SMPL_JOINTS:
                raise FitError(f"SMPL model {str(path)!r} has {jreg.shape[0]} joints, expected 24")
            self.j0 = (jreg @ v_t).numpy()
            jd = torch.einsum("jv,vcb->jcb", jreg, dirs).numpy()
        self.jdirs = np.zeros((sk.NUM_SMPL_JOINTS, 3, NUM_BETAS))
        self.jdirs[..., : jd.shape[-1]] = jd
        parents = model.parents.numpy().tolist()
        if [int(p) for p in parents[1:]] != list(sk.SMPL_PARENTS[1:]):
            raise FitError(f"SMPL model {str(path)!r} has an unexpected kinematic tree {parents}")

    def rest_joints(self, betas: np.ndarray | None = None) -> np.ndarray:
        if betas is None:
            return self.j0.copy()
        return self.j0 + self.jdirs @ np.asarray(betas, dtype=np.float64)[:NUM_BETAS]

    def rest_mesh(self, betas: np.ndarray | None = None):
        """The body at the zero pose with this shape: vertices (V, 3) y-up metres, consistent with
        ``rest_joints(betas)`` (same template and shape directions), faces (F, 3) and the skinning weights
        (V, 24). This is data from the user's own SMPL files (their license applies to it)."""
        b = np.zeros(NUM_BETAS) if betas is None else np.asarray(betas, dtype=np.float64)[:NUM_BETAS]
        m = self.model
        verts = m.v_template.double().numpy() + np.einsum("vcb,b->vc", m.shapedirs.double().numpy()[..., :NUM_BETAS],
                                                         b[: m.shapedirs.shape[-1]])
        faces = np.asarray(m.faces, dtype=np.int64).reshape(-1, 3)
        weights = m.lbs_weights.double().numpy()
        return verts, faces, weights

    def smplx_forward(self, poses: np.ndarray, trans: np.ndarray, betas: np.ndarray | None = None,
                      return_vertices: bool = False):
        """Run ``smplx`` itself: joints (T, 24, 3) (and vertices (T, 6890, 3) if asked)."""
        torch = self._torch
        poses = np.asarray(poses, dtype=np.float32).reshape(-1, sk.NUM_SMPL_JOINTS, 3)
        t = poses.shape[0]
        b = np.zeros(NUM_BETAS, np.float32) if betas is None else np.asarray(betas, np.float32)[:NUM_BETAS]
        with torch.no_grad():
            out = self.model(global_orient=torch.from_numpy(poses[:, 0]),
                             body_pose=torch.from_numpy(poses[:, 1:].reshape(t, -1)),
                             betas=torch.from_numpy(np.repeat(b[None], t, 0)),
                             transl=torch.from_numpy(np.asarray(trans, np.float32).reshape(t, 3)))
        joints = out.joints[:, : sk.NUM_SMPL_JOINTS].double().numpy()
        if return_vertices:
            return joints, out.vertices.double().numpy()
        return joints

    def joints(self, poses: np.ndarray, trans: np.ndarray, betas: np.ndarray | None = None) -> np.ndarray:
        return sk.forward_kinematics(self.rest_joints(betas), poses, trans)


_CACHE: dict = {}


def load_smpl_body(smpl_model_dir: str | os.PathLike, gender: str = "neutral") -> SMPLBody:
    """SMPLBody, cached per (file, gender, modification time): the server loads the model once."""
    path = find_smpl_file(smpl_model_dir, gender).resolve()
    key = (str(path), str(gender).lower(), path.stat().st_mtime_ns)
    body = _CACHE.get(key)
    if body is None:
        body = SMPLBody(path, gender)
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = body
    return body


def load_body_model(smpl_model_dir: str | os.PathLike | None, gender: str = "neutral",
                    joints: np.ndarray | None = None):
    """SMPLBody for a model folder, else a SkeletonBody built from ``joints``' own proportions."""
    if smpl_model_dir is not None and str(smpl_model_dir) != "":
        return load_smpl_body(smpl_model_dir, gender)
    if joints is None:
        return SkeletonBody(sk.TEMPLATE_REST_JOINTS)
    from .ik import rest_from_joints  # noqa: PLC0415
    return SkeletonBody(rest_from_joints(joints))
