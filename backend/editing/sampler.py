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
    outs = []
    for k, r in enumerate(rows):  # each row on its own, from its own generator: as generation does
        def row_report(stage, frac, k=k):
            report(stage, 0.06 + 0.94 * (k + frac) / len(rows))
        cond, _, re_dict, _, _ = conds[r.prompt]
        keep = (r.keep1d.to(dev)[None], r.keep2d.to(dev)[None], r.ids1d.to(dev).clamp(min=0)[None],
                r.ids2d.to(dev).clamp(min=0)[None])
        all1, all2 = pipe._sample_tokens(cond, torch.tensor([int(r.ids1d.shape[0])], device=dev), re_dict,
                                         row_generator(dev, seed, k), sp, row_report, cancelled, keep=keep)
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
