import numpy as np
import pytest

from backend.generation.pipeline import GenerationCancelled, Pipeline


def test_generate_batch_shapes_and_metadata(tiny, encoder, retriever):
    p = Pipeline(tiny, encoder, retriever)
    stages = []
    out = p.generate(["walk forward", "jump"], lengths=[40, 23], seed=5, samples=2, time_steps=3,
                     progress=lambda s, f: stages.append((s, f)))
    assert [(s.prompt, s.sample_index) for s in out] == [("walk forward", 0), ("walk forward", 1), ("jump", 0), ("jump", 1)]
    assert [s.length for s in out] == [40, 40, 20, 20]  # 23 frames -> 5 tokens -> 20 frames
    for s in out:
        assert s.joints.shape == (s.length, 22, 3) and s.joints.dtype == np.float32
        assert s.features.shape == (s.length, 263) and s.features.dtype == np.float32
        assert np.isfinite(s.joints).all() and s.seed == 5
    assert out[0].retrieved == ["retrieved for walk forward"] and out[2].retrieved == ["retrieved for jump"]
    # one encoding and one retrieval per prompt (each alone: see test_a_motion_does_not_depend_on_its_batch_mates),
    # not per sample
    assert retriever.calls == [["walk forward"], ["jump"]]
    assert encoder.calls == 2
    fr = [f for _, f in stages]
    assert fr == sorted(fr) and fr[-1] == 1.0
    assert {"text", "retrieval", "mask_aux", "mask_ts", "residual", "decode", "joints"} <= {s for s, _ in stages}
    from backend.serving.protocol import GENERATION_STAGES  # the names clients are told about
    assert {s for s, _ in stages} <= set(GENERATION_STAGES) | {"done"}
    # samples of one prompt differ
    assert not np.allclose(out[0].features, out[1].features)


def test_deterministic_per_seed(tiny, encoder, retriever):
    p = Pipeline(tiny, encoder, retriever)
    a = p.generate(["a person waves"], [32], seed=11, samples=2, time_steps=3)
    b = p.generate(["a person waves"], [32], seed=11, samples=2, time_steps=3)
    c = p.generate(["a person waves"], [32], seed=12, samples=2, time_steps=3)
    for x, y in zip(a, b):
        assert np.array_equal(x.features, y.features) and np.array_equal(x.joints, y.joints)
    assert not np.allclose(a[0].features, c[0].features)


def test_features_are_denormalised(tiny, encoder):
    from types import SimpleNamespace
    raw = SimpleNamespace(**{**vars(tiny), "mean": np.zeros(263, np.float32), "std": np.ones(263, np.float32)})
    norm = Pipeline(raw, encoder).generate(["x"], [16], seed=0, time_steps=2)[0].features
    den = Pipeline(tiny, encoder).generate(["x"], [16], seed=0, time_steps=2)[0].features
    assert np.allclose(den, norm * tiny.std + tiny.mean, atol=1e-5)
    assert not np.allclose(den, norm, atol=1e-3)


def test_rag_on_off(tiny, encoder, retriever):
    p = Pipeline(tiny, encoder, retriever)
    on = p.generate(["kick"], [24], seed=3, time_steps=3, use_retrieval=True)[0]
    off = p.generate(["kick"], [24], seed=3, time_steps=3, use_retrieval=False)[0]
    assert on.retrieved and off.retrieved == []
    assert not np.allclose(on.features, off.features)
    no_retriever = Pipeline(tiny, encoder, None).generate(["kick"], [24], seed=3, time_steps=3)[0]
    assert np.array_equal(no_retriever.features, off.features)


def test_lengths_from_estimator(tiny, encoder):
    p = Pipeline(tiny, encoder, None)
    out = p.generate(["a", "b", "c"], None, seed=1, time_steps=2)
    for s in out:
        assert s.length % 4 == 0 and 4 <= s.length <= 196 and s.joints.shape[0] == s.length
    again = p.generate(["a", "b", "c"], None, seed=1, time_steps=2)
    assert [s.length for s in out] == [s.length for s in again]


