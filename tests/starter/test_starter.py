"""The shipped starter model (backend/starter): files, loading, generation, held-out retrieval and the
semantic checks of generated motions (backend/synthetic/checks.py) over several seeds."""

import json

import numpy as np
import pytest
import torch

from backend.generation.model_folder import load_pipeline
from backend.generation.project_weights import MODEL_NAMES, STARTER_DIR
from backend.train.evaluate import (HELDOUT_SUITE, SEMANTIC_CANDIDATES, SEMANTIC_SUITE, retrieval_eval,
                                    semantic_suite)

pytestmark = pytest.mark.slow  # the starter-quality suite: minutes of generation

SEEDS = tuple(range(20))
# Every check of the suite passes in >= 80% of the seeds with its prompts, but the ones listed here, which are
# asserted at NOT_REACHED_FLOOR instead. With the caption bank's reading (backend/generation/reading.py, issue #16's
# last round) seeds 0-19 give turn right 55 % and spin left 80 % (at the line; 68 % over seeds 0-49 before the
# reading), the rest 90-100 % (jump in place 75 -> 95 %, "jump, then wave" 80 -> 95 %, which were listed here and
# are now asserted at 80 %). Over seeds 0-49 with the old batched streams turn right was 66 % (80 % on seeds 0-19,
# 57 % on 20-49): its 80 % had been the luck of seeds 0-19. In held-out phrasings (HELDOUT_SUITE) all but spin left
# (60 %) reach 95-100 % (walking forward 25 % -> 100 %, no longer listed).
SEMANTIC_NOT_REACHED = ("turn_right", "spin_left")
HELDOUT_NOT_REACHED = ("spin_left",)
NOT_REACHED_FLOOR: dict = {}  # all: 0.45
# Issue #16's targets on the everyday held-out prompts (backend/train/heldout.py): action right in >= 85 %, details
# in >= 70 %, asserted. Starter 2 reaches 85.9 % and 71.4 % (seeds 0-9) reading each prompt in its training words
# and keeping the best of four draws (generation.json "candidates": 4; 83.3 % / 70.9 % with one draw, 61.8 % /
# 55.9 % as typed, which `literal` still does; 57 % / 36 % before the VQ fix). The margin is small: 7 motions of 830
# for the action, 3 of 220 for the details.
# Family floors: the measured rate less a margin. Lowered with the reading, each measured (seeds 0-9): jog 90 -> 70 %
# ("jogging in a straight line", 10 motions), clap 100 -> 80 % ("claps his hands 4 times" 70 %), spin 80 -> 70 %,
# compound 90 -> 85 %; raised: dance 76 -> 94 %, martial arts 50 -> 95 %, jumping jacks 42 -> 100 %, backflip 7 ->
# 90 %, meditate 0 -> 97 %, celebrate 20 -> 67 %, jab 40 -> 68 % (details 0 -> 100 %), run 0 -> 60 %. Push-ups and
# throw stay at 0 %: no wording makes their motion pass its check (the caption bank's check found none). Best of four:
# squat 0.75 -> 0.65 (one prompt, "squatting down twice": 80 % with one draw, 70 % keeping the best of four, whose
# Part-TMR score does not count squats); raised by it, not re-floored: clap 80 -> 100 %, jog 70 -> 90 %, turn 87 ->
# 97 %, kick 75 -> 85 %, jab 68 -> 78 %, celebrate 67 -> 100 % (the known-word weighting of the reading).
TARGETS = {"action_rate": 0.85, "detail_rate": 0.70}
# The second, plainer held-out set (heldout.HELDOUT_PLAIN, 28 prompts, seeds 0-9): 95.7 % / 92.2 % measured with
# the reading and best of four (95 % / 90 % one draw, 87 % / 82 % as typed).
PLAIN_FLOORS = {"action_rate": 0.90, "detail_rate": 0.84}
FAMILY_FLOORS = {"dance": 0.85, "martial_arts": 0.85, "crawl": 0.85, "kick": 0.7, "turn": 0.8, "side_step": 0.9,
                 "walk": 0.9, "wave": 0.9, "jog": 0.6, "clap": 0.7, "punch": 0.8, "squat": 0.65, "sit_down": 0.9,
                 "stand_up": 0.9, "jump_in_place": 0.85, "bow": 0.9, "hop": 0.9, "jumping_jacks": 0.9,
                 "compound": 0.75, "backflip": 0.8, "meditate": 0.85, "celebrate": 0.55, "jab": 0.6, "run": 0.5,
                 "spin": 0.6, "jump_forward": 0.9, "raise_arms": 0.4}
