"""Features <-> token ids of the RVQ-VAE, both streams and every residual layer.

``encode`` normalises de-normalised 263-d features with the model's mean/std and runs ``RVQVAE.encode``;
``decode`` runs the pipeline's decoder (each motion at its own length) and de-normalises. ``decode_long``
decodes a token sequence of any length in overlapping windows (the decoder is convolutional; windows keep the
memory bounded for minute-long motions) and cross-fades the overlaps.
"""

from __future__ import annotations

import numpy as np
import torch

from backend.generation.sample import UNIT_LENGTH

__all__ = ["encode", "decode", "decode_long", "roundtrip", "UNIT_LENGTH"]

LONG_WINDOW_TOKENS = 96
LONG_OVERLAP_TOKENS = 8


@torch.inference_mode()
def encode(pipe, features) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, 263) or (B, T, 263) de-normalised features, T a multiple of 4 -> ids1d (B, T/4, Q),
    ids2d (B, T/4, 6, Q) (long, on the pipeline's device)."""
    f = torch.as_tensor(np.asarray(features, dtype=np.float32), device=pipe.device)
    if f.dim() == 2:
        f = f[None]
    if f.dim() != 3 or f.shape[-1] != pipe.mean.shape[0] or f.shape[1] % UNIT_LENGTH or f.shape[1] == 0:
        raise ValueError(f"features must be (B, 4k, {pipe.mean.shape[0]}), got {tuple(f.shape)}")
    ids1d, ids2d = pipe.models.vq.encode((f - pipe.mean) / pipe.std)
    return ids1d.long(), ids2d.long()


@torch.inference_mode()
def decode(pipe, ids1d: torch.Tensor, ids2d: torch.Tensor, m_lens=None) -> np.ndarray:
    """ids (B, K, Q), (B, K, 6, Q); m_lens (B,) tokens (default all K) -> de-normalised features
    (B, 4K, 263) float32 (zeros past each row's length)."""
    b, k = ids1d.shape[:2]
    lens = torch.full((b,), k, device=ids1d.device) if m_lens is None else torch.as_tensor(m_lens, device=ids1d.device)
    out = pipe._decode(ids1d, ids2d, lens.long())
    feats = (out * pipe.std + pipe.mean).float().cpu().numpy()
    for i, n in enumerate(lens.tolist()):
        feats[i, n * UNIT_LENGTH:] = 0
    return feats.astype(np.float32)


def decode_long(pipe, ids1d: torch.Tensor, ids2d: torch.Tensor, window: int = LONG_WINDOW_TOKENS,
                overlap: int = LONG_OVERLAP_TOKENS) -> np.ndarray:
    """One token sequence (K, Q), (K, 6, Q) of any length -> features (4K, 263): in windows of ``window``
    tokens overlapping by ``overlap`` tokens, linearly cross-faded over the overlap."""
    k = ids1d.shape[0]
    if k <= window:
        return decode(pipe, ids1d[None], ids2d[None])[0]
    step = window - overlap
    starts = list(range(0, k - window, step)) + [k - window]
    out = np.zeros((k * UNIT_LENGTH, pipe.mean.shape[0]), np.float32)
    done = 0  # frames already final
    for s in starts:
        f = decode(pipe, ids1d[None, s:s + window], ids2d[None, s:s + window])[0]
        lo = s * UNIT_LENGTH
        n_ov = max(0, done - lo)
        if n_ov:
            w = np.linspace(0.0, 1.0, n_ov + 2, dtype=np.float32)[1:-1, None]
            out[lo:done] = (1 - w) * out[lo:done] + w * f[:n_ov]
        out[done:lo + len(f)] = f[n_ov:]
        done = lo + len(f)
    return out


def roundtrip(pipe, features) -> np.ndarray:
    """Encode and decode (T, 263) features (T cut to a multiple of 4): what the tokens of a motion say."""
    f = np.asarray(features, dtype=np.float32)
    n = len(f) // UNIT_LENGTH * UNIT_LENGTH
    ids1d, ids2d = encode(pipe, f[:n])
    return decode_long(pipe, ids1d[0], ids2d[0])
