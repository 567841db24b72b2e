"""``--mocap``: the real-motion windows go into the training corpus, split by take, small families repeated,
their words in the coverage vocabulary; checked on a fake folder in the data's layout (no data needed)."""

import json

import numpy as np
import pytest
import torch

from backend.mocap.clips import balance_families, load_mocap_corpus, split_by_take
from backend.train import main

from tests.mocap.fake_sets import make_fake_mocap


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return make_fake_mocap(tmp_path_factory.mktemp("mocap"))


def test_fake_folder_reads_with_the_true_frame_rate(fake):
    errors = []
    clips = load_mocap_corpus(fake, errors=errors)
    assert errors == []
    fams = {c.family for c in clips}
    assert fams == {"dance_salsa", "jumping_jacks", "push_ups", "jab"}  # levitate is left out
    salsa = [c for c in clips if c.family == "dance_salsa" and not c.params["mirrored"]]
    # written as 358 frames "at 120 fps" that are really 60 fps: 6 s -> 119 frames at 20 fps (settling trims none)
    assert all(abs(c.length - 119) <= 1 for c in salsa), [c.length for c in salsa]


def test_split_by_take_keeps_takes_and_their_mirrors_together(fake):
    clips = load_mocap_corpus(fake)
    train, test = split_by_take(clips, test_every=4, min_takes=4)
    tr = {c.params["source"] for c in train}
    te = {c.params["source"] for c in test}
    assert te and not (tr & te)
    assert {c.family for c in test} == {"dance_salsa"}  # one-take families stay in training
    assert len(test) == 2 * len(te)  # a take and its mirror
    bal = balance_families(train, 10)
    counts = {f: sum(c.family == f for c in bal) for f in {c.family for c in bal}}
    assert min(counts.values()) >= 10


@pytest.mark.slow
def test_train_with_mocap_puts_its_captions_in_the_database(fake, tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "model"
    rc = main(["part_tmr", "--config", "tiny", "--out", str(out), "--mocap", str(fake), "--no-progress"])
    assert rc == 0
    rc = main(["database", "--config", "tiny", "--out", str(out), "--mocap", str(fake), "--no-progress",
               "--resume"])
    assert rc == 0
    captions = [str(c) for c in np.load(out / "database" / "all_captions.npy", allow_pickle=False)]
    jacks = ("jumping jack", "star jump", "arms and legs spreading")  # labels.PHRASES["jumping_jacks"]
    assert any("salsa" in c for c in captions) and any(w in c for c in captions for w in jacks)
    cov = json.loads((out / "coverage.json").read_text())
    assert {"salsa", "karate", "jab"} <= set(cov["words"])
    prov = json.loads((out / "PROVENANCE.json").read_text())
    assert "backend.mocap" in prov["corpus"]["generator"] and prov["corpus"]["mocap"]["dir"] == str(fake)
    # nothing of the data is stored in the model folder but embeddings: no file holds the raw joints
    assert not any(p.suffix in (".bvh", ".npz") for p in out.rglob("*"))
    # shipping drops the real windows' entries (embeddings and captions converted from the data): the procedural
    # clips come first, and they are what stays, unchanged
    n = prov["corpus"]["n_train"]
    before = {f: np.load(out / "database" / f, allow_pickle=False) for f in
              ("all_captions.npy", "encoded_motions.npy", "encoded_texts.npy", "motion_ids.npy")}
    assert len(before["motion_ids.npy"]) > n
    assert main(["ship", "--out", str(out)]) == 0
    for f, arr in before.items():
        np.testing.assert_array_equal(np.load(out / "database" / f, allow_pickle=False), arr[:n])
    captions = [str(c) for c in np.load(out / "database" / "all_captions.npy", allow_pickle=False)]
    assert not any("salsa" in c for c in captions)
    prov = json.loads((out / "PROVENANCE.json").read_text())
    assert prov["stages"]["database"]["entries"] == n
    assert prov["stages"]["database"]["captured_entries_removed"] == len(before["motion_ids.npy"]) - n
    assert main(["ship", "--out", str(out)]) == 0  # again: nothing left to remove, nothing changes
    assert len(np.load(out / "database" / "motion_ids.npy")) == n
    assert main(["ship", "--out", str(tmp_path / "nope")]) == 2


def test_shipped_starter_database_holds_no_real_motion_entries():
    """The shipped starter was trained with real motion; its database keeps only the procedural clips' entries."""
    from backend.generation.project_weights import STARTER_DIR
    from backend.retrieval.database import load_database

    prov = json.loads((STARTER_DIR / "PROVENANCE.json").read_text())
    db = load_database(STARTER_DIR / "database")
    assert prov["corpus"].get("mocap") and len(db) == prov["corpus"]["n_train"]
    assert prov["stages"]["database"]["captured_entries_removed"] > 0
    real_words = ("salsa", "karate", "charleston", "push-up", "jumping jack", "backflip", "crawl", "meditat")
    assert not [c for c in db.captions if any(w in str(c) for w in real_words)]


def test_missing_mocap_folder_is_one_message(tmp_path, capsys):
    rc = main(["part_tmr", "--config", "tiny", "--out", str(tmp_path / "m"), "--mocap", str(tmp_path / "nope")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and "Traceback" not in err