@pytest.mark.parametrize("kwargs, msg", [
    (dict(prompts=[]), "non-empty"),
    (dict(prompts="walk"), "non-empty list"),
    (dict(prompts=["ok", " "]), "non-empty string"),
    (dict(prompts=["a"], lengths=[2]), "length"),
    (dict(prompts=["a"], lengths=[400]), "length"),
    (dict(prompts=["a"], lengths=[16, 16]), "2 lengths for 1"),
    (dict(prompts=["a"], lengths=[16], samples=0), "samples"),
])
def test_bad_requests(tiny, encoder, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        Pipeline(tiny, encoder).generate(**kwargs)


def test_cancel(tiny, encoder):
    p = Pipeline(tiny, encoder)
    n = []

    def cancelled():
        n.append(1)
        return len(n) >= 4

    with pytest.raises(GenerationCancelled):
        p.generate(["a"], [16], time_steps=5, cancelled=cancelled)


def test_text_encoder_dim_mismatch(tiny):
    class Bad:
        dim = 7

        def encode(self, texts):
            raise AssertionError

    with pytest.raises(ValueError, match="7-d"):
        Pipeline(tiny, Bad())


def test_joints_come_from_the_motion_module(tiny, encoder):
    from backend.motion.features import features_to_joints

    s = Pipeline(tiny, encoder).generate(["turn"], [28], seed=2, time_steps=2)[0]
    assert np.array_equal(s.joints, features_to_joints(s.features))
    assert np.allclose(s.joints[:, 0, 1], s.features[:, 3])  # root height is feature 3


@pytest.mark.parametrize("cond_scale", [1.0, 4.0])  # unguided and guided (doubled-batch) residual passes
def test_a_one_token_motion_generates(tiny, encoder, retriever, cond_scale):
    """4 frames = 1 token: the key-padding masks of the transformers must not assume longer sequences (the
    length estimator can pick this length)."""
    p = Pipeline(tiny, encoder, retriever)
    # the whole batch one token long (a longer batch mate would pad the sequence and hide the case)
    out = p.generate(["jump"], lengths=[4], seed=1, time_steps=2, cond_scale=cond_scale)
    assert out[0].joints.shape == (4, 22, 3) and np.isfinite(out[0].joints).all()


def test_each_motion_is_decoded_at_its_own_length(tiny, encoder):
    """The RVQ-VAE decodes every motion without its batch mates' padding: a short motion's frames equal its
    decode alone, which a plain batched decode (zero codes past its end) does not give."""
    import torch

    p = Pipeline(tiny, encoder)
    g = torch.Generator().manual_seed(0)
    aux = torch.randint(0, 24, (2, 9, 3), generator=g)
    ts = torch.randint(0, 20, (2, 9, 6, 3), generator=g)
    aux[1, 4:], ts[1, 4:] = -1, -1
    lens = torch.tensor([9, 4])
    with torch.no_grad():
        out = p._decode(aux, ts, lens)
        alone = tiny.vq.decode(aux[1:, :4], ts[1:, :4])
        batched = tiny.vq.decode(aux, ts)
    assert out.shape == (2, 36, 263)
    assert torch.allclose(out[1, :16], alone[0], atol=1e-5) and (out[1, 16:] == 0).all()
    assert torch.allclose(out[0], tiny.vq.decode(aux[:1], ts[:1])[0], atol=1e-5)
    assert not torch.allclose(batched[1, :16], alone[0], atol=1e-3)


def test_sampling_defaults_come_from_the_model(tiny, encoder):
    """Settings a request leaves out (None) take the pipeline's ``sampling`` (a model folder's
    generation.json); given ones win."""
    own = Pipeline(tiny, encoder, sampling={"cond_scale": 1.0})  # unguided, so it differs from the default 4
    assert own.sampling["cond_scale"] == 1.0 and own.sampling["time_steps"] == 10
    differ = []
    for seed in range(6):  # the tiny model's logits are nearly one-hot: guidance changes some draws, not all
        a = own.generate(["kick", "walk"], [24, 40], seed=seed, time_steps=3)[0]
        b = Pipeline(tiny, encoder).generate(["kick", "walk"], [24, 40], seed=seed, time_steps=3, cond_scale=1.0)[0]
        c = own.generate(["kick", "walk"], [24, 40], seed=seed, time_steps=3, cond_scale=4.0)[0]
        d = Pipeline(tiny, encoder).generate(["kick", "walk"], [24, 40], seed=seed, time_steps=3)[0]
        assert np.array_equal(a.features, b.features) and np.array_equal(c.features, d.features)
        differ.append(not np.array_equal(a.features, c.features))
    assert any(differ)
    with pytest.raises(ValueError, match="unknown sampling"):
        Pipeline(tiny, encoder, sampling={"guidance": 2.0})


def test_sequential_prompt_is_composed_from_its_parts(tiny, encoder):
    """With compose_sequences a "X, then Y" prompt is generated as its parts in the same batch and joined:
    the result equals joining that batch's part motions; its length is the one asked for."""
    from backend.motion.compose import join_features

    p = Pipeline(tiny, encoder, sampling={"compose_sequences": True})
    out = p.generate(["walk, then jump", "kick"], lengths=[80, 40], seed=1, samples=2, time_steps=2)
    assert [(s.prompt, s.sample_index, s.length) for s in out] == [
        ("walk, then jump", 0, 80), ("walk, then jump", 1, 80), ("kick", 0, 40), ("kick", 1, 40)]
    assert out[0].parts == ["a person walk", "a person jump"] and out[2].parts == []
    # 80 frames = 20 tokens, + 2 tokens of cross-fade, shared evenly: two 44-frame parts; each part draws from its
    # own generator (part 0 is what the first part's prompt alone gives, part 1 has a generator of its own)
    args = dict(seed=1, samples=2, cond_scale=4.0, time_steps=2, temperature=1.0, topk=0.9, res_cond_scale=5.0,
                use_retrieval=False, progress=None, cancelled=None)
    import torch

    with torch.inference_mode():
        inner = p._generate_batch(["a person walk", "a person jump"], [11, 11], parts=[0, 1], **args)
    alone = p.generate(["a person walk", "kick"], lengths=[44, 40], seed=1, samples=2, time_steps=2,
                       compose_sequences=False)
    for s in (0, 1):
        want = join_features([inner[s].features, inner[2 + s].features], 8)
        assert np.array_equal(out[s].features, want)
        assert np.array_equal(inner[s].features, alone[s].features)
        assert out[s].joints.shape == (80, 22, 3) and np.isfinite(out[s].joints).all()
    assert np.array_equal(out[2].features, alone[2].features)
    # off (the official release's default): the prompt is one sentence
    whole = Pipeline(tiny, encoder).generate(["walk, then jump"], lengths=[80], seed=1, time_steps=2)[0]
    assert whole.parts == [] and whole.length == 80


def test_counted_prompt_of_a_listed_verb_is_repeated_parts(tiny, encoder):
    """With repeat_counts a count of a listed verb is generated as that many parts of one, joined like a
    sequence; unlisted verbs and a folder without the list keep the prompt whole."""
    p = Pipeline(tiny, encoder, sampling={"compose_sequences": True, "repeat_counts": ("jump",)})
    out = p.generate(["a person jumps 3 times", "a person claps 3 times"], lengths=[120, 40], seed=2, time_steps=2)
    assert out[0].parts == ["a person jumps once"] * 3 and out[0].length == 120
    assert np.isfinite(out[0].joints).all() and out[0].joints.shape == (120, 22, 3)
    assert out[1].parts == [] and out[1].length == 40
    plain = Pipeline(tiny, encoder, sampling={"compose_sequences": True})
    assert plain.generate(["a person jumps 3 times"], lengths=[120], seed=2, time_steps=2)[0].parts == []


def test_composed_lengths_from_the_estimator_fit_196_frames(tiny, encoder):
    p = Pipeline(tiny, encoder, sampling={"compose_sequences": True})
    long = "walk, then run, then jump, then kick, then wave, then bow, then clap, then spin"
    out = p.generate([long, "jog, then sit"], seed=4, time_steps=2)
    for s in out:
        assert 4 <= s.length <= 196 and s.length % 4 == 0 and s.joints.shape[0] == s.length
    assert len(out[0].parts) == 8 and len(out[1].parts) == 2
    # too short for its parts: generated whole
    short = p.generate(["walk, then jump"], lengths=[8], seed=0, time_steps=2)[0]
    assert short.parts == [] and short.length == 8


class _HeightScorer:
    """Stands in for the Part-TMR embedder: 'text' is the unit x axis and a motion's embedding has its mean
    root height (feature 3) on x, so the best candidate is the highest one."""

    def embed_text(self, texts):
        return np.tile(np.array([[1.0, 0.0]], np.float32), (len(texts), 1))

    def embed(self, feats):
        return np.array([[float(np.mean(f[:, 3])), 0.0] for f in feats], np.float32)


def test_candidates_keep_the_best_scored_draw(tiny, encoder):
    """Best of N keeps, for each motion, exactly the best-scored of its N draws. The draws come from the
    generators of the plain request's samples but are sampled together (one batch, a generator per row), so they
    are those samples up to float rounding, which can flip a near-tie of the unmasking order: the same prompts
    and lengths, not the same numbers. A motion still depends only on its prompt, seed and sample."""
    p = Pipeline(tiny, encoder)
    p._scorer_cache = _HeightScorer()
    scored = []
    best_of = p._best_of

    def spy(scorer, prompts, rows, samples, candidates, readings=None):
        scored.extend(rows)
        return best_of(scorer, prompts, rows, samples, candidates, readings)

    p._best_of = spy
    prompts, lengths = ["kick", "walk"], [24, 40]
    draws = p.generate(prompts, lengths, seed=7, samples=2 * 3, time_steps=2, candidates=1)
    best = p.generate(prompts, lengths, seed=7, samples=2, time_steps=2, candidates=3)
    assert [(s.prompt, s.sample_index) for s in best] == [("kick", 0), ("kick", 1), ("walk", 0), ("walk", 1)]
    assert len(scored) == len(draws) == 12
    assert [(d.prompt, d.length) for d in draws] == [(c.prompt, c.length) for c in scored]
    again = p.generate(prompts, lengths, seed=7, samples=2, time_steps=2, candidates=3)
    alone = p.generate(["walk"], [40], seed=7, samples=2, time_steps=2, candidates=3)
    assert all(np.array_equal(a.features, b.features) for a, b in zip(best, again))
    assert all(np.array_equal(a.features, b.features) for a, b in zip(best[2:], alone))
    for i, s in enumerate(best):
        group = scored[(i // 2) * 6 + (i % 2) * 3:(i // 2) * 6 + (i % 2) * 3 + 3]
        heights = [float(np.mean(d.features[:, 3])) for d in group]
        assert len(set(np.round(heights, 6))) == 3  # the draws differ, so the choice means something
        assert s is group[int(np.argmax(heights))]
    scored.clear()
    # the model folder's default, and no ranking without a retrieval model
    own = Pipeline(tiny, encoder, sampling={"candidates": 3})
    own._scorer_cache = _HeightScorer()
    assert np.array_equal(own.generate(prompts, lengths, seed=7, samples=2, time_steps=2)[3].features,
                          best[3].features)
    plain = Pipeline(tiny, encoder)
    assert plain._scorer() is None
    assert np.array_equal(plain.generate(prompts, lengths, seed=7, time_steps=2, candidates=3)[0].features,
                          plain.generate(prompts, lengths, seed=7, time_steps=2)[0].features)


@pytest.mark.parametrize("bad", [0, 65, 2.5, True, "3"])
def test_bad_candidates(tiny, encoder, bad):
    from backend.errors import InvalidInput

    with pytest.raises(InvalidInput, match="candidates must be an integer from 1 to 64"):
        Pipeline(tiny, encoder).generate(["kick"], [24], candidates=bad)


def test_a_motion_does_not_depend_on_its_batch_mates(tiny, encoder, retriever):
    """A prompt with a seed gives the same motion to the bit alone, with other prompts before or after it, with
    more samples, or sampled lengths; its samples differ from each other and from another seed's samples (seed
    1's sample 0 is not seed 0's sample 1)."""
    p = Pipeline(tiny, encoder, retriever)
    kw = dict(seed=4, time_steps=3)
    alone = p.generate(["jump"], lengths=[24], **kw)[0]
    mates = p.generate(["walk forward", "jump", "kick"], lengths=[48, 24, 16], samples=2, **kw)
    first = p.generate(["jump", "spin around twice"], lengths=[24, 60], **kw)[0]
    assert np.array_equal(alone.features, mates[2].features) and np.array_equal(alone.features, first.features)
    assert mates[2].retrieved == alone.retrieved
    assert not np.allclose(mates[2].features, mates[3].features)
    other = p.generate(["jump"], lengths=[24], seed=5, time_steps=3, samples=2)
    assert not any(np.allclose(o.features, m.features) for o in other for m in mates[2:4])
    # lengths from the estimator: drawn from the motion's own generator too
    a = p.generate(["jump"], seed=9, time_steps=2)[0]
    b = p.generate(["walk forward", "jump"], seed=9, time_steps=2)[1]
    assert a.length == b.length and np.array_equal(a.features, b.features)


def test_row_generators_are_distinct_and_reproducible():
    import torch

    from backend.models.sampling import row_generator

    def draw(*k):
        return torch.rand(4, generator=row_generator("cpu", *k)).tolist()

    keys = [(0, 0), (0, 1), (1, 0), (0, 0, 1), (0, 0, 0, 1), (2**31 - 1, 63, 5)]
    draws = [draw(*k) for k in keys]
    assert len({tuple(d) for d in draws}) == len(keys)
    assert draw(0, 1) == draws[1] and draw(0, 0, 0, 0) == draws[0]


def test_a_composed_motion_does_not_depend_on_its_batch_mates(tiny, encoder):
    """"X, then Y" with the estimator's part lengths: the same to the bit alone or after another composed prompt."""
    p = Pipeline(tiny, encoder, sampling={"compose_sequences": True})
    a = p.generate(["walk, then jump"], seed=9, time_steps=2)[0]
    b = p.generate(["kick, then spin around", "walk, then jump"], seed=9, time_steps=2, samples=2)[2]
    assert a.parts == b.parts == ["a person walk", "a person jump"]
    assert a.length == b.length and np.array_equal(a.features, b.features)
