"""Every training stage on the `tiny` config: runs, lowers its loss, exports loadable weights; resume."""

import json

import numpy as np
import pytest
import torch

from backend.train import STAGES, main, run_stages

pytestmark = pytest.mark.slow  # real (tiny) training runs
from backend.train.common import StageState
from backend.train.configs import get_config

TRAINED = ("part_tmr", "vq", "mask", "residual", "length")


def _cfg():
    cfg = get_config("tiny")
    for s in ("part_tmr", "mask", "residual", "length"):
        cfg[s]["steps"] = 40
    cfg["vq"]["steps"] = 60
    cfg["residual"]["steps"] = 100  # a random residual layer per step: noisier, needs more steps to show
    for s in ("part_tmr", "length"):  # captions in everyday forms (issue #16): more varied text, more steps to show
        cfg[s]["steps"] = 80
    cfg["generation"] = {"cond_scale": 1.5}
    return cfg


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tiny")
    cfg = _cfg()
    res = run_stages(list(STAGES), cfg, out, progress=False)
    return out, res, cfg


@pytest.mark.parametrize("stage", TRAINED)
def test_stage_lowers_loss(tiny_run, stage):
    out, res, cfg = tiny_run
    log = StageState(out / ".train", stage).read_log()
    assert log[-1]["step"] == cfg[stage]["steps"] == res[stage]["steps"]
    first = log[0]["loss"]
    last = float(np.mean([r["loss"] for r in log[-2:]]))
    assert np.isfinite(last)
    assert last < 0.95 * first, f"{stage}: loss {first:.4f} -> {last:.4f}"
    # the JSON-lines log is also copied next to the weights
    assert (out / "logs" / f"{stage}.jsonl").read_text() == (out / ".train" / stage / "loss.jsonl").read_text()


def test_exports_and_provenance(tiny_run):
    out, res, cfg = tiny_run
    for name in ("vq", "mask_aux", "mask_ts", "res_aux", "res_ts", "length_estimator"):
        assert (out / f"{name}.safetensors").stat().st_size > 0
        assert json.loads((out / f"{name}.json").read_text())["config"]
    assert (out / "part_tmr" / "part_tmr.safetensors").is_file()
    from backend.retrieval.database import load_database

    db = load_database(out / "database")
    assert len(db) == cfg["corpus"]["n_train"]
    assert np.allclose(np.linalg.norm(db.motion_emb.reshape(len(db), -1), axis=1), 1, atol=1e-4)
    mean, std = np.load(out / "mean.npy"), np.load(out / "std.npy")
    assert mean.shape == std.shape == (263,) and (std > 0).all()
    prov = json.loads((out / "PROVENANCE.json").read_text())
    assert set(prov["stages"]) == set(STAGES)
    assert prov["config"]["name"] == "tiny" and prov["corpus"]["n_train"] == cfg["corpus"]["n_train"]
    assert 0 <= prov["stages"]["part_tmr"]["eval"]["t2m_family_R@1"] <= 1
    assert prov["stages"]["vq"]["eval"]["mpjpe_m"] > 0
    assert prov["stages"]["vq"]["window"] == cfg["vq"]["window"] and prov["stages"]["vq"]["clips_not_seen"] == 0


def test_vq_stage_with_clip_sampling(tmp_path, capsys):
    """The starter's VQ sampling (a clip drawn first, then one of its windows) runs and reports its window; a
    window longer than some clips says so and counts them."""
    torch.set_num_threads(1)
    cfg = _cfg()
    cfg["vq"].update(steps=5, sampling="clip")
    res = run_stages(["vq"], cfg, tmp_path / "a", progress=False)["vq"]
    assert res["steps"] == 5 and np.isfinite(res["last_loss"]) and res["clips_not_seen"] == 0
    cfg["vq"]["window"] = 64
    res = run_stages(["vq"], cfg, tmp_path / "b", progress=False)["vq"]
    assert res["window"] == 64 and res["clips_not_seen"] > 0
    assert f"{res['clips_not_seen']} clips are shorter than the 64-frame window" in capsys.readouterr().err


def test_trained_folder_generates(tiny_run):
    from backend.generation.model_folder import load_pipeline

    out, _, _ = tiny_run
    pipe = load_pipeline(out)
    # the config's recommended sampling travels with the folder (generation.json); the 2D masked
    # transformer is exported to run with padded tokens left out of its attention keys
    assert json.loads((out / "generation.json").read_text()) == {"cond_scale": 1.5}
    assert pipe.sampling["cond_scale"] == 1.5 and pipe.sampling["time_steps"] == 10
    assert pipe.models.mask_ts.cfg.mask_padding_keys and not pipe.models.mask_aux.cfg.mask_padding_keys
    a = pipe.generate(["a person walks forward", "someone jumps"], lengths=[40, 60], seed=3)
    b = pipe.generate(["a person walks forward", "someone jumps"], lengths=[40, 60], seed=3)
    assert [s.joints.shape for s in a] == [(40, 22, 3), (60, 22, 3)]
    assert all(np.isfinite(s.joints).all() for s in a)
    assert np.array_equal(a[0].joints, b[0].joints)
    assert a[0].retrieved and a[0].retrieved_ids[0].startswith("synth")
    emb = pipe.text_encoder.encode(["a person waves"] * 8)
    toks = pipe.models.length_estimator.sample_tokens(emb, torch.Generator().manual_seed(0))
    assert toks.shape == (8,) and int(toks.min()) >= 1 and int(toks.max()) <= 49


