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
from backend.errors import UserError
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
    from backend.cli.main import build_parser
    assert build_parser().parse_args(base + ["--out", "x"]).no_ground_feet is False


def test_literal_flag_reaches_the_pipeline():
    """--literal (generate and demo) becomes the request's ``literal``, which the pipeline generator passes on."""
    from backend.cli.generate import params_from
    from backend.cli.main import build_parser
    from backend.serving.generators import PipelineGenerator

    base = ["generate", "kick", "--models", "m", "--out", "x"]
    assert params_from(build_parser().parse_args(base)).literal is False
    params = params_from(build_parser().parse_args(base + ["--literal"]))
    assert params.literal is True
    assert build_parser().parse_args(["demo", "kick", "--out", "x", "--literal"]).literal is True
    seen = {}
    gen = PipelineGenerator.__new__(PipelineGenerator)
    gen.pipeline = types.SimpleNamespace(generate=lambda *a, **kw: seen.update(kw) or [])
    gen.generate(params, lambda *a: None, lambda: False)
    assert seen["literal"] is True


def test_candidates_flag_reaches_the_pipeline():
    """--candidates N becomes the request's ``candidates`` (None: the model's own), bounded like the protocol."""
    from backend.cli.generate import params_from
    from backend.cli.main import build_parser
    from backend.generation.pipeline import MAX_CANDIDATES
    from backend.serving.generators import PipelineGenerator
    from backend.serving.protocol import MAX_CANDIDATES as SERVED

    assert SERVED <= MAX_CANDIDATES
    base = ["generate", "kick", "--models", "m", "--out", "x"]
    assert params_from(build_parser().parse_args(base)).candidates is None
    params = params_from(build_parser().parse_args(base + ["--candidates", "1"]))
    seen = {}
    gen = PipelineGenerator.__new__(PipelineGenerator)
    gen.pipeline = types.SimpleNamespace(generate=lambda *a, **kw: seen.update(kw) or [])
    gen.generate(params, lambda *a: None, lambda: False)
    assert seen["candidates"] == 1
    with pytest.raises(UserError, match="--candidates must be in 1..16"):
        params_from(build_parser().parse_args(base + ["--candidates", "17"]))


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


def test_real_pipeline_broken_is_one_line(tmp_path, capsys, monkeypatch):
    """A folder the one loader (backend.generation.model_folder.load_pipeline) refuses: its message, exit 2; anything
    unexpected while loading: one line, exit 1. Never a traceback."""
    from backend.generation import model_folder

    def broken(models_dir, device):
        raise KeyError("mask_transformer.weight")

    def incomplete(models_dir, device):
        raise model_folder.ModelFolderError(f"missing file: {models_dir}/vq/meta/mean.npy")

    monkeypatch.setattr(model_folder, "load_pipeline", broken)
    code, _, err = run(capsys, "info", "--models", str(tmp_path), "--load")
    assert code == 1 and "could not load the models" in err and "mask_transformer.weight" in err
    assert len(err.splitlines()) == 1
    monkeypatch.setattr(model_folder, "load_pipeline", incomplete)
    code, _, err = run(capsys, "info", "--models", str(tmp_path), "--load")
    assert code == 2 and err.strip() == f"error: missing file: {tmp_path}/vq/meta/mean.npy"
    # no model files at all: the real loader's own message
    monkeypatch.undo()
    code, _, err = run(capsys, "info", "--models", str(tmp_path), "--load")
    assert code == 2 and err.strip() == f"error: no CLIP text encoder weights (ViT-B-32.pt) under {tmp_path}"


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

    monkeypatch.setitem(sys.modules, "backend.generation.official_release", types.SimpleNamespace(describe_bundle=describe_bundle))
    code, out, err = run(capsys, "info", "--models", str(tmp_path))
    assert code == 2 and "problem: no CLIP ViT-B-32.pt found" in out and "not a complete models folder" in err
    (tmp_path / "ViT-B-32.pt").write_bytes(b"x")
    code, out, err = run(capsys, "info", "--models", str(tmp_path))
    assert code == 0, err
    assert f"clip_text_encoder: {tmp_path / 'ViT-B-32.pt'}" in out and '"num_quantizers": 6' in out
    code, out, _ = run(capsys, "info", "--models", str(tmp_path), "--json")
    assert code == 0 and json.loads(out)["vq"]["name"] == "rvq"


def test_info_on_the_starter_folder_is_complete(capsys):
    """`remomask info --models backend/starter` used to report "2 problems" (it was read as a release)."""
    from backend.generation.project_weights import STARTER_DIR

    code, out, err = run(capsys, "info", "--models", str(STARTER_DIR))
    assert code == 0, err
    assert "kind: starter" in out and "problem" not in out and "error" not in err
    prov = next(line for line in out.splitlines() if line.startswith("provenance: "))
    assert len(prov) < 200 and "training clips" in prov
    # a project folder with a file missing is reported, with the file named
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        bad = Path(d) / "m"
        shutil.copytree(STARTER_DIR, bad, ignore=shutil.ignore_patterns("mask_ts.safetensors", "database"))
        code, out, err = run(capsys, "info", "--models", str(bad))
        assert code == 2 and f"missing file: {bad / 'mask_ts.safetensors'}" in out
        assert "retrieval: unavailable" in out


def test_models_default_to_the_env_folder_then_the_starter(tmp_path, capsys, monkeypatch):
    """`remomask generate "a person jumps"` works as typed: --models defaults to $REMOMASK_MODELS, else the
    shipped starter."""
    from backend.cli.common import MODELS_ENV, models_dir
    from backend.generation.project_weights import STARTER_DIR

    monkeypatch.delenv(MODELS_ENV, raising=False)
    assert models_dir(None) == STARTER_DIR and models_dir("x") == Path("x")
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "mine"))
    assert models_dir(None) == tmp_path / "mine"
    code, _, err = run(capsys, "generate", "a person jumps", "--out", str(tmp_path / "o"))
    assert code == 2 and err.strip() == f"error: models folder not found: {tmp_path / 'mine'}"
    monkeypatch.delenv(MODELS_ENV)
    code, out, err = run(capsys, "info")
    assert code == 0 and "kind: starter" in out, err


@pytest.mark.parametrize("flag, value, message", [
    ("--seconds", "30", "error: --seconds must be in 0.2..9.8 seconds"),
    ("--temperature", "0", "error: --temperature must be > 0"),
    ("--topk", "2", "error: --topk must be in 0..1"),
    ("--samples", "99", "error: --samples must be in 1..8"),
    ("--cond-scale", "-1", "error: --cond-scale must be >= 0"),
])
def test_cli_messages_name_the_flag_not_the_protocol_field(tmp_path, capsys, flag, value, message):
    """The protocol's validation is reused, but a message names the CLI's flag and has no protocol-only hint
    (no "or null", no quoted field names)."""
    code, out, err = run(capsys, "generate", "walk", "--out", str(tmp_path), "--generator", STANDIN, flag, value)
    assert code == 2 and out == "" and err.strip() == message
