"""A deterministic stand-in generator for the server and CLI tests (no torch, no models).

Makes procedural walking-like joints (T, 22, 3), y-up, metres, HumanML3D joint order, quickly.
Environment knobs: REMOMASK_STANDIN_DELAY (seconds per stage, checked for cancel every 10 ms),
REMOMASK_STANDIN_FAIL=1 (generate raises), REMOMASK_STANDIN_LOAD_FAIL=1 (load raises),
REMOMASK_STANDIN_LOAD_DELAY (seconds load() takes), REMOMASK_STANDIN_STUCK (seconds generate() sleeps
ignoring cancel, like a long native model call).
"""

from __future__ import annotations

import json
import os
import time
import zlib
from pathlib import Path

import numpy as np

from backend.serving.generators import Cancelled, GeneratorError, Sample

# HumanML3D (SMPL-22) rest offsets from the parent, metres, y-up; parent indices.
PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]
OFFSETS = np.array([
    [0, 0.93, 0], [0.06, -0.09, 0], [-0.06, -0.09, 0], [0, 0.11, 0], [0, -0.38, 0], [0, -0.38, 0],
    [0, 0.14, 0], [0, -0.40, 0], [0, -0.40, 0], [0, 0.06, 0], [0, -0.05, 0.12], [0, -0.05, 0.12],
    [0, 0.21, 0], [0.08, 0.12, 0], [-0.08, 0.12, 0], [0, 0.09, 0.03], [0.10, 0.03, 0], [-0.10, 0.03, 0],
    [0.26, 0, 0], [-0.26, 0, 0], [0.25, 0, 0], [-0.25, 0, 0]], dtype=np.float32)
STAGES = ("text", "retrieval", "tokens", "residual", "decode")


def procedural_joints(frames: int, phase: float, speed: float) -> np.ndarray:
    t = np.arange(frames, dtype=np.float32) / 20.0
    swing = 0.35 * np.sin(2 * np.pi * 1.0 * t + phase)
    out = np.zeros((frames, 22, 3), np.float32)
    for j, p in enumerate(PARENTS):
        off = np.broadcast_to(OFFSETS[j], (frames, 3)).copy()
        if j in (4, 7, 10, 16, 18, 20):          # left leg / arm swing forward-back (z)
            off[:, 2] += swing * abs(OFFSETS[j, 1] or OFFSETS[j, 0])
        if j in (5, 8, 11, 17, 19, 21):
            off[:, 2] -= swing * abs(OFFSETS[j, 1] or OFFSETS[j, 0])
        out[:, j] = off if p < 0 else out[:, p] + off
    out[:, :, 2] += (speed * t)[:, None]
    return out


class StandIn:
    def __init__(self):
        self.models_dir = None
        self.delay = float(os.environ.get("REMOMASK_STANDIN_DELAY", "0"))

    def load(self, models_dir, device):
        time.sleep(float(os.environ.get("REMOMASK_STANDIN_LOAD_DELAY", "0")))
        if os.environ.get("REMOMASK_STANDIN_LOAD_FAIL"):
            raise GeneratorError(f"stand-in: no models in {models_dir}")
        self.models_dir = Path(models_dir)

    def describe(self):
        return {"kind": "standin", "path": str(self.models_dir)}

    def _wait(self, cancelled):
        end = time.monotonic() + self.delay
        while time.monotonic() < end:
            if cancelled():
                raise Cancelled()
            time.sleep(0.01)

    def generate(self, request, progress, cancelled):
        if os.environ.get("REMOMASK_STANDIN_FAIL"):
            raise RuntimeError("stand-in failure for tests")
        time.sleep(float(os.environ.get("REMOMASK_STANDIN_STUCK", "0")))
        lengths = request.lengths or [40 + 4 * (len(p) % 20) for p in request.prompts]
        for k, stage in enumerate(STAGES):
            progress(stage, k / len(STAGES))
            self._wait(cancelled)
        out = []
        for p, (prompt, frames) in enumerate(zip(request.prompts, lengths)):
            h = zlib.crc32(prompt.encode())
            for i in range(request.samples):
                seed = request.seed + i
                rng = np.random.default_rng([h, seed])
                joints = procedural_joints(frames, rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.5))
                feats = np.zeros((frames, 263), np.float32)
                feats[:, :3] = rng.standard_normal(3)
                out.append(Sample(prompt=prompt, sample_index=i, seed=seed, joints=joints, features=feats,
                                  length=frames, retrieved=[f"a person walks ({prompt[:20]})"]
                                  if request.use_retrieval else []))
        progress("decode", 1.0)
        return out


def make():
    return StandIn()


class FastFit:
    """Shaped like smpl_fitting.FitResult: zero local rotations on a rest skeleton taken from frame 0.
    ``fit_args`` (written to the motion file) records the grounding arguments it was called with."""

    def __init__(self, joints, ground_feet=True, contacts=None):
        self.fit_args = json.dumps({"ground_feet": bool(ground_feet),
                                    "contacts": None if contacts is None else list(np.shape(contacts))})
        j = np.asarray(joints, np.float64)
        rest = np.concatenate([j[0], j[0, 20:22] + [[0.08, 0, 0], [-0.08, 0, 0]]])
        self.rest_joints = rest
        self.poses = np.zeros((len(j), 24, 3))
        self.trans = j[:, 0] - rest[0]
        self.betas = np.zeros(10)
        fitted = rest[None, :22] + self.trans[:, None]
        self.fit_error_mm = np.linalg.norm(fitted - j, axis=-1).mean(axis=1) * 1000.0

    def as_npz_fields(self):
        return {**{k: np.asarray(getattr(self, k), np.float32)
                   for k in ("poses", "trans", "betas", "rest_joints", "fit_error_mm")},
                "fit_args": self.fit_args}


def fast_fit(joints, ground_feet=True, contacts=None, **kwargs):
    """A quick stand-in for smpl_fitting.fit_motion (keeps server tests fast whatever is installed)."""
    return FastFit(joints, ground_feet, contacts)
