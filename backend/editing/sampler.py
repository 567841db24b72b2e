"""The constrained sampler: masked generation where some tokens are given and stay.

One batch of rows; each row has its prompt, its token ids (``ids1d`` (K, Q), ``ids2d`` (K, 6, Q)) and what to
keep (``keep1d`` (K,), ``keep2d`` (K, 6)). Per row, as in generation: the prompt's text embedding and retrieved
motion/text embeddings condition both masked transformers, the 2D one with RAG classifier-free guidance
(text + retrieval against neither); the base layer is sampled by iterative unmasking in which the kept tokens
start unmasked and are never re-masked and the schedule counts only the hole; the residual transformers then
regenerate their layers inside the hole only (the kept positions keep the source's residual tokens, which are
the context of the others). A row with nothing kept is plain generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from backend.models.mask_transformer import GenerationCancelled

__all__ = ["Row", "SampledTokens", "sample_rows", "settings"]


@dataclass
class Row:
    prompt: str
    ids1d: torch.Tensor      # (K, Q) long; any value where not kept
    ids2d: torch.Tensor      # (K, 6, Q) long
    keep1d: torch.Tensor     # (K,) bool
    keep2d: torch.Tensor     # (K, 6) bool


@dataclass
class SampledTokens:
    ids1d: torch.Tensor      # (B, Kmax, Q), -1 past each row's length
    ids2d: torch.Tensor      # (B, Kmax, 6, Q)
    lens: torch.Tensor       # (B,) tokens
    retrieved: list = field(default_factory=list)      # captions per row
    retrieved_ids: list = field(default_factory=list)


def settings(pipe, cond_scale=None, time_steps=None, temperature=None, topk=None, res_cond_scale=None) -> dict:
    """Sampling settings: the ones given, the model's own (``pipe.sampling``) for the rest."""
    given = {"cond_scale": cond_scale, "time_steps": time_steps, "temperature": temperature, "topk": topk,
             "res_cond_scale": res_cond_scale}
    sp = {k: pipe.sampling[k] if v is None else v for k, v in given.items()}
    if sp["time_steps"] < 1:
        raise ValueError("time_steps must be >= 1")
    return sp


def _stack(rows, attr, fill, dev):
    k = max(int(getattr(r, attr).shape[0]) for r in rows)
    first = getattr(rows[0], attr)
    out = torch.full((len(rows), k) + tuple(first.shape[1:]), fill, dtype=first.dtype, device=dev)
    for i, r in enumerate(rows):
        v = getattr(r, attr)
        out[i, :v.shape[0]] = v.to(dev)
    return out


@torch.inference_mode()
def sample_rows(pipe, rows: list[Row], seed: int = 0, use_retrieval: bool = True,
                progress: Callable[[str, float], None] | None = None, cancelled: Callable[[], bool] | None = None,
                **sampling) -> SampledTokens:
    """Sample every row's hole (see the module doc). ``sampling``: cond_scale, time_steps, temperature, topk,
    res_cond_scale (None = the model's). Every random draw comes from one generator seeded by ``seed``."""
    if not rows:
        raise ValueError("no rows to sample")
    sp = settings(pipe, **sampling)
    m = pipe.models
    dev = pipe.device
    report = progress or (lambda stage, frac: None)

    def check():
        if cancelled is not None and cancelled():
            raise GenerationCancelled("generation cancelled")

    for r in rows:
        k = r.ids1d.shape[0]
        if not (1 <= k and r.ids2d.shape[:2] == (k, 6) and r.keep1d.shape == (k,) and r.keep2d.shape == (k, 6)):
            raise ValueError("a row's ids/keep shapes do not match")
    prompts = list(dict.fromkeys(r.prompt for r in rows))
    order = torch.tensor([prompts.index(r.prompt) for r in rows], device=dev)
    gen = torch.Generator(device=dev)
    gen.manual_seed(int(seed))
    emb, re_dict, captions, ids = pipe._condition(prompts, order, use_retrieval, report, check)
    cond = emb[order]
    lens = torch.tensor([int(r.ids1d.shape[0]) for r in rows], device=dev)
    ids1d = _stack(rows, "ids1d", 0, dev).clamp(min=0)
    ids2d = _stack(rows, "ids2d", 0, dev).clamp(min=0)
    keep1d = _stack(rows, "keep1d", True, dev)
    keep2d = _stack(rows, "keep2d", True, dev)
    check()

    def stage(name, lo, hi):
        return lambda f: report(name, lo + (hi - lo) * f)

    cs, ts, temp, topk = sp["cond_scale"], sp["time_steps"], sp["temperature"], sp["topk"]
    report("mask_aux", 0.08)
    base1 = m.mask_aux.generate(cond, lens, ts, cs, temp, topk, gen, cancelled=cancelled,
                                on_step=stage("mask_aux", 0.08, 0.3), keep=keep1d, init_ids=ids1d[..., 0])
    base2 = m.mask_ts.generate(cond, lens, re_dict, ts, cs, temp, topk, gen, use_retrieval=re_dict is not None,
                               cancelled=cancelled, on_step=stage("mask_ts", 0.3, 0.55), keep=keep2d,
                               init_ids=ids2d[..., 0])
    report("residual", 0.55)
    all1 = m.res_aux.generate(base1, cond, lens, 1.0, topk, sp["res_cond_scale"], gen, cancelled=cancelled,
                              on_step=stage("residual", 0.55, 0.7), keep=keep1d, init_ids=ids1d)
    all2 = m.res_ts.generate(base2, cond, lens, 1.0, topk, sp["res_cond_scale"], gen, cancelled=cancelled,
                             on_step=stage("residual", 0.7, 0.85), keep=keep2d, init_ids=ids2d)
    check()
    rows_idx = order.cpu().tolist()
    return SampledTokens(all1, all2, lens, [captions[i][:] for i in rows_idx],
                         [[str(x) for x in ids[i]] for i in rows_idx])


def hole_fraction(rows: list[Row]) -> float:
    """Share of 2D tokens generated (for reports)."""
    tot = sum(int(np.prod(r.keep2d.shape)) for r in rows)
    return sum(int((~r.keep2d).sum()) for r in rows) / max(1, tot)
