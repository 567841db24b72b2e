"""``--mocap``: the real-motion windows go into the training corpus, split by take, small families repeated,
their words in the coverage vocabulary; checked on a fake folder in the data's layout (no data needed)."""

import json
import re
import shutil

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
    # shipping removes the real windows' entries (converted from the data) and adds stand-ins made without them:
    # train the rest of the tiny model first
    for stage in ("vq", "mask", "residual", "length"):
        assert main([stage, "--config", "tiny", "--out", str(out), "--mocap", str(fake), "--no-progress",
                     "--resume"]) == 0
    n = prov["corpus"]["n_train"]
    # the masked transformers learn with retrieval over the entries that ship (the procedural ones) only
    from backend.retrieval.database import load_database
    from backend.train.coverage_file import config_of_folder
    from backend.train.stages import Context, token_data

    full = load_database(out / "database")
    td = token_data(Context(config_of_folder(out, None, str(fake)), out, tmp_path / "state"), "train")
    assert len(td.re_motion) > n  # the real windows' phrasings are there too
    d = np.abs(td.re_motion.numpy()[:, None, :] - full.motion_emb[None, :, :]).max(axis=2)
    nearest = d.argmin(axis=1)
    assert d.min(axis=1).max() < 1e-6 and nearest.max() < n
    assert not (nearest == td.variants.clip_of.numpy()).any()  # never the clip itself
    files = ("all_captions.npy", "encoded_motions.npy", "encoded_texts.npy", "motion_ids.npy")
    before = {f: np.load(out / "database" / f, allow_pickle=False) for f in files}
    assert len(before["motion_ids.npy"]) > n
    plain, one = tmp_path / "plain", tmp_path / "one"
    shutil.copytree(out, plain)
    from backend.generation.model_folder import load_pipeline
    from backend.library.embed import MotionEmbedder
    from backend.train import ship

    # by default: only the procedural entries are left
    assert main(["ship", "--out", str(plain)]) == 0
    for f, arr in before.items():
        np.testing.assert_array_equal(np.load(plain / "database" / f, allow_pickle=False), arr[:n])
    captions = [str(c) for c in np.load(plain / "database" / "all_captions.npy", allow_pickle=False)]
    assert not any("salsa" in c for c in captions)
    prov = json.loads((plain / "PROVENANCE.json").read_text())
    assert prov["stages"]["database"]["entries"] == n and "stand_in_entries" not in prov["stages"]["database"]
    assert prov["stages"]["database"]["captured_entries_removed"] == len(before["motion_ids.npy"]) - n
    assert "procedural entries only" in prov["stages"]["database"]["note"]  # the mask stage trained as it ships
    assert prov["stages"]["mask"]["retrieval_entries"] == n
    shutil.copytree(plain, one)  # shipped without stand-ins (or a stand-in run interrupted): they can still be added

    # the stand-ins' captions: the captured families' templates from their labels alone, nothing measured
    caps = ship.stand_in_captions(one)
    fams = {"dance_salsa", "jumping_jacks", "push_ups", "jab"}
    assert len(caps) == len(fams) * ship.STAND_IN_PER_FAMILY and len(set(caps)) == len(caps)
    from backend.mocap.labels import PHRASES

    order = [f["name"] for f in json.loads((one / "coverage.json").read_text())["families"]
             if "captured" in f["source"]]
    assert set(order) == fams
    k = ship.STAND_IN_PER_FAMILY
    def stems(text):  # words of 3+ letters, cut to 3 (the everyday forms inflect them: jabs / jab / jabbing)
        return {w[:3] for w in re.findall(r"[a-z]{3,}", text.lower())} - {"lef", "rig", "the", "wit", "and"}

    for i, fam in enumerate(order):  # each family's block says a word of its own phrases
        words = set().union(*(stems(ph.format(side="")) for ph in PHRASES[fam]))
        block = caps[i * k:(i + 1) * k]
        assert all(stems(c) & words for c in block), (fam, block)
    modifiers = ("moving", "across the floor", "on the spot", "in place", "turning", "quickly", "slowly")
    assert not [c for c in caps if any(w in c for w in modifiers)]
    # one round: the model's motion for each caption with retrieval over the procedural entries only, i.e. what
    # the plain folder generates for it
    pipe = load_pipeline(plain)
    res = pipe.generate(caps[:ship.STAND_IN_BATCH], seed=ship.STAND_IN_SEED, compose_sequences=False,
                        candidates=ship.STAND_IN_CANDIDATES)
    want = MotionEmbedder.from_pipeline(pipe).embed([r.features for r in res])
    assert ship.drop_captured_entries(one, stand_ins=True, rounds=1) == {"removed": 0, "stand_ins": len(caps)}
    prov = json.loads((one / "PROVENANCE.json").read_text())
    assert prov["stages"]["database"]["captured_entries_removed"] == len(before["motion_ids.npy"]) - n
    assert prov["stages"]["database"]["entries"] == n + len(caps)
    got = np.load(one / "database" / "encoded_motions.npy", allow_pickle=False)[n:, 0]
    np.testing.assert_allclose(got[:len(want)], want, atol=1e-4)

    # the command: two rounds (the second retrieves the first's stand-ins)
    assert main(["ship", "--out", str(out), "--stand-ins", "--no-progress"]) == 0
    after = {f: np.load(out / "database" / f, allow_pickle=False) for f in files}
    for f in files:  # the procedural clips come first, and they stay, unchanged
        np.testing.assert_array_equal(after[f][:n], before[f][:n])
        assert len(after[f]) == n + len(caps)
    ids = [str(i) for i in after["motion_ids.npy"][n:]]
    assert all(i.startswith("gen") for i in ids) and len(set(ids)) == len(ids)
    assert [str(c) for c in after["all_captions.npy"][n:]] == caps
    got = after["encoded_motions.npy"][n:, 0]
    real = before["encoded_motions.npy"][n:, 0]
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.abs(got[:, None, :] - real[None, :, :]).max(axis=2).min() > 1e-3  # no row is a real window's
    prov = json.loads((out / "PROVENANCE.json").read_text())
    db = prov["stages"]["database"]
    assert db["entries"] == n + len(caps) and db["stand_in_entries"] == len(caps)
    assert db["captured_entries_removed"] == len(before["motion_ids.npy"]) - n and db["stand_in_rounds"] == 2
    assert -1.0 <= db["stand_in_text_motion_cosine_mean"] <= 1.0 and "stand-ins" in db["note"]
    assert main(["ship", "--out", str(out), "--stand-ins"]) == 0  # again: nothing left to replace, nothing changes
    for f in files:
        np.testing.assert_array_equal(np.load(out / "database" / f, allow_pickle=False), after[f])
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


