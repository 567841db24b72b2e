"""Masked (base-layer) transformers of ReMoMask.

* :class:`MaskTransformer` — 1D "aux" branch: one token per 4 frames, text-conditioned BERT-style encoder
  (official key ``t2m_transformer_aux``).
* :class:`MaskTransformer2D` — 2D "ts" branch: 6 body-part tokens per 4 frames; a stack of semantics-modulated
  attention layers (SSTA) fuses the text embedding with the retrieved motion/text embeddings
  (official key ``t2m_transformer_ts``). Classifier-free guidance drops text *and* retrieval together.

Text conditioning is an embedding (B, clip_dim) computed outside (an injected text encoder); the CLIP weights
are not part of these modules.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .sampling import categorical, cosine_schedule, top_k_filter
from .transformer_common import (InputProcess, OutputProcess, PositionalEncoding, PositionalEncoding2D,
                                 TransformerConfig, length_mask, make_encoder, prepend_unmasked,
                                 xavier_like_init)

COND_TEXT_AND_RETRIEVAL = 99  # cond_type code of the reference: tens digit = retrieval, units = text
COND_TEXT_ONLY = 9
COND_NONE = 0


class GenerationCancelled(RuntimeError):
    """Raised from a generation loop when the caller's ``cancelled()`` returns True."""


class SemanticsModulatedAttention(nn.Module):
    """SSTA fusion layer of the released model (parameter names ``norm, text_norm, query, info_mlp.{0,2},
    key, value, out_proj``).

    Queries come from the motion tokens z; keys from [z ; info] where info = MLP([t ; R_m ; R_t]) (text and
    pooled retrieved motion/text embeddings, each gated by the condition code); values from [z ; R_m].
    Returns the update (the caller adds the residual)."""

    def __init__(self, latent_dim: int, text_latent_dim: int, num_heads: int, dropout: float):
        super().__init__()
        if latent_dim % num_heads:
            raise ValueError("latent_dim must be divisible by num_heads")
        self.num_heads = num_heads
        self.head_dim = latent_dim // num_heads
        self.norm = nn.LayerNorm(latent_dim)
        self.text_norm = nn.LayerNorm(text_latent_dim)  # present in the checkpoint, unused by the forward pass
        self.query = nn.Linear(latent_dim, latent_dim)
        self.info_mlp = nn.Sequential(nn.Linear(3 * latent_dim, latent_dim), nn.GELU(),
                                      nn.Linear(latent_dim, latent_dim))
        self.key = nn.Linear(latent_dim, latent_dim)
        self.value = nn.Linear(latent_dim, latent_dim)
        self.out_proj = nn.Linear(latent_dim, latent_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, xf, src_mask, cond_type, re_motion, re_text, mask_padding_keys: bool = False):
        """x (B,N,D) tokens; xf (B,1,D) text; src_mask (B,N,1) valid=1; cond_type (B,1,1);
        re_motion/re_text (B,K,D). With ``mask_padding_keys`` padded tokens are left out of the keys (the
        condition key stays), so padding cannot dilute the attention of the real tokens."""
        b, n, d = x.shape
        h, hd = self.num_heads, self.head_dim
        text_on = (cond_type % 10 > 0).to(x.dtype)
        retr_on = (cond_type // 10 > 0).to(x.dtype)
        z = self.norm(x)
        q = self.query(z) * src_mask
        rm = re_motion.mean(1, keepdim=True)
        rt = re_text.mean(1, keepdim=True)
        info = self.info_mlp(torch.cat([xf * text_on, rm * retr_on, rt * retr_on], -1))  # (B,1,D)
        k = self.key(torch.cat([z, info], 1))
        v = self.value(torch.cat([z, rm], 1))
        q = q.view(b, n, h, hd).transpose(1, 2)
        k = k.view(b, n + 1, h, hd).transpose(1, 2)
        v = v.view(b, n + 1, h, hd).transpose(1, 2)
        keep = None
        if mask_padding_keys:
            keep = torch.cat([src_mask[..., 0] > 0, src_mask.new_ones(b, 1, dtype=torch.bool)], 1)[:, None, None]
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=keep,
                                             dropout_p=self.dropout.p if self.training else 0.0)
        return self.out_proj(att.transpose(1, 2).reshape(b, n, d))


