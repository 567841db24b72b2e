import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.generation.official_release import (BundleError, describe_bundle, load_bundle, load_checkpoint, parse_opt,
                                 save_official_layout, write_opt)
from backend.generation.pipeline import Pipeline

from .conftest import build_tiny


def _save(tmp_path, m, **kw):
    return save_official_layout(tmp_path, m.vq, m.mask_aux, m.mask_ts, m.res_aux, m.res_ts, m.length_estimator,
                                m.mean, m.std, **kw)


@pytest.mark.parametrize("project_cond", [None, True])
def test_save_load_generate_roundtrip(tmp_path, encoder, retriever, project_cond):
    m = build_tiny(seed=1, project_cond=project_cond)
    _save(tmp_path, m)
    b = load_bundle(tmp_path, "cpu", load_retrieval=False)
    for name in ("vq", "mask_aux", "mask_ts", "res_aux", "res_ts", "length_estimator"):
        sa, sb = getattr(m, name).state_dict(), getattr(b, name).state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name
    assert b.mask_aux.project_cond == m.mask_aux.project_cond
    assert b.mask_ts.project_cond == m.mask_ts.project_cond
    assert np.array_equal(b.mean, m.mean) and np.array_equal(b.std, m.std)
    want = Pipeline(m, encoder, retriever).generate(["walk", "sit"], [20, 12], seed=4, samples=2, time_steps=3)
    got = Pipeline(b, encoder, retriever).generate(["walk", "sit"], [20, 12], seed=4, samples=2, time_steps=3)
    for x, y in zip(want, got):
        assert np.array_equal(x.features, y.features) and np.array_equal(x.joints, y.joints)
    assert b.info["rtrans"]["share_weight"] is True


def test_describe_bundle(tmp_path):
    m = build_tiny()
    _save(tmp_path, m)
    d = describe_bundle(tmp_path)
    assert d["problems"] == []
    assert d["vq"]["num_quantizers"] == 3 and d["vq"]["nb_code2d"] == 20
    assert d["mtrans"]["latent_dim"] == 32 and d["mtrans"]["attnj"] is True
    assert d["vq"]["files"]["model/net_best_fid.tar"] > 1000
    assert d["length_estimator"]["bytes"] > 0
    assert describe_bundle(tmp_path / "nope")["problems"]


def test_missing_file_names_it(tmp_path):
    m = build_tiny()
    base = _save(tmp_path, m)
    (base / "rvq" / "meta" / "std.npy").unlink()
    with pytest.raises(BundleError, match=r"missing file: .*rvq/meta/std\.npy"):
        load_bundle(tmp_path, load_retrieval=False)
    assert any("std.npy" in p for p in describe_bundle(tmp_path)["problems"])


def test_corrupt_file(tmp_path):
    m = build_tiny()
    base = _save(tmp_path, m)
    f = base / "mtrans" / "model" / "net_best_fid.tar"
    f.write_bytes(f.read_bytes()[:200])
    with pytest.raises(BundleError, match=r"cannot read .*mtrans/model/net_best_fid\.tar"):
        load_bundle(tmp_path, load_retrieval=False)


def test_wrong_keys_are_listed(tmp_path):
    m = build_tiny()
    base = _save(tmp_path, m)
    f = base / "rtrans" / "model" / "net_best_fid.tar"
    ck = torch.load(f, weights_only=True)
    ck["res_transformer_ts"]["bogus.weight"] = torch.zeros(3)
    del ck["res_transformer_ts"]["quant_emb.bias"]
    torch.save(ck, f)
    with pytest.raises(BundleError) as e:
        load_bundle(tmp_path, load_retrieval=False)
    msg = str(e.value)
    assert "missing keys: quant_emb.bias" in msg and "could not use: bogus.weight" in msg and "rtrans" in msg


