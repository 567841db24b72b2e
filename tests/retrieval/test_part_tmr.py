"""Part-TMR: official names/shapes, part split, tokenizer, checkpoint loading of both variants."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.models.part_tmr import (PartTMR, PartTMRConfig, WordPieceTokenizer, find_distilbert_vocab,
                                     load_part_tmr, save_part_tmr, whole2parts)
from backend.retrieval.database import build_database
from backend.retrieval.retriever import Retriever, load_retriever

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # open_clip's torch.jit use

DATA = Path(__file__).resolve().parents[1] / "data"
TINY_DB = dict(vocab_size=40, dim=64, n_layers=2, n_heads=1, hidden_dim=64, max_position_embeddings=64)
TINY_CLIP = dict(embed_dim=48, vision_cfg=dict(image_size=32, layers=1, width=64, patch_size=16),
                 text_cfg=dict(context_length=77, vocab_size=49408, width=128, heads=2, layers=2))
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "person", "walk", "##s", "forward", ",", ".",
         "!", "run", "##ning", "jump", "##ing", "and", "turn", "around", "un", "##aff", "##able", "cafe",
         "the", "left", "right", "hand", "wave", "##d"]


@pytest.mark.parametrize("variant", ["distilbert", "clip"])
def test_default_size_matches_official_manifest(variant):
    cfg = PartTMRConfig() if variant == "distilbert" else PartTMRConfig.released()
    with torch.device("meta"):
        model = PartTMR(cfg)
    got = sorted((k, list(v.shape)) for k, v in model.state_dict().items())
    manifest = json.loads((DATA / f"official_manifest_part_tmr_{variant}.json").read_text())
    assert got == [(k, s) for k, s in manifest["tensors"]]


def test_whole2parts_picks_the_official_channels():
    x = torch.arange(263, dtype=torch.float32).expand(2, 5, 263)  # value == channel index
    root, r_leg, l_leg, back, r_arm, l_arm = whole2parts(x)
    assert [p.shape[-1] for p in (root, r_leg, l_leg, back, r_arm, l_arm)] == [7, 50, 50, 60, 60, 60]
    assert root[0, 0].tolist() == [0, 1, 2, 3, 193, 194, 195]
    # right leg, first joint = joint 2: ric (4 + 1*3), rot (67 + 1*6), vel (193 + 2*3)
    assert r_leg[1, 4, :12].tolist() == [7, 8, 9, 73, 74, 75, 76, 77, 78, 199, 200, 201]
    assert r_leg[0, 0, -2:].tolist() == [261, 262] and l_leg[0, 0, -2:].tolist() == [259, 260]
    # arms share joint 9 (spine3) with the backbone's third joint
    assert r_arm[0, 0, :3].tolist() == [28, 29, 30] == back[0, 0, 24:27].tolist()
    assert l_arm[0, 0, 12:15].tolist() == [40, 41, 42]  # joint 13: ric 4 + 12*3
    with pytest.raises(ValueError, match="263"):
        whole2parts(torch.zeros(3, 262))


def test_wordpiece_tokenizer(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    tok = WordPieceTokenizer(tmp_path / "vocab.txt")
    assert tok.basic("A Person walks, Forward!  Café") == ["a", "person", "walks", ",", "forward", "!", "cafe"]
    assert tok.wordpiece("unaffable") == ["un", "##aff", "##able"]
    assert tok.wordpiece("walks") == ["walk", "##s"] and tok.wordpiece("xyz") == ["[UNK]"]
    out = tok(["a person walks.", "jumping"])
    ids = [VOCAB.index(t) for t in ["[CLS]", "a", "person", "walk", "##s", ".", "[SEP]"]]
    assert out["input_ids"][0].tolist() == ids
    assert out["input_ids"][1].tolist() == [2, VOCAB.index("jump"), VOCAB.index("##ing"), 3, 0, 0, 0]
    assert out["attention_mask"][1].tolist() == [1, 1, 1, 1, 0, 0, 0]
    (tmp_path / "bad.txt").write_text("a\nb\n")
    with pytest.raises(ValueError, match="not a BERT vocabulary"):
        WordPieceTokenizer(tmp_path / "bad.txt")
    with pytest.raises(FileNotFoundError, match="local_tokenizer/vocab.txt"):
        find_distilbert_vocab(tmp_path / "nothing")
    cache = tmp_path / "rel" / "local_tokenizer" / "models--distilbert-base-uncased" / "snapshots" / "abc"
    cache.mkdir(parents=True)
    (cache / "vocab.txt").write_text("\n".join(VOCAB))
    assert find_distilbert_vocab(tmp_path / "rel") == cache / "vocab.txt"


def _tiny(variant, seed=0):
    torch.manual_seed(seed)
    if variant == "distilbert":
        cfg = PartTMRConfig(motion_embedding_dims=32, text_embedding_dims=64, projection_dims=16, ff_size=64,
                            max_len=300, embed_dim=16, queue_size=64, distilbert=TINY_DB)
    else:
        cfg = PartTMRConfig.released(motion_embedding_dims=32, projection_dims=16, ff_size=64, max_len=300,
                                     embed_dim=16, queue_size=64, part_queue_size=64, text_embedding_dims=48,
                                     clip=TINY_CLIP)
    return PartTMR(cfg).eval()


def _release(tmp_path, model, variant, extra=None):
    d = tmp_path / "release" / "Part_TMR" / "checkpoints" / "exp_for_mtrans" / "HumanML3D"
    (d / ".hydra").mkdir(parents=True)
    enc = "ViT-B-32.pt" if variant == "clip" else "distilbert-base-uncased"
    (d / ".hydra" / "config.yaml").write_text(
        f"model:\n  text_encoder: {enc}\ndataset:\n  dataset_name: HumanML3D\neval:\n  use_best_model: true\n")
    sd = dict(model.state_dict())
    sd.update(extra or {})
    torch.save(sd, d / "best_model.pt")
    if variant == "distilbert":
        (tmp_path / "release" / "local_tokenizer").mkdir()
        (tmp_path / "release" / "local_tokenizer" / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return d


def _texts():
    return ["a person walks forward", "a person is running and turns around!", "wave the left hand"]


@pytest.mark.parametrize("variant", ["distilbert", "clip"])
def test_load_checkpoint_round_trip(tmp_path, variant):
    torch.set_num_threads(1)
    model = _tiny(variant)
    extra = {"motion_projection_global.fc.weight": torch.zeros(16, 16), "something_new.w": torch.zeros(2)}
    d = _release(tmp_path, model, variant, extra)
    loaded, report = load_part_tmr(d, search_root=tmp_path / "release")
    assert report.variant == variant
    assert report.unknown == ["something_new.w"]
    groups = report.unused_known
    assert "momentum encoders (training only)" in groups and "contrastive queues (training only)" in groups
    assert groups["HBM training heads (not used for retrieval)"] == ["motion_projection_global.fc.weight"]
    if variant == "clip":
        assert any(k.startswith("text_encoder.clip_model.visual.") for k in groups["CLIP vision tower (never used)"])
    assert not hasattr(loaded, "motion_encoder_m")
    # same numbers as the model that was saved
    model.tokenizer = loaded.tokenizer
    texts = _texts()
    with torch.inference_mode():
        ref = model.encode_text(texts)
    got = loaded.encode(texts)
    assert got.shape == (3, 16) and got.dtype == torch.float32
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    # batching does not change a text's embedding (padding masked / causal CLIP)
    torch.testing.assert_close(loaded.encode(texts[1:2])[0], got[1], atol=1e-5, rtol=1e-5)
    motion = torch.randn(2, 40, 263)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.encode_motion(whole2parts(motion)),
                                   model.encode_motion(whole2parts(motion)), atol=1e-5, rtol=1e-5)


def test_load_errors(tmp_path):
    model = _tiny("distilbert")
    sd = dict(model.state_dict())
    del sd["text_projection.fc.weight"]
    f = tmp_path / "ckpt.pt"
    torch.save(sd, f)
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB))
    with pytest.raises(ValueError, match="lacks: text_projection.fc.weight"):
        load_part_tmr(f, tokenizer_dir=tmp_path)
    torch.save({k: v for k, v in sd.items() if not k.startswith("text_encoder.")}, f)
    with pytest.raises(ValueError, match="unrecognised Part-TMR text tower"):
        load_part_tmr(f)
    import argparse

    torch.save({"state_dict": dict(sd), "cfg": argparse.Namespace(x=1)}, f)
    with pytest.raises(ValueError, match="argparse.Namespace"):
        load_part_tmr(f)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="best_model.pt nor last_model.pt"):
        load_part_tmr(tmp_path / "empty")
    model2 = _tiny("distilbert")
    torch.save(model2.state_dict(), tmp_path / "m.pt")
    (tmp_path / "vocab.txt").unlink()
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        load_part_tmr(tmp_path / "m.pt", search_root=tmp_path / "nowhere")


def test_load_retriever_from_release_folder(tmp_path):
    torch.set_num_threads(1)
    model = _tiny("clip", seed=3)
    _release(tmp_path, model, "clip")
    loaded, _ = load_part_tmr(tmp_path / "release" / "Part_TMR" / "checkpoints" / "exp_for_mtrans" / "HumanML3D")
    rng = np.random.default_rng(0)
    caps = ["a person walks forward", "a person runs", "a person jumps twice", "someone waves",
            "a person kicks with the right leg", "a person sits down"]
    motions = [rng.standard_normal((60 + 10 * i, 263)).astype(np.float32) for i in range(6)]
    ids = ["000001_0", "000001_1", "000002_0", "000003_0", "000004_0", "M000001_0"]
    build_database(loaded, loaded, motions, caps, ids, tmp_path / "release" / "database")
    r = load_retriever(tmp_path / "release", top_k=1)
    out = r(caps[:3] + ["a person walks forward"], k=3)
    assert out.re_dict["re_motion"].shape == (4, 3, 1, 16)
    q = loaded.encode(caps[:3] + ["a person walks forward"]).numpy()
    m = r.db.motion_emb
    for i in range(4):
        s = m @ (q[i] / np.linalg.norm(q[i]))
        order = np.argsort(-s, kind="stable")
        picks, seen = [], set()
        for j in order:
            g = ids[j].split("_")[0]
            if g not in seen:
                seen.add(g)
                picks.append(int(j))
        assert out.indices[i].tolist() == picks[:3]
    # the first and the last query are the same text: the same answer
    assert out.ids[0] == out.ids[3]
    assert Retriever(loaded, r.db)(["a person runs"]).indices.shape == (1, 1)


def test_project_format_round_trip(tmp_path):
    """safetensors + JSON config; keeps what the weights cannot tell (here: 2 heads per part)."""
    torch.manual_seed(4)
    cfg = PartTMRConfig.released(motion_embedding_dims=32, projection_dims=16, ff_size=64, max_len=300,
                                 num_heads=2, text_embedding_dims=48, clip=TINY_CLIP, with_momentum=False)
    model = PartTMR(cfg).eval()
    path = save_part_tmr(model, tmp_path / "starter")
    assert sorted(p.name for p in (tmp_path / "starter").iterdir()) == ["part_tmr.json", "part_tmr.safetensors"]
    loaded, report = load_part_tmr(tmp_path / "starter")
    assert report.checkpoint == str(path) and report.unknown == [] and report.unused_known == {}
    assert loaded.config.num_heads == 2
    motion = torch.randn(2, 30, 263)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.encode_motion(whole2parts(motion)),
                                   model.encode_motion(whole2parts(motion)), atol=1e-5, rtol=1e-5)
        model.tokenizer = loaded.tokenizer
        torch.testing.assert_close(loaded.encode(_texts()), model.encode_text(_texts()), atol=1e-5, rtol=1e-5)
