"""Describe and search motions (backend/library) with the shipped starter's Part-TMR."""

from __future__ import annotations

import io
import json
import os
import time

import numpy as np
import pytest
import torch

from backend.library.describe import describe_motion
from backend.library.embed import MotionEmbedder
from backend.library.index import LibraryError, ModelMismatch, build_index, windows_of
from backend.library.reading import MotionReadError, read_motion
from backend.library.search import load_index, search_like, search_text
from backend.motion.features import mirror_joints
from backend.motion.motion_file import save_motion
from backend.synthetic import generate_clip

FAMILIES = ("walk", "jump_in_place", "wave", "sit_down", "squat", "kick", "clap", "punch", "bow", "turn")


@pytest.fixture(scope="module")
def pipe():
    torch.set_num_threads(1)
    from backend.generation.model_folder import load_pipeline

    return load_pipeline(None)


@pytest.fixture(scope="module")
def embedder(pipe):
    return MotionEmbedder.from_pipeline(pipe)


@pytest.fixture(scope="module")
def clips():
    return {(f, s): generate_clip(f, s) for f in FAMILIES for s in (1, 2, 3)}


@pytest.fixture(scope="module")
def library(tmp_path_factory, clips):
    """30 clips as joints .npy / motion .npz, plus one long take: squat, walk, wave, walk (~500+ frames)."""
    root = tmp_path_factory.mktemp("lib")
    for i, ((f, s), c) in enumerate(sorted(clips.items())):
        if i % 2:
            save_motion(root / f"{f}_{s}.npz", joints=c.joints, prompt=c.caption)
        else:
            np.save(root / f"{f}_{s}.npy", c.joints)
    parts, spans, off = [], {}, np.zeros(3, np.float32)
    for name, c in (("squat", generate_clip("squat", 11)), ("walk", generate_clip("walk", 12)),
                    ("wave", generate_clip("wave", 13)), ("walk2", generate_clip("walk", 14))):
        j = c.joints.copy()
        j[..., [0, 2]] += (off - j[0, 0])[[0, 2]]
        start = sum(len(p) for p in parts)
        spans[name] = (start, start + len(j), c)
        parts.append(j)
        off = j[-1, 0]
    (root / "takes").mkdir()
    np.save(root / "takes" / "long.npy", np.concatenate(parts))
    return root, spans


def _words(caption: str) -> str:
    return caption.lower()


FAMILY_WORDS = {"walk": ("walk", "step", "stroll", "ambl", "pace"), "wave": ("wave",), "sit_down": ("sit", "seat"),
                "squat": ("squat", "knee bend", "crouch"), "jump_in_place": ("jump", "hop", "leap", "bounc"),
                "kick": ("kick",), "clap": ("clap",), "punch": ("punch", "jab", "strike"), "bow": ("bow",)}


def test_describe_returns_the_family_of_corpus_clips(embedder, clips, tmp_path):
    hits = total = 0
    for (fam, seed), c in clips.items():
        if fam not in FAMILY_WORDS:
            continue
        p = tmp_path / f"{fam}{seed}.npy"
        np.save(p, c.joints)
        res = describe_motion(embedder, str(p), k=5)
        assert len(res["captions"]) == 5 and len(res["motions"]) == 5
        caps = [x["caption"] for x in res["captions"]]
        assert len(set(caps)) == 5  # de-duplicated
        scores = [x["score"] for x in res["captions"]]
        assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
        total += 1
        hits += any(w in _words(caps[0]) for w in FAMILY_WORDS[fam])
    assert hits >= 0.8 * total, f"{hits}/{total}"


@pytest.mark.slow
def test_motion_to_text_family_recall_on_the_held_out_split():
    from backend.train.evaluate import motion_text_eval

    m = motion_text_eval()
    # measured on the starter (90 held-out clips): database family R@1 0.86, R@5 0.89 (single actions R@1 1.0);
    # against the test captions: instance R@1 0.67, R@5 0.98, family R@1 0.84
    assert m["m2t_database_family_R@1"] >= 0.75
    assert m["m2t_database_family_R@5"] >= 0.8
    assert m["m2t_database_family_R@1_single_actions"] >= 0.9
    assert m["m2t_family_R@1"] >= 0.7 and m["m2t_R@5"] >= 0.85


