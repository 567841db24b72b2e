"""The everyday held-out suite (backend/train/heldout.py): never a training caption, every family covered, and
its rates computed right (a motion of the asked action passes, a body standing still fails)."""

import itertools
import re

import numpy as np
import pytest

from backend.synthetic import FAMILIES, generate_clip, make_corpus
from backend.train.heldout import HELDOUT_EVERYDAY, HELDOUT_PLAIN, heldout_rates, heldout_suite, plain_suite


def _norm(t: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", t.lower()).strip()


def _subjectless(t: str) -> str:
    from backend.synthetic.captions import SUBJECTS

    for s in sorted(SUBJECTS, key=len, reverse=True):
        if t.startswith(s + " "):
            return t[len(s) + 1:]
    return t


def _phrasings_clip(captions):
    from backend.synthetic.corpus import Clip

    return Clip(joints=np.zeros((2, 22, 3), np.float32), caption=captions[0], family="walk", params={},
                contacts=np.zeros((2, 4), bool), captions=tuple(c for c in captions if c))


@pytest.mark.slow
def test_no_heldout_prompt_is_a_training_caption():
    """Against 3000 training clips x 10 phrasings (every template, synonym, form and joiner drawn many times) and
    every real-motion caption the phrases can make, compared without case, punctuation or the subject."""
    from backend.mocap.labels import PHRASES, TEMPO, TRAVEL, TURNING
    from backend.synthetic.wording import imperative, progressive

    from backend.train.dataset import with_noun_phrases

    train = set()
    # with the noun phrases the corpus option noun_phrases adds ("push-ups" from "does push-ups")
    for c in with_noun_phrases(make_corpus(3000, seed=11, split="train", captions_per_clip=10)):
        train.update(_norm(_subjectless(x)) for x in c.captions)
    mods = [""] + [w for ws in TEMPO.values() for w in ws] + [w for ws in TRAVEL.values() for w in ws] + TURNING
    real = []
    for ph, mod, side in itertools.product([p for ps in PHRASES.values() for p in ps], mods, ("left", "right")):
        pred = re.sub(r"\s+", " ", f"{ph.format(side=side)} {mod}").strip()
        real.append(_phrasings_clip([pred, progressive(pred), imperative(pred) or ""]))
    for c in with_noun_phrases(real):
        train.update(_norm(x) for x in c.captions)
    suite = heldout_suite() + plain_suite()
    hits = [p for _, p, *_ in suite if _norm(_subjectless(p)) in train]
    assert not hits, hits


def test_the_suite_covers_every_family_and_asks_for_details():
    from backend.mocap.heldout import HELDOUT_PROMPTS

    groups = {g for _, _, g, _, _ in heldout_suite()}
    assert set(FAMILIES) - {"jog"} <= groups | {"jog"} and "jog" in groups
    assert {"dance", "martial_arts", "push_ups", "crawl", "jumping_jacks", "compound"} <= groups
    assert {f if not f.startswith("dance_") else "dance" for f in HELDOUT_PROMPTS} <= groups
    with_details = [n for n, _, _, _, d in HELDOUT_EVERYDAY if d]
    assert len(with_details) >= 15  # counts, sides, directions, speeds, angles
    names = [n for n, *_ in heldout_suite() + plain_suite()]
    assert len(names) == len(set(names))
    # the plainer second set: most of the same families, procedural and captured
    plain = {g for _, _, g, _, _ in HELDOUT_PLAIN}
    assert plain <= groups and len(plain) >= 20 and {"dance", "martial_arts", "crawl"} <= plain
    assert {g for *_, g, _, _ in plain_suite(captured=False)} <= {g for *_, g, _, _ in heldout_suite(captured=False)}
    assert not {g for *_, g, _, _ in plain_suite(captured=False)} & {"dance", "martial_arts", "crawl"}
    # a model trained without real motion is asked only about the procedural families
    assert not {g for _, _, g, _, _ in heldout_suite(captured=False)} & {"dance", "martial_arts", "push_ups"}


class _Sample:
    def __init__(self, prompt, joints):
        self.prompt, self.joints, self.warnings = prompt, joints, []


class _Stand:
    def generate(self, prompts, seed=0, samples=1, **_):
        pose = generate_clip("wave", 1).joints[:1]
        return [_Sample(p, np.repeat(pose, 80, axis=0)) for p in prompts]


class _Corpus:
    """Answers each prompt with a corpus clip of the prompt's family and asked details."""
    PARAMS = {"jump_3": ("jump_in_place", {"count": 3}), "jump_2": ("jump_in_place", {"count": 2}),
              "hop_left": ("hop", {"leg": "left"}), "wave_right": ("wave", {"hand": "right"}),
              "wave_left": ("wave", {"hand": "left"}), "clap_4": ("clap", {"count": 4}),
              "kick_right": ("kick", {"leg": "right"}), "kick_left_high": ("kick", {"leg": "left", "height": "high"}),
              "squat_2": ("squat", {"count": 2}), "turn_pivot_left": ("turn", {"direction": "left", "angle": 90}),
              "turn_cw": ("turn", {"direction": "right", "angle": 90}), "turn_behind": ("turn", {"angle": 180}),
              "side_right": ("side_step", {"direction": "right"}), "arms_t": ("raise_arms", {"style": "sideways"}),
              "arms_up": ("raise_arms", {"style": "overhead"}), "walk_power": ("walk", {"speed": "fast",
              "direction": "forward", "curve": "straight"}), "run_sprint": ("run", {"speed": "fast",
              "direction": "forward", "curve": "straight"}), "punch_right": ("punch", {"hand": "right"}),
              "punch_left_3": ("punch", {"hand": "left", "count": 3}), "walk_backs_up": ("walk", {
              "direction": "backward"}), "walk_slow": ("walk", {"speed": "slow", "direction": "forward",
              "curve": "straight"})}

    def __init__(self, suite):
        self.by_prompt = {p: n for n, p, *_ in suite}
        self.group = {n: g for n, _, g, _, _ in suite}

    def generate(self, prompts, seed=0, samples=1, **_):
        out = []
        for p in prompts:
            n = self.by_prompt[p]
            fam, params = self.PARAMS.get(n, (self.group[n], {}))
            out.append(_Sample(p, generate_clip(fam, 100 + seed, **params).joints))
        return out


def test_rates_fail_a_still_body_and_pass_the_asked_motions():
    suite = heldout_suite(captured=False)
    still = heldout_rates(_Stand(), seeds=range(2), suite=suite)
    assert still["action_rate"] <= 0.05 and still["detail_rate"] == 0.0
    assert still["n_motions"] == 2 * len(suite)
    procedural = [s for s in suite if s[2] in FAMILIES]
    right = heldout_rates(_Corpus(procedural), seeds=range(3), suite=procedural)
    assert right["action_rate"] >= 0.9 and right["detail_rate"] >= 0.85, {
        n: v["messages"][0] for n, v in right["prompts"].items() if v["action_rate"] < 1 or (v["detail_rate"] or 1) < 1}
    assert set(right["families"]) == {s[2] for s in procedural}
