"""FAISS retriever == the official full-sort + de-dup loop; database files and their errors."""

import numpy as np
import pytest
import torch

from backend.retrieval.database import (DatabaseError, MotionDatabase, build_database, load_database)
from backend.retrieval.retriever import Retriever


class LookupText:
    """TextEncoder stand-in: text 'q<i>' -> row i of a fixed matrix."""

    def __init__(self, emb):
        self.emb = torch.as_tensor(emb, dtype=torch.float32)
        self.dim = self.emb.shape[1]
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        return self.emb[[int(t[1:]) for t in texts]]


def reference_retrieve(query, motion_feats, names, k, num_retrieval=10):
    """Re-statement of the official per-caption loop (cosine, full argsort, de-dup walk)."""
    t = torch.nn.functional.normalize(torch.as_tensor(query)[None], dim=-1)
    m = torch.nn.functional.normalize(torch.as_tensor(motion_feats), dim=-1)
    score = torch.nn.CosineSimilarity(dim=1, eps=1e-6)(t, m)
    order = torch.argsort(score, descending=True, stable=True).numpy()
    picked, taken = [], []
    for i in order:
        g = names[i].split("_")[0]
        if g in taken:
            continue
        picked.append(int(i))
        taken.append(g)
        if len(picked) >= num_retrieval:
            break
    return picked[:k]


