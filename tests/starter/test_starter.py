"""The shipped starter model (backend/starter): files, loading, generation, held-out retrieval and the
semantic checks of generated motions (backend/synthetic/checks.py) over several seeds."""

import json

import numpy as np
import pytest
import torch

from backend.generation.model_folder import load_pipeline
from backend.generation.project_weights import MODEL_NAMES, STARTER_DIR
from backend.train.evaluate import HELDOUT_SUITE, SEMANTIC_SUITE, retrieval_eval, semantic_suite

pytestmark = pytest.mark.slow  # the starter-quality suite: minutes of generation

SEEDS = tuple(range(20))
# Every check of the suite passes in >= 80% of the seeds with its prompts, but the ones listed here, which are
# asserted at NOT_REACHED_FLOOR instead. Since each motion draws from its own generator (a prompt's motion no longer
# depends on its batch mates, issue #16's last round), seeds 0-19 give: jump in place 75 %, turn right 55 %, spin
# left 65 %, "jump, then wave" 80 %. Over seeds 0-49 the old batched streams gave turn right 66 % (80 % on seeds
# 0-19, 57 % on 20-49), spin left 82 %, jump in place 60 %, "jump, then wave" 72 %; the new ones 62 %, 68 %, 64 %,
# 68 %: turn right's 80 % was the luck of seeds 0-19 (README "Training and the starter model"). In held-out
# phrasings (HELDOUT_SUITE) all but the ones listed here do (80-100 %; walking forward 25 %, spin 80 %).
SEMANTIC_NOT_REACHED = ("jump_in_place", "turn_right", "spin_left", "jump_then_wave")
HELDOUT_NOT_REACHED = ("walk_forward", "spin_left")
NOT_REACHED_FLOOR = {"walk_forward": 0.15}  # the rest: 0.45
# Issue #16's targets on the everyday held-out prompts (backend/train/heldout.py): action right in >= 85 %, details
# in >= 70 %. Starter 2 reaches 62 % and 56 % (seeds 0-9, each motion on its own generator and counts of jump,
# squat and hop as repeated parts; 63 % / 50 % before; 57 % / 36 % before the VQ fix): the floors below guard that
# level, the targets are open. Family floors: the measured rate less a margin for what it does well; jumping jacks
# (62 % -> 38 %) and walking (85 % -> 78 %) fell with the retrained model; two actions in one prompt ("compound")
# 28 % -> 80 % with the composition. Last round, seeds 0-19: martial arts 50 % / 53 % (72 % before: "martial artist
# training" was read as "martial arts turning" by the old spelling rule, 100 % -> 0 %), squat 80 % / 80 % with its
# count (details 40 % -> 80 %; 100 % without repeated parts), jump in place 100 % / 90 % (65 % before).
TARGETS = {"action_rate": 0.85, "detail_rate": 0.70}
EVERYDAY_FLOORS = {"action_rate": 0.58, "detail_rate": 0.50}
# The second, plainer held-out set (heldout.HELDOUT_PLAIN, 28 prompts, seeds 0-9): 87 % / 82 % measured; the floors
# keep a margin for the sampling noise of 280 motions.
PLAIN_FLOORS = {"action_rate": 0.78, "detail_rate": 0.70}
FAMILY_FLOORS = {"dance": 0.65, "martial_arts": 0.45, "crawl": 0.75, "kick": 0.7, "turn": 0.55, "side_step": 0.8,
                 "walk": 0.7, "wave": 0.8, "jog": 0.8, "clap": 0.8, "punch": 0.7, "squat": 0.75, "sit_down": 0.9,
                 "stand_up": 0.9, "jump_in_place": 0.8, "bow": 0.85, "hop": 0.9, "jumping_jacks": 0.3,
                 "compound": 0.6}
# counts as repeated parts (generation.json repeat_counts): the count is right in these shares of the motions
FAMILY_DETAIL_FLOORS = {"jump_in_place": 0.7, "squat": 0.7, "hop": 0.9}


@pytest.fixture(scope="module")
def pipe():
    torch.set_num_threads(1)
    return load_pipeline()


def _run(pipe, suite=None):
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


def test_everyday_heldout_prompts_reach_the_measured_level(everyday):
    """The starter with prompts written as animators type (never its training captions), 10 seeds each."""
    for k, floor in EVERYDAY_FLOORS.items():
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
