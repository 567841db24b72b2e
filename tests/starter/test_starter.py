"""The shipped starter model (backend/starter): files, loading, generation, held-out retrieval and the
semantic checks of generated motions (backend/synthetic/checks.py) over several seeds."""

import json

import numpy as np
import pytest
import torch

from backend.starter_weights import MODEL_NAMES, STARTER_DIR, load_starter
from backend.train.evaluate import SEMANTIC_SUITE, retrieval_eval, semantic_suite

SEEDS = (0, 1, 2, 3, 4)
# Checks the shipped weights pass in >= 80% of the seeds (measured; see README "Training and the starter
# model" for every check's rate, including the ones not asserted here).
ASSERTED = ("walk_forward", "run_forward", "jog_forward", "jump_in_place", "jump_forward", "wave_right",
            "stand_up", "squat")


@pytest.fixture(scope="module")
def pipe():
    torch.set_num_threads(1)
    return load_starter()


@pytest.fixture(scope="module")
def suite(pipe):
    res = semantic_suite(pipe, SEEDS)
    for k, v in res.items():
        print(f"{k:14s} pass {v['pass_rate']:.0%} values {v['values']}")
    return res


def test_shipped_files_and_size():
    files = [p for p in STARTER_DIR.rglob("*") if p.is_file() and ".train" not in p.parts]
    total = sum(p.stat().st_size for p in files)
    assert total <= 30 * 2 ** 20, f"starter is {total / 2 ** 20:.1f} MB"
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
    assert len(db) == prov["corpus"]["n_train"]
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


@pytest.mark.xfail(strict=True, reason="target not reached by the shipped starter: measured family R@1 0.50 "
                                       "on held-out phrasings (see README)")
def test_heldout_retrieval_r1_target(retrieval):
    assert retrieval["t2m_family_R@1"] >= 0.8, retrieval


def test_heldout_retrieval_regression(retrieval):
    """Guards the measured level (0.50 family R@1, 0.27 instance R@1 among 90 held-out clips; chance is
    about 0.06 and 0.011) against regressions; it is not the 0.8 target."""
    assert retrieval["n_test"] == 90
    assert retrieval["t2m_family_R@1"] >= 0.45
    assert retrieval["t2m_R@5"] >= 0.5


@pytest.mark.parametrize("name", ASSERTED)
def test_semantic_check(suite, name):
    v = suite[name]
    assert v["pass_rate"] >= 0.8, f"{name} ({v['prompt']!r}): {v['messages']}"


def test_semantic_suite_covers_ten_checks(suite):
    assert len(SEMANTIC_SUITE) >= 10 and set(suite) == {n for n, _, _ in SEMANTIC_SUITE}
