"""The one way to turn a model folder into a ready :class:`backend.generation.pipeline.Pipeline`.

Every caller (the CLI, the generator server, ``remomask demo``, training's smoke test, the benchmarks and the
tests) loads through :func:`load_pipeline`. Two layouts are recognised:

- **project weights** (the shipped starter, or the ``--out`` of ``remomask train``): ``vq.json`` +
  ``vq.safetensors`` and friends (``backend.generation.project_weights``). Its own Part-TMR text tower conditions the
  transformers, the length estimator and retrieval; ``generation.json`` sets the sampling defaults.
- **the official release** (``backend.generation.official_release``): the VQ, the masked and residual transformers and the
  length estimator from their ``opt.txt``/``.tar`` files, CLIP ViT-B/32 from ``ViT-B-32.pt``. As in the
  reference, the transformers are conditioned on Part-TMR's text embedding (CLIP + the retriever's fine-tuned
  projection) when the folder has ``Part_TMR/`` and ``database/``, and on stock CLIP otherwise; the length
  estimator (from MoMask) always gets stock CLIP features.

The returned pipeline carries ``info`` (what ``hello`` and ``remomask info`` report) and ``retrieval_note``
(why retrieval is unavailable, or None).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from backend.errors import ModelError

log = logging.getLogger("remomask.models")

__all__ = ["ModelFolderError", "load_pipeline", "is_project_weights", "find_clip_weights", "describe_folder",
           "CLIP_FILE_NAMES"]

CLIP_FILE_NAMES = ("ViT-B-32.pt", "ViT-B-32.safetensors")
CONDITIONING_PART_TMR = "Part-TMR text embedding (length estimator: CLIP)"
CONDITIONING_CLIP = "CLIP ViT-B/32 text features"
CONDITIONING_STARTER = "the model's own text encoder (Part-TMR text tower)"


class ModelFolderError(ModelError, RuntimeError):
    """The folder is missing, incomplete or holds weights that do not fit: the message is for people."""


def is_project_weights(models_dir: str | os.PathLike) -> bool:
    """True for a folder in the project's own weight format (safetensors + JSON config per model)."""
    d = Path(models_dir)
    return (d / "vq.json").is_file() and (d / "vq.safetensors").is_file()


def find_clip_weights(models_dir: str | os.PathLike, max_depth: int = 4) -> Path | None:
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


def _retrieval_missing(models_dir: Path) -> str | None:
    """None when the release has Part-TMR and its database, else why not."""
    from backend.retrieval.retriever import find_database_dir, find_part_tmr_dir

    try:
        find_database_dir(models_dir, find_part_tmr_dir(models_dir))
    except FileNotFoundError as exc:
        return str(exc)
    return None


def _load_project(d: Path, device, load_retrieval: bool):
    from backend.generation.pipeline import Pipeline
    from backend.generation.project_weights import StarterError, load_starter_bundle

    try:
        bundle, text = load_starter_bundle(d, device, load_retrieval=load_retrieval)
    except (StarterError, FileNotFoundError, ValueError) as exc:
        raise ModelFolderError(f"could not load the model folder {d}: {exc}") from None
    pipe = Pipeline(bundle, text_encoder=text, retriever=bundle.retriever, device=device,
                    sampling=bundle.info["sampling"])
    # the bundle's own description (kind, sampling, the one-line provenance) plus what the loader chose
    pipe.info = {**bundle.info, "path": str(d), "text_conditioning": CONDITIONING_STARTER}
    if load_retrieval and bundle.retriever is None:
        pipe.retrieval_note = "retrieval unavailable: the model folder has no database"
    return pipe


