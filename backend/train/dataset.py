"""Torch datasets over the synthetic corpus: normalised 263-d feature windows, captions, token lengths.

Two views of one corpus, as the two training stages need them:

- ``MotionWindowDataset`` (RVQ-VAE stage): every window of ``window`` consecutive feature frames of every
  clip, normalised -> float32 tensor (window, 263). ``clip_balanced_batches`` draws a clip first, then a
  window of it, so a 2-second clip is seen as often as a 10-second one; a clip shorter than the window is
  never seen (``skipped`` counts them: the window must not be longer than the corpus's shortest clips).
- ``TextMotionDataset`` (masked / residual transformer and retrieval stages): one item per clip ->
  dict(caption, motion (max_frames, 263) normalised and zero-padded, length (frames, a multiple of
  ``unit_length``), tokens (= length // unit_length, the token length after the VQ's temporal
  down-sampling), family).

Features come from ``backend.motion.features.joints_to_features`` (T joints -> T-1 feature frames); the
normaliser is ``backend.motion.normalize`` (fit on the training corpus with ``fit_corpus_normalizer``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from backend.motion.features import joints_to_features
from backend.motion.normalize import Normalizer, fit_normalizer
from backend.motion.skeleton import FEATURE_DIM

UNIT_LENGTH = 4          # frames per motion token (the VQ's temporal down-sampling)
MAX_MOTION_LENGTH = 196  # frames, as the official model
WINDOW = 64              # RVQ-VAE training window (frames) by default; the starter config uses 32 (its
                         # shortest clips have 39 feature frames: a longer window never shows them to the VQ)


@dataclass
class FeatureClip:
    features: np.ndarray   # (T-1, 263) float32, not normalised
    caption: str
    family: str
    captions: tuple = ()   # every phrasing of the clip (its caption first); empty = just ``caption``

    @property
    def variants(self) -> tuple:
        return tuple(self.captions) or (self.caption,)


def corpus_features(clips) -> list[FeatureClip]:
    """Features of every clip of a corpus (list of backend.synthetic.Clip)."""
    out = []
    for c in clips:
        f = np.asarray(joints_to_features(c.joints), dtype=np.float32)
        if f.ndim != 2 or f.shape[1] != FEATURE_DIM or not np.isfinite(f).all():
            raise ValueError(f"bad features for a {c.family!r} clip: shape {f.shape}")
        out.append(FeatureClip(f, c.caption, c.family, tuple(getattr(c, "captions", ()) or ())))
    return out


def fit_corpus_normalizer(items: list[FeatureClip], feat_bias: float = 1.0) -> Normalizer:
    """Mean/std over all feature frames of the (training) corpus, HumanML3D style."""
    return fit_normalizer([it.features for it in items], feat_bias=feat_bias)


class MotionWindowDataset(Dataset):
    """All length-`window` feature windows (normalised), for the RVQ-VAE."""

    def __init__(self, items: list[FeatureClip], normalizer: Normalizer, window: int = WINDOW):
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = int(window)
        self.data = [normalizer.normalize(it.features).astype(np.float32)
                     for it in items if len(it.features) >= window]
        self.skipped = sorted({it.family for it in items if len(it.features) < window})
        self.n_skipped = sum(len(it.features) < window for it in items)
        if not self.data:
            raise ValueError(f"no clip has {window} feature frames")
        counts = [len(d) - window + 1 for d in self.data]
        self.cumsum = np.concatenate([[0], np.cumsum(counts)])

    def __len__(self) -> int:
        return int(self.cumsum[-1])

    def __getitem__(self, i: int) -> torch.Tensor:
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = int(np.searchsorted(self.cumsum, i, side="right") - 1)
        s = i - int(self.cumsum[k])
        return torch.from_numpy(self.data[k][s:s + self.window])

    def clip_balanced_batches(self, bs: int, g: torch.Generator):
        """Endless (bs, window, 263) batches: each row a clip drawn uniformly, then a window of it drawn
        uniformly. Drawing windows uniformly instead lets long clips dominate (a 190-frame clip has 3x the
        windows of a 90-frame one and 150x those of a 65-frame one at window 64)."""
        counts = torch.as_tensor(np.diff(self.cumsum), dtype=torch.float64)
        while True:
            clips = torch.randint(len(self.data), (bs,), generator=g)
            offs = (torch.rand(bs, generator=g, dtype=torch.float64) * counts[clips]).long()
            yield torch.stack([torch.from_numpy(self.data[int(c)][int(o):int(o) + self.window])
                               for c, o in zip(clips, offs)])


class TextMotionDataset(Dataset):
    """One item per clip: caption + normalised, padded features + frame and token lengths.

    The length is cut down to a multiple of `unit_length` (at most max_frames); with `random_crop` the kept
    span starts at a random offset drawn from (seed, epoch, index), so an epoch is reproducible; otherwise
    at frame 0.
    """

    def __init__(self, items: list[FeatureClip], normalizer: Normalizer, unit_length: int = UNIT_LENGTH,
                 max_frames: int = MAX_MOTION_LENGTH, random_crop: bool = False, seed: int = 0):
        if unit_length < 1 or max_frames < unit_length:
            raise ValueError("need 1 <= unit_length <= max_frames")
        self.unit, self.max_frames = int(unit_length), int(max_frames)
        self.random_crop, self.seed, self.epoch = bool(random_crop), int(seed), 0
        self.items = [it for it in items if len(it.features) >= unit_length]
        if not self.items:
            raise ValueError("no clip is long enough")
        self.data = [normalizer.normalize(it.features).astype(np.float32) for it in self.items]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        m = self.data[i]
        n = min(len(m), self.max_frames)
        n = (n // self.unit) * self.unit
        start = 0
        if self.random_crop and len(m) > n:
            rng = np.random.default_rng((self.seed, self.epoch, i))
            start = int(rng.integers(0, len(m) - n + 1))
        motion = np.zeros((self.max_frames, m.shape[1]), np.float32)
        motion[:n] = m[start:start + n]
        it = self.items[i]
        return {"caption": it.caption, "motion": torch.from_numpy(motion), "length": n,
                "tokens": n // self.unit, "family": it.family}


def mocap_clips(mocap: dict, seed: int = 0):
    """(train, test) real-motion clips for ``build_datasets``' ``mocap`` option. Refuses a folder without any
    usable take, with one message."""
    from backend.mocap.clips import balance_families, load_mocap_corpus, split_by_take

    errors: list = []
    clips = load_mocap_corpus(mocap["dir"], seed=seed, errors=errors,
                              captions_per_clip=int(mocap.get("captions_per_clip", 4)))
    if not clips:
        raise ValueError(f"no usable motion capture under {mocap['dir']}"
                         + (f" ({len(errors)} unreadable files, e.g. {errors[0]})" if errors else ""))
    train, test = split_by_take(clips, int(mocap.get("test_every", 8)))
    return balance_families(train, int(mocap.get("min_per_family", 24))), test


@functools.lru_cache(maxsize=1)
def heldout_forms() -> frozenset:
    """Every held-out prompt (backend/train/heldout.py, backend/mocap/heldout.py), without subject, case or
    punctuation: a caption form derived for training that reads as one of them is not used."""
    from backend.mocap.heldout import HELDOUT_PROMPTS
    from backend.train.heldout import HELDOUT_EVERYDAY, HELDOUT_PLAIN

    prompts = [p for _, p, *_ in HELDOUT_EVERYDAY + HELDOUT_PLAIN] + [p for ps in HELDOUT_PROMPTS.values() for p in ps]
    return frozenset(caption_key(p) for p in prompts)


def caption_key(text: str) -> str:
    """A caption without its subject, case or punctuation (how held-out prompts are kept apart from training)."""
    from backend.synthetic.captions import SUBJECTS
    from backend.synthetic.wording import without_subject

    return re.sub(r"[^a-z0-9]+", " ", without_subject(text.strip().lower(), SUBJECTS)).strip()


def with_noun_phrases(clips: list) -> list:
    """The clips, each with the noun phrases of its light-verb captions added to its phrasings (and, for a
    real-motion window, those of every phrase of its family; ``backend.synthetic.wording.noun_phrases``), none that
    reads as a held-out prompt. Deterministic: the motions, the other captions and every random stream stay as
    they were."""
    import dataclasses

    from backend.mocap.labels import PHRASES
    from backend.synthetic.captions import SUBJECTS
    from backend.synthetic.wording import noun_phrases

    exclude = heldout_forms()
    out = []
    for c in clips:
        caps = list(c.captions) or [c.caption]
        sources = list(caps)
        if "source" in c.params and c.family in PHRASES:  # a real-motion window
            sources += [p.format(side=c.params.get("side") or "") for p in PHRASES[c.family]]
        more = [n for n in noun_phrases(sources, SUBJECTS, lambda n: caption_key(n) in exclude) if n not in caps]
        out.append(dataclasses.replace(c, captions=tuple(caps + more)) if more else c)
    return out


def build_datasets(n_train: int, n_test: int, seed: int = 0, window: int = WINDOW, feat_bias: float = 1.0,
                   captions_per_clip: int = 1, mocap: dict | None = None, noun_phrases: bool = False):
    """Generate a synthetic corpus and wrap it: (normalizer, windows, train text set, test text set).

    The normaliser is fit on the training split only; the test split uses held-out phrasings, one per clip.
    Training clips carry ``captions_per_clip`` phrasings each (FeatureClip.variants). ``mocap``
    ({"dir": folder, "min_per_family": n, "test_every": k}) adds the real-motion windows of ``backend.mocap``:
    split by take (``split_by_take``), small families repeated (``balance_families``). ``noun_phrases``: every
    training clip also gets the noun phrase of each light-verb caption ("push-ups" from "does push-ups",
    ``with_noun_phrases``)."""
    from backend.synthetic import make_corpus

    train_clips = make_corpus(n_train, seed, split="train", captions_per_clip=captions_per_clip)
    test_clips = make_corpus(n_test, seed, split="test") if n_test else []
    if mocap:
        real_train, real_test = mocap_clips(mocap, seed)
        train_clips += real_train
        test_clips += real_test
    if noun_phrases:
        train_clips = with_noun_phrases(train_clips)
    train = corpus_features(train_clips)
    test = corpus_features(test_clips) if test_clips else []
    norm = fit_corpus_normalizer(train, feat_bias=feat_bias)
    return (norm, MotionWindowDataset(train, norm, window), TextMotionDataset(train, norm),
            TextMotionDataset(test, norm) if test else None)
