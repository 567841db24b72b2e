"""Torch datasets over the synthetic corpus."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from backend.synthetic import make_corpus
from backend.train.dataset import (MotionWindowDataset, TextMotionDataset, build_datasets, corpus_features,
                                   fit_corpus_normalizer)


@pytest.fixture(scope="module")
def items():
    return corpus_features(make_corpus(24, seed=2, split="train"))


def test_features_and_normalizer(items):
    assert all(it.features.shape[1] == 263 and it.features.dtype == np.float32 for it in items)
    norm = fit_corpus_normalizer(items)
    z = np.concatenate([norm.normalize(it.features) for it in items])
    # data-driven groups are standardised: per-dimension means ~0, overall group variance ~1
    assert np.abs(z.mean(0)).max() < 1e-3
    assert 0.5 < z[:, 4:67].std() < 1.5
    np.testing.assert_allclose(norm.denormalize(norm.normalize(items[0].features)), items[0].features, atol=1e-4)


def test_window_dataset(items):
    norm = fit_corpus_normalizer(items)
    ds = MotionWindowDataset(items, norm, window=32)
    expected = sum(len(it.features) - 32 + 1 for it in items if len(it.features) >= 32)
    assert len(ds) == expected
    x = ds[0]
    assert isinstance(x, torch.Tensor) and x.shape == (32, 263) and x.dtype == torch.float32
    # the last window of the first clip is its tail
    first = norm.normalize(items[0].features)
    k = len(first) - 32
    np.testing.assert_allclose(ds[k].numpy(), first[-32:], atol=1e-6)
    np.testing.assert_allclose(ds[k + 1].numpy(), norm.normalize(items[1].features)[:32], atol=1e-6)
    with pytest.raises(IndexError):
        ds[len(ds)]
    with pytest.raises(ValueError):
        MotionWindowDataset(items, norm, window=10_000)


def test_text_dataset_and_loader(items):
    norm = fit_corpus_normalizer(items)
    ds = TextMotionDataset(items, norm, unit_length=4, max_frames=196)
    it = ds[3]
    assert it["caption"] == items[3].caption
    n = it["length"]
    assert n % 4 == 0 and it["tokens"] == n // 4 and len(items[3].features) - 4 < n <= len(items[3].features)
    assert it["motion"].shape == (196, 263)
    assert torch.all(it["motion"][n:] == 0)
    np.testing.assert_allclose(it["motion"][:n].numpy(), norm.normalize(items[3].features)[:n], atol=1e-6)
    batch = next(iter(DataLoader(ds, batch_size=5)))
    assert batch["motion"].shape == (5, 196, 263) and len(batch["caption"]) == 5
    assert batch["tokens"].tolist() == [b // 4 for b in batch["length"].tolist()]
    rc = TextMotionDataset(items, norm, random_crop=True, seed=1)
    a, b = rc[0]["motion"], rc[0]["motion"]
    assert torch.equal(a, b)  # reproducible within an epoch


def test_build_datasets_small():
    norm, win, train, test = build_datasets(10, 4, seed=0, window=40)
    assert len(win) > 0 and len(train) == 10 and len(test) == 4
    assert norm.dim == 263
    assert set(test[0].keys()) == {"caption", "motion", "length", "tokens", "family"}
