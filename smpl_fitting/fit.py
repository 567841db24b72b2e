"""fit_motion: HumanML3D joints (T, 22, 3) -> SMPL pose parameters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import skeleton as sk
from .body_model import NUM_BETAS, SkeletonBody, load_body_model
from .errors import FitError
from .ik import continuous_rotvecs, solve_ik

FPS = 20.0


@dataclass
class FitResult:
    poses: np.ndarray         # (T, 24, 3) local axis-angle, joint 0 = root orientation (y-up)
    trans: np.ndarray         # (T, 3) pelvis at rest_joints[0] + trans
    betas: np.ndarray         # (10,)
    rest_joints: np.ndarray   # (24, 3) zero-pose (T-pose) joints
    fit_error_mm: np.ndarray  # (T,) mean distance of the 22 fitted joints to the input
    joints: np.ndarray        # (T, 24, 3) fitted world joints
    model: str = "skeleton"   # "smpl" (fitted with SMPL files) or "skeleton"
    #: With SMPL files: (vertices (V,3), faces (F,3), weights (V,24)) of the shaped body at the zero pose.
    body_mesh: tuple | None = None
    #: What the foot grounding did (smpl_fitting.ground.GroundInfo), None when it was switched off.
    ground: object | None = None

    def as_npz_fields(self) -> dict:
        """The fields added to a motion .npz (float32 arrays, plus the body kind as a string)."""
        return {
            "poses": self.poses.astype(np.float32),
            "trans": self.trans.astype(np.float32),
            "betas": self.betas.astype(np.float32),
            "rest_joints": self.rest_joints.astype(np.float32),
            "fit_error_mm": self.fit_error_mm.astype(np.float32),
            "fit_model": np.array(self.model),
            **({} if self.body_mesh is None else {
                "body_vertices": np.asarray(self.body_mesh[0], np.float32),
                "body_faces": np.asarray(self.body_mesh[1], np.int32),
                "body_weights": np.asarray(self.body_mesh[2], np.float32),
            }),
        }


def validate_joints(joints) -> np.ndarray:
    """(T, 22, 3) finite float array, or FitError."""
    try:
        arr = np.asarray(joints, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FitError(f"joints must be a numeric array of shape (T, 22, 3): {exc}") from exc
    if arr.ndim != 3 or arr.shape[1:] != (sk.NUM_HML_JOINTS, 3):
        raise FitError(f"joints must have shape (T, 22, 3) (HumanML3D, y-up, metres), got {arr.shape}")
    if arr.shape[0] == 0:
        raise FitError("joints have zero frames")
    bad = ~np.all(np.isfinite(arr), axis=(1, 2))
    if bad.any():
        frames = np.flatnonzero(bad)
        raise FitError(f"joints contain NaN or inf in {len(frames)} frame(s), first at frame {int(frames[0])}")
    span = np.ptp(arr.reshape(-1, 3), axis=0).max()
    if span > 1e3:
        raise FitError(f"joints span {span:.0f} units; expected metres (HumanML3D)")
    if arr.shape[0] and np.allclose(arr, arr[:, :1]):
        raise FitError("all joints coincide; not a skeleton")
    return arr


def validate_contacts(contacts, frames: int) -> np.ndarray | None:
    """None, or the generator's foot-contact predictions as a finite (T, 4) float array (a (T-1, 4) array, the
    HumanML3D feature layout, gets its last row repeated); FitError otherwise."""
    if contacts is None:
        return None
    try:
        c = np.asarray(contacts, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FitError(f"contacts must be a numeric array of shape (T, 4): {exc}") from exc
    if c.ndim != 2 or c.shape[1] != 4 or c.shape[0] not in (frames, frames - 1) or c.shape[0] == 0:
        raise FitError(f"contacts must have shape ({frames}, 4) (left ankle, left foot, right ankle, right foot), "
                       f"got {c.shape}")
    if not np.all(np.isfinite(c)):
        raise FitError("contacts contain NaN or inf")
    if c.shape[0] == frames - 1:
        c = np.concatenate([c, c[-1:]])
    return c


def fit_motion(joints: np.ndarray, *, smpl_model_dir: str | None = None, gender: str = "neutral",
               refine: bool = True, foot_lock: bool = True, fit_betas: bool = False, device: str = "cpu",
               progress=None, iterations: int = 25, ground_feet: bool = True, contacts=None) -> FitResult:
    """Fit SMPL pose parameters to HumanML3D joints (T, 22, 3) (y-up, metres, 20 fps).

    ``smpl_model_dir``: the user's SMPL folder (``SMPL_NEUTRAL.pkl`` in it or in its ``smpl/``), read through
    ``smplx``; without it the rest skeleton is built from the input's own proportions. ``progress`` is called
    as ``progress(stage, fraction)``. Raises FitError (a ValueError) on bad input or a bad model folder.

    ``ground_feet`` (default on): the fitted feet stand on the floor y = 0, feet in contact touch it (and, with
    ``foot_lock``, stay in place), by pelvis height and leg IK (``smpl_fitting.ground``); off, the fit follows
    the input joints only (and ``foot_lock`` is the refinement's soft foot-locking term, as before).
    ``contacts``: the generator's foot-contact predictions (T, 4) for left ankle, left foot, right ankle,
    right foot (HumanML3D feature channels 259:263), used with the contacts detected from the joints.
    """
    arr = validate_joints(joints)
    contacts = validate_contacts(contacts, arr.shape[0])

    def report(stage, frac):
        if progress is not None:
            progress(stage, float(frac))

    report("body", 0.0)
    body = load_body_model(smpl_model_dir, gender, arr)
    betas = np.zeros(NUM_BETAS)
    if fit_betas and body.has_shape:
        from .optimize import fit_betas_to_lengths  # noqa: PLC0415
        betas = fit_betas_to_lengths(arr, body.j0, body.jdirs)
    rest = body.rest_joints(betas)
    report("ik", 0.0)
    ik = solve_ik(arr, rest)
    local, trans = ik.local_mats, ik.trans
    report("ik", 1.0)
    if refine:
        from .optimize import refine as run_refine  # noqa: PLC0415
        local, trans, betas, rest = run_refine(
            arr, body.j0 if body.has_shape else rest, local, trans,
            jdirs=body.jdirs if body.has_shape else None, betas=betas,
            fit_betas=bool(fit_betas and body.has_shape), foot_lock=foot_lock and not ground_feet, fps=FPS,
            iterations=iterations, device=device, progress=progress)
        if not body.has_shape:
            rest = body.rest_joints()
    info = None
    if ground_feet:
        from .ground import ground_fit  # noqa: PLC0415
        report("ground", 0.0)
        local, trans, info = ground_fit(rest, local, trans, arr, contacts, lock=foot_lock, fps=FPS)
        report("ground", 1.0)
    poses = continuous_rotvecs(local)
    fitted = sk.forward_kinematics(rest, poses, trans)
    err = np.linalg.norm(fitted[:, : sk.NUM_HML_JOINTS] - arr, axis=-1).mean(axis=1) * 1000.0
    report("done", 1.0)
    mesh = body.rest_mesh(betas) if hasattr(body, "rest_mesh") else None
    return FitResult(poses=poses, trans=trans, betas=np.asarray(betas, float), rest_joints=rest,
                     fit_error_mm=err, joints=fitted, model=getattr(body, "kind", "skeleton"), body_mesh=mesh,
                     ground=info)


__all__ = ["FitResult", "FitError", "fit_motion", "validate_joints", "SkeletonBody"]
