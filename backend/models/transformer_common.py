"""Building blocks shared by the masked and residual transformers (official parameter names)."""

from __future__ import annotations

import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class TransformerConfig:
    """Sizes of one transformer. ``num_tokens`` is the codebook size of its VQ branch (512 for the 1D aux
    branch, 256 for the 2D ts branch of the released VQ); ``code_dim`` the code width (512 / 1024)."""

    code_dim: int = 512
    num_tokens: int = 512
    latent_dim: int = 512
    ff_size: int = 1024
    num_layers: int = 8
    num_heads: int = 8
    dropout: float = 0.2
    clip_dim: int = 512
    attnj: bool = True
    attnt: bool = True
    # Mask transformers of the released model feed the text embedding straight in (their ``cond_emb`` exists
    # in the checkpoint but was never trained); residual transformers project it through ``cond_emb``.
    # None = auto: project unless latent_dim == clip_dim for mask transformers, always for residual ones.
    project_cond: bool | None = None
    # 2D masked transformer only: whether its SSTA layers ignore padded motion tokens as keys and values.
    # The released model attends to them (its training did), so official configs leave this off; without it
    # a sample's motion depends on how much padding its batch mates add. The project's own models run with
    # it on (trained on length-bucketed batches that carry almost no padding; backend/train/stages.py).
    mask_padding_keys: bool = False
    # residual transformers only
    num_quantizers: int = 6
    share_weight: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def xavier_like_init(module: nn.Module) -> None:
    """N(0, 0.02) for Linear/Embedding weights, zero biases, unit LayerNorms (the reference's init)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class InputProcess(nn.Module):
    def __init__(self, input_feats: int, latent_dim: int):
        super().__init__()
        self.poseEmbedding = nn.Linear(input_feats, latent_dim)

    def forward(self, x):
        return self.poseEmbedding(x)


def _sinusoid(n: int, d: int) -> torch.Tensor:
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe


class PositionalEncoding(nn.Module):
    """1D sinusoidal table stored as a *parameter* ``pe`` of shape (max_len, 1, d), as in the checkpoints."""

    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 5000):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.pe = nn.Parameter(_sinusoid(max_len, d_model)[:, None, :])

    def forward(self, x):  # (seq, b, d)
        return self.dropout(x + self.pe[: x.shape[0]])


class PositionalEncoding2D(nn.Module):
    """2D table (time 200 x joints 50 x d) stored as a buffer ``pe``; first half of the channels encode the
    joint (width) position, the second half the time (height) position."""

    def __init__(self, d_model: int, dropout: float = 0.1, height: int = 200, width: int = 50):
        super().__init__()
        if d_model % 4:
            raise ValueError(f"2D positional encoding needs latent_dim divisible by 4, got {d_model}")
        self.dropout = nn.Dropout(dropout)
        half = d_model // 2
        div = torch.exp(torch.arange(0.0, half, 2) * -(math.log(10000.0) / half))
        pw = torch.arange(0.0, width)[:, None] * div  # (W, half/2)
        ph = torch.arange(0.0, height)[:, None] * div  # (H, half/2)
        pe = torch.zeros(height, width, d_model)
        pe[:, :, 0:half:2] = torch.sin(pw)[None]
        pe[:, :, 1:half:2] = torch.cos(pw)[None]
        pe[:, :, half::2] = torch.sin(ph)[:, None]
        pe[:, :, half + 1::2] = torch.cos(ph)[:, None]
        self.register_buffer("pe", pe)

    def forward(self, x):  # (t, j, b, d)
        return self.dropout(x + self.pe[: x.shape[0], : x.shape[1], None, :])


class OutputProcess(nn.Module):
    """dense -> gelu -> LayerNorm(eps 1e-12) -> poseFinal."""

    def __init__(self, out_feats: int, latent_dim: int):
        super().__init__()
        self.dense = nn.Linear(latent_dim, latent_dim)
        self.LayerNorm = nn.LayerNorm(latent_dim, eps=1e-12)
        self.poseFinal = nn.Linear(latent_dim, out_feats)

    def forward(self, h):
        return self.poseFinal(self.LayerNorm(F.gelu(self.dense(h))))


def make_encoder(cfg: TransformerConfig) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(d_model=cfg.latent_dim, nhead=cfg.num_heads, dim_feedforward=cfg.ff_size,
                                       dropout=cfg.dropout, activation="gelu")
    return nn.TransformerEncoder(layer, num_layers=cfg.num_layers, enable_nested_tensor=False)


def length_mask(m_lens: torch.Tensor, max_len: int) -> torch.Tensor:
    """True where a position is valid (index < length)."""
    return torch.arange(max_len, device=m_lens.device)[None, :] < m_lens[:, None]


def prepend_unmasked(padding: torch.Tensor, n: int) -> torch.Tensor:
    """A key-padding mask (B, L) with ``n`` never-masked positions put in front (condition / layer tokens).
    Built from the shape, so it also holds when the sequence is shorter than ``n`` (a one-token motion)."""
    return torch.cat([padding.new_zeros(padding.shape[0], n), padding], 1)