def test_windows_cover_a_long_take():
    assert windows_of(50) == [(0, 50)]
    assert windows_of(196) == [(0, 196)]
    assert windows_of(300) == [(0, 196), (98, 294), (104, 300)]
    w = windows_of(1000)
    assert w[0] == (0, 196) and w[-1][1] == 1000 and all(b - a == 196 for a, b in w)


def test_index_search_incremental_and_refusal(embedder, library, tmp_path):
    root, spans = library
    out = tmp_path / "idx"
    rep = build_index(embedder, root, out)
    assert rep.files == 31 and not rep.errors and rep.reused == 0
    assert rep.windows > 31  # the long take is several windows
    lib = load_index(out, embedder)
    meta = lib.meta
    assert any(f["prompt"] for f in meta["files"].values()) and meta["files"]["takes/long.npy"]["frames"] == spans["walk2"][1]
    # text search finds waving clips, and the wave inside the long take
    hits = search_text(embedder, lib, "a person waves with the left hand", k=10)
    assert sum("wave" in h["file"] for h in hits[:3]) >= 2, hits[:5]
    # by example: the wave segment of the long take, given as its own clip, finds its window
    a, b, clip = spans["wave"]
    ex = tmp_path / "example.npy"
    np.save(ex, clip.joints)
    long_hits = [h for h in search_like(embedder, lib, str(ex), k=40) if h["file"] == "takes/long.npy"]
    assert long_hits and long_hits[0]["start"] < b and long_hits[0]["end"] > a, (long_hits[:3], a, b)
    # incremental: touch one file -> only it is embedded again
    t = time.time() + 5
    touched = next(root.glob("kick_2.*"))
    os.utime(touched, (t, t))
    rep2 = build_index(embedder, root, out)
    assert rep2.embedded == [touched.name] and rep2.reused == 30
    # another model's index is refused
    other = MotionEmbedder(embedder.model, embedder.mean + 1.0, embedder.std, embedder.pad_len, db=embedder.db)
    with pytest.raises(ModelMismatch, match="another model"):
        load_index(out, other)
    rep3 = build_index(other, root, out)  # indexing with another model re-embeds everything
    assert rep3.rebuilt_for_model and len(rep3.embedded) == 31


def test_bad_files_and_empty_folder(embedder, clips, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LibraryError, match="no motion files"):
        build_index(embedder, tmp_path / "empty")
    lib = tmp_path / "lib"
    lib.mkdir()
    np.save(lib / "ok.npy", clips[("walk", 1)].joints)
    (lib / "garbage.npy").write_bytes(b"not numpy")
    (lib / "broken.bvh").write_text("HIERARCHY\nROOT Hips {\n")
    np.save(lib / "short.npy", clips[("walk", 1)].joints[:3])
    np.save(lib / "wrong.npy", np.zeros((40, 5, 3), np.float32))
    (lib / "notes.txt").write_text("ignored")
    rep = build_index(embedder, lib)
    assert rep.files == 1 and sorted(rep.errors) == ["broken.bvh", "garbage.npy", "short.npy", "wrong.npy"]
    assert all(isinstance(m, str) and m for m in rep.errors.values())
    assert (lib / ".remomask-library" / "faiss.index").is_file()
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.npy").write_bytes(b"nope")
    with pytest.raises(LibraryError, match="could be read"):
        build_index(embedder, only_bad)
    assert not (only_bad / ".remomask-library").exists()
    with pytest.raises(MotionReadError, match="not found"):
        read_motion(tmp_path / "missing.npz")


