"""Statistical tests of the samplers the transformers draw tokens with (backend/models/sampling.py).

Each sampler is run 20,000 times on a fixed categorical distribution (one batched call, every row an
independent draw) and the counts are compared with the target frequencies by a chi-square test. The same
harness must reject degenerate samplers (always token 0, always the argmax), so it cannot pass vacuously."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from backend.models.sampling import categorical, gumbel, top_k_filter

N_DRAWS = 20_000
P_MIN = 1e-3
LOGITS = torch.tensor([1.2, -0.3, 0.4, 2.0, -1.5, 0.9, 0.0, 1.6])


def _target(logits: torch.Tensor, temperature: float = 1.0, thres: float | None = None) -> np.ndarray:
    """The distribution a correct sampler draws from: softmax(logits / T) over the kept top-k entries."""
    x = logits.double() / temperature
    if thres is not None:
        k = max(1, math.ceil((1.0 - thres) * len(x)))
        keep = torch.zeros_like(x, dtype=torch.bool)
        keep[x.topk(k).indices] = True
        x = x.masked_fill(~keep, float("-inf"))
    return torch.softmax(x, 0).numpy()


def _p_value(draws: torch.Tensor, target: np.ndarray) -> float:
    counts = np.bincount(draws.reshape(-1).cpu().numpy(), minlength=len(target)).astype(np.float64)
    assert counts.sum() == N_DRAWS
    support = target > 0
    if counts[~support].any():  # drew a token the distribution excludes
        return 0.0
    if support.sum() == 1:  # a one-token distribution: every draw in it is the only correct outcome
        return 1.0
    expected = target[support] * N_DRAWS
    return float(chisquare(counts[support], expected).pvalue)


def _batch(logits: torch.Tensor) -> torch.Tensor:
    return logits.expand(N_DRAWS, -1).clone()


def _gen(seed: int = 0) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


# (name, sampler(logits batch, generator) -> ids, temperature, top-k threshold)
SAMPLERS = [
    ("gumbel", lambda x, g: gumbel(x, 1.0, g), 1.0, None),
    ("gumbel_T0.6", lambda x, g: gumbel(x, 0.6, g), 0.6, None),
    ("gumbel_topk", lambda x, g: gumbel(top_k_filter(x, 0.5), 1.0, g), 1.0, 0.5),
    ("categorical", lambda x, g: categorical(x, 1.0, g), 1.0, None),
    ("categorical_T1.5", lambda x, g: categorical(x, 1.5, g), 1.5, None),
    ("categorical_topk", lambda x, g: categorical(top_k_filter(x, 0.5), 1.0, g), 1.0, 0.5),
    # the residual transformers' default: top-k 0.9 of 8 tokens keeps one, so the draw is the argmax
    ("gumbel_topk0.9", lambda x, g: gumbel(top_k_filter(x, 0.9), 1.0, g), 1.0, 0.9),
]


@pytest.mark.parametrize("name,sampler,temperature,thres", SAMPLERS, ids=[s[0] for s in SAMPLERS])
def test_sampler_matches_target_frequencies(name, sampler, temperature, thres):
    draws = sampler(_batch(LOGITS), _gen(1))
    assert draws.shape == (N_DRAWS,) and draws.dtype == torch.int64
    target = _target(LOGITS, temperature, thres)
    p = _p_value(draws, target)
    assert p > P_MIN, f"{name}: chi-square p = {p:.2e}"


@pytest.mark.parametrize("name,sampler", [
    ("always_zero", lambda x, g: torch.zeros(x.shape[:-1], dtype=torch.int64)),
    ("always_argmax", lambda x, g: x.argmax(-1)),
    ("ignores_temperature", lambda x, g: categorical(x, 1.0, g)),   # judged against T=0.6 below
])
def test_degenerate_samplers_fail_the_test(name, sampler):
    target = _target(LOGITS, 0.6 if name == "ignores_temperature" else 1.0)
    assert _p_value(sampler(_batch(LOGITS), _gen(2)), target) < P_MIN, name


def test_gumbel_noise_is_finite_and_draws_vary():
    """The bug this guards: the noise was NaN, so argmax returned 0 for every row."""
    draws = gumbel(torch.zeros(N_DRAWS, 5), 1.0, _gen(3))
    assert len(torch.unique(draws)) == 5 and (draws != 0).float().mean() > 0.7


def test_same_generator_state_same_draws():
    a = gumbel(_batch(LOGITS), 1.0, _gen(5))
    b = gumbel(_batch(LOGITS), 1.0, _gen(5))
    c = gumbel(_batch(LOGITS), 1.0, _gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("sampler", [categorical, gumbel])
def test_a_generator_per_row_draws_what_each_row_draws_alone(sampler):
    """Candidates of one motion are sampled as one batch with a generator per row (pipeline._sample_rows): each
    row must draw exactly what it draws alone from its generator, and the rows must differ (their own streams)."""
    logits = torch.randn(3, 40, 7, generator=_gen(11))
    together = sampler(logits, 1.0, [_gen(1), _gen(2), _gen(3)])
    alone = torch.stack([sampler(logits[i:i + 1], 1.0, _gen(i + 1))[0] for i in range(3)])
    assert together.shape == (3, 40) and torch.equal(together, alone)
    same = sampler(logits[[0, 0, 0]], 1.0, [_gen(1), _gen(2), _gen(3)])
    assert not torch.equal(same[0], same[1]) and not torch.equal(same[1], same[2])
    with pytest.raises(ValueError, match="2 generators for a batch of 3 rows"):
        sampler(logits, 1.0, [_gen(1), _gen(2)])
