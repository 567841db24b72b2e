"""The Generator interface the server and the CLI drive, and how one is chosen.

A generator turns validated generate params into joint sequences. The real one wraps
``backend.pipeline.Pipeline`` (loaded from a models folder by ``backend.checkpoints.load_bundle``);
tests inject a deterministic stand-in with the hidden ``--generator module:factory`` option.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from .protocol import GenerateParams

log = logging.getLogger("remomask.server")

ProgressFn = Callable[[str, float], None]     # (stage, fraction of the generation 0..1)
CancelledFn = Callable[[], bool]


class Cancelled(Exception):
    """A generator may raise this when ``cancelled()`` turned true (any exception after a cancel counts)."""


class GeneratorError(Exception):
    """Models missing, unreadable or unusable: the message is shown to the user as is."""


@dataclass
class Sample:
    """One generated motion. The real pipeline returns objects with the same attributes."""
    prompt: str
    sample_index: int
    seed: int
    joints: np.ndarray                       # (T, 22, 3) float32, y-up, metres, 20 fps
    features: np.ndarray | None = None       # (T, 263) HumanML3D features
    length: int | None = None
    retrieved: list[str] = field(default_factory=list)


@runtime_checkable
class Generator(Protocol):
    def load(self, models_dir: str | Path, device: str) -> None: ...

    def generate(self, request: GenerateParams, progress: ProgressFn, cancelled: CancelledFn) -> list: ...

    def describe(self) -> dict: ...


class PipelineGenerator:
    """Adapter over the real model pipeline (imported lazily: torch and the models load only here).

    Builds the pipeline with ``backend.pipeline.load_pipeline(models_dir, device)`` when that exists, else
    ``Pipeline.from_bundle(backend.checkpoints.load_bundle(models_dir, device))``. A ``BundleError`` (a
    missing or unusable file in the folder) becomes a GeneratorError with the same message.
    """

    def __init__(self):
        self.pipeline = None
        self.bundle = None
        self.models_dir: Path | None = None
        self.retrieval_note: str | None = None
        self.conditioning: str | None = None

    def load(self, models_dir, device):
        self.models_dir = Path(models_dir)
        if not self.models_dir.is_dir():
            raise GeneratorError(f"models folder not found: {self.models_dir}")
        try:
            from backend.checkpoints import load_bundle
            pipeline_mod = importlib.import_module("backend.pipeline")
        except ImportError as exc:
            raise GeneratorError(f"the model pipeline is not installed in this checkout ({exc})") from exc
        try:
            from backend.checkpoints import BundleError
        except ImportError:
            BundleError = GeneratorError  # noqa: N806
        if is_project_weights(self.models_dir):
            self._load_project_weights(device)
            return
        try:
            if hasattr(pipeline_mod, "load_pipeline"):
                self.pipeline = pipeline_mod.load_pipeline(self.models_dir, device)
                self.bundle = getattr(self.pipeline, "models", None)
            elif hasattr(pipeline_mod.Pipeline, "from_bundle"):
                self.bundle = load_bundle(self.models_dir, device)
                self.pipeline = pipeline_mod.Pipeline.from_bundle(self.bundle)
            else:
                self.bundle, self.pipeline = self._assemble(pipeline_mod, load_bundle, device)
        except BundleError as exc:
            raise GeneratorError(str(exc)) from exc
        except FileNotFoundError as exc:
            raise GeneratorError(f"incomplete models folder {self.models_dir}: {exc}") from exc

    def _load_project_weights(self, device):
        """The project's own format (the shipped starter model, or the output of `remomask train`)."""
        try:
            from backend.starter_weights import StarterError, load_starter
        except ImportError as exc:
            raise GeneratorError(f"{self.models_dir} holds project weights, but backend.starter_weights is "
                                 f"not available in this checkout ({exc})") from exc
        try:
            self.pipeline = load_starter(self.models_dir, device)
        except (StarterError, FileNotFoundError, ValueError) as exc:
            raise GeneratorError(f"could not load the model folder {self.models_dir}: {exc}") from exc
        self.bundle = getattr(self.pipeline, "models", None)
        self.conditioning = "the starter's own text encoder (Part-TMR text tower)"
        if getattr(self.pipeline, "retriever", None) is None:
            self.retrieval_note = "retrieval unavailable: the model folder has no database"

    def _assemble(self, pipeline_mod, load_bundle, device):
        """Fallback wiring: the bundle (models + retriever) plus the release's CLIP ViT-B/32 text encoder."""
        clip = find_clip_weights(self.models_dir)
        if clip is None:
            raise GeneratorError(f"no CLIP text encoder weights (ViT-B-32.pt) under {self.models_dir}")
        try:
            from backend.models.text_encoder import load_clip_text_encoder
        except ImportError as exc:
            raise GeneratorError(f"the CLIP text encoder is not installed in this checkout ({exc})") from exc
        retrieval_parts = self._retrieval_parts()
        if retrieval_parts is True:
            bundle = load_bundle(self.models_dir, device)
        else:  # the folder has no Part-TMR/database: generate without retrieval, and say so
            bundle = load_bundle(self.models_dir, device, load_retrieval=False)
            self.retrieval_note = f"retrieval unavailable: {retrieval_parts}"
            log.warning("%s", self.retrieval_note)
        clip_encoder = load_clip_text_encoder(clip, device)
        retriever = getattr(bundle, "retriever", None)
        # The released transformers were trained on Part-TMR's text embedding (CLIP + the retriever's
        # fine-tuned text projection; see the Models section of the README); the length estimator, from
        # momask, on stock CLIP. Without the retrieval parts only stock CLIP is available.
        part_tmr_text = getattr(retriever, "text_model", None) if retriever is not None else None
        if part_tmr_text is not None:
            pipeline = pipeline_mod.Pipeline(bundle, part_tmr_text, retriever=retriever,
                                             length_text_encoder=clip_encoder, device=device)
            self.conditioning = "Part-TMR text embedding (length estimator: CLIP)"
        else:
            pipeline = pipeline_mod.Pipeline(bundle, clip_encoder, retriever=retriever, device=device)
            self.conditioning = "CLIP ViT-B/32 text features"
        log.info("text conditioning: %s", self.conditioning)
        return bundle, pipeline

    def _retrieval_parts(self):
        """True when the folder holds the retrieval parts (or it cannot be told), else why not."""
        try:
            from backend.retrieval.retriever import find_database_dir, find_part_tmr_dir
        except ImportError:
            return True  # load_bundle reports on its own
        try:
            find_database_dir(self.models_dir, find_part_tmr_dir(self.models_dir))
        except FileNotFoundError as exc:
            return str(exc)
        return True

    def warnings_for(self, request) -> list[str]:
        """Notes added to a generate result (e.g. retrieval asked for but not available)."""
        return [self.retrieval_note] if request.use_retrieval and self.retrieval_note else []

    def generate(self, request, progress, cancelled):
        return self.pipeline.generate(
            request.prompts, request.lengths, seed=request.seed, samples=request.samples,
            cond_scale=request.cond_scale, time_steps=request.time_steps, temperature=request.temperature,
            topk=request.topk, use_retrieval=request.use_retrieval, progress=progress, cancelled=cancelled)

    def describe(self):
        info: dict[str, Any] = {}
        extra = getattr(self.bundle, "describe", None)
        if callable(extra):
            d = extra()
            if isinstance(d, dict):
                info.update(d)
        elif isinstance(getattr(self.bundle, "info", None), dict):
            info.update(self.bundle.info)
        kind = info.get("kind") or getattr(self.bundle, "kind", None) or "unknown"
        info.update({"kind": kind, "path": str(self.models_dir)})
        if self.retrieval_note:
            info["retrieval"] = self.retrieval_note
        if self.conditioning:
            info["text_conditioning"] = self.conditioning
        sampling = getattr(self.pipeline, "sampling", None)
        if isinstance(sampling, dict):
            info["sampling"] = dict(sampling)  # what a request that leaves a setting out gets
        return info


