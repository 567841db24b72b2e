"""Long motions from several prompts: each part generated, joined by in-painted transition tokens, decoded once.

``generate_timeline(pipe, [(prompt, seconds), ...])``:

1. every part becomes one or more chunks of at most 196 frames (a part longer than that is cut into equal
   chunks of the same prompt); all chunks of all samples are generated as one batch (plain masked generation);
2. the chunks' tokens (both streams, every residual layer) are laid end to end; around every join the last
   ``TRANSITION_TOKENS`` tokens of one chunk and the first ``TRANSITION_TOKENS`` of the next are re-generated
   by the constrained sampler (``backend.editing.sampler``) with up to ``CONTEXT_TOKENS`` kept tokens on each
   side, prompted with the next part's prompt; all joins of all samples are one batch;
3. the whole token sequence is decoded once (in overlapping windows when long, ``tokens.decode_long``) and
   turned into joints with one integration of the root, so the motion is continuous by construction and has
   exactly the requested length (the transitions replace frames, they add none).

``compose_parts`` is the same join for the sentences of one "X, then Y" prompt (``backend.generation.prompt_parts``), with
the part lengths the pipeline would use; ``GeneratedSample.parts`` lists them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from backend.motion.features import features_to_joints
from backend.generation.sample import MAX_FRAMES, UNIT_LENGTH, GeneratedSample

from . import tokens as T
from .limits import MAX_TIMELINE_PARTS, MAX_TIMELINE_SECONDS, MIN_PART_SECONDS
from .sampler import Row, sample_rows
from .source import EditError

__all__ = ["generate_timeline", "compose_parts", "plan_chunks", "TRANSITION_TOKENS", "MAX_TIMELINE_SECONDS",
           "MIN_PART_SECONDS"]

TRANSITION_TOKENS = 2      # re-generated on each side of a join (2 + 2 tokens = 0.8 s)
CONTEXT_TOKENS = 6         # kept tokens on each side of a transition


def plan_chunks(items) -> list[tuple[str, int, int]]:
    """[(prompt, seconds)] -> [(prompt, tokens, part index)]: parts longer than 196 frames cut into equal chunks."""
    if not items:
        raise EditError("the timeline is empty")
    if len(items) > MAX_TIMELINE_PARTS:
        raise EditError(f"the timeline has {len(items)} parts; at most {MAX_TIMELINE_PARTS}")
    total = 0.0
    out = []
    max_tok = MAX_FRAMES // UNIT_LENGTH
    for i, (prompt, seconds) in enumerate(items):
        if not isinstance(prompt, str) or not prompt.strip():
            raise EditError(f"timeline part {i + 1} has no prompt")
        s = float(seconds)
        if not np.isfinite(s) or s < MIN_PART_SECONDS:
            raise EditError(f"timeline part {i + 1} ({prompt[:40]!r}) must last at least {MIN_PART_SECONDS:g} s")
        total += s
        tok = int(round(s * 20 / UNIT_LENGTH))
        n = -(-tok // max_tok)
        for c in range(n):
            out.append((" ".join(prompt.split()), tok // n + (1 if c < tok % n else 0), i))
    if total > MAX_TIMELINE_SECONDS:
        raise EditError(f"the timeline lasts {total:g} s; at most {MAX_TIMELINE_SECONDS:g} s")
    return out


def _scaled(progress, lo, hi):
    if progress is None:
        return None
    return lambda stage, f: progress(stage, lo + (hi - lo) * float(f))


def _join(pipe, chunks, seed, samples, use_retrieval, progress, cancelled, sampling):
    """Generate the chunks and their transitions -> per sample (ids1d (K, Q), ids2d (K, 6, Q)), retrieved."""
    q = pipe.models.vq.num_quantizers
    dev = pipe.device
    rows = []
    for _ in range(samples):
        for prompt, tok, _ in chunks:
            rows.append(Row(prompt, torch.zeros(tok, q, dtype=torch.long, device=dev),
                            torch.zeros(tok, 6, q, dtype=torch.long, device=dev),
                            torch.zeros(tok, dtype=torch.bool, device=dev),
                            torch.zeros(tok, 6, dtype=torch.bool, device=dev)))
    gen = sample_rows(pipe, rows, seed=seed, use_retrieval=use_retrieval, progress=_scaled(progress, 0.0, 0.5),
                      cancelled=cancelled, **sampling)
    n = len(chunks)
    seqs, retrieved = [], []
    for s in range(samples):
        a = [gen.ids1d[s * n + c, :chunks[c][1]] for c in range(n)]
        b = [gen.ids2d[s * n + c, :chunks[c][1]] for c in range(n)]
        seqs.append([torch.cat(a), torch.cat(b)])
        retrieved.append([x for c in range(n) for x in gen.retrieved[s * n + c]])
    if n == 1:
        return seqs, retrieved
    bounds = np.cumsum([t for _, t, _ in chunks])[:-1]
    rows, where = [], []
    for s in range(samples):
        ids1d, ids2d = seqs[s]
        for c, p in enumerate(bounds):
            h_l = min(TRANSITION_TOKENS, chunks[c][1] - 1)
            h_r = min(TRANSITION_TOKENS, chunks[c + 1][1] - 1)
            lo = max(0, p - h_l - CONTEXT_TOKENS)
            hi = min(len(ids1d), p + h_r + CONTEXT_TOKENS)
            keep = torch.ones(hi - lo, dtype=torch.bool, device=dev)
            keep[p - h_l - lo:p + h_r - lo] = False
            rows.append(Row(chunks[c + 1][0], ids1d[lo:hi], ids2d[lo:hi], keep, keep[:, None].repeat(1, 6)))
            where.append((s, lo, hi, p - h_l, p + h_r))
    tr = sample_rows(pipe, rows, seed=seed + 1, use_retrieval=use_retrieval, progress=_scaled(progress, 0.5, 0.85),
                     cancelled=cancelled, **sampling)
    for i, (s, lo, hi, h0, h1) in enumerate(where):
        seqs[s][0][h0:h1] = tr.ids1d[i, h0 - lo:h1 - lo]
        seqs[s][1][h0:h1] = tr.ids2d[i, h0 - lo:h1 - lo]
    return seqs, retrieved


@torch.inference_mode()
def generate_timeline(pipe, items, seed: int = 0, samples: int = 1, use_retrieval: bool = True,
                      progress: Callable | None = None, cancelled: Callable | None = None,
                      **sampling) -> list[GeneratedSample]:
    """[(prompt, seconds), ...] -> ``samples`` motions (see the module doc). Each sample's ``parts`` are the
    prompts; ``part_frames`` (an attribute) gives each part's frames: from the start of the transition into it
    (prompted with it) to the start of the transition out of it."""
    return _generate(pipe, plan_chunks(items), [" ".join(p.split()) for p, _ in items], seed, samples,
                     use_retrieval, progress, cancelled, sampling)


def _generate(pipe, chunks, prompts, seed, samples, use_retrieval, progress, cancelled, sampling):
    seqs, retrieved = _join(pipe, chunks, seed, samples, use_retrieval, progress, cancelled, sampling)
    if progress is not None:
        progress("decode", 0.86)
    # each part owns its frames from the start of the transition into it to the start of the transition out
    # of it (a transition is prompted with the part it leads into)
    bounds = [0]
    for i in range(len(prompts)):
        bounds.append(bounds[-1] + sum(t for _, t, k in chunks if k == i) * UNIT_LENGTH)
    total = bounds[-1]
    lead = [0] + [min(TRANSITION_TOKENS, chunks[[k for _, _, k in chunks].index(i)][1] - 1) * UNIT_LENGTH
                  for i in range(1, len(prompts))]
    ranges = [(bounds[i] - lead[i], bounds[i + 1] - (lead[i + 1] if i + 1 < len(prompts) else 0))
              for i in range(len(prompts))]
    ranges[-1] = (ranges[-1][0], total)
    out = []
    for s, (ids1d, ids2d) in enumerate(seqs):
        f = T.decode_long(pipe, ids1d, ids2d)
        j = np.asarray(features_to_joints(f), dtype=np.float32)
        g = GeneratedSample(prompt="; ".join(prompts), sample_index=s, seed=int(seed), joints=j, features=f,
                            length=len(f), retrieved=list(dict.fromkeys(retrieved[s])), parts=list(prompts))
        g.part_frames = list(ranges)
        g.result_fields = (lambda r=list(ranges): {"part_frames": [list(x) for x in r]})
        g.motion_fields = (lambda r=list(ranges): {"part_frames": np.asarray(r, np.int64).reshape(-1, 2)})
        out.append(g)
    if progress is not None:
        progress("done", 1.0)
    return out


def compose_parts(pipe, prompts, plans, toks, seed, samples, use_retrieval, progress, cancelled,
                  **sampling) -> list[GeneratedSample]:
    """The pipeline's composed "X, then Y" generation with token transitions instead of feature cross-fades:
    ``plans`` the sentences of each prompt, ``toks`` their token lengths (``Pipeline._part_tokens``)."""
    out = []
    for prompt, pl, tk in zip(prompts, plans, toks):
        chunks = [(p, int(t), i) for i, (p, t) in enumerate(zip(pl, tk))]
        res = _generate(pipe, chunks, list(pl), seed, samples, use_retrieval, progress, cancelled, sampling)
        for r in res:
            r.prompt = prompt
            r.parts = list(pl) if len(pl) > 1 else []
        out += res
    return out
