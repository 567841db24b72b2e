"""Batch sampling and the learning-rate schedule of the training loop."""

import math

import pytest
import torch

from backend.train.common import StageState, run_loop
from backend.train.dataset import FeatureClip
from backend.train.stages import CaptionVariants, _bucketed_batches


def test_caption_variants_flatten_and_pick():
    items = [FeatureClip(None, "a", "f", ("a", "a2", "a3")), FeatureClip(None, "b", "f"),
             FeatureClip(None, "c", "f", ("c", "c2"))]
    v = CaptionVariants(items)
    assert v.texts == ["a", "a2", "a3", "b", "c", "c2"]
    assert v.clip_of.tolist() == [0, 0, 0, 1, 2, 2]
    assert v.pick([2, 0, 1]).tolist() == [4, 0, 3]  # no generator: each clip's own caption
    g = torch.Generator().manual_seed(0)
    drawn = torch.stack([v.pick([0, 1, 2], g) for _ in range(300)])
    assert set(drawn[:, 0].tolist()) == {0, 1, 2} and set(drawn[:, 1].tolist()) == {3}
    assert set(drawn[:, 2].tolist()) == {4, 5}
    assert (v.clip_of[drawn] == torch.tensor([0, 1, 2])).all()


def test_bucketed_batches_cover_every_clip_and_cut_padding():
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(10, 50, (640,), generator=g)
    it = _bucketed_batches(lengths, 16, g, chunk=8)
    epoch = [next(it) for _ in range(40)]
    seen = torch.cat(epoch)
    assert sorted(seen.tolist()) == list(range(640))  # one epoch: every clip exactly once
    pad = sum(int(lengths[b].max()) * len(b) for b in epoch) / int(lengths.sum())
    rand = torch.randperm(640, generator=g).reshape(40, 16)
    pad_rand = sum(int(lengths[b].max()) * len(b) for b in rand) / int(lengths.sum())
    assert pad < 1.15 < pad_rand, (pad, pad_rand)
    assert len({tuple(b.tolist()) for b in epoch} & {tuple(b.tolist()) for b in
                                                      (next(it) for _ in range(40))}) < 5  # reshuffled
    small = _bucketed_batches(torch.tensor([3, 1, 2]), 8, g)
    assert sorted(next(small).tolist()) == [0, 1, 2]


@pytest.mark.parametrize("limit", ["steps", "minutes"])
def test_learning_rate_warms_up_then_anneals(tmp_path, limit):
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=1.0)
    lrs = []

    def step(i):
        lrs.append(opt.param_groups[0]["lr"])
        return {"loss": 1.0}

    if limit == "steps":
        run_loop(StageState(tmp_path, "s"), {}, opt, step, 100, 60.0, False, "s", warmup=10, progress=False,
                 final_lr=0.1)
        assert len(lrs) == 100
        expect = [min(1.0, (k + 1) / 10) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / 100)))
                  for k in range(100)]
        assert lrs == pytest.approx(expect, abs=1e-6)
        assert lrs[50] == pytest.approx(0.55, abs=1e-6) and lrs[-1] == pytest.approx(0.1, abs=0.01)
        assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    else:  # a time budget anneals too: the LR falls with the elapsed share of it
        import time

        def slow(i):
            time.sleep(0.02)
            return step(i)

        run_loop(StageState(tmp_path, "t"), {}, opt, slow, 10 ** 6, 0.01, False, "t", warmup=1, progress=False,
                 final_lr=0.1)
        assert 5 < len(lrs) < 60 and lrs[-1] < 0.3 and lrs[1] > 0.9
    assert opt.param_groups[0]["lr"] == 1.0  # restored for the checkpoint
