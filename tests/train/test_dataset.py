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


def test_clip_balanced_windows(items):
    """Each clip is drawn equally often whatever its length, every row is a real window of its clip, and a
    clip shorter than the window is counted as not seen."""
    norm = fit_corpus_normalizer(items)
    ds = MotionWindowDataset(items, norm, window=32)
    lengths = np.array([len(d) for d in ds.data])
    assert lengths.max() > 2 * lengths.min()  # the corpus mixes short and long clips
    g = torch.Generator().manual_seed(0)
    batches = ds.clip_balanced_batches(64, g)
    starts = {d[s].tobytes(): (i, s) for i, d in enumerate(ds.data) for s in range(len(d) - 31)}
    hits = np.zeros(len(ds.data))
    for _ in range(40):
        x = next(batches)
        assert x.shape == (64, 32, 263) and x.dtype == torch.float32
        for row in x.numpy():
            i, s = starts[row[0].tobytes()]  # KeyError: a row that starts no window of any clip
            np.testing.assert_array_equal(row, ds.data[i][s:s + 32])
            hits[i] += 1
    # 2560 rows over len(ds.data) clips: uniform per clip (chi-square), not per window (long clips would win)
    from scipy.stats import chisquare

    assert chisquare(hits).pvalue > 1e-3
    short = corpus_features(make_corpus(6, seed=3, split="train"))
    shortest = min(len(it.features) for it in short)
    ds2 = MotionWindowDataset(short, fit_corpus_normalizer(short), window=shortest + 1)
    assert ds2.n_skipped >= 1 and ds2.skipped
    assert ds2.n_skipped + len(ds2.data) == len(short)


def test_starter_window_shows_every_clip_to_the_vq():
    """The starter's RVQ-VAE window is no longer than the shortest clip of each procedural family (a longer
    one silently left 40 % of starter 2's corpus out of the VQ's training)."""
    from backend.train.configs import get_config

    window = get_config("starter")["vq"]["window"]
    clips = corpus_features(make_corpus(100, seed=0, split="train"))
    assert min(len(it.features) for it in clips) >= window
    assert MotionWindowDataset(clips, fit_corpus_normalizer(clips), window).n_skipped == 0


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


def test_noun_phrase_of_light_verb_captions():
    from backend.synthetic.captions import SUBJECTS
    from backend.synthetic.wording import noun_phrase

    cases = {"a person does push-ups": "push-ups", "doing two vertical jumps": "two vertical jumps",
             "someone performs a karate kata": "a karate kata", "does some push-ups": "push-ups",
             "the woman does a full turn to the left": "a full turn to the left",
             "practice karate": "karate", "performing star jumps": "star jumps"}
    for caption, want in cases.items():
        assert noun_phrase(caption, SUBJECTS) == want, caption
    for caption in ("a man does squats, then waves", "a person walks forward", "takes a bow", "does",
                    "someone does a kick while walking", "a person jumps and does a spin"):
        assert noun_phrase(caption, SUBJECTS) is None, caption


def _clip(family, captions, params=None):
    from backend.synthetic.corpus import Clip

    j = np.zeros((40, 22, 3), np.float32)
    return Clip(joints=j, caption=captions[0], family=family, params=params or {},
                contacts=np.zeros((40, 4), bool), captions=tuple(captions))


def test_with_noun_phrases_adds_forms_and_keeps_heldout_prompts_out():
    from backend.train.dataset import caption_key, heldout_forms, with_noun_phrases

    assert caption_key("a person does Jumping-Jacks!") == "does jumping jacks"
    held = heldout_forms()
    assert "jumping jacks" in held  # HELDOUT_PLAIN's "jumping jacks"
    squats = _clip("squat", ["a man does two squats", "squatting twice", "the person does two squats"])
    real = _clip("jumping_jacks", ["a woman does jumping jacks"], {"source": "x.bvh", "side": None})
    other = _clip("walk", ["a person walks forward"])
    out = with_noun_phrases([squats, real, other])
    assert out[0].captions == squats.captions + ("two squats",)
    assert out[0].joints is squats.joints and out[2] is other  # motions and other clips untouched
    added = out[1].captions[1:]
    # the family's noun phrases ("star jumps", ...), never the held-out "jumping jacks" itself
    assert "star jumps" in added and "a set of jumping jacks" in added
    assert "jumping jacks" not in out[1].captions and all(caption_key(a) not in held for a in added)


def test_build_datasets_noun_phrases_change_only_the_phrasings():
    a = build_datasets(40, 0, seed=3, window=40, captions_per_clip=6)
    b = build_datasets(40, 0, seed=3, window=40, captions_per_clip=6, noun_phrases=True)
    assert np.allclose(a[0].mean, b[0].mean) and len(a[2]) == len(b[2])
    more = 0
    for x, y in zip(a[2].items, b[2].items):
        assert np.array_equal(x.features, y.features) and y.variants[:len(x.variants)] == x.variants
        more += len(y.variants) - len(x.variants)
    assert more > 0
