"""The held-out semantic suite really asks in phrasings the training captions never use: each of its
predicates is produced by the caption generator's held-out templates and never by its training ones."""

import numpy as np
import pytest

from backend.synthetic import generate_clip
from backend.generation.prompt_parts import split_sequence
from backend.synthetic.captions import SUBJECTS, predicate
from backend.train.evaluate import HELDOUT_PROMPTS, SEMANTIC_SUITE

FAMILY = {"walk_forward": "walk", "run_forward": "run", "jog_forward": "jog", "wave_right": "wave",
          "wave_left": "wave", "turn_left": "turn", "turn_right": "turn", "spin_left": "spin",
          "walk_then_wave": ("walk", "wave"), "jump_then_wave": ("jump_in_place", "wave")}


def _families(name):
    f = FAMILY.get(name, name)
    return f if isinstance(f, tuple) else (f,)


@pytest.fixture(scope="module")
def phrasings():
    """{family: {"train": set, "test": set}} of predicates over many clips' parameters and slot draws."""
    out = {}
    rng = np.random.default_rng(0)
    for fam in sorted({f for n, _, _ in SEMANTIC_SUITE for f in _families(n)}):
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
    parts = split_sequence(HELDOUT_PROMPTS[name])  # a two-part prompt: each part on its own
    assert len(parts) == len(_families(name))
    for prompt, fam in zip(parts, _families(name)):
        subject = next(s for s in SUBJECTS if prompt.startswith(s + " "))
        pred = prompt[len(subject) + 1:]
        assert pred in phrasings[fam]["test"], f"{prompt!r} is not a held-out phrasing"
        assert pred not in phrasings[fam]["train"], f"{prompt!r} is a training phrasing"
