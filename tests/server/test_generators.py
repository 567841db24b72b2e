"""The real-pipeline adapter (with stand-in backend.checkpoints / backend.pipeline modules) and devices."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from backend.generators import GeneratorError, PipelineGenerator, Sample, make_generator, resolve_device
from backend.protocol import validate_generate


def test_pipeline_adapter_passes_every_parameter(tmp_path, monkeypatch):
    calls = {}

    class Bundle:
        info = {"kind": "official", "parts": ["vq", "mask", "res"], "path": "ignored"}

    class Pipeline:
        def __init__(self, bundle):
            calls["bundle"] = bundle

        @classmethod
        def from_bundle(cls, bundle):
            return cls(bundle)

        def generate(self, prompts, lengths, **kw):
            calls.update(prompts=prompts, lengths=lengths, **kw)
            kw["progress"]("text", 0.5)
            assert kw["cancelled"]() is False
            return [Sample("walk", 0, kw["seed"], np.zeros((8, 22, 3), np.float32))]

    def load_bundle(models_dir, device):
        calls["load"] = (str(models_dir), device)
        return Bundle()

    monkeypatch.setitem(sys.modules, "backend.checkpoints", types.SimpleNamespace(load_bundle=load_bundle))
    monkeypatch.setitem(sys.modules, "backend.pipeline", types.SimpleNamespace(Pipeline=Pipeline))
    gen = make_generator(None)
    assert isinstance(gen, PipelineGenerator)
    gen.load(tmp_path, "cpu")
    assert calls["load"] == (str(tmp_path), "cpu")
    req = validate_generate({"prompts": ["walk", "run"], "length_s": 2.0, "seed": 9, "samples": 3,
                             "cond_scale": 2.5, "time_steps": 18, "temperature": 0.7, "topk": 0.5,
                             "use_retrieval": False})
    progress = []
    out = gen.generate(req, lambda s, f: progress.append((s, f)), lambda: False)
    assert out[0].seed == 9 and progress == [("text", 0.5)]
    assert calls["prompts"] == ["walk", "run"] and calls["lengths"] == [40, 40]
    assert {k: calls[k] for k in ("seed", "samples", "cond_scale", "time_steps", "temperature", "topk",
                                  "use_retrieval")} == dict(seed=9, samples=3, cond_scale=2.5, time_steps=18,
                                                            temperature=0.7, topk=0.5, use_retrieval=False)
    assert gen.describe() == {"kind": "official", "path": str(tmp_path), "parts": ["vq", "mask", "res"]}
    assert isinstance(calls["bundle"], Bundle)
    assert gen.generate(validate_generate({"prompt": "x"}), lambda *a: None, lambda: False) and calls["lengths"] is None
    # sampling settings left out reach the pipeline as None: the model's own (generation.json) apply
    assert {k: calls[k] for k in ("cond_scale", "time_steps", "temperature", "topk")} == dict.fromkeys(
        ("cond_scale", "time_steps", "temperature", "topk"))
    assert validate_generate({"prompt": "x", "cond_scale": None}).cond_scale is None


def test_adapter_prefers_load_pipeline(tmp_path, monkeypatch):
    built = types.SimpleNamespace(models=types.SimpleNamespace(kind="starter"))
    monkeypatch.setitem(sys.modules, "backend.checkpoints", types.SimpleNamespace(load_bundle=None))
    monkeypatch.setitem(sys.modules, "backend.pipeline", types.SimpleNamespace(
        load_pipeline=lambda d, dev: built, Pipeline=object))
    gen = PipelineGenerator()
    gen.load(tmp_path, "cpu")
    assert gen.pipeline is built and gen.describe() == {"kind": "starter", "path": str(tmp_path)}



def test_adapter_assembles_bundle_clip_and_retriever(tmp_path, monkeypatch):
    seen = {}
    bundle = types.SimpleNamespace(retriever="the-retriever", info={"kind": "official"})

    class Pipeline:
        def __init__(self, models, text_encoder, retriever=None, device=None):
            seen.update(models=models, text_encoder=text_encoder, retriever=retriever, device=device)

    def load_bundle(d, dev, load_retrieval=True):
        seen["load_retrieval"] = load_retrieval
        return bundle

    def no_part_tmr(d):
        raise FileNotFoundError(f"no Part-TMR checkpoint under {d}")

    retr = types.SimpleNamespace(find_part_tmr_dir=lambda d: d, find_database_dir=lambda d, p: d)
    monkeypatch.setitem(sys.modules, "backend.retrieval.retriever", retr)
    monkeypatch.setitem(sys.modules, "backend.checkpoints", types.SimpleNamespace(
        load_bundle=load_bundle, BundleError=RuntimeError))
    monkeypatch.setitem(sys.modules, "backend.pipeline", types.SimpleNamespace(Pipeline=Pipeline))
    monkeypatch.setitem(sys.modules, "backend.models.text_encoder", types.SimpleNamespace(
        load_clip_text_encoder=lambda path, dev: ("clip", str(path), dev)))
    with pytest.raises(GeneratorError, match="no CLIP text encoder weights"):
        PipelineGenerator().load(tmp_path, "cpu")
    clip = tmp_path / "checkpoints" / "clip" / "ViT-B-32.pt"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"x")
    gen = PipelineGenerator()
    gen.load(tmp_path, "cpu")
    assert seen == {"models": bundle, "text_encoder": ("clip", str(clip), "cpu"), "retriever": "the-retriever",
                    "device": "cpu", "load_retrieval": True}
    assert gen.describe()["kind"] == "official" and "retrieval" not in gen.describe()
    assert gen.warnings_for(validate_generate({"prompt": "x"})) == []
    # a folder without the retrieval parts: generation without retrieval, reported in describe and results
    retr.find_part_tmr_dir = no_part_tmr
    gen = PipelineGenerator()
    gen.load(tmp_path, "cpu")
    assert seen["load_retrieval"] is False
    assert gen.describe()["retrieval"] == f"retrieval unavailable: no Part-TMR checkpoint under {tmp_path}"
    assert gen.warnings_for(validate_generate({"prompt": "x"})) == [gen.describe()["retrieval"]]
    assert gen.warnings_for(validate_generate({"prompt": "x", "use_retrieval": False})) == []
    # a BundleError from the loader is a user-facing GeneratorError
    monkeypatch.setitem(sys.modules, "backend.checkpoints", types.SimpleNamespace(
        load_bundle=lambda d, dev, **kw: (_ for _ in ()).throw(RuntimeError("missing file: x/opt.txt")),
        BundleError=RuntimeError))
    with pytest.raises(GeneratorError, match="missing file: x/opt.txt"):
        PipelineGenerator().load(tmp_path, "cpu")


def test_adapter_errors(tmp_path):
    with pytest.raises(GeneratorError, match="models folder not found"):
        PipelineGenerator().load(tmp_path / "missing", "cpu")
    with pytest.raises(GeneratorError, match="module:factory"):
        make_generator("nonsense")
    with pytest.raises(GeneratorError, match="cannot load generator"):
        make_generator("no_such_module_xyz:make")


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