def test_clip_keys_are_ignored_and_variant_key_names_accepted(tmp_path, encoder):
    m = build_tiny()
    base = _save(tmp_path, m)
    f = base / "mtrans" / "model" / "net_best_fid.tar"
    ck = torch.load(f, weights_only=True)
    ck["mask_transformer_ts"] = ck.pop("t2m_transformer_ts")
    ck["t2m_transformer_aux"]["clip_model.token_embedding.weight"] = torch.zeros(4, 4)
    ck["value"] = np.float64(0.25)  # numpy scalar as the reference stores metrics
    torch.save(ck, f)
    b = load_bundle(tmp_path, load_retrieval=False)
    assert b.info["mtrans"]["keys"] == ["t2m_transformer_aux", "mask_transformer_ts"]


def test_old_ssta_layout_is_recognised(tmp_path):
    m = build_tiny()
    base = _save(tmp_path, m)
    f = base / "mtrans" / "model" / "net_best_fid.tar"
    ck = torch.load(f, weights_only=True)
    sd = ck["t2m_transformer_ts"]
    for k in [k for k in sd if ".info_mlp." in k]:
        sd[k.replace("info_mlp.0", "key_text").replace("info_mlp.2", "key_retr")] = sd.pop(k)
    torch.save(ck, f)
    with pytest.raises(BundleError, match="older linear-attention layout"):
        load_bundle(tmp_path, load_retrieval=False)


def test_arbitrary_pickles_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (shutil.rmtree, (str(tmp_path / "victim"),))

    (tmp_path / "victim").mkdir()
    p = tmp_path / "x.tar"
    torch.save({"vq_model": {}, "evil": Evil()}, p)
    with pytest.raises(BundleError, match="cannot read"):
        load_checkpoint(p)
    assert (tmp_path / "victim").is_dir()


def test_opt_roundtrip_and_parsing(tmp_path):
    p = tmp_path / "opt.txt"
    write_opt(p, {"latent_dim": 512, "attnj": True, "dropout": 0.2, "vq_norm": None, "name": "mtrans",
                  "milestones": [150000, 250000]})
    o = parse_opt(p)
    assert o == {"latent_dim": 512, "attnj": True, "dropout": 0.2, "vq_norm": None, "name": "mtrans",
                 "milestones": "[150000, 250000]"}
    p.write_text("------------ Options -------------\next:\nwhich_epoch: a: b\n-------------- End ----------------\n")
    assert parse_opt(p) == {"ext": "", "which_epoch": "a: b"}
    p.write_text("------------ Options -------------\nno colon here\n")
    with pytest.raises(BundleError, match="malformed"):
        parse_opt(p)


def test_estimator_optional(tmp_path, encoder):
    m = build_tiny()
    base = _save(tmp_path, m)
    shutil.rmtree(base / "length_estimator")
    b = load_bundle(tmp_path, load_retrieval=False)
    assert b.length_estimator is None
    p = Pipeline(b, encoder)
    assert p.generate(["a"], [8], time_steps=2)[0].length == 8
    with pytest.raises(ValueError, match="length estimator"):
        p.generate(["a"], None)


@pytest.mark.filterwarnings("ignore")
def test_release_retrieval_through_the_one_loader(tmp_path, monkeypatch):
    """load_bundle loads Part-TMR + database from the release; load_pipeline conditions the transformers on
    the retriever's text model, encoding each prompt once and handing the embedding to the retriever."""
    from backend.generation.model_folder import load_pipeline
    from tests.release_fixture import make_tiny_release

    make_tiny_release(tmp_path, with_retrieval=True)
    p = load_pipeline(tmp_path, "cpu")
    text = p.retriever.text_model
    assert p.text_encoder is text
    calls, queries = [], []
    encode, call = text.encode, type(p.retriever).__call__

    def spy_call(self, texts, k=1, query_emb=None):
        queries.append(query_emb)
        return call(self, texts, k, query_emb=query_emb)

    monkeypatch.setattr(text, "encode", lambda texts: calls.append(list(texts)) or encode(texts))
    monkeypatch.setattr(type(p.retriever), "__call__", spy_call)
    out = p.generate(["walk"], [16], time_steps=2)
    assert out[0].retrieved and out[0].retrieved_ids
    assert calls == [["walk"]] and torch.allclose(queries[-1], encode(["walk"]))
    shutil.rmtree(tmp_path / "database")
    (tmp_path / "database").mkdir()
    with pytest.raises(BundleError, match="retrieval: "):
        load_bundle(tmp_path)


