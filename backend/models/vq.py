"""Two-branch residual VQ-VAE of ReMoMask (1D "aux" branch over time, 2D "ts" branch over time x joints).

Module and parameter names follow the official checkpoints (key ``vq_model`` of
``<vq_name>/model/net_best_fid.tar``) so ``load_state_dict(strict=True)`` accepts them:
``encoder1d.model.*``, ``decoder1d.model.*``, ``quantizer1d.layers.<q>.codebook``, ``encoder2d.model.*``,
``decoder2d.model.*``, ``quantizer2d.layers.<q>.codebook``, ``linear_merge.*``, ``linear_out.*``.

Only inference is implemented here (encode to token indices, decode indices to features); training with EMA
codebook updates belongs to ``backend/train``.
"""

from __future__ import annotations

from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

# Joint-wise layout of the 2D branch: 22 HumanML3D joints, 12 channels per joint, padded to 24 joints
# (one empty joint on each side) so that two stride-2 convolutions give 6 "body part" tokens.
N_JOINTS = 22
JOINT_CHANNELS = 12
FEATURE_DIM = 263


@dataclass
class VQConfig:
    """Sizes of the RVQ-VAE; defaults are the released model (``run_rvq.sh`` in the reference README)."""

    input_width: int = FEATURE_DIM
    code_dim1d: int = 512
    nb_code1d: int = 512
    code_dim2d: int = 1024
    nb_code2d: int = 256
    num_quantizers: int = 6
    down_t: int = 2
    stride_t: int = 2
    width: int = 512
    depth: int = 3
    dilation_growth_rate: int = 3
    activation: str = "relu"
    norm: str | None = None
    shared_codebook: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _act(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "silu":
        return nn.SiLU()
    if name == "gelu":
        return nn.GELU()
    raise ValueError(f"unsupported VQ activation {name!r} (relu, silu or gelu)")


class _ResBlock(nn.Module):
    """Pre-activation residual block: act -> dilated conv k3 -> act -> conv k1, plus the input."""

    def __init__(self, dims: int, channels: int, dilation: int, activation: str):
        super().__init__()
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        self.norm1 = nn.Identity()
        self.norm2 = nn.Identity()
        self.activation1 = _act(activation)
        self.activation2 = _act(activation)
        self.conv1 = conv(channels, channels, 3, 1, dilation, dilation)
        self.conv2 = conv(channels, channels, 1, 1, 0)

    def forward(self, x):
        h = self.conv1(self.activation1(self.norm1(x)))
        h = self.conv2(self.activation2(self.norm2(h)))
        return x + h


class _ResStack(nn.Module):
    def __init__(self, dims, channels, depth, growth, reverse, activation):
        super().__init__()
        blocks = [_ResBlock(dims, channels, growth ** i, activation) for i in range(depth)]
        if reverse:
            blocks.reverse()
        self.model = nn.Sequential(*blocks)

    def forward(self, x):
        return self.model(x)


def _encoder(dims, in_ch, out_ch, c: VQConfig) -> nn.Sequential:
    conv = nn.Conv1d if dims == 1 else nn.Conv2d
    k, p = c.stride_t * 2, c.stride_t // 2
    layers: list[nn.Module] = [conv(in_ch, c.width, 3, 1, 1), nn.ReLU()]
    for _ in range(c.down_t):
        layers.append(nn.Sequential(conv(c.width, c.width, k, c.stride_t, p),
                                    _ResStack(dims, c.width, c.depth, c.dilation_growth_rate, True, c.activation)))
    layers.append(conv(c.width, out_ch, 3, 1, 1))
    return nn.Sequential(*layers)


def _decoder(dims, out_ch, code_dim, c: VQConfig) -> nn.Sequential:
    conv = nn.Conv1d if dims == 1 else nn.Conv2d
    layers: list[nn.Module] = [conv(code_dim, c.width, 3, 1, 1), nn.ReLU()]
    for _ in range(c.down_t):
        layers.append(nn.Sequential(_ResStack(dims, c.width, c.depth, c.dilation_growth_rate, True, c.activation),
                                    nn.Upsample(scale_factor=2, mode="nearest"),
                                    conv(c.width, c.width, 3, 1, 1)))
    layers += [conv(c.width, c.width, 3, 1, 1), nn.ReLU(), conv(c.width, out_ch, 3, 1, 1)]
    return nn.Sequential(*layers)


class _Net(nn.Module):
    """Wrapper so that parameter names read ``encoder1d.model.<i>...``."""

    def __init__(self, seq: nn.Sequential):
        super().__init__()
        self.model = seq

    def forward(self, x):
        return self.model(x)


class _Codebook(nn.Module):
    def __init__(self, nb_code: int, code_dim: int):
        super().__init__()
        self.register_buffer("codebook", torch.zeros(nb_code, code_dim))

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, D) -> index of the nearest code (N,)."""
        d = (x.pow(2).sum(-1, keepdim=True) - 2 * x @ self.codebook.t()
             + self.codebook.pow(2).sum(-1)[None])
        return d.argmin(-1)


class ResidualQuantizer(nn.Module):
    def __init__(self, num_quantizers: int, nb_code: int, code_dim: int):
        super().__init__()
        self.num_quantizers = num_quantizers
        self.layers = nn.ModuleList([_Codebook(nb_code, code_dim) for _ in range(num_quantizers)])

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, D, T) latents -> indices (N, T, Q), greedy residual quantisation."""
        n, d, t = x.shape
        residual = x.permute(0, 2, 1).reshape(n * t, d)
        out = []
        for layer in self.layers:
            idx = layer.nearest(residual)
            residual = residual - layer.codebook[idx]
            out.append(idx)
        return torch.stack(out, -1).reshape(n, t, -1)

    def decode_sum(self, indices: torch.Tensor) -> torch.Tensor:
        """indices (N, T, q<=Q), -1 = unused -> summed codes (N, T, D)."""
        q = indices.shape[-1]
        total = 0
        for i in range(min(q, self.num_quantizers)):
            idx = indices[..., i]
            valid = (idx >= 0).unsqueeze(-1)
            codes = F.embedding(idx.clamp(min=0), self.layers[i].codebook)
            total = total + codes * valid
        return total


