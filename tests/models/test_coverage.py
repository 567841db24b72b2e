"""Prompts outside what the model knows get a warning (backend.generation.coverage), on the starter and on
tiny models; the starter's vocabulary is its corpus's."""

import json
import re

import numpy as np
import pytest

from backend.generation.coverage import COVERAGE_FILE, Coverage, load_coverage
from backend.generation.pipeline import Pipeline
from backend.synthetic.captions import vocabulary


def test_unknown_words_and_subjects():
    cov = Coverage(frozenset({"a", "person", "walks", "waves", "forward"}), 0.5)
    assert cov.unknown_words("A person dances") == ["dances"]
    assert cov.unknown_words("she walks forward") == [] and cov.unknown_words("the guy waves") == []
    assert cov.unknown_words("une personne saute, saute") == ["une", "personne", "saute"]
    assert cov.warnings("a person walks forward", similarity=0.9) == []
    (w,) = cov.warnings("a person walks forward", similarity=0.3, closest="a person sits")
    assert "similarity 0.30 < 0.50" in w and "'a person sits'" in w
    assert Coverage().warnings("anything at all", similarity=0.0) == []  # nothing known: no checks


def test_starter_vocabulary_is_its_corpus():
    from backend.synthetic import TEMPLATES

    v = vocabulary()
    assert {"walks", "strolls", "jogs", "waves", "claps", "kicks", "spins", "squats"} <= v
    # issue #16's everyday words, their -ing and imperative forms, digits and short forms
    assert {"sprints", "sprinting", "plops", "pivots", "clockwise", "around", "fwd", "3", "walk", "walking"} <= v
    # not parameter names ("direction" is a caption word now: "in a clockwise direction"); dances: the real corpus
    assert not {"dances", "cartwheel", "height_", "nwords", "mps", "cadence", "hopdir", ""} & v
    for family, ts in TEMPLATES.items():
        for t in ts:
            words = [w for w in t.replace("{", " {").split() if not w.startswith("{")]
            for w in words:
                for x in re.findall(r"[a-z]+", w.lower()):
                    assert x in v, (family, t, x)


def test_coverage_file_and_database_fallback(tmp_path):
    (tmp_path / COVERAGE_FILE).write_text(json.dumps({"words": ["walks"], "min_similarity": 0.7}))
    assert load_coverage(tmp_path) == Coverage(frozenset({"walks"}), 0.7, spelling=True)
    (tmp_path / COVERAGE_FILE).write_text(json.dumps({"words": ["walks"], "min_similarity": 0.7,
                                                      "correct_spelling": False}))
    assert load_coverage(tmp_path) == Coverage(frozenset({"walks"}), 0.7)
    assert load_coverage(tmp_path / "nothing", ["A person jumps."]) == Coverage(frozenset({"a", "person", "jumps"}))
    (tmp_path / COVERAGE_FILE).write_text("{nope")
    from backend.errors import ModelError
    with pytest.raises(ModelError, match="coverage.json"):
        load_coverage(tmp_path)


def test_pipeline_attaches_warnings_to_samples(tiny, encoder, retriever):
    p = Pipeline(tiny, encoder, retriever)
    p.coverage = Coverage(frozenset({"a", "person", "walks"}), None)
    out = p.generate(["a person walks", "a person moonwalks"], [8, 8], time_steps=1)
    assert out[0].warnings == [] and len(out[1].warnings) == 1 and "'moonwalks'" in out[1].warnings[0]


def test_misspelt_words_are_read_as_known_ones():
    c = Coverage(frozenset({"a", "person", "walks", "walk", "forward", "jumping", "jacks", "does", "waves"}), None,
                 spelling=True)
    assert c.corrected("a persn walkss forwrd") == ("a person walks forward", [("persn", "person"),
                                                                              ("walkss", "walks"),
                                                                              ("forwrd", "forward")])
    assert c.corrected("A person does Jumpin jacks!") == ("A person does jumping jacks!", [("Jumpin", "jumping")])
    assert c.corrected("a person moonwalks") == ("a person moonwalks", [])  # nothing close enough: unchanged
    assert c.corrected("a person wav") == ("a person wav", [])  # < 4 letters: too short to guess
    off = Coverage(c.words, None)
    assert off.corrected("a persn walkss") == ("a persn walkss", [])


def test_pipeline_generates_the_corrected_prompt_and_says_so(tiny, encoder, retriever):
    p = Pipeline(tiny, encoder, retriever)
    p.coverage = Coverage(frozenset({"a", "person", "walks", "jumps"}), None, spelling=True)
    (typo,), (right,) = (p.generate([t], [8], time_steps=1, seed=3) for t in ("a person wlaks", "a person walks"))
    assert typo.prompt == "a person wlaks" and right.prompt == "a person walks"
    assert typo.warnings == ["read 'wlaks' as 'walks'"] and right.warnings == []
    np.testing.assert_allclose(typo.joints, right.joints, atol=1e-5)  # the same text reached the model
    two = p.generate(["a person wlaks", "a person walsk"], [8, 8], time_steps=1, samples=2)
    assert [s.prompt for s in two] == ["a person wlaks"] * 2 + ["a person walsk"] * 2