def is_project_weights(models_dir: Path) -> bool:
    """True for a folder in the project's own weight format (safetensors + JSON config per model)."""
    d = Path(models_dir)
    return (d / "vq.json").is_file() and (d / "vq.safetensors").is_file()


CLIP_FILE_NAMES = ("ViT-B-32.pt", "ViT-B-32.safetensors")


def find_clip_weights(models_dir: Path, max_depth: int = 4) -> Path | None:
    """The first CLIP ViT-B/32 weights file under models_dir (breadth-first, a few levels deep)."""
    level = [Path(models_dir)]
    for _ in range(max_depth + 1):
        nxt = []
        for d in level:
            for name in CLIP_FILE_NAMES:
                if (d / name).is_file():
                    return d / name
            try:
                nxt.extend(sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")))
            except OSError:
                pass
        level = nxt[:200]
    return None


def make_generator(spec: str | None = None) -> Generator:
    """``None`` -> the real pipeline adapter; ``"module:factory"`` -> ``factory()`` from that module."""
    if spec is None:
        return PipelineGenerator()
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise GeneratorError(f"--generator must look like module:factory, got {spec!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise GeneratorError(f"cannot load generator {spec!r}: {exc}") from exc
    gen = factory()
    for name in ("load", "generate", "describe"):
        if not callable(getattr(gen, name, None)):
            raise GeneratorError(f"generator {spec!r} has no {name}() method")
    return gen


def resolve_device(device: str) -> str:
    """'auto'|'cuda'|'cpu'|'cuda:N' -> the torch device string used ('cpu' or 'cuda:N')."""
    if device == "cpu":
        return "cpu"
    if device not in ("auto", "cuda") and not device.startswith("cuda:"):
        raise GeneratorError(f"unknown device {device!r}; use auto, cuda or cpu")
    try:
        import torch
    except ImportError:
        if device == "auto":
            return "cpu"
        raise GeneratorError("device 'cuda' asked for but torch is not installed") from None
    if not torch.cuda.is_available():
        if device == "auto":
            return "cpu"
        raise GeneratorError("device 'cuda' asked for but no CUDA GPU is available to torch")
    return "cuda:0" if device in ("auto", "cuda") else device


def torch_version() -> str | None:
    try:
        from importlib.metadata import version
        return version("torch")
    except Exception:  # noqa: BLE001 - not installed or odd metadata
        return None
