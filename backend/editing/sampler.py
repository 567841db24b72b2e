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
from backend.models.sampling import row_generator

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


@torch.inference_mode()
def sample_rows(pipe, rows: list[Row], seed: int = 0, use_retrieval: bool = True,
                progress: Callable[[str, float], None] | None = None, cancelled: Callable[[], bool] | None = None,
                **sampling) -> SampledTokens:
    """Sample every row's hole (see the module doc). ``sampling``: cond_scale, time_steps, temperature, topk,
    res_cond_scale (None = the model's). Row k draws from its own generator (``row_generator(seed, k)``), as
    a generated motion's sample k does: a row does not depend on the others, and with nothing kept it is
    generation."""
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
    conds = pipe._conditions([r.prompt for r in rows], use_retrieval, report, check)
    cs, ts, temp, topk = sp["cond_scale"], sp["time_steps"], sp["temperature"], sp["topk"]
    outs = []
    for k, r in enumerate(rows):  # each row on its own, from its own generator: as generation does
        def stage(name, lo, hi, k=k):
            return lambda f: report(name, 0.06 + 0.94 * (k + lo + (hi - lo) * f) / len(rows))
        gen = row_generator(dev, seed, k)
        cond, _, re_dict, _, _ = conds[r.prompt]
        lens = torch.tensor([int(r.ids1d.shape[0])], device=dev)
        ids1d = r.ids1d.to(dev).clamp(min=0)[None]
        ids2d = r.ids2d.to(dev).clamp(min=0)[None]
        keep1d, keep2d = r.keep1d.to(dev)[None], r.keep2d.to(dev)[None]
        stage("mask_aux", 0.0, 0.0)(0.0)
        base1 = m.mask_aux.generate(cond, lens, ts, cs, temp, topk, gen, cancelled=cancelled,
                                    on_step=stage("mask_aux", 0.0, 0.25), keep=keep1d, init_ids=ids1d[..., 0])
        base2 = m.mask_ts.generate(cond, lens, re_dict, ts, cs, temp, topk, gen, use_retrieval=re_dict is not None,
                                   cancelled=cancelled, on_step=stage("mask_ts", 0.25, 0.55), keep=keep2d,
                                   init_ids=ids2d[..., 0])
        stage("residual", 0.55, 0.55)(0.0)
        all1 = m.res_aux.generate(base1, cond, lens, 1.0, topk, sp["res_cond_scale"], gen, cancelled=cancelled,
                                  on_step=stage("residual", 0.55, 0.75), keep=keep1d, init_ids=ids1d)
        all2 = m.res_ts.generate(base2, cond, lens, 1.0, topk, sp["res_cond_scale"], gen, cancelled=cancelled,
                                 on_step=stage("residual", 0.75, 1.0), keep=keep2d, init_ids=ids2d)
        check()
        outs.append((all1[0], all2[0]))
    lens = torch.tensor([int(r.ids1d.shape[0]) for r in rows], device=dev)
    k = int(lens.max())
    all1 = torch.full((len(rows), k) + tuple(outs[0][0].shape[1:]), -1, dtype=torch.long, device=dev)
    all2 = torch.full((len(rows), k) + tuple(outs[0][1].shape[1:]), -1, dtype=torch.long, device=dev)
    for i, (a1, a2) in enumerate(outs):
        all1[i, :a1.shape[0]] = a1
        all2[i, :a2.shape[0]] = a2
    return SampledTokens(all1, all2, lens, [conds[r.prompt][3][:] for r in rows],
                         [[str(x) for x in conds[r.prompt][4]] for r in rows])


def hole_fraction(rows: list[Row]) -> float:
    """Share of 2D tokens generated (for reports)."""
    tot = sum(int(np.prod(r.keep2d.shape)) for r in rows)
    return sum(int((~r.keep2d).sum()) for r in rows) / max(1, tot)
