"""The shipped starter's caption bank (reading.json, reading.npy; backend/generation/reading.py): training captions
written by the training caption code only, never a held-out prompt, checked, and read with on the starter."""

import hashlib
import json
import re

import numpy as np
import pytest

from backend.generation.project_weights import STARTER_DIR
from backend.generation.reading import SENTENCE_WEIGHTS_SHA256, load_reader
from backend.train.reading_bank import caption_bank, folder_families


def _norm(t: str) -> str:
    from backend.synthetic.captions import SUBJECTS

    t = re.sub(r"[^a-z0-9]+", " ", t.lower()).strip()
    for s in sorted(SUBJECTS, key=len, reverse=True):
        if t.startswith(s + " "):
            return t[len(s) + 1:]
    return t


@pytest.fixture(scope="module")
def bank():
    return json.loads((STARTER_DIR / "reading.json").read_text())


def test_the_bank_is_the_training_caption_code_output(bank):
    """Every caption is what caption_bank draws from the code's tables for the starter's families (so nothing
    converted from the motion data is in it), in the same order, with its family."""
    want = caption_bank(*folder_families(STARTER_DIR))
    assert list(zip(bank["families"], bank["captions"])) == want
    assert len(want) > 1000 and len(set(bank["families"])) == 45  # 18 procedural + 28 captured, bow in both
    assert bank["weights_sha256"] == SENTENCE_WEIGHTS_SHA256
    emb = np.load(STARTER_DIR / "reading.npy")
    assert emb.shape == (len(want), 384) and emb.dtype == np.float16
    assert hashlib.sha256((STARTER_DIR / "reading.npy").read_bytes()).hexdigest() == bank["bank"]["embeddings_sha256"]
    assert np.allclose(np.linalg.norm(emb.astype(np.float32), axis=1), 1, atol=2e-3)


def test_no_held_out_prompt_is_in_the_bank(bank):
    from backend.mocap.heldout import HELDOUT_PROMPTS
    from backend.train.heldout import heldout_suite, plain_suite

    caps = {_norm(c) for c in bank["captions"]}
    held = [p for _, p, *_ in heldout_suite() + plain_suite()]
    held += [p for ps in HELDOUT_PROMPTS.values() for p in (ps if isinstance(ps, (list, tuple)) else [ps])]
    assert len(held) > 100
    assert not [p for p in held if _norm(p) in caps]


def test_checked_captions(bank):
    """Most captions passed their family's action check when the bank was written; the families whose motion
    fails its check in any wording (push-ups: the hands slide; throw: the hand is too slow) have none."""
    from backend.train.action_checks import ACTION_CHECKS

    per: dict = {}
    for f, ok in zip(bank["families"], bank["checked"]):
        per.setdefault(f, []).append(ok)
    share = {f: float(np.mean(v)) for f, v in per.items() if f in ACTION_CHECKS}
    assert share["raise_arms"] == 1.0 and share["wave"] > 0.95 and share["walk"] > 0.8
    assert share["push_ups"] == 0.0 and share["throw"] == 0.0
    assert all(per[f] == [True] * len(per[f]) for f in per if f not in ACTION_CHECKS)  # no check: all kept
    assert 0.6 < np.mean(bank["checked"]) < 0.95


@pytest.mark.slow
def test_the_starter_reads_everyday_prompts():
    from backend.generation.model_folder import load_pipeline

    pipe = load_pipeline()
    assert pipe.info["reading"].startswith("on: ") and load_reader(STARTER_DIR) is not None
    out = pipe.generate(["doing star jumps", "a person dances salsa"], seed=0)
    note = [w for w in out[0].warnings if w.startswith("read ")]
    assert len(note) == 1 and ("jumping jack" in note[0] or "star jumps" in note[0]), out[0].warnings
    assert not [w for w in out[1].warnings if w.startswith("read ")]  # a training caption reads as itself first
    # a prompt about an action it never learnt is still read as the closest one it knows (threshold 0.5), and
    # keeps its unknown-word warning; nonsense is not read
    gig = pipe.generate(["a person juggles three balls", "asdf qwerty"], seed=0)
    assert gig[0].warnings[0].startswith("read ") and any("never saw 'juggles'" in w for w in gig[0].warnings)
    assert not [w for w in gig[1].warnings if w.startswith("read ")] and gig[1].warnings
    # "X while Y": X is read (the note kept), Y edits the arms as typed; literal reaches X
    w = pipe.generate(["strolling ahead while waving his right hand"], seed=0)[0]
    wl = pipe.generate(["strolling ahead while waving his right hand"], seed=0, literal=True)[0]
    assert [x for x in w.warnings if x.startswith("read 'a person strolls ahead' as ")], w.warnings
    assert not [x for x in wl.warnings if x.startswith("read ")] and not np.array_equal(w.features, wl.features)
    lit = pipe.generate(["doing star jumps"], seed=0, literal=True)[0]
    assert not np.array_equal(lit.features[:10], out[0].features[:10])
