"""Residual transformers: predict RVQ layers 1..Q-1 from the base layer, one layer at a time.

* :class:`ResidualTransformer` — 1D aux branch (official key ``res_transformer_aux``; vocabulary =
  codes + 1 padding token).
* :class:`ResidualTransformer2D` — 2D ts branch (``res_transformer_ts``; codes + mask + padding tokens;
  time attention over all tokens, then joint attention (``seqTransEncoder2``) and per-joint time attention
  (``seqTransEncoder3``) when the options ``attnj``/``attnt`` are on).

Token embeddings / output projections per layer follow the checkpoint layout: with ``share_weight``
(the released model) ``token_embed_weight_`` (1,V,C), ``output_proj_weight_`` (1,V,C) and
``embed_proj_shared_weight`` (Q-2,V,C); without it ``token_embed_weight`` (Q-1,V,C),
``output_proj_weight`` (Q-1,V,C) and ``output_proj_bias`` (Q,V).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .mask_transformer import GenerationCancelled
from .sampling import gumbel, top_k_filter
from .transformer_common import (InputProcess, OutputProcess, PositionalEncoding, PositionalEncoding2D,
                                 TransformerConfig, length_mask, make_encoder, prepend_unmasked,
                                 xavier_like_init)


class _ResidualBase(nn.Module):
    n_special = 1

    def _init_tables(self, cfg: TransformerConfig):
        v, c, q = cfg.num_tokens + self.n_special, cfg.code_dim, cfg.num_quantizers
        if q < 2:
            raise ValueError("a residual transformer needs num_quantizers >= 2")
        self.share_weight = cfg.share_weight
        if cfg.share_weight:
            if q < 3:
                raise ValueError("share_weight needs num_quantizers >= 3")
            self.embed_proj_shared_weight = nn.Parameter(torch.randn(q - 2, v, c) * 0.02)
            self.token_embed_weight_ = nn.Parameter(torch.randn(1, v, c) * 0.02)
            self.output_proj_weight_ = nn.Parameter(torch.randn(1, v, c) * 0.02)
        else:
            self.output_proj_weight = nn.Parameter(torch.randn(q - 1, v, c) * 0.02)
            self.output_proj_bias = nn.Parameter(torch.zeros(q, v))
            self.token_embed_weight = nn.Parameter(torch.randn(q - 1, v, c) * 0.02)

    def tables(self):
        """(token embedding per layer (Q-1,V,C), output projection (Q-1,V,C), bias (Q,V) or None)."""
        if self.share_weight:
            return (torch.cat([self.token_embed_weight_, self.embed_proj_shared_weight], 0),
                    torch.cat([self.embed_proj_shared_weight, self.output_proj_weight_], 0), None)
        return self.token_embed_weight, self.output_proj_weight, self.output_proj_bias

    def _project(self, h, layer: int, proj, bias):
        """h (B,N,code_dim) -> logits (B,N,V) for quantizer layer ``layer`` (1-based)."""
        out = h @ proj[layer - 1].t()
        if bias is not None:
            # the reference adds the projection twice plus the bias (``output += output + bias``); the
            # weights were trained that way, so keep it.
            out = 2 * out + bias[layer - 1]
        return out

    def _cond(self, cond, force_mask):
        return self.cond_emb(torch.zeros_like(cond) if force_mask else cond)

    def _q_emb(self, layer, b, device):
        onehot = F.one_hot(torch.full((b,), layer, device=device), self.cfg.num_quantizers).float()
        return self.quant_emb(onehot)

    @torch.no_grad()
    def _generate(self, base_ids, flat_padding, cond, forward_fn, num_layers, temperature, topk, cond_scale,
                  generator, cancelled, on_step, keep=None, init_ids=None):
        """base_ids (B,N) with -1 at padding -> (B,N,Q) ids with -1 at padding. Editing: where ``keep`` (B,N)
        is True every layer takes ``init_ids`` (B,N,Q) instead of a new token (the kept tokens are still the
        context of the others)."""
        emb, proj, bias = self.tables()
        q_total = self.cfg.num_quantizers if num_layers is None else min(num_layers + 1, self.cfg.num_quantizers)
        ids = torch.where(flat_padding, self.pad_id, base_ids.clamp(min=0))
        out = [ids]
        history = 0
        n_real = self.cfg.num_tokens
        for layer in range(1, q_total):
            if cancelled is not None and cancelled():
                raise GenerationCancelled("generation cancelled")
            history = history + F.embedding(ids, emb[layer - 1])
            if cond_scale == 1:
                logits = self._project(forward_fn(history, layer, cond, False), layer, proj, bias)
            else:
                two = forward_fn(torch.cat([history, history]), layer,
                                 torch.cat([cond, cond]), True)
                c, u = (self._project(x, layer, proj, bias) for x in two.chunk(2))
                logits = u + (c - u) * cond_scale
            logits = logits.float()
            logits[..., n_real:] = float("-inf")  # never sample the padding / mask tokens
            pred = gumbel(top_k_filter(logits, topk), temperature, generator)
            if keep is not None:
                pred = torch.where(keep, init_ids[..., layer], pred)
            ids = torch.where(flat_padding, self.pad_id, pred)
            out.append(ids)
            if on_step is not None:
                on_step(layer / max(1, q_total - 1))
        res = torch.stack(out, -1)
        return torch.where(res == self.pad_id, -1, res)


class ResidualTransformer(_ResidualBase):
    n_special = 1

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.pad_id = cfg.num_tokens
        self.input_process = InputProcess(cfg.code_dim, cfg.latent_dim)
        self.position_enc = PositionalEncoding(cfg.latent_dim, cfg.dropout)
        self.seqTransEncoder = make_encoder(cfg)
        self.quant_emb = nn.Linear(cfg.num_quantizers, cfg.latent_dim)
        self.cond_emb = nn.Linear(cfg.clip_dim, cfg.latent_dim)
        self.output_process = OutputProcess(cfg.code_dim, cfg.latent_dim)
        self._init_tables(cfg)
        xavier_like_init(self)

    def trans_forward(self, codes, layer, cond, padding, force_mask=False):
        """codes (B,T,code_dim) summed history, padding (B,T) -> (B,T,code_dim)."""
        b = codes.shape[0]
        x = self.position_enc(self.input_process(codes).permute(1, 0, 2))
        c = self._cond(cond, force_mask)[None]
        q = self._q_emb(layer, b, codes.device)[None]
        pm = prepend_unmasked(padding, 2)
        out = self.seqTransEncoder(torch.cat([c, q, x], 0), src_key_padding_mask=pm)[2:]
        return self.output_process(out).permute(1, 0, 2)

    def forward(self, codes, layer, cond, m_lens):
        padding = ~length_mask(m_lens, codes.shape[1])
        emb, proj, bias = self.tables()
        return self._project(self.trans_forward(codes, layer, cond, padding), layer, proj, bias)

    def generate(self, base_ids, cond, m_lens, temperature=1.0, topk=0.9, cond_scale=5.0, generator=None,
                 num_layers=None, cancelled=None, on_step=None, keep=None, init_ids=None):
        """base_ids (B,T) -> (B,T,Q) ids, -1 at padding. Editing: ``keep`` (B,T) bool, ``init_ids`` (B,T,Q):
        kept positions take the given tokens on every residual layer."""
        t = base_ids.shape[1]
        padding = ~length_mask(m_lens, t)

        def fwd(h, layer, c, doubled):
            if not doubled:
                return self.trans_forward(h, layer, c, padding)
            b = c.shape[0] // 2
            pad2 = torch.cat([padding, padding])
            # first half conditional, second half with the condition dropped
            x = self.position_enc(self.input_process(h).permute(1, 0, 2))
            cc = torch.cat([self._cond(c[:b], False), self._cond(c[b:], True)])[None]
            q = self._q_emb(layer, 2 * b, h.device)[None]
            pm = prepend_unmasked(pad2, 2)
            out = self.seqTransEncoder(torch.cat([cc, q, x], 0), src_key_padding_mask=pm)[2:]
            return self.output_process(out).permute(1, 0, 2)

        return self._generate(base_ids, padding, cond, fwd, num_layers, temperature, topk, cond_scale,
                              generator, cancelled, on_step, keep=keep, init_ids=init_ids)


class ResidualTransformer2D(_ResidualBase):
    n_special = 2

    def __init__(self, cfg: TransformerConfig, n_joint_tokens: int = 6):
        super().__init__()
        self.cfg = cfg
        self.n_j = n_joint_tokens
        self.mask_id, self.pad_id = cfg.num_tokens, cfg.num_tokens + 1
        self.input_process = InputProcess(cfg.code_dim, cfg.latent_dim)
        self.position2d_enc = PositionalEncoding2D(cfg.latent_dim, cfg.dropout)
        self.seqTransEncoder = make_encoder(cfg)
        self.attnj, self.attnt = bool(cfg.attnj), bool(cfg.attnt)
        if self.attnj:
            self.seqTransEncoder2 = make_encoder(cfg)
        if self.attnt:
            self.seqTransEncoder3 = make_encoder(cfg)
        self.quant_emb = nn.Linear(cfg.num_quantizers, cfg.latent_dim)
        self.cond_emb = nn.Linear(cfg.clip_dim, cfg.latent_dim)
        self.output_process = OutputProcess(cfg.code_dim, cfg.latent_dim)
        self._init_tables(cfg)
        xavier_like_init(self)

    def _body(self, codes, c, q, padding, t, j):
        """codes (B,T*J,C), c/q (B,D) cond and layer embeddings, padding (B,T*J) -> (B,T*J,code_dim)."""
        b = codes.shape[0]
        d = self.cfg.latent_dim
        x = self.input_process(codes).permute(1, 0, 2).reshape(t, j, b, d)
        head = torch.stack([c, q])[:, None].expand(2, j, b, d)
        xseq = self.position2d_enc(torch.cat([head, x], 0)).reshape((t + 2) * j, b, d)
        pad = prepend_unmasked(padding, 2 * j)  # (B,(T+2)*J)
        out = self.seqTransEncoder(xseq, src_key_padding_mask=pad)
        out = out.reshape(t + 2, j, b, d)[2:].reshape(t * j, b, d)
        if self.attnj:
            # attention across the joint tokens of each frame (frames of padded time steps are skipped)
            x2 = self.position2d_enc(out.reshape(t, j, b, d)).permute(1, 2, 0, 3).reshape(j, b * t, d)
            pm2 = pad.reshape(b, t + 2, j)[:, 2:].reshape(b * t, j)
            keep = torch.where(~pm2[:, 0])[0]
            o2 = torch.zeros_like(x2)
            o2[:, keep] = self.seqTransEncoder2(x2[:, keep])
            # the reference re-reads the (J, B*T, D) buffer as (T, B, J, D); the weights were trained so
            o2 = o2.contiguous().reshape(t, b, j, d).permute(0, 2, 1, 3).reshape(t * j, b, d)
            out = out + o2
        if self.attnt:
            x3 = torch.cat([head, out.reshape(t, j, b, d)], 0)
            x3 = self.position2d_enc(x3).permute(0, 2, 1, 3).reshape(t + 2, b * j, d)
            pm3 = pad.reshape(b, t + 2, j).permute(0, 2, 1).reshape(b * j, t + 2)
            o3 = self.seqTransEncoder3(x3, src_key_padding_mask=pm3)
            o3 = o3.reshape(t + 2, b, j, d)[2:].permute(0, 2, 1, 3).reshape(t * j, b, d)
            out = out + o3
        return self.output_process(out).permute(1, 0, 2)

    def trans_forward(self, codes, layer, cond, padding, t, j, force_mask=False):
        b = codes.shape[0]
        return self._body(codes, self._cond(cond, force_mask), self._q_emb(layer, b, codes.device), padding, t, j)

    def forward(self, codes, layer, cond, m_lens):
        """codes (B,T,J,C) -> logits (B,T*J,V)."""
        b, t, j, _ = codes.shape
        padding = (~length_mask(m_lens, t))[..., None].expand(b, t, j).reshape(b, t * j)
        emb, proj, bias = self.tables()
        return self._project(self.trans_forward(codes.reshape(b, t * j, -1), layer, cond, padding, t, j),
                             layer, proj, bias)

    def generate(self, base_ids, cond, m_lens, temperature=1.0, topk=0.9, cond_scale=5.0, generator=None,
                 num_layers=None, cancelled=None, on_step=None, keep=None, init_ids=None):
        """base_ids (B,T,J) -> (B,T,J,Q) ids, -1 at padding. Editing: ``keep`` (B,T,J) bool, ``init_ids``
        (B,T,J,Q): kept positions take the given tokens on every residual layer."""
        b, t, j = base_ids.shape
        padding = (~length_mask(m_lens, t))[..., None].expand(b, t, j).reshape(b, t * j)

        def fwd(h, layer, c, doubled):
            if not doubled:
                return self.trans_forward(h, layer, c, padding, t, j)
            # Two separate passes: the joint-attention branch mixes rows across the batch (see _body), so a
            # doubled batch would not give the reference's conditional / unconditional logits.
            n = c.shape[0] // 2
            return torch.cat([self.trans_forward(h[:n], layer, c[:n], padding, t, j),
                              self.trans_forward(h[n:], layer, c[n:], padding, t, j, force_mask=True)])

        out = self._generate(base_ids.reshape(b, t * j), padding, cond, fwd, num_layers, temperature, topk,
                             cond_scale, generator, cancelled, on_step,
                             keep=None if keep is None else keep.reshape(b, t * j),
                             init_ids=None if init_ids is None else init_ids.reshape(b, t * j, -1))
        return out.reshape(b, t, j, -1)