# details right in these shares of the motions that ask for one (counts of jump, squat and hop as repeated parts)
FAMILY_DETAIL_FLOORS = {"jump_in_place": 0.85, "squat": 0.7, "hop": 0.9, "jab": 0.9, "raise_arms": 0.9,
                        "walk": 0.6, "turn": 0.55, "side_step": 0.9, "wave": 0.9}


@pytest.fixture(scope="module")
def pipe():
    torch.set_num_threads(1)
    return load_pipeline()


def _run(pipe, suite=None):
    # single draws (semantic_suite's default, SEMANTIC_CANDIDATES, as PROVENANCE records them): 640 motions, and
    # the floors below were measured on single draws; the shipped best of four is measured on the everyday sets
    assert SEMANTIC_CANDIDATES == 1
    res = semantic_suite(pipe, SEEDS, suite=suite)
    for k, v in res.items():
        print(f"{k:14s} pass {v['pass_rate']:.0%} values {v['values']}")
    return res


@pytest.fixture(scope="module")
def suite(pipe):
    return _run(pipe)


@pytest.fixture(scope="module")
def heldout_suite(pipe):
    return _run(pipe, HELDOUT_SUITE)


def test_shipped_files_and_size():
    files = [p for p in STARTER_DIR.rglob("*") if p.is_file() and ".train" not in p.parts]
    total = sum(p.stat().st_size for p in files)
    assert total < 40 * 10 ** 6, f"starter is {total / 10 ** 6:.1f} MB"  # issue #16: under 40 MB
    for n in MODEL_NAMES:
        assert (STARTER_DIR / f"{n}.safetensors").is_file() and (STARTER_DIR / f"{n}.json").is_file()
    for n in ("mean.npy", "std.npy", "part_tmr/part_tmr.safetensors", "part_tmr/part_tmr.json",
              "database/motion_ids.npy", "database/all_captions.npy", "database/encoded_motions.npy",
              "database/encoded_texts.npy"):
        assert (STARTER_DIR / n).is_file(), n
    prov = json.loads((STARTER_DIR / "PROVENANCE.json").read_text())
    assert prov["config"]["name"] == "starter"
    assert set(prov["stages"]) == {"part_tmr", "database", "vq", "mask", "residual", "length"}
    assert prov["corpus"]["seed"] == 0 and prov["corpus"]["n_train"] > 100
    assert prov["machine"] and prov["total_train_seconds"] > 60


def test_database_matches_text_model(pipe):
    db = pipe.retriever.db
    prov = json.loads((STARTER_DIR / "PROVENANCE.json").read_text())
    assert len(db) == prov["stages"]["database"]["entries"] >= prov["corpus"]["n_train"]  # + the real clips
    assert db.motion_dim == pipe.text_encoder.dim == pipe.models.mask_aux.cfg.clip_dim


def test_generate_is_deterministic_and_sane(pipe):
    a = pipe.generate(["a person walks forward", "a person waves with the right hand"], lengths=[80, 60], seed=7)
    b = pipe.generate(["a person walks forward", "a person waves with the right hand"], lengths=[80, 60], seed=7)
    assert [s.joints.shape for s in a] == [(80, 22, 3), (60, 22, 3)]
    assert np.array_equal(a[1].joints, b[1].joints)
    for s in a:
        assert np.isfinite(s.joints).all()
        assert 0.5 < s.joints[:, 15, 1].mean() < 2.2  # head height in metres
        assert s.retrieved and s.retrieved_ids
    free = pipe.generate(["someone jumps in place"], seed=2)  # length from the estimator
    assert 8 <= free[0].length <= 196


@pytest.fixture(scope="module")
def retrieval():
    m = retrieval_eval()
    print(json.dumps({k: v for k, v in m.items() if not isinstance(v, list)}))
    return m


def test_heldout_retrieval_r1_target(retrieval):
    """Held-out phrasings of the 90-clip test split: the top motion has the caption's action >= 80 %."""
    assert retrieval["n_test"] == 90
    assert retrieval["t2m_family_R@1"] >= 0.8, retrieval


def test_heldout_retrieval_regression(retrieval):
    """Guards the measured instance level (R@1 0.64, R@5 0.94 among 90 held-out clips; chance is 0.011 and
    0.056) against regressions."""
    assert retrieval["t2m_R@1"] >= 0.5
    assert retrieval["t2m_R@5"] >= 0.85