def test_a_failure_mid_index_leaves_the_old_index(embedder, clips, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    for i, f in enumerate(("walk", "wave", "squat")):
        np.save(lib / f"{f}.npy", clips[(f, 1)].joints)
    build_index(embedder, lib)
    idx = lib / ".remomask-library"
    before = {p.name: p.read_bytes() for p in idx.iterdir()}
    np.save(lib / "new1.npy", clips[("kick", 1)].joints)
    np.save(lib / "new2.npy", clips[("clap", 1)].joints)

    class Failing(MotionEmbedder):
        calls = 0

        def embed(self, features, batch_size=32):
            Failing.calls += 1
            if Failing.calls == 2:
                raise RuntimeError("disk on fire")
            return super().embed(features, batch_size)

    failing = Failing(embedder.model, embedder.mean, embedder.std, embedder.pad_len, db=embedder.db)
    with pytest.raises(RuntimeError, match="disk on fire"):
        build_index(failing, lib)
    assert {p.name: p.read_bytes() for p in idx.iterdir()} == before
    assert not [p for p in lib.iterdir() if p.name.startswith(".remomask-library.")]  # no temp folder left
    assert len(load_index(idx, embedder)) == 3


def test_search_by_example_finds_the_original_of_a_mirrored_or_retimed_copy(embedder, library, tmp_path):
    root, _ = library
    lib = load_index(build_index(embedder, root, tmp_path / "idx").index_dir, embedder)
    found = 0
    cases = [("squat", 2), ("bow", 1), ("sit_down", 3), ("clap", 2)]
    for fam, seed in cases:
        c = generate_clip(fam, seed)
        name = {f"{fam}_{seed}.npy", f"{fam}_{seed}.npz"}
        mirrored = tmp_path / f"m_{fam}.npy"
        np.save(mirrored, mirror_joints(c.joints))
        retimed = tmp_path / f"r_{fam}.npz"  # the same motion recorded at 30 fps: resampled back to 20 on reading
        t = np.linspace(0, len(c.joints) - 1, int(len(c.joints) * 1.5))
        lo = np.floor(t).astype(int)
        hi = np.minimum(lo + 1, len(c.joints) - 1)
        w = (t - lo)[:, None, None]
        save_motion(retimed, joints=((1 - w) * c.joints[lo] + w * c.joints[hi]).astype(np.float32), fps=30)
        for q in (mirrored, retimed):
            hits = search_like(embedder, lib, str(q), k=3)
            found += any(h["file"] in name for h in hits)
    assert found >= 0.75 * 2 * len(cases), found


def test_bvh_on_the_smpl_skeleton_is_read(tmp_path, clips):
    from backend.motion.bvh import write_bvh
    from backend.motion.skeleton import JOINT_NAMES
    from smpl_fitting.skeleton import SMPL_PARENTS

    j = clips[("walk", 1)].joints
    parents = list(SMPL_PARENTS[:22])
    offsets = np.array([j[0, 0] if p < 0 else j[0, k] - j[0, p] for k, p in enumerate(parents)])
    rot = np.zeros((len(j), 22, 3))
    names = [n.replace("left_", "L_").replace("right_", "R_").title() for n in JOINT_NAMES]  # SMPL's style
    write_bvh(tmp_path / "a.bvh", names, parents, offsets * 100, rot, j[:, 0] * 100, fps=30)
    m = read_motion(tmp_path / "a.bvh")
    assert m.joints.shape[1:] == (22, 3) and abs(m.frames - round((len(j) - 1) * 20 / 30) - 1) <= 1
    assert np.allclose(m.joints[0, 15] - m.joints[0, 0], j[0, 15] - j[0, 0], atol=1e-3)  # metres again
    write_bvh(tmp_path / "b.bvh", [f"joint{i}" for i in range(22)], parents, offsets, rot, j[:, 0])
    with pytest.raises(MotionReadError, match="SMPL"):
        read_motion(tmp_path / "b.bvh")


def test_official_layout_with_tiny_weights_describes(tmp_path, clips):
    from backend.generation.model_folder import load_pipeline
    from tests.release_fixture import CAPTIONS, make_tiny_release

    root = make_tiny_release(tmp_path / "release", with_retrieval=True)
    emb = MotionEmbedder.from_pipeline(load_pipeline(root))
    assert emb.pad_len == 224
    p = tmp_path / "m.npy"
    np.save(p, clips[("wave", 1)].joints)
    res = describe_motion(emb, str(p), k=3)
    assert len(res["captions"]) == 3 and all(c["caption"] in CAPTIONS for c in res["captions"])
    assert len(res["motions"]) == 3 and len(emb.embed([np.zeros((30, 263), np.float32)])[0]) == 32


class _Chan:
    def __init__(self):
        from backend.serving.server import Channel

        self.buf = io.BytesIO()
        self.ch = Channel(self.buf, "test")

    def replies(self):
        return [json.loads(x) for x in self.buf.getvalue().decode().splitlines()]


def _wait_final(chan, rid, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        for r in chan.replies():
            if r.get("id") == rid and ("result" in r or "error" in r):
                return r
        time.sleep(0.02)
    raise AssertionError(chan.replies())


def test_protocol_describe_and_library_search(pipe, library, tmp_path):
    from backend.serving.generators import PipelineGenerator
    from backend.serving.server import Server

    root, _ = library
    gen = PipelineGenerator()
    gen.pipeline = pipe
    server = Server(gen, "starter", "cpu")
    chan = _Chan()
    try:
        assert {"describe", "library_search"} <= set(server.hello_result()["capabilities"])
        src = next(root.glob("wave_1.*"))

        def call(rid, method, params):
            server.handle_line(chan.ch, json.dumps({"id": rid, "method": method, "params": params}).encode())
            return _wait_final(chan, rid)

        r = call(1, "describe", {"source": str(src), "k": 3})
        assert [set(c) for c in r["result"]["captions"]] == [{"caption", "score", "id"}] * 3
        assert len(r["result"]["motions"]) == 3
        for rid, params in ((2, {"source": str(root / "nope.npz")}), (3, {"source": str(src), "k": 0}),
                            (4, {"source": str(src), "colour": 1}), (5, {})):
            e = call(rid, "describe", params)
            assert e["error"]["code"] == "invalid_params" and e["error"]["message"], e
        idx = tmp_path / "idx"
        build_index(MotionEmbedder.from_pipeline(pipe), root, idx)
        r = call(6, "library_search", {"index": str(idx), "text": "a person squats", "k": 4})
        assert len(r["result"]["hits"]) == 4 and {"file", "start", "end", "score"} <= set(r["result"]["hits"][0])
        r = call(7, "library_search", {"index": str(idx), "like": str(src), "k": 2})
        assert r["result"]["hits"][0]["file"] == src.name
        e = call(8, "library_search", {"index": str(tmp_path / "none"), "text": "x"})
        assert e["error"]["code"] == "invalid_params" and "no motion library index" in e["error"]["message"]
        e = call(9, "library_search", {"index": str(idx), "text": "x", "like": str(src)})
        assert e["error"]["code"] == "invalid_params"
    finally:
        server.jobs.close()


def test_cli_describe_and_library(library, tmp_path, capsys):
    from backend.cli.main import main

    root, _ = library
    src = next(root.glob("squat_1.*"))
    assert main(["describe", str(src), "--k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["captions"]) == 2 and len(out["motions"]) == 2
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"x")
    assert main(["describe", str(bad)]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["library", "search", str(tmp_path), "jumps"]) == 2  # no index there
    assert "no motion library index" in capsys.readouterr().err
    assert main(["library", "index", str(root), "--out", str(tmp_path / "idx"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 31
    assert main(["library", "search", str(tmp_path / "idx"), "a person squats", "--k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "frames" in lines[0]
    assert main(["library", "search", str(tmp_path / "idx")]) == 2


def test_a_body_lying_down_the_whole_take_is_indexed_and_centimetres_are_refused(embedder, clips, tmp_path):
    """Someone sleeping or crawling throughout fails the y-up checks editing needs (head height, joint order); the
    library takes it (only the size is checked), and finds it by example. A take in centimetres is refused."""
    from scipy.spatial.transform import Rotation

    lib = tmp_path / "lib"
    lib.mkdir()
    np.save(lib / "walk.npy", clips[("walk", 1)].joints)
    stand = clips[("squat", 1)].joints.astype(np.float64)
    lying = Rotation.from_euler("x", -90, degrees=True).apply(stand.reshape(-1, 3)).reshape(stand.shape)
    lying[..., 1] -= lying[..., 1].min()  # lying on the floor: the head is as low as the feet
    assert np.median(lying[:, 15, 1] - lying[..., 1].min(axis=1)) < 0.5
    np.save(lib / "lying.npy", lying.astype(np.float32))
    np.save(lib / "centimetres.npy", (clips[("walk", 1)].joints * 100).astype(np.float32))
    rep = build_index(embedder, lib)
    assert rep.files == 2 and list(rep.errors) == ["centimetres.npy"]
    assert "not a body in metres" in rep.errors["centimetres.npy"]
    q = tmp_path / "query.npy"
    np.save(q, lying[::-1].copy().astype(np.float32)[::-1])
    assert search_like(embedder, load_index(lib, embedder), str(q), k=1)[0]["file"] == "lying.npy"