def _load_official(d: Path, device, load_retrieval: bool):
    from backend.generation.official_release import BundleError, load_bundle
    from backend.models.text_encoder import load_clip_text_encoder
    from backend.generation.pipeline import Pipeline

    clip = find_clip_weights(d)
    if clip is None:
        raise ModelFolderError(f"no CLIP text encoder weights (ViT-B-32.pt) under {d}")
    note = None
    if load_retrieval:
        missing = _retrieval_missing(d)
        if missing is not None:  # generate without retrieval, and say so
            note = f"retrieval unavailable: {missing}"
            log.warning("%s", note)
            load_retrieval = False
    try:
        bundle = load_bundle(d, device, load_retrieval=load_retrieval)
    except BundleError as exc:
        raise ModelFolderError(str(exc)) from None
    except FileNotFoundError as exc:
        raise ModelFolderError(f"incomplete models folder {d}: {exc}") from None
    clip_encoder = load_clip_text_encoder(clip, device)
    part_tmr_text = getattr(bundle.retriever, "text_model", None)
    if part_tmr_text is not None:
        pipe = Pipeline(bundle, part_tmr_text, retriever=bundle.retriever, length_text_encoder=clip_encoder,
                        device=device)
        conditioning = CONDITIONING_PART_TMR
    else:
        pipe = Pipeline(bundle, clip_encoder, retriever=bundle.retriever, device=device)
        conditioning = CONDITIONING_CLIP
    log.info("text conditioning: %s", conditioning)
    pipe.info = {**bundle.info, "kind": "official", "path": str(d), "text_conditioning": conditioning,
                 "clip_text_encoder": str(clip)}
    pipe.retrieval_note = note
    return pipe


def _starter_dir() -> Path:
    from backend.generation.project_weights import STARTER_DIR

    return STARTER_DIR.resolve()


def load_pipeline(models_dir: str | os.PathLike | None = None, device: str = "cpu", *, load_retrieval: bool = True):
    """A model folder (official release, the shipped starter, a ``remomask train`` output; None = the shipped
    starter) -> a ready :class:`backend.generation.pipeline.Pipeline` on ``device``, with ``info`` and
    ``retrieval_note`` set. Raises :class:`ModelFolderError` with a message for people."""
    d = Path(models_dir).expanduser() if models_dir is not None else _starter_dir()
    if not d.is_dir():
        raise ModelFolderError(f"models folder not found: {d}")
    pipe = _load_project(d, device, load_retrieval) if is_project_weights(d) else \
        _load_official(d, device, load_retrieval)
    if pipe.retrieval_note:
        pipe.info["retrieval"] = pipe.retrieval_note
    from backend.generation.coverage import load_coverage

    db = getattr(pipe.retriever, "db", None)
    pipe.coverage = load_coverage(d, getattr(db, "captions", None))
    pipe.info["vocabulary_words"] = len(pipe.coverage.words) if pipe.coverage.words is not None else None
    from backend.generation.reading import load_reader, sentence_encoder_available

    try:
        reader = load_reader(d)
    except ValueError as e:
        raise ModelFolderError(str(e)) from None
    if reader is not None:  # a caption bank: prompts are read in the model's training words (reading.py)
        why = sentence_encoder_available()
        pipe.reader = None if why else reader
        pipe.info["reading"] = f"off: {why}" if why else \
            f"on: {len(reader.captions)} training captions, {int(reader.checked.sum())} checked"
    if pipe.coverage.families:  # the example prompts the add-on offers (hello's models.examples)
        pipe.info["examples"] = pipe.coverage.examples()
    if pipe.models.length_estimator is None:  # lengths must be given; hello then leaves the capability out
        pipe.info["length_estimator"] = None
    else:
        pipe.info.setdefault("length_estimator", True)
    pipe.info["sampling"] = dict(pipe.sampling)  # what a request that leaves a setting out gets
    return pipe


def describe_folder(models_dir: str | os.PathLike) -> dict:
    """What a model folder holds, without loading weights; problems (if any) under ``problems``."""
    d = Path(models_dir).expanduser()
    if is_project_weights(d):
        from backend.generation.project_weights import describe_project_folder

        return describe_project_folder(d)
    from backend.generation.official_release import describe_bundle

    desc = dict(describe_bundle(d))
    clip = find_clip_weights(d)
    desc["clip_text_encoder"] = str(clip) if clip else None
    if clip is None:
        desc.setdefault("problems", []).append("no CLIP ViT-B-32.pt found (the text encoder)")
    missing = _retrieval_missing(d)
    desc["retrieval"] = "Part-TMR + database" if missing is None else f"unavailable: {missing}"
    return desc
