"""Which tokens drive which joints, measured.

The six 2D tokens of a time step are not body parts: the RVQ-VAE's 2D branch pads the 22 joints (HumanML3D
order, which interleaves legs, spine and arms) to 24 and halves that axis twice with overlapping convolutions,
so each token column covers an overlapping block of joint *indices*, and the decoder mixes them again. So the
table is measured: for each clip and each token column (and the 1D tokens), the tokens of the middle third of the
clip are replaced by random codes on every residual layer, the motion is decoded, and the mean change of every
joint's bone vector (joint minus its parent, in the body frame of the features' root-relative "ric" positions;
the root: its position, i.e. its height) over the replaced frames is recorded. Bone vectors, not positions: a
token that moves the pelvis moves every root-relative position, but it articulates only the joints it drives,
and the per-joint composite (``bodypart``) takes bone directions. ``blocks[k][j]`` is that change (metres) for
token column k and joint j, averaged over clips and draws.

A body part's columns are those that carry at least ``SHARE`` of the part's joints' total change. The
shipped table for the starter model is ``token_map.json`` next to this file (``python -m
scripts/measure_token_map.py`` rewrites it); other models are measured once when first needed (a few decodes) and
kept with the loaded pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from backend.motion.skeleton import JOINT_NAMES, PARENTS

from . import tokens as T

__all__ = ["measure", "blocks_for", "load_table", "table_for", "SHARE", "TABLE_PATH"]

TABLE_PATH = Path(__file__).with_name("token_map.json")
SHARE = 0.1
N_COLUMNS = 6


def _clips(n: int, seed: int) -> list[np.ndarray]:
    from backend.editing.source import source_from_joints
    from backend.synthetic import generate_clip

    fams = ["walk", "wave", "jump_in_place", "kick", "squat", "punch", "raise_arms", "sit_down", "clap", "turn"]
    out = []
    for i in range(n):
        c = generate_clip(fams[i % len(fams)], seed + i)
        out.append(source_from_joints(c.joints).features)
    return out


def _body(features: np.ndarray) -> np.ndarray:
    """(T, 263) -> (T, 22, 3): each joint's bone vector (from its parent) in the body frame; the root's row is
    its position (0, height, 0)."""
    t = len(features)
    pos = np.zeros((t, 22, 3), np.float64)
    pos[:, 0, 1] = features[:, 3]
    pos[:, 1:] = features[:, 4:67].reshape(t, 21, 3)
    out = pos.copy()
    out[:, 1:] -= pos[:, list(PARENTS[1:])]
    return out


@torch.inference_mode()
def measure(pipe, clips: list | None = None, n_clips: int = 8, draws: int = 2, seed: int = 0) -> dict:
    """The token -> joint table of ``pipe``'s RVQ-VAE (see the module doc). ``clips``: de-normalised features
    (T, 263) (default: ``n_clips`` synthetic clips of varied actions)."""
    clips = _clips(n_clips, seed) if clips is None else clips
    rng = np.random.default_rng(seed)
    vq = pipe.models.vq
    n2, n1 = vq.num_code2d, vq.num_code1d
    tab = np.zeros((N_COLUMNS + 1, 22))
    count = 0
    for f in clips:
        n = min(len(f), 196) // 4 * 4
        if n < 24:
            continue
        ids1d, ids2d = T.encode(pipe, f[:n])
        k = n // 4
        t0, t1 = k // 3, max(k // 3 + 1, 2 * k // 3)
        base = _body(T.decode(pipe, ids1d, ids2d)[0])
        for _ in range(draws):
            for col in range(N_COLUMNS + 1):
                a, b = ids1d.clone(), ids2d.clone()
                if col < N_COLUMNS:
                    rnd = rng.integers(0, n2, size=b[0, t0:t1, col].shape)
                    b[0, t0:t1, col] = torch.as_tensor(rnd, device=b.device)
                else:
                    rnd = rng.integers(0, n1, size=a[0, t0:t1].shape)
                    a[0, t0:t1] = torch.as_tensor(rnd, device=a.device)
                pert = _body(T.decode(pipe, a, b)[0])
                d = np.linalg.norm(pert - base, axis=-1)[t0 * 4:t1 * 4].mean(0)
                tab[col] += d
            count += 1
    if count == 0:
        raise ValueError("no clip of at least 24 frames to measure on")
    tab /= count
    return {"blocks": np.round(tab[:N_COLUMNS], 5).tolist(), "aux": np.round(tab[N_COLUMNS], 5).tolist(),
            "joints": list(JOINT_NAMES), "clips": len(clips), "draws": draws, "seed": seed}


def blocks_for(table: dict, joints, share: float = SHARE) -> list[int]:
    """The token columns carrying at least ``share`` of the displacement of ``joints`` (indices)."""
    tab = np.asarray(table["blocks"], np.float64)[:, list(joints)].sum(1)
    frac = tab / max(tab.sum(), 1e-12)
    cols = [int(k) for k in np.flatnonzero(frac >= share)]
    return cols or [int(frac.argmax())]


def load_table(path=TABLE_PATH) -> dict:
    return json.loads(Path(path).read_text())


def table_for(pipe) -> dict:
    """The table of ``pipe``'s model: the shipped one for the starter, else measured once and cached."""
    cached = getattr(pipe, "_token_map", None)
    if cached is not None:
        return cached
    table = None
    if pipe.info.get("kind") == "starter" and TABLE_PATH.is_file():
        table = load_table().get("starter")
    if table is None:
        table = measure(pipe, n_clips=4, draws=1)
    pipe._token_map = table
    return table