def random_db(rng, n, d=32, n_groups=None):
    n_groups = n_groups or max(1, n // 3)
    g = rng.integers(0, n_groups, n)
    ids = np.array([f"{gi:06d}_{i}" for i, gi in enumerate(g)])
    caps = np.array([f"caption {i}" for i in range(n)])
    m = rng.standard_normal((n, d)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    t = rng.standard_normal((n, d)).astype(np.float32)
    return MotionDatabase(ids, caps, m, t)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("k", [1, 3, 10])
def test_faiss_matches_reference_loop(seed, k):
    rng = np.random.default_rng(seed)
    db = random_db(rng, 800, n_groups=120 if seed % 2 else 40)
    q = rng.standard_normal((7, 32)).astype(np.float32)
    text = LookupText(q)
    r = Retriever(text, db, num_retrieval=10, top_k=1)
    out = r([f"q{i}" for i in range(len(q))], k=k)
    assert text.calls == 1  # one batched encoding per request
    for i in range(len(q)):
        ref = reference_retrieve(q[i], db.motion_emb, list(db.motion_ids), k)
        assert out.indices[i].tolist() == ref
        assert out.ids[i] == [db.motion_ids[j] for j in ref]
        assert out.captions[i] == [db.captions[j] for j in ref]
        cos = db.motion_emb[ref] @ (q[i] / np.linalg.norm(q[i]))
        np.testing.assert_allclose(out.scores[i], cos, atol=1e-5)
    torch.testing.assert_close(out.query_emb, torch.as_tensor(q))
    again = r([f"q{i}" for i in range(len(q))], k=k, query_emb=torch.as_tensor(q))
    assert text.calls == 1 and (again.indices == out.indices).all()  # precomputed: no encoding
    assert out.re_dict["re_motion"].shape == (7, k, 1, 32)
    assert out.re_dict["re_text"].shape == (7, k, 1, 32)
    np.testing.assert_array_equal(out.re_dict["re_text"][2, :, 0].numpy(), db.text_emb[out.indices[2]])


def test_default_k_and_string_query():
    rng = np.random.default_rng(5)
    db = random_db(rng, 50)
    q = rng.standard_normal((1, 32)).astype(np.float32)
    out = Retriever(LookupText(q), db)("q0")
    assert out.indices.shape == (1, 1)
    assert out.indices[0, 0] == reference_retrieve(q[0], db.motion_emb, list(db.motion_ids), 1)[0]


def test_big_groups_force_widening():
    """Groups of 40 near-identical entries: the first pool cannot hold 5 distinct groups."""
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((30, 16)).astype(np.float32)
    m = np.repeat(centres, 40, axis=0) + 0.01 * rng.standard_normal((1200, 16)).astype(np.float32)
    ids = np.array([f"{i // 40}_{i % 40}" for i in range(1200)])
    db = MotionDatabase(ids, ids.copy(), m, m.copy())
    q = centres[:4] + 0.05 * rng.standard_normal((4, 16)).astype(np.float32)
    out = Retriever(LookupText(q), db)([f"q{i}" for i in range(4)], k=5)
    for i in range(4):
        assert out.indices[i].tolist() == reference_retrieve(q[i], m, list(ids), 5)
        assert len({s.split("_")[0] for s in out.ids[i]}) == 5


def test_k_larger_than_unique_ids_and_num_retrieval():
    rng = np.random.default_rng(3)
    db = random_db(rng, 12, n_groups=3)  # at most 3 distinct motions
    q = rng.standard_normal((2, 32)).astype(np.float32)
    r = Retriever(LookupText(q), db, num_retrieval=10)
    out = r(["q0", "q1"], k=8)
    n_groups = db.num_groups
    assert out.indices.shape == (2, n_groups)  # the reference also returns only the distinct ones
    for i in range(2):
        assert out.indices[i].tolist() == reference_retrieve(q[i], db.motion_emb, list(db.motion_ids), 8)
    db2 = random_db(rng, 300, n_groups=200)
    q2 = rng.standard_normal((1, 32)).astype(np.float32)
    out2 = Retriever(LookupText(q2), db2, num_retrieval=4)(["q0"], k=9)
    assert out2.indices.shape == (1, 4)  # capped by num_retrieval, as in the reference
    assert out2.indices[0].tolist() == reference_retrieve(q2[0], db2.motion_emb, list(db2.motion_ids), 9, 4)


def test_exact_duplicates_tie_break_by_index():
    rng = np.random.default_rng(11)
    base = rng.standard_normal((20, 8)).astype(np.float32)
    m = np.concatenate([base, base])  # every vector twice: rows i and i+20 tie exactly
    ids = np.array([f"a{i}_0" for i in range(20)] + [f"b{i}_0" for i in range(20)])
    db = MotionDatabase(ids, ids.copy(), m, m.copy())
    q = rng.standard_normal((3, 8)).astype(np.float32)
    out = Retriever(LookupText(q), db)(["q0", "q1", "q2"], k=4)
    for i in range(3):
        ref = reference_retrieve(q[i], m, list(ids), 4)
        assert out.indices[i].tolist() == ref
        assert out.indices[i][0] < 20 and out.indices[i][1] == out.indices[i][0] + 20


def test_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(DatabaseError, match="empty"):
        MotionDatabase(np.array([], dtype=str), np.array([], dtype=str),
                       np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32))
    db = random_db(rng, 10)
    with pytest.raises(ValueError, match="do not belong"):
        Retriever(LookupText(np.zeros((1, 16))), db)
    r = Retriever(LookupText(np.ones((1, 32))), db)
    with pytest.raises(ValueError, match="no texts"):
        r([])
    with pytest.raises(ValueError, match="k must be"):
        r(["q0"], k=0)


def _write(d, ids, caps, m, t):
    d.mkdir(exist_ok=True)
    np.save(d / "motion_ids.npy", ids)
    np.save(d / "all_captions.npy", caps)
    np.save(d / "encoded_motions.npy", m)
    np.save(d / "encoded_texts.npy", t)


def test_load_database_official_layout_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"{i:06d}_{i % 3}" for i in range(6)]
    caps = [f"a person does thing {i}" for i in range(6)]
    m = rng.standard_normal((6, 1, 8)).astype(np.float32)
    t = rng.standard_normal((6, 1, 8)).astype(np.float32)
    _write(tmp_path / "db", ids, caps, m, t)  # np.save of python lists, as the official script does
    np.save(tmp_path / "db" / "tag_lists.npy", np.zeros((6, 2)))
    db = load_database(tmp_path / "db")
    assert len(db) == 6 and db.motion_dim == 8
    np.testing.assert_array_equal(db.motion_emb, m[:, 0])
    assert list(db.motion_ids) == ids and db.ignored_files == ["tag_lists.npy"]

    with pytest.raises(DatabaseError, match="not found"):
        load_database(tmp_path / "nope")
    (tmp_path / "part").mkdir()
    np.save(tmp_path / "part" / "motion_ids.npy", ids)
    with pytest.raises(DatabaseError, match="all_captions.npy, encoded_motions.npy, encoded_texts.npy"):
        load_database(tmp_path / "part")
    _write(tmp_path / "bad_n", ids, caps[:5], m, t)
    with pytest.raises(DatabaseError, match="6 motion ids but 5 captions"):
        load_database(tmp_path / "bad_n")
    bad = m.copy()
    bad[2, 0, 3] = np.nan
    _write(tmp_path / "nan", ids, caps, bad, t)
    with pytest.raises(DatabaseError, match="NaN"):
        load_database(tmp_path / "nan")
    _write(tmp_path / "obj", np.array(ids, dtype=object), caps, m, t)
    with pytest.raises(DatabaseError, match="pickled"):
        load_database(tmp_path / "obj")
    _write(tmp_path / "empty", np.array([], dtype=str), np.array([], dtype=str),
           np.zeros((0, 1, 8), np.float32), np.zeros((0, 1, 8), np.float32))
    with pytest.raises(DatabaseError, match="empty"):
        load_database(tmp_path / "empty")


