"""``remomask generate`` / ``remomask info`` with the stand-in generator."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from backend import cli
from tests.server.client import REPO, STANDIN, server_env
from tests.server.test_postprocess import FakeFit


def run(capsys, *argv):
    argv = list(argv)
    if argv[0] == "generate" and "--device" not in argv:
        argv += ["--device", "cpu"]  # "auto" would import torch (seconds) to look for a GPU
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_writes_npz_per_sample(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "smpl_fitting", None)
    code, out, err = run(capsys, "generate", "a person waves", "--models", str(tmp_path), "--seconds", "1.5",
                         "--samples", "2", "--seed", "5", "--out", str(tmp_path / "o"), "--generator", STANDIN)
    assert code == 0, err
    paths = [Path(p) for p in out.split()]
    assert [p.name for p in paths] == ["a_person_waves_s5_0.npz", "a_person_waves_s6_1.npz"]
    for p in paths:
        with np.load(p) as z:
            assert z["joints"].shape == (30, 22, 3) and int(z["seed"]) in (5, 6)
    assert "BVH needs the SMPL fit" in err and "Traceback" not in err


def test_generate_fits_and_writes_bvh(tmp_path, capsys, monkeypatch):
    seen = {}

    def fit_motion(joints, smpl_model_dir=None):
        seen["smpl_model_dir"] = smpl_model_dir
        return FakeFit(joints, 3.0)

    monkeypatch.setitem(sys.modules, "smpl_fitting", types.SimpleNamespace(fit_motion=fit_motion))
    monkeypatch.setitem(sys.modules, "backend.motion.bvh", types.SimpleNamespace(
        write_bvh=lambda path, names, parents, offsets, rotations, root_trans, fps=20:
        Path(path).write_text("HIERARCHY\n")))
    code, out, err = run(capsys, "generate", "kick", "--models", str(tmp_path), "--length", "24",
                         "--out", str(tmp_path / "o"), "--smpl-dir", str(tmp_path / "smpl"), "--generator", STANDIN)
    assert seen["smpl_model_dir"] == str(tmp_path / "smpl")
    assert code == 0, err
    assert [Path(p).name for p in out.split()] == ["kick_s0_0.npz", "kick_s0_0.bvh"]
    with np.load(tmp_path / "o" / "kick_s0_0.npz") as z:
        assert z["joints"].shape == (24, 22, 3) and z["poses"].shape == (24, 24, 3)
    # --no-fit: joints only, no BVH and no fitting
    code, out, err = run(capsys, "generate", "kick", "--models", str(tmp_path), "--no-fit",
                         "--out", str(tmp_path / "n"), "--generator", STANDIN)
    assert code == 0 and [Path(p).name for p in out.split()] == ["kick_s0_0.npz"]
    with np.load(tmp_path / "n" / "kick_s0_0.npz") as z:
        assert "poses" not in z.files


def test_generate_ground_feet_flag(tmp_path, capsys, monkeypatch):
    """Grounding is on by default (with the sample's foot-contact channels); --no-ground-feet turns it off."""
    seen = []

    def fit_motion(joints, smpl_model_dir=None, ground_feet=True, contacts=None):
        seen.append((ground_feet, None if contacts is None else np.shape(contacts)))
        return FakeFit(joints, 3.0)

    monkeypatch.setitem(sys.modules, "smpl_fitting", types.SimpleNamespace(fit_motion=fit_motion))
    monkeypatch.setitem(sys.modules, "backend.motion.bvh", None)
    base = ["generate", "kick", "--models", str(tmp_path), "--length", "24", "--generator", STANDIN]
    code, _, err = run(capsys, *base, "--out", str(tmp_path / "a"))
    assert code == 0, err
    code, _, err = run(capsys, *base, "--out", str(tmp_path / "b"), "--no-ground-feet")
    assert code == 0, err
    assert seen == [(True, (24, 4)), (False, None)]
    assert cli._parser().parse_args(base + ["--out", "x"]).no_ground_feet is False


@pytest.mark.parametrize("args, needle", [
    (["--samples", "0"], "--samples must be in 1..8"),
    (["--seconds", "20"], "--seconds must be in 0.2..9.8"),
    (["--length", "2"], "--length must be 4..196"),
    (["--seed", "-3"], "--seed must be in"),
    (["--topk", "2"], "--topk must be in 0..1"),
])
def test_bad_input_exit_2_one_line(tmp_path, capsys, args, needle):
    code, out, err = run(capsys, "generate", "walk", "--models", str(tmp_path), "--out", str(tmp_path / "o"),
                         "--generator", STANDIN, *args)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"error: {err.strip()[7:]}"] and needle in err
    assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []


def test_bad_models_and_out_dir(tmp_path, capsys):
    code, _, err = run(capsys, "generate", "walk", "--models", str(tmp_path / "nope"), "--out", str(tmp_path))
    assert code == 2 and err.strip() == f"error: models folder not found: {tmp_path / 'nope'}"
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "generate", "walk", "--models", str(tmp_path), "--out", str(tmp_path / "file" / "o"),
                       "--generator", STANDIN)
    assert code == 2 and "cannot create out_dir" in err
    code, _, err = run(capsys, "generate", "   ", "--models", str(tmp_path), "--out", str(tmp_path))
    assert code == 2 and "prompt is empty" in err


def test_real_pipeline_missing_or_broken_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "backend.checkpoints", None)
    code, _, err = run(capsys, "info", "--models", str(tmp_path), "--load")
    assert code == 2 and err.startswith("error: the model pipeline is not installed") and len(err.splitlines()) == 1

    class BundleError(RuntimeError):
        pass

    def broken(models_dir, device):
        raise KeyError("mask_transformer.weight")

    def incomplete(models_dir, device):
        raise BundleError(f"missing file: {models_dir}/vq/meta/mean.npy")

    monkeypatch.setitem(sys.modules, "backend.checkpoints", types.SimpleNamespace(load_bundle=broken,
                                                                                BundleError=BundleError))
    monkeypatch.setitem(sys.modules, "backend.pipeline", types.SimpleNamespace(load_pipeline=broken))
    code, _, err = run(capsys, "info", "--models", str(tmp_path), "--load")
    assert code == 1 and "could not load the models" in err and "mask_transformer.weight" in err
    assert len(err.splitlines()) == 1
    monkeypatch.setitem(sys.modules, "backend.pipeline", types.SimpleNamespace(load_pipeline=incomplete))
    code, _, err = run(capsys, "info", "--models", str(tmp_path), "--load")
    assert code == 2 and err.strip() == f"error: missing file: {tmp_path}/vq/meta/mean.npy"


def test_info(tmp_path, capsys):
    code, out, _ = run(capsys, "info", "--models", str(tmp_path), "--generator", STANDIN)
    assert code == 0 and "kind: standin" in out and f"models folder: {tmp_path}" in out
    code, out, _ = run(capsys, "info", "--models", str(tmp_path), "--json", "--generator", STANDIN)
    assert code == 0 and '"kind": "standin"' in out


def test_subprocess_exit_codes_no_traceback(tmp_path):
    base = [sys.executable, "-m", "backend.cli"]
    p = subprocess.run(base + ["generate", "walk", "--models", str(tmp_path)], capture_output=True, text=True,
                       cwd=REPO, env=server_env(), timeout=60)
    assert p.returncode == 2 and "--out" in p.stderr  # argparse usage error
    p = subprocess.run(base + ["generate", "walk", "--models", str(tmp_path), "--out", str(tmp_path / "o"),
                               "--device", "cpu", "--generator", STANDIN], capture_output=True, text=True, cwd=REPO,
                       env=server_env(REMOMASK_STANDIN_FAIL=1), timeout=60)
    assert p.returncode == 1 and "error: generation failed: RuntimeError: stand-in failure" in p.stderr
    assert "Traceback" not in p.stderr


def test_info_describes_a_folder_without_loading(tmp_path, capsys, monkeypatch):
    def describe_bundle(models_dir):
        return {"models_dir": str(models_dir), "vq": {"name": "rvq", "num_quantizers": 6}, "problems": []}

    monkeypatch.setitem(sys.modules, "backend.checkpoints", types.SimpleNamespace(describe_bundle=describe_bundle))
    code, out, err = run(capsys, "info", "--models", str(tmp_path))
    assert code == 2 and "problem: no CLIP ViT-B-32.pt found" in out and "not a complete models folder" in err
    (tmp_path / "ViT-B-32.pt").write_bytes(b"x")
    code, out, err = run(capsys, "info", "--models", str(tmp_path))
    assert code == 0, err
    assert f"clip_text_encoder: {tmp_path / 'ViT-B-32.pt'}" in out and '"num_quantizers": 6' in out
    code, out, _ = run(capsys, "info", "--models", str(tmp_path), "--json")
    assert code == 0 and json.loads(out)["vq"]["name"] == "rvq"
