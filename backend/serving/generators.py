"""The Generator interface the server and the CLI drive, and how one is chosen.

A generator turns validated generate params into joint sequences. The real one wraps
``backend.generation.pipeline.Pipeline`` (loaded from a models folder by ``backend.generation.model_folder.load_pipeline``);
tests inject a deterministic stand-in with the hidden ``--generator module:factory`` option.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from backend.errors import ModelError

from .protocol import GenerateParams

log = logging.getLogger("remomask.server")

ProgressFn = Callable[[str, float], None]     # (stage, fraction of the generation 0..1)
CancelledFn = Callable[[], bool]


class Cancelled(Exception):
    """A generator may raise this when ``cancelled()`` turned true (any exception after a cancel counts)."""


class GeneratorError(ModelError):
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
    """Adapter over the real model pipeline, loaded by ``backend.generation.model_folder.load_pipeline`` (the one loader
    for official, starter and trained folders; torch and the models are imported only here). A folder that
    cannot be loaded becomes a GeneratorError with the loader's message."""

    def __init__(self):
        self.pipeline = None
        self.models_dir: Path | None = None

    def load(self, models_dir, device):
        from backend.generation.model_folder import ModelFolderError, load_pipeline

        self.models_dir = Path(models_dir)
        try:
            self.pipeline = load_pipeline(self.models_dir, device)
        except ModelFolderError as exc:
            raise GeneratorError(str(exc)) from exc
        warm = getattr(self.pipeline, "warm_reader", None)  # the caption bank's encoder at load, not in the
        if warm is not None:                                 # first request
            warm()

    def warnings_for(self, request) -> list[str]:
        """Notes added to a generate result (e.g. retrieval asked for but not available)."""
        note = self.pipeline.retrieval_note
        return [note] if request.use_retrieval and note else []

    def generate(self, request, progress, cancelled):
        if getattr(request, "timeline", None):
            from backend.editing.timeline import generate_timeline

            return generate_timeline(
                self.pipeline, request.timeline, seed=request.seed, samples=request.samples,
                use_retrieval=request.use_retrieval, progress=progress, cancelled=cancelled,
                cond_scale=request.cond_scale, time_steps=request.time_steps, temperature=request.temperature,
                topk=request.topk)
        return self.pipeline.generate(
            request.prompts, request.lengths, seed=request.seed, samples=request.samples,
            cond_scale=request.cond_scale, time_steps=request.time_steps, temperature=request.temperature,
            topk=request.topk, use_retrieval=request.use_retrieval, progress=progress, cancelled=cancelled,
            literal=bool(getattr(request, "literal", False)), candidates=getattr(request, "candidates", None))

    def edit(self, request, progress, cancelled):
        from backend.editing.request import run_edit

        return run_edit(self.pipeline, request, progress, cancelled)

    def describe(self):
        return dict(self.pipeline.info)


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