class TinyMotion(torch.nn.Module):
    """encode_motion stand-in: mean over time of each part, concatenated, linear to 8-d."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(7 + 50 + 50 + 60 + 60 + 60, 8)

    def encode_motion(self, parts):
        return self.lin(torch.cat([p.mean(1) for p in parts], dim=1))


def test_build_database_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    motions = [rng.standard_normal((int(rng.integers(30, 260)), 263)).astype(np.float32) for _ in range(9)]
    caps = [f"caption {i}" for i in range(9)]
    ids = [f"{i // 3:06d}_{i % 3}" for i in range(9)]
    text = LookupText(rng.standard_normal((9, 8)))
    db = build_database(text, TinyMotion(), motions, [f"q{i}" for i in range(9)], ids,
                        tmp_path / "database", batch_size=4)
    raw = np.load(tmp_path / "database" / "encoded_motions.npy")
    assert raw.shape == (9, 1, 8) and raw.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(raw[:, 0], axis=1), 1.0, atol=1e-5)
    assert list(np.load(tmp_path / "database" / "motion_ids.npy")) == ids
    # retrieval with the same text model finds the caption's own entry group first for a text vector
    out = Retriever(text, db)(["q4"], k=3)
    assert out.indices.shape == (1, 3)
    # rebuilding into the existing folder replaces the files atomically, nothing left behind
    build_database(text, TinyMotion(), motions[:3], ["q0", "q1", "q2"], ids[:3], tmp_path / "database")
    assert sorted(p.name for p in (tmp_path / "database").iterdir()) == sorted(
        ["motion_ids.npy", "all_captions.npy", "encoded_motions.npy", "encoded_texts.npy"])
    assert len(load_database(tmp_path / "database")) == 3
    with pytest.raises(DatabaseError, match="unique"):
        build_database(text, TinyMotion(), motions[:2], caps[:2], ["a_1", "a_1"], tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_release_folder_discovery(tmp_path):
    from backend.retrieval.retriever import find_database_dir, find_part_tmr_dir

    with pytest.raises(FileNotFoundError, match="exp_for_mtrans"):
        find_part_tmr_dir(tmp_path)
    root = tmp_path / "unzipped" / "ReMoMask"  # one level below the folder the user picks
    for exp in ("exp1", "exp_for_mtrans"):
        d = root / "Part_TMR" / "checkpoints" / exp / "HumanML3D"
        d.mkdir(parents=True)
        (d / "last_model.pt").write_bytes(b"")
    (root / "Part_TMR" / "checkpoints" / "empty" / "HumanML3D").mkdir(parents=True)
    found = find_part_tmr_dir(tmp_path / "unzipped")
    assert found == root / "Part_TMR" / "checkpoints" / "exp_for_mtrans" / "HumanML3D"
    with pytest.raises(FileNotFoundError, match="database"):
        find_database_dir(tmp_path / "unzipped", found)
    (root / "database").mkdir()
    assert find_database_dir(tmp_path / "unzipped", found) == root / "database"