def _reference_read_opt(path):
    """The reference's opt.txt reading rules, restated: "key: value" lines split on ': ' (exactly two
    fields), True/False -> bool, d.d -> float, digits -> int, anything else a string; header lines skipped."""
    import re

    out = {}
    for line in path.read_text().splitlines(keepends=True):
        if line.strip() in ("-------------- End ----------------", "------------ Options -------------", ""):
            continue
        key, value = line.strip("\n").split(": ")
        if value in ("True", "False"):
            out[key] = value == "True"
        elif re.match(r"^[-+]?[0-9]+\.[0-9]+$", value.strip().lstrip("-+")):
            out[key] = float(value)
        elif value.strip().lstrip("-+").isdigit():
            out[key] = int(value)
        else:
            out[key] = value
    return out


def test_official_layout_export_has_what_the_reference_loader_reads(tmp_path, monkeypatch):
    """Walk the reference demo's loading steps (run from the export root): every opt.txt it reads, every
    path it builds from checkpoints_dir/dataset_name/name, every checkpoint entry it indexes."""
    m = build_tiny(seed=2)
    base = _save(tmp_path, m)
    monkeypatch.chdir(tmp_path)
    mtrans = _reference_read_opt(base / "mtrans" / "opt.txt")
    ckdir, dataset = mtrans["checkpoints_dir"], mtrans["dataset_name"]
    assert Path(ckdir, dataset, "mtrans").resolve() == (base / "mtrans").resolve()
    vq_opt = _reference_read_opt(Path(ckdir, dataset, mtrans["vq_name"], "opt.txt"))
    assert vq_opt["dataset_name"] in ("humanml3d", "kit", "motionx")  # the reference RVQ-VAE's J0 switch
    for key in ("code_dim1d", "nb_code1d", "code_dim2d", "nb_code2d", "num_quantizers", "shared_codebook",
                "quantize_dropout_prob", "mu", "down_t", "stride_t", "width", "depth", "dilation_growth_rate",
                "vq_act", "vq_norm"):
        assert key in vq_opt, key
    assert isinstance(vq_opt["num_quantizers"], int) and isinstance(vq_opt["mu"], float)
    vq_ck = torch.load(Path(vq_opt["checkpoints_dir"], vq_opt["dataset_name"], vq_opt["name"], "model",
                            "net_best_fid.tar"), weights_only=True)
    assert "vq_model" in vq_ck and "ep" in vq_ck and "value" in vq_ck
    for part in ("mean.npy", "std.npy"):
        assert np.load(Path(ckdir, dataset, mtrans["vq_name"], "meta", part)).shape == (263,)
    for opt, keys in ((mtrans, ("t2m_transformer_aux", "t2m_transformer_ts")),
                      (_reference_read_opt(Path(ckdir, dataset, "rtrans", "opt.txt")),
                       ("res_transformer_aux", "res_transformer_ts"))):
        for key in ("latent_dim", "ff_size", "n_layers", "n_heads", "dropout", "cond_drop_prob", "attnj", "attnt"):
            assert key in opt, key
        ck = torch.load(Path(opt["checkpoints_dir"], opt["dataset_name"], opt["name"], "model",
                             "net_best_fid.tar"), weights_only=True)
        assert all(k in ck for k in keys) and "ep" in ck
    assert "share_weight" in _reference_read_opt(base / "rtrans" / "opt.txt")
    est = torch.load(Path("checkpoints", dataset, "length_estimator", "model", "finest.tar"), weights_only=True)
    assert "estimator" in est and "epoch" in est
    with pytest.raises(ValueError, match="humanml3d, kit or motionx"):
        _save(tmp_path / "x", m, dataset="t2m")
