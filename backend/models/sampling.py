"""Sampling helpers shared by the masked and residual transformers. Every random draw takes an explicit
``torch.Generator`` so that a seed gives the same motion on a given device, independent of global RNG state."""

from __future__ import annotations

import math

import numpy as np
import torch


def row_generator(device, seed: int, sample: int, part: int = 0, purpose: int = 0) -> torch.Generator:
    """The generator of one motion: sample ``sample`` of a request with ``seed`` (part ``part`` of a composed
    prompt; ``purpose`` 1: a composed prompt's part lengths), from a ``numpy.random.SeedSequence`` of the four
    numbers: the same on any batch, and seed 1's sample 0 is not seed 0's sample 1."""
    state = np.random.SeedSequence([int(seed), int(sample), int(part), int(purpose)]).generate_state(2, np.uint32)
    gen = torch.Generator(device=device)
    gen.manual_seed((int(state[0]) << 31) ^ int(state[1]))
    return gen


def cosine_schedule(t: torch.Tensor | float) -> torch.Tensor:
    """Fraction of tokens still masked at time t in [0, 1]."""
    return torch.cos(torch.as_tensor(t) * math.pi * 0.5)


def top_k_filter(logits: torch.Tensor, thres: float = 0.9) -> torch.Tensor:
    """Keep the ceil((1 - thres) * n) largest logits of the last axis, set the rest to -inf."""
    n = logits.shape[-1]
    k = max(1, math.ceil((1.0 - thres) * n))
    val, ind = logits.topk(k, dim=-1)
    out = torch.full_like(logits, float("-inf"))
    return out.scatter_(-1, ind, val)


def _uniform(shape, like: torch.Tensor, generator) -> torch.Tensor:
    if isinstance(generator, (list, tuple)):  # one generator per row of the batch
        _rows_match(generator, shape[0])
        return torch.stack([_uniform(tuple(shape[1:]), like, g) for g in generator])
    dev = generator.device if generator is not None else like.device
    return torch.rand(shape, generator=generator, device=dev, dtype=torch.float32).to(like.device)


def _rows_match(generators, rows: int) -> None:
    if len(generators) != rows:
        raise ValueError(f"{len(generators)} generators for a batch of {rows} rows")


def categorical(logits: torch.Tensor, temperature: float, generator) -> torch.Tensor:
    """Sample from softmax(logits / temperature) over the last axis. ``generator``: one torch.Generator, or a
    list with one per row of the batch (the first axis), each row then drawing exactly what it draws alone."""
    if isinstance(generator, (list, tuple)):
        _rows_match(generator, logits.shape[0])
        return torch.stack([categorical(logits[i], temperature, g) for i, g in enumerate(generator)])
    t = max(float(temperature), 1e-10)
    probs = torch.softmax(logits.float() / t, dim=-1)
    flat = probs.reshape(-1, probs.shape[-1])
    if generator is not None and generator.device != flat.device:
        flat = flat.to(generator.device)
    idx = torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])
    return idx.to(logits.device)


def gumbel(logits: torch.Tensor, temperature: float, generator) -> torch.Tensor:
    """argmax(logits / temperature + Gumbel noise), as the residual transformers sample (``generator``: as for
    ``categorical``)."""
    u = _uniform(logits.shape, logits, generator)
    # -log(-log u), each log of a value clamped away from 0. The negation must happen before the outer clamp:
    # log(u) <= 0, so clamping it first gives a constant 1e-20, NaN noise and argmax 0 for every token.
    noise = -torch.log((-torch.log(u.clamp(min=1e-20))).clamp(min=1e-20))
    return (logits.float() / max(float(temperature), 1e-10) + noise).argmax(dim=-1)