def test_resume_continues_from_checkpoint(tmp_path):
    torch.set_num_threads(1)
    cfg = get_config("tiny")
    cfg["vq"]["steps"] = 10
    run_stages(["vq"], cfg, tmp_path, progress=False)
    st = StageState(tmp_path / ".train", "vq")
    assert torch.load(st.dir / "optim.pt", weights_only=True)["step"] == 10
    before = (tmp_path / "vq.safetensors").read_bytes()
    # simulate an interruption after the checkpoint: no done.json, then ask for more steps
    st.done_path.unlink()
    cfg["vq"]["steps"] = 20
    res = run_stages(["vq"], cfg, tmp_path, resume=True, progress=False)
    assert res["vq"]["steps"] == 20
    steps = [r["step"] for r in st.read_log()]
    assert steps[0] == 1 and steps.count(1) == 1 and steps[-1] == 20  # one log, continued
    assert (tmp_path / "vq.safetensors").read_bytes() != before
    # resume of a finished stage is a no-op
    again = run_stages(["vq"], cfg, tmp_path, resume=True, progress=False)
    assert again["vq"]["steps"] == 20
    # without --resume the stage starts from scratch
    cfg["vq"]["steps"] = 5
    fresh = run_stages(["vq"], cfg, tmp_path, progress=False)
    assert fresh["vq"]["steps"] == 5 and st.read_log()[-1]["step"] == 5


def test_bad_stage_and_config(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown stage"):
        run_stages(["nope"], "tiny", tmp_path)
    assert main(["nope", "--config", "tiny", "--out", str(tmp_path)]) == 2
    assert main(["vq", "--config", "huge", "--out", str(tmp_path)]) == 2
    assert "unknown training config" in capsys.readouterr().err


def test_record_evaluation_writes_provenance(tiny_run):
    from backend.train import record_evaluation

    out, _, _ = tiny_run
    ev = record_evaluation(out, seeds=(0,))
    prov = json.loads((out / "PROVENANCE.json").read_text())
    assert prov["evaluation"]["semantic"].keys() == ev["semantic"].keys()
    assert len(ev["semantic"]) >= 10
    assert all(v["pass_rate"] in (0.0, 1.0) and len(v["values"]) == 1 for v in ev["semantic"].values())
    # the same checks in held-out phrasings, prompt for prompt different from the suite's
    assert ev["semantic_heldout"].keys() == ev["semantic"].keys()
    assert all(ev["semantic_heldout"][k]["prompt"] != v["prompt"] for k, v in ev["semantic"].items())
    assert prov["evaluation"]["sampling"]["cond_scale"] == 1.5
    assert 0 <= prov["evaluation"]["retrieval"]["t2m_family_R@1"] <= 1
    # both held-out sets, with the procedural prompts only (the tiny model has no real motion)
    from backend.train.heldout import heldout_suite, plain_suite

    for key, suite in (("heldout_everyday", heldout_suite(False)), ("heldout_plain", plain_suite(False))):
        r = prov["evaluation"][key]
        assert r["n_motions"] == len(suite) and set(r["prompts"]) == {n for n, *_ in suite}
        assert 0 <= r["action_rate"] <= 1


def test_generation_json_is_checked(tmp_path):
    from backend.generation.project_weights import StarterError, load_sampling

    assert load_sampling(tmp_path) == {}
    (tmp_path / "generation.json").write_text('{"cond_scale": 2, "time_steps": 12.0}')
    assert load_sampling(tmp_path) == {"cond_scale": 2.0, "time_steps": 12}
    (tmp_path / "generation.json").write_text('{"candidates": 4}')
    assert load_sampling(tmp_path) == {"candidates": 4}
    (tmp_path / "generation.json").write_text('{"repeat_counts": ["jump", "squat"]}')
    assert load_sampling(tmp_path) == {"repeat_counts": ("jump", "squat")}
    for bad in ('{"guidance": 2}', '{"cond_scale": -1}', '{"cond_scale": "2"}', "[2]", "{", '{"candidates": 0}',
                '{"candidates": 2.5}', '{"candidates": 100}', '{"repeat_counts": "jump"}',
                '{"repeat_counts": [2]}', '{"repeat_counts": ["jump twice"]}'):
        (tmp_path / "generation.json").write_text(bad)
        with pytest.raises(StarterError, match="generation.json"):
            load_sampling(tmp_path)


def test_training_never_writes_into_the_shipped_starter_unless_asked(capsys):
    """`remomask train length --config tiny` once replaced the shipped length estimator silently."""
    from backend.generation.project_weights import STARTER_DIR

    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in STARTER_DIR.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit) as e:
        main(["length", "--config", "tiny"])  # no --out: argparse's usage error, nothing written
    assert e.value.code == 2 and "--out" in capsys.readouterr().err
    assert main(["length", "--config", "tiny", "--out", str(STARTER_DIR)]) == 2
    err = capsys.readouterr().err
    assert "shipped starter" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    after = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in STARTER_DIR.rglob("*") if p.is_file()}
    assert after == before