class RVQVAE(nn.Module):
    """The released two-branch VQ-VAE. ``decode(ids1d, ids2d)`` is what generation uses."""

    J_TOKENS = 6  # body-part tokens after two stride-2 downsamplings of 24 (padded) joints

    def __init__(self, cfg: VQConfig | None = None):
        super().__init__()
        c = self.cfg = cfg or VQConfig()
        if c.norm not in (None, "None", ""):
            raise ValueError(f"VQ norm {c.norm!r} is not supported (the released model uses none)")
        if c.shared_codebook:
            raise ValueError("shared_codebook VQ models are not supported (the released model does not use one)")
        if c.input_width != FEATURE_DIM:
            raise ValueError("only the HumanML3D 263-d representation is supported")
        self.code_dim1d, self.num_code1d = c.code_dim1d, c.nb_code1d
        self.code_dim2d, self.num_code2d = c.code_dim2d, c.nb_code2d
        self.num_quantizers = c.num_quantizers
        self.encoder1d = _Net(_encoder(1, c.input_width, c.code_dim1d, c))
        self.decoder1d = _Net(_decoder(1, c.input_width, c.code_dim1d, c))
        self.quantizer1d = ResidualQuantizer(c.num_quantizers, c.nb_code1d, c.code_dim1d)
        self.encoder2d = _Net(_encoder(2, JOINT_CHANNELS, c.code_dim2d, c))
        self.linear_merge = nn.Linear(c.code_dim2d * self.J_TOKENS, c.code_dim2d * self.J_TOKENS)
        self.decoder2d = _Net(_decoder(2, JOINT_CHANNELS, c.code_dim2d, c))
        self.linear_out = nn.Linear(c.input_width * 2, c.input_width)
        self.quantizer2d = ResidualQuantizer(c.num_quantizers, c.nb_code2d, c.code_dim2d)

    @property
    def unit_length(self) -> int:
        return self.cfg.stride_t ** self.cfg.down_t

    # ---- joint-wise view of the 263-d features -------------------------------------------------
    @staticmethod
    def features_to_jointwise(feat: torch.Tensor) -> torch.Tensor:
        """(B, T, 263) -> (B, T, 22, 12): root [rot vel, lin vel xz, y, 4 contacts, 0, local vel],
        other joints [ric position(3), rot6d(6), local velocity(3)]."""
        b, t, _ = feat.shape
        j = N_JOINTS
        out = feat.new_zeros(b, t, j, JOINT_CHANNELS)
        out[:, :, 0, :4] = feat[..., :4]
        out[:, :, 0, 4:8] = feat[..., -4:]
        out[:, :, 1:, :3] = feat[..., 4:4 + (j - 1) * 3].reshape(b, t, j - 1, 3)
        out[:, :, 1:, 3:9] = feat[..., 4 + (j - 1) * 3:4 + (j - 1) * 9].reshape(b, t, j - 1, 6)
        out[:, :, :, 9:12] = feat[..., 4 + (j - 1) * 9:4 + (j - 1) * 9 + j * 3].reshape(b, t, j, 3)
        return out

    @staticmethod
    def jointwise_to_features(x: torch.Tensor) -> torch.Tensor:
        """(B, T, 22, 12) -> (B, T, 263), the inverse of :meth:`features_to_jointwise`."""
        b, t, j, _ = x.shape
        parts = [x[:, :, 0, :4],
                 x[:, :, 1:, :3].reshape(b, t, -1),
                 x[:, :, 1:, 3:9].reshape(b, t, -1),
                 x[:, :, :, 9:12].reshape(b, t, -1),
                 x[:, :, 0, 4:8]]
        return torch.cat(parts, -1)

    # ---- encode ------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised features (B, T, 263), T a multiple of 4 -> (ids1d (B, T/4, Q), ids2d (B, T/4, 6, Q))."""
        b = feat.shape[0]
        z1 = self.encoder1d(feat.permute(0, 2, 1).float())
        ids1d = self.quantizer1d.quantize(z1)
        x2 = F.pad(self.features_to_jointwise(feat.float()), (0, 0, 1, 1))  # 22 -> 24 joints
        z2 = self.encoder2d(x2.permute(0, 3, 1, 2))  # (B, D, T', 6)
        _, d, tt, jj = z2.shape
        ids2d = self.quantizer2d.quantize(z2.permute(0, 3, 1, 2).reshape(b * jj, d, tt))  # (B*6, T', Q)
        ids2d = ids2d.reshape(b, jj, tt, -1).permute(0, 2, 1, 3)
        return ids1d, ids2d

    # ---- decode ------------------------------------------------------------------------------
    def decode(self, ids1d: torch.Tensor, ids2d: torch.Tensor) -> torch.Tensor:
        """Token indices (B, T', q) and (B, T', 6, q), -1 for unused -> normalised features (B, 4*T', 263).

        The final motion is ``linear_out([1D decoder output ; 2D decoder output re-assembled to 263-d])``,
        the same combination the released model was trained with.
        """
        out1d = self.decoder1d(self.quantizer1d.decode_sum(ids1d).permute(0, 2, 1)).permute(0, 2, 1)
        b, t, j, q = ids2d.shape
        codes = self.quantizer2d.decode_sum(ids2d.permute(0, 2, 1, 3).reshape(b * j, t, q))  # (B*J, T, D)
        d = codes.shape[-1]
        merged = codes.reshape(b, j, t, d).permute(0, 2, 1, 3).reshape(b * t, j * d)  # per frame, joint-major
        merged = self.linear_merge(merged).reshape(b, t, j, d).permute(0, 3, 1, 2)  # (B, D, T, J)
        x2 = self.decoder2d(merged).permute(0, 2, 3, 1)  # (B, 4T, 24, 12)
        feat2d = self.jointwise_to_features(x2[:, :, 1:-1, :])
        return self.linear_out(torch.cat([out1d, feat2d], -1))