def _masked_generate(logits_fn: Callable[[torch.Tensor], torch.Tensor], padding: torch.Tensor,
                     n_valid: torch.Tensor, mask_id: int, pad_id: int, timesteps: int, temperature: float,
                     topk: float, generator, cancelled=None, on_step=None, keep: torch.Tensor | None = None,
                     init_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Iterative unmasking over a flat token sequence (B, N). ``padding`` (B,N) True at padded positions,
    ``n_valid`` (B,) number of real tokens. Each step re-masks the least confident tokens (cosine schedule),
    predicts all masked ones, keeps the new ones' confidences. Returns ids with -1 at padding.

    Editing: ``keep`` (B,N) True where ``init_ids`` (B,N) are given tokens. Those start unmasked, are never
    re-masked, and the schedule counts only the other (hole) tokens; a row without a hole stays as given."""
    b, n = padding.shape
    ids = torch.where(padding, pad_id, mask_id)
    scores = torch.where(padding, 1e5, 0.0)
    if keep is not None:
        keep = keep & ~padding
        ids = torch.where(keep, init_ids, ids)
        scores = scores.masked_fill(keep, 1e5)
        n_hole = (~keep & ~padding).sum(1).float()
    times = torch.linspace(0, 1, timesteps)
    for step in range(timesteps):
        if cancelled is not None and cancelled():
            raise GenerationCancelled("generation cancelled")
        ratio = cosine_schedule(times[step])
        if keep is None:
            num_masked = torch.round(ratio * n_valid.float()).clamp(min=1)
        else:
            num_masked = torch.minimum(torch.round(ratio * n_hole).clamp(min=1), n_hole)
        ranks = scores.argsort(dim=1).argsort(dim=1)
        is_mask = ranks < num_masked[:, None]
        ids = torch.where(is_mask, mask_id, ids)
        logits = logits_fn(ids).float()  # (B, N, num_tokens)
        pred = categorical(top_k_filter(logits, topk), temperature, generator)
        ids = torch.where(is_mask, pred, ids)
        conf = logits.softmax(-1).gather(-1, pred[..., None]).squeeze(-1)
        scores = conf.masked_fill(~is_mask, 1e5)
        if on_step is not None:
            on_step((step + 1) / timesteps)
    return torch.where(padding, -1, ids)


def _cfg(fn, cond_scale: float):
    """Classifier-free guidance: fn(uncond: bool) -> logits; both passes run as one doubled batch."""
    if cond_scale == 1:
        return fn(False)
    cond, uncond = fn(None)
    return uncond + (cond - uncond) * cond_scale


class MaskTransformer(nn.Module):
    """1D masked transformer (aux branch)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.mask_id, self.pad_id = cfg.num_tokens, cfg.num_tokens + 1
        self.project_cond = cfg.project_cond if cfg.project_cond is not None else cfg.latent_dim != cfg.clip_dim
        if not self.project_cond and cfg.latent_dim != cfg.clip_dim:
            raise ValueError("project_cond=False needs latent_dim == clip_dim")
        self.input_process = InputProcess(cfg.code_dim, cfg.latent_dim)
        self.position_enc = PositionalEncoding(cfg.latent_dim, cfg.dropout)
        self.seqTransEncoder = make_encoder(cfg)
        self.cond_emb = nn.Linear(cfg.clip_dim, cfg.latent_dim)
        self.output_process = OutputProcess(cfg.num_tokens, cfg.latent_dim)
        self.token_emb = nn.Embedding(cfg.num_tokens + 2, cfg.code_dim)
        xavier_like_init(self)

    def trans_forward(self, ids: torch.Tensor, cond: torch.Tensor, padding: torch.Tensor,
                      force_mask: bool = False) -> torch.Tensor:
        """ids (B,T), cond (B,clip_dim), padding (B,T) True at pads -> logits (B,T,num_tokens)."""
        if force_mask:
            cond = torch.zeros_like(cond)
        c = self.cond_emb(cond) if self.project_cond else cond
        x = self.input_process(self.token_emb(ids)).permute(1, 0, 2)  # (T,B,D)
        x = self.position_enc(x)
        xseq = torch.cat([c[None], x], 0)
        pm = prepend_unmasked(padding, 1)
        out = self.seqTransEncoder(xseq, src_key_padding_mask=pm)[1:]
        return self.output_process(out).permute(1, 0, 2)

    def forward(self, ids, cond, m_lens):
        return self.trans_forward(ids, cond, ~length_mask(m_lens, ids.shape[1]))

    def guided_logits(self, ids, cond, padding, cond_scale: float):
        def fn(uncond):
            if uncond is False:
                return self.trans_forward(ids, cond, padding)
            both = self.trans_forward(torch.cat([ids, ids]), torch.cat([cond, torch.zeros_like(cond)]),
                                      torch.cat([padding, padding]))
            return both.chunk(2)
        return _cfg(fn, cond_scale)

    @torch.no_grad()
    def generate(self, cond: torch.Tensor, m_lens: torch.Tensor, timesteps: int = 10, cond_scale: float = 4.0,
                 temperature: float = 1.0, topk: float = 0.9, generator=None, cancelled=None,
                 on_step=None, keep=None, init_ids=None) -> torch.Tensor:
        """cond (B,clip_dim), m_lens (B,) token lengths -> ids (B, max(m_lens)) with -1 at padding.
        Editing: ``keep`` (B,T) bool marks the ``init_ids`` (B,T) tokens that stay as given."""
        t = int(m_lens.max())
        padding = ~length_mask(m_lens, t)
        return _masked_generate(lambda ids: self.guided_logits(ids, cond, padding, cond_scale), padding,
                                m_lens, self.mask_id, self.pad_id, timesteps, temperature, topk, generator,
                                cancelled, on_step, keep=None if keep is None else keep[:, :t],
                                init_ids=None if init_ids is None else init_ids[:, :t])


class MaskTransformer2D(nn.Module):
    """2D masked transformer (ts branch) with SSTA retrieval fusion."""

    def __init__(self, cfg: TransformerConfig, n_joint_tokens: int = 6):
        super().__init__()
        self.cfg = cfg
        self.n_j = n_joint_tokens
        self.mask_id, self.pad_id = cfg.num_tokens, cfg.num_tokens + 1
        self.project_cond = cfg.project_cond if cfg.project_cond is not None else cfg.latent_dim != cfg.clip_dim
        if not self.project_cond and cfg.latent_dim != cfg.clip_dim:
            raise ValueError("project_cond=False needs latent_dim == clip_dim")
        self.input_process = InputProcess(cfg.code_dim, cfg.latent_dim)
        self.position2d_enc = PositionalEncoding2D(cfg.latent_dim, cfg.dropout)
        # The released checkpoint carries these two encoders (opt attnj/attnt) but they were never trained and
        # the released forward pass does not use them; they are kept only so that strict loading passes.
        if cfg.attnj:
            self.seqTransEncoder2 = make_encoder(cfg)
        if cfg.attnt:
            self.seqTransEncoder3 = make_encoder(cfg)
        self.cond_emb = nn.Linear(cfg.clip_dim, cfg.latent_dim)
        self.output_process = OutputProcess(cfg.num_tokens, cfg.latent_dim)
        self.token_emb = nn.Embedding(cfg.num_tokens + 2, cfg.code_dim)
        xavier_like_init(self)
        self.semanticTransEncoder = nn.ModuleList(
            [SemanticsModulatedAttention(cfg.latent_dim, cfg.clip_dim, cfg.num_heads, cfg.dropout)
             for _ in range(cfg.num_layers)])

    def trans_forward(self, ids, cond, padding, cond_type, re_motion, re_text):
        """ids (B,T,J), cond (B,clip_dim), padding (B,T,J), cond_type (B,1,1), re_* (B,K,D)
        -> logits (B, T*J, num_tokens)."""
        b, t, j = ids.shape
        x = self.input_process(self.token_emb(ids))  # (B,T,J,D)
        x = self.position2d_enc(x.permute(1, 2, 0, 3))  # (T,J,B,D)
        h = x.reshape(t * j, b, -1).permute(1, 0, 2)  # (B, T*J, D)
        xf = (self.cond_emb(cond) if self.project_cond else cond)[:, None, :]
        src_mask = (~padding.reshape(b, t * j))[..., None].to(h.dtype)
        for layer in self.semanticTransEncoder:
            h = h + layer(h, xf, src_mask, cond_type, re_motion, re_text, self.cfg.mask_padding_keys)
        return self.output_process(h)

    def forward(self, ids, cond, m_lens, re_dict, cond_code: int = COND_TEXT_AND_RETRIEVAL):
        b, t, j = ids.shape
        padding = (~length_mask(m_lens, t))[..., None].expand(b, t, j)
        ct = torch.full((b, 1, 1), float(cond_code), device=ids.device)
        rm, rt = _re_tensors(re_dict, b, self.cfg.latent_dim, ids.device, cond.dtype)
        return self.trans_forward(ids, cond, padding, ct, rm, rt)

    def guided_logits(self, ids, cond, padding, cond_scale, re_motion, re_text, cond_code):
        b = ids.shape[0]
        dev = ids.device

        def fn(uncond):
            ct = torch.full((b, 1, 1), float(cond_code), device=dev)
            if uncond is False:
                return self.trans_forward(ids, cond, padding, ct, re_motion, re_text)
            ct2 = torch.cat([ct, torch.full_like(ct, float(COND_NONE))])
            both = self.trans_forward(torch.cat([ids, ids]), torch.cat([cond, cond]), torch.cat([padding, padding]),
                                      ct2, torch.cat([re_motion, re_motion]), torch.cat([re_text, re_text]))
            return both.chunk(2)
        return _cfg(fn, cond_scale)

    @torch.no_grad()
    def generate(self, cond: torch.Tensor, m_lens: torch.Tensor, re_dict: dict | None, timesteps: int = 10,
                 cond_scale: float = 4.0, temperature: float = 1.0, topk: float = 0.9, generator=None,
                 use_retrieval: bool = True, cancelled=None, on_step=None, keep=None,
                 init_ids=None) -> torch.Tensor:
        """cond (B,clip_dim), m_lens (B,) token lengths, re_dict {"re_text","re_motion"} (B,K,1,D) or None
        -> ids (B, T, 6) with -1 at padding. Guidance contrasts text+retrieval with neither; with
        ``use_retrieval=False`` the conditional pass sees text only and zero retrieval embeddings.
        Editing: ``keep`` (B,T,6) bool marks the ``init_ids`` (B,T,6) tokens that stay as given."""
        b = cond.shape[0]
        t, j = int(m_lens.max()), self.n_j
        use = use_retrieval and re_dict is not None
        rm, rt = _re_tensors(re_dict if use else None, b, self.cfg.latent_dim, cond.device, cond.dtype)
        code = COND_TEXT_AND_RETRIEVAL if use else COND_TEXT_ONLY
        pad3 = (~length_mask(m_lens, t))[..., None].expand(b, t, j)
        flat_pad = pad3.reshape(b, t * j)

        def logits_fn(flat_ids):
            return self.guided_logits(flat_ids.reshape(b, t, j), cond, pad3, cond_scale, rm, rt, code)

        def flat(x):
            return None if x is None else x[:, :t].reshape(b, t * j)

        ids = _masked_generate(logits_fn, flat_pad, m_lens * j, self.mask_id, self.pad_id, timesteps,
                               temperature, topk, generator, cancelled, on_step, keep=flat(keep),
                               init_ids=flat(init_ids))
        return ids.reshape(b, t, j)


def _re_tensors(re_dict, b, d, device, dtype):
    """re_dict (B,K,1,D) tensors -> (B,K,D) pair; zeros (B,1,D) when absent."""
    if re_dict is None:
        z = torch.zeros(b, 1, d, device=device, dtype=dtype)
        return z, z
    out = []
    for key in ("re_motion", "re_text"):
        v = torch.as_tensor(re_dict[key]).to(device=device, dtype=dtype)
        if v.dim() == 4:
            v = v.reshape(v.shape[0], -1, v.shape[-1])
        if v.dim() != 3 or v.shape[0] != b or v.shape[-1] != d:
            raise ValueError(f"re_dict[{key!r}] must be (B={b}, k, 1, {d}), got {tuple(v.shape)}")
        out.append(v)
    return out[0], out[1]