def test_stand_ins_without_coverage_are_one_message_and_change_nothing(tmp_path, capsys):
    """``ship --stand-ins`` on a folder whose coverage.json is missing: one message, the database untouched."""
    out = tmp_path / "m"
    (out / "database").mkdir(parents=True)
    (out / "PROVENANCE.json").write_text(json.dumps({"corpus": {"n_train": 2, "mocap": {"dir": "x"}}}))
    emb = np.eye(3, 4, dtype=np.float32)[:, None, :]
    arrays = {"motion_ids.npy": np.asarray(["synth00000_0", "synth00001_0", "synth00002_0"]),
              "all_captions.npy": np.asarray(["a", "b", "c"]), "encoded_motions.npy": emb, "encoded_texts.npy": emb}
    for name, arr in arrays.items():
        np.save(out / "database" / name, arr, allow_pickle=False)
    assert main(["ship", "--out", str(out), "--stand-ins"]) == 2
    err = capsys.readouterr().err
    assert "coverage.json" in err and "Traceback" not in err
    for name, arr in arrays.items():
        np.testing.assert_array_equal(np.load(out / "database" / name, allow_pickle=False), arr)
    assert "stages" not in json.loads((out / "PROVENANCE.json").read_text())


def test_training_retrieves_only_what_ships():
    """The masked transformers' training retrieval: with real motion in the corpus the procedural rows and the
    stand-ins, never a real window's row; without it every row."""
    from backend.train.stages import shipped_rows

    ids = np.asarray(["synth00000_0", "synth00001_0", "synth00002_0", "cmu_01_0", "mesh_jab_0", "gen00000_0",
                      "gen00001_0"])
    cfg = {"corpus": {"n_train": 3, "mocap": {"dir": "x"}}}
    assert shipped_rows(cfg, ids).tolist() == [0, 1, 2, 5, 6]
    assert shipped_rows(cfg, ids[:5]).tolist() == [0, 1, 2]
    assert shipped_rows({"corpus": {"n_train": 3}}, ids[:3]).tolist() == [0, 1, 2]
    assert shipped_rows({"corpus": {"n_train": 7}}, ids).tolist() == list(range(7))
