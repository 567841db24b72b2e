"""The real-pipeline adapter (with stand-in backend.generation.official_release / backend.generation.pipeline modules) and devices."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from backend.serving.generators import GeneratorError, PipelineGenerator, Sample, make_generator, resolve_device
from backend.serving.protocol import validate_generate


def test_pipeline_adapter_passes_every_parameter(tmp_path, monkeypatch):
    from backend.generation import model_folder

    calls = {}

    class FakePipeline:
        info = {"kind": "official", "parts": ["vq", "mask", "res"], "path": str(tmp_path)}
        retrieval_note = None

        def generate(self, prompts, lengths, **kw):
            calls.update(prompts=prompts, lengths=lengths, **kw)
            kw["progress"]("text", 0.5)
            assert kw["cancelled"]() is False
            return [Sample("walk", 0, kw["seed"], np.zeros((8, 22, 3), np.float32))]

    def load_pipeline(models_dir, device):
        calls["load"] = (str(models_dir), device)
        return FakePipeline()

    monkeypatch.setattr(model_folder, "load_pipeline", load_pipeline)
    gen = make_generator(None)
    assert isinstance(gen, PipelineGenerator)
    gen.load(tmp_path, "cpu")
    assert calls["load"] == (str(tmp_path), "cpu")
    req = validate_generate({"prompts": ["walk", "run"], "length_s": 2.0, "seed": 9, "samples": 3,
                             "cond_scale": 2.5, "time_steps": 18, "temperature": 0.7, "topk": 0.5,
                             "use_retrieval": False, "literal": True, "candidates": 3})
    progress = []
    out = gen.generate(req, lambda s, f: progress.append((s, f)), lambda: False)
    assert out[0].seed == 9 and progress == [("text", 0.5)]
    assert calls["prompts"] == ["walk", "run"] and calls["lengths"] == [40, 40]
    assert {k: calls[k] for k in ("seed", "samples", "cond_scale", "time_steps", "temperature", "topk",
                                  "use_retrieval", "literal", "candidates")} == dict(
        seed=9, samples=3, cond_scale=2.5, time_steps=18, temperature=0.7, topk=0.5, use_retrieval=False,
        literal=True, candidates=3)
    assert gen.describe() == {"kind": "official", "path": str(tmp_path), "parts": ["vq", "mask", "res"]}
    assert gen.generate(validate_generate({"prompt": "x"}), lambda *a: None, lambda: False) and calls["lengths"] is None
    assert calls["literal"] is False  # the model's reading unless asked
    assert calls["candidates"] is None  # the model's own number of draws (the starter's generation.json: 4)
    # sampling settings left out reach the pipeline as None: the model's own (generation.json) apply
    assert {k: calls[k] for k in ("cond_scale", "time_steps", "temperature", "topk")} == dict.fromkeys(
        ("cond_scale", "time_steps", "temperature", "topk"))
    assert validate_generate({"prompt": "x", "cond_scale": None}).cond_scale is None


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """Tiny official releases: without and with Part-TMR + database."""
    from tests.release_fixture import make_tiny_release

    return (make_tiny_release(tmp_path_factory.mktemp("plain")),
            make_tiny_release(tmp_path_factory.mktemp("rag"), with_retrieval=True))


@pytest.mark.filterwarnings("ignore")
def test_official_release_conditioning_and_lengths(releases):
    """The transformers are conditioned on Part-TMR's text embedding when the release has it, the length
    estimator always on stock CLIP (as the reference's), and the sampled lengths are the estimator's on CLIP
    features (the old second loader gave it Part-TMR embeddings: 36 of 40 lengths differed)."""
    from backend.models.part_tmr import PartTMR
    from backend.models.text_encoder import ClipTextEncoder

    plain, rag = releases
    gen = PipelineGenerator()
    gen.load(rag, "cpu")
    pipe = gen.pipeline
    assert isinstance(pipe.text_encoder, PartTMR) and pipe.text_encoder is pipe.retriever.text_model
    assert isinstance(pipe.length_text_encoder, ClipTextEncoder)
    info = gen.describe()
    assert info["kind"] == "official" and info["text_conditioning"].startswith("Part-TMR")
    assert "retrieval" not in info and info["length_estimator"]
    assert gen.warnings_for(validate_generate({"prompt": "x"})) == []
    prompts = [f"a person does thing number {i}" for i in range(8)]
    from backend.models.sampling import row_generator

    for seed in range(5):
        got = [s.length for s in pipe.generate(prompts, None, seed=seed, time_steps=1)]
        # each motion's length: its prompt's CLIP features alone, drawn from its own generator
        want = [int(pipe.models.length_estimator.sample_tokens(pipe.length_text_encoder.encode([p]),
                                                               row_generator("cpu", seed, 0)).clamp(1, 49)[0])
                for p in prompts]
        assert got == [4 * n for n in want], seed
    # without the retrieval parts: stock CLIP conditions everything, and results say retrieval is off
    gen = PipelineGenerator()
    gen.load(plain, "cpu")
    assert isinstance(gen.pipeline.text_encoder, ClipTextEncoder) and gen.pipeline.retriever is None
    assert gen.describe()["text_conditioning"] == "CLIP ViT-B/32 text features"
    assert gen.describe()["retrieval"].startswith("retrieval unavailable: no Part-TMR checkpoint under")
    assert gen.warnings_for(validate_generate({"prompt": "x"})) == [gen.describe()["retrieval"]]
    assert gen.warnings_for(validate_generate({"prompt": "x", "use_retrieval": False})) == []


def test_starter_folder_through_the_same_loader():
    from backend.generation.model_folder import describe_folder, load_pipeline
    from backend.generation.project_weights import STARTER_DIR

    pipe = load_pipeline(None)  # None = the shipped starter
    assert pipe.info["kind"] == "starter" and pipe.retriever is not None and pipe.retrieval_note is None
    assert pipe.length_text_encoder is pipe.text_encoder and pipe.info["sampling"]["cond_scale"] == \
        pipe.sampling["cond_scale"]
    assert 0 < len(pipe.info["provenance"]) < 200  # a one-line summary, not the whole file
    desc = describe_folder(STARTER_DIR)
    assert desc["problems"] == [] and desc["kind"] == "starter" and desc["retrieval"] == "database"


def test_adapter_errors(tmp_path, releases):
    import shutil

    with pytest.raises(GeneratorError, match="models folder not found"):
        PipelineGenerator().load(tmp_path / "missing", "cpu")
    with pytest.raises(GeneratorError, match="module:factory"):
        make_generator("nonsense")
    with pytest.raises(GeneratorError, match="cannot load generator"):
        make_generator("no_such_module_xyz:make")
    # a release without CLIP weights, and one whose VQ statistics are missing: the loader's messages
    plain = tmp_path / "release"
    shutil.copytree(releases[0], plain)
    (plain / "ViT-B-32.pt").unlink()
    with pytest.raises(GeneratorError, match=r"no CLIP text encoder weights \(ViT-B-32.pt\) under"):
        PipelineGenerator().load(plain, "cpu")
    shutil.copy(releases[0] / "ViT-B-32.pt", plain / "ViT-B-32.pt")
    mean = next(plain.rglob("mean.npy"))
    mean.unlink()
    with pytest.raises(GeneratorError, match=f"missing file: {mean}"):
        PipelineGenerator().load(plain, "cpu")


def test_devices(monkeypatch):
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(GeneratorError, match="unknown device"):
        resolve_device("tpu")
    cuda = types.SimpleNamespace(is_available=lambda: False)
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))  # no 3 s torch import
    assert resolve_device("auto") == "cpu"
    with pytest.raises(GeneratorError, match="no CUDA GPU"):
        resolve_device("cuda")
    cuda.is_available = lambda: True
    assert resolve_device("auto") == "cuda:0" and resolve_device("cuda:1") == "cuda:1"


def test_device_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert resolve_device("auto") == "cpu"
    with pytest.raises(GeneratorError, match="torch is not installed"):
        resolve_device("cuda")
