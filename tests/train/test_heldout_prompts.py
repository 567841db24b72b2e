"""The held-out semantic suite really asks in phrasings the training captions never use: each of its
predicates is produced by the caption generator's held-out templates and never by its training ones."""

import numpy as np
import pytest

from backend.synthetic import generate_clip
from backend.synthetic.captions import SUBJECTS, predicate
from backend.train.evaluate import HELDOUT_PROMPTS, SEMANTIC_SUITE

FAMILY = {"walk_forward": "walk", "run_forward": "run", "jog_forward": "jog", "wave_right": "wave",
          "wave_left": "wave", "turn_left": "turn", "turn_right": "turn", "spin_left": "spin"}


@pytest.fixture(scope="module")
def phrasings():
    """{family: {"train": set, "test": set}} of predicates over many clips' parameters and slot draws."""
    out = {}
    rng = np.random.default_rng(0)
    for fam in sorted({FAMILY.get(n, n) for n, _, _ in SEMANTIC_SUITE}):
        sets = {"train": set(), "test": set()}
        for seed in range(40):
            params = generate_clip(fam, 5000 + seed).params
            for split in sets:
                for _ in range(40):
                    sets[split].add(predicate(fam, params, rng, split)[0])
        out[fam] = sets
    return out


@pytest.mark.parametrize("name", [n for n, _, _ in SEMANTIC_SUITE])
def test_heldout_prompt_is_a_heldout_phrasing(phrasings, name):
    prompt = HELDOUT_PROMPTS[name]
    subject = next(s for s in SUBJECTS if prompt.startswith(s + " "))
    pred = prompt[len(subject) + 1:]
    sets = phrasings[FAMILY.get(name, name)]
    assert pred in sets["test"], f"{prompt!r} is not a held-out phrasing"
    assert pred not in sets["train"], f"{prompt!r} is a training phrasing"