@pytest.mark.slow
def test_starter_warns_on_prompts_it_does_not_know():
    """Measured on the starter: words outside its corpus, a French prompt and a phrase far from every caption
    are flagged; the semantic suite's prompts (training and held-out phrasings) that pass are not."""
    import torch

    from backend.generation.model_folder import load_pipeline
    from backend.generation.prompt_parts import split_sequence
    from backend.train.evaluate import HELDOUT_SUITE, SEMANTIC_SUITE

    from backend.generation.project_weights import STARTER_DIR

    ev = json.loads((STARTER_DIR / "PROVENANCE.json").read_text())["evaluation"]
    not_reached = {n for n, v in ev["semantic_heldout"].items() if v["pass_rate"] < 0.8}  # misread (README)

    torch.set_num_threads(1)
    p = load_pipeline(None)
    assert p.coverage.min_similarity is not None and len(p.coverage.words) > 150
    flagged = ["une personne saute", "a person does a cartwheel", "a person moonwalks", "a person does the tango",
               "a person juggles three balls"]
    notes = p.coverage_warnings(flagged)
    assert all(notes[x] for x in flagged), notes
    fine = [x for n, pr, _ in SEMANTIC_SUITE + [s for s in HELDOUT_SUITE if s[0] not in not_reached]
            for x in split_sequence(pr)]
    notes = p.coverage_warnings(fine)
    assert not any(notes.values()), {k: v for k, v in notes.items() if v}
    # every example prompt the model folder offers (the add-on's drop-down) and the real-motion families'
    # everyday names are not "far from every motion": the shipped database has no entries for captured-only
    # families, so the similarity check must not count against them
    examples = [e["prompt"] for e in p.coverage.examples()]
    named = ["a person dances salsa", "karate kata", "jumping jacks exercise", "someone does a few press ups"]
    notes = p.coverage_warnings(examples)
    assert not any(notes.values()), {k: v for k, v in notes.items() if v}
    far = {k: v for k, v in p.coverage_warnings(named).items() if any("far from" in w for w in v)}
    assert not far, far  # ("exercise", "press" are unknown words and keep that warning)
    assert p.coverage_warnings(["a person does yoga"])["a person does yoga"]  # no unknown word, still far
    out = p.generate(["a person moonwalks"], [40], seed=0)
    assert out[0].warnings and np.isfinite(out[0].joints).all()


def test_vocabulary_is_exactly_what_training_captions_hold():
    """Every word of drawn training captions (procedural, and real-motion ones through captions_for, each in
    every everyday form) is in the vocabulary, and the vocabulary holds no form no caption can hold: the
    spelling check read 'cheering' as 'hering' and 'tossing' as 'toing' when every word got an -ing form."""
    from backend.mocap.clips import captions_for
    from backend.mocap.labels import PHRASES
    from backend.mocap.labels import vocabulary as mocap_vocabulary
    from backend.synthetic import make_corpus

    v, mv = vocabulary(), mocap_vocabulary()
    seen = set()
    for c in make_corpus(150, seed=5, split="test", captions_per_clip=10):
        seen.update(w for cap in c.captions for w in re.findall(r"[a-z]+", cap.lower()))
    assert not seen - v, sorted(seen - v)
    rng = np.random.default_rng(0)
    real = set()
    m = {"travel": 2.0, "turn": 400.0, "speed": 1.0}
    for fam in PHRASES:
        for side in (None, "left"):
            for tempo in (None, "fast", "slow"):
                for cap in captions_for(fam, side, m, tempo, rng, n=12):
                    real.update(re.findall(r"[a-z]+", cap.lower()))
    assert not real - (mv | v), sorted(real - (mv | v))
    assert {"crawling", "cheering", "meditating", "celebrating", "crawl", "meditate"} <= mv
    assert not {"hering", "toing", "ating", "withing", "arming", "handing", "being"} & (v | mv)


def test_a_slip_of_the_keyboard_is_read_back_and_real_words_are_not():
    """Misspellings are what ``wording.typo`` makes (the training captions' own typos): at least 90 % of 400
    random slips of the starter's words of 5+ letters read back as the word; real words one letter from a known
    word stay as typed (and get the unknown-word warning)."""
    from backend.synthetic.wording import typo

    cov = load_coverage("backend/starter")
    rng = np.random.default_rng(1)
    words = sorted(w for w in cov.words if len(w) >= 5 and w.isalpha())
    back = total = 0
    for w in rng.choice(words, 400):
        t = typo(str(w), rng)
        if t == w or t in cov.words:  # a slip that makes another known word cannot be told
            continue
        total += 1
        back += cov.corrected(t)[0] == w
    assert total > 300 and back / total >= 0.9, (back, total)
    kept = "light eyes same line party nobody latin training beat"
    c = Coverage(frozenset({"slight", "yes", "some", "lie", "partway", "body", "ating", "turning", "bent", "walks"}),
                 None, spelling=True)
    assert c.corrected(kept) == (kept, [])
    assert c.corrected("a man wlaks") == ("a man walks", [("wlaks", "walks")])