def test_shipped_sampling_and_padding():
    """The starter runs with its recommended guidance (generation.json) and its 2D masked transformer leaves
    padded tokens out of attention."""
    prov = json.loads((STARTER_DIR / "PROVENANCE.json").read_text())
    assert json.loads((STARTER_DIR / "generation.json").read_text()) == prov["config"]["generation"]
    assert json.loads((STARTER_DIR / "mask_ts.json").read_text())["config"]["mask_padding_keys"] is True


@pytest.mark.parametrize("name", [n for n, _, _ in SEMANTIC_SUITE])
def test_semantic_check(suite, name):
    v = suite[name]
    floor = NOT_REACHED_FLOOR.get(name, 0.45) if name in SEMANTIC_NOT_REACHED else 0.8
    assert v["pass_rate"] >= floor, f"{name} ({v['prompt']!r}): {v['messages']}"


@pytest.mark.parametrize("name", [n for n, _, _ in SEMANTIC_SUITE])
def test_semantic_check_heldout_phrasing(heldout_suite, name):
    v = heldout_suite[name]
    floor = NOT_REACHED_FLOOR.get(name, 0.45) if name in HELDOUT_NOT_REACHED else 0.8
    assert v["pass_rate"] >= floor, f"{name} ({v['prompt']!r}): {v['messages']}"


def test_semantic_suite_covers_ten_checks(suite, heldout_suite):
    assert len(SEMANTIC_SUITE) >= 10 and set(suite) == {n for n, _, _ in SEMANTIC_SUITE} == set(heldout_suite)
    assert len(SEMANTIC_SUITE) - len(HELDOUT_NOT_REACHED) >= 10
    assert len(SEMANTIC_SUITE) - len(SEMANTIC_NOT_REACHED) >= 10


@pytest.fixture(scope="module")
def everyday(pipe):
    from backend.train.heldout import heldout_rates, heldout_suite

    r = heldout_rates(pipe, range(10), suite=heldout_suite())
    print(f"everyday: action {r['action_rate']:.2f} details {r['detail_rate']:.2f} (targets {TARGETS})")
    for g, v in r["families"].items():
        print(f"  {g:14s} action {v['action_rate']:.2f} details {v['detail_rate']}")
    return r


def test_everyday_heldout_prompts_reach_the_targets(everyday):
    """The starter with prompts written as animators type (never its training captions), 10 seeds each: issue
    #16's targets, with the folder's own settings (reading, best of four)."""
    for k, floor in TARGETS.items():
        assert everyday[k] >= floor, (k, everyday[k])
    assert everyday["n_motions"] >= 800 and everyday["n_detail_motions"] >= 200


def test_everyday_heldout_families(everyday):
    """The real-motion families it was trained on come out as themselves (dance, karate, jumping jacks), next to
    the procedural ones."""
    fams = everyday["families"]
    low = {f: round(fams[f]["action_rate"], 2) for f, floor in FAMILY_FLOORS.items() if fams[f]["action_rate"] < floor}
    low.update({f"{f} details": round(fams[f]["detail_rate"], 2) for f, floor in FAMILY_DETAIL_FLOORS.items()
                if fams[f]["detail_rate"] < floor})
    assert not low, low


def test_shipped_evaluation_is_this_model(everyday):
    """PROVENANCE.json's everyday figures are the ones this model gives now."""
    ev = json.loads((STARTER_DIR / "PROVENANCE.json").read_text())["evaluation"]["heldout_everyday"]
    assert ev["action_rate"] == pytest.approx(everyday["action_rate"], abs=0.03)
    assert ev["detail_rate"] == pytest.approx(everyday["detail_rate"], abs=0.03)


def test_plain_heldout_prompts(pipe):
    """The plainer second held-out set (one action in a short everyday sentence, never a training caption), 10
    seeds: the level measured and stored in PROVENANCE.json."""
    from backend.train.heldout import heldout_rates, plain_suite

    r = heldout_rates(pipe, range(10), suite=plain_suite())
    print(f"plain: action {r['action_rate']:.2f} details {r['detail_rate']:.2f}")
    for k, floor in PLAIN_FLOORS.items():
        assert r[k] >= floor, (k, r[k])
    assert r["n_motions"] == 280 and r["n_detail_motions"] == 90
    ev = json.loads((STARTER_DIR / "PROVENANCE.json").read_text())["evaluation"]["heldout_plain"]
    assert ev["action_rate"] == pytest.approx(r["action_rate"], abs=0.03)
    assert ev["detail_rate"] == pytest.approx(r["detail_rate"], abs=0.03)
