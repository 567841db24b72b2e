"""The project's own weight format and the shipped starter model.

A model folder (``backend/starter`` or the ``--out`` of ``python -m backend.train``) holds:

- ``vq``, ``mask_aux``, ``mask_ts``, ``res_aux``, ``res_ts``, ``length_estimator``: ``<name>.safetensors`` +
  ``<name>.json`` ({"class": ..., "config": {...}}). The fixed sinusoid tables of the transformers
  (``position_enc.pe``, ``position2d_enc.pe``) are not stored; they are rebuilt by the constructor.
- ``mean.npy``, ``std.npy``: the feature normaliser.
- ``part_tmr/`` (``part_tmr.safetensors`` + ``part_tmr.json``, written by ``save_part_tmr``): the text
  encoder that conditions the transformers and drives retrieval.
- ``database/``: the retrieval database in the official 4-file layout.
- ``PROVENANCE.json``: corpus, config, training time and machine, held-out metrics.
- ``generation.json`` (optional): the sampling settings the model is meant to run with when a request
  leaves them out, e.g. ``{"cond_scale": 2.0, "compose_sequences": true, "repeat_counts": ["jump"]}`` (keys of
  ``backend.generation.pipeline.SAMPLING_DEFAULTS``).

``load_starter_bundle`` reads such a folder into the same ``Bundle`` the official loader builds; turning a
folder into a pipeline is ``backend.generation.model_folder.load_pipeline``'s job (the one loader for every layout).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from backend.atomic import atomic_write, atomic_write_text
from backend.errors import ModelError

STARTER_DIR = Path(__file__).resolve().parents[1] / "starter"
MODEL_NAMES = ("vq", "mask_aux", "mask_ts", "res_aux", "res_ts", "length_estimator")
_FIXED_TABLES = ("position_enc.pe", "position2d_enc.pe")


class StarterError(ModelError, RuntimeError):
    """A starter/project model folder is missing a file or holds weights that do not fit."""


def _classes():
    from backend.models.length_estimator import LengthEstimator
    from backend.models.mask_transformer import MaskTransformer, MaskTransformer2D
    from backend.models.residual_transformer import ResidualTransformer, ResidualTransformer2D
    from backend.models.vq import RVQVAE

    return {"RVQVAE": RVQVAE, "MaskTransformer": MaskTransformer, "MaskTransformer2D": MaskTransformer2D,
            "ResidualTransformer": ResidualTransformer, "ResidualTransformer2D": ResidualTransformer2D,
            "LengthEstimator": LengthEstimator}


def build_module(cls_name: str, config: dict) -> torch.nn.Module:
    from backend.models.transformer_common import TransformerConfig
    from backend.models.vq import VQConfig

    classes = _classes()
    if cls_name not in classes:
        raise StarterError(f"unknown model class {cls_name!r}")
    cls = classes[cls_name]
    if cls_name == "RVQVAE":
        return cls(VQConfig(**config))
    if cls_name == "LengthEstimator":
        return cls(**config)
    return cls(TransformerConfig(**config))


def module_config(module: torch.nn.Module) -> dict:
    name = type(module).__name__
    if name == "LengthEstimator":
        first, last = module.output[0], module.output[-1]
        return {"input_size": first.in_features, "output_size": last.out_features, "hidden": first.out_features}
    return module.cfg.to_dict()


def save_module(module: torch.nn.Module, directory: str | os.PathLike, name: str) -> Path:
    """Write ``<name>.safetensors`` + ``<name>.json`` atomically."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()
          if not k.endswith(_FIXED_TABLES)}
    meta = {"class": type(module).__name__, "config": module_config(module)}
    atomic_write(d / f"{name}.safetensors", lambda f: save_file(sd, f))
    atomic_write_text(d / f"{name}.json", json.dumps(meta, indent=1))
    return d / f"{name}.safetensors"


def load_module(directory: str | os.PathLike, name: str, device: str | torch.device = "cpu") -> torch.nn.Module:
    from safetensors.torch import load_file

    d = Path(directory)
    wpath, cpath = d / f"{name}.safetensors", d / f"{name}.json"
    for p in (wpath, cpath):
        if not p.is_file():
            raise StarterError(f"missing file: {p}")
    try:
        meta = json.loads(cpath.read_text())
        module = build_module(meta["class"], meta["config"])
    except (ValueError, KeyError, TypeError) as e:
        raise StarterError(f"{cpath}: {e}") from None
    try:
        sd = load_file(str(wpath))
    except Exception as e:
        raise StarterError(f"cannot read {wpath}: {e}") from None
    missing, unexpected = module.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith(_FIXED_TABLES)]
    if missing or unexpected:
        raise StarterError(f"{wpath}: weights do not fit {meta['class']}: missing {missing[:8]}, "
                           f"unexpected {list(unexpected)[:8]}")
    return module.to(device).eval()


def load_text_model(directory: str | os.PathLike, device: str | torch.device = "cpu"):
    """The project's Part-TMR (text tower + projection, motion encoder) from ``<dir>/part_tmr``."""
    from backend.models.part_tmr import load_part_tmr

    p = Path(directory) / "part_tmr"
    if not (p / "part_tmr.safetensors").is_file():
        raise StarterError(f"missing file: {p / 'part_tmr.safetensors'}")
    model, _ = load_part_tmr(p, device)
    return model


def load_sampling(directory: str | os.PathLike) -> dict:
    """The folder's ``generation.json`` (recommended sampling settings), or {} when it has none."""
    from backend.generation.pipeline import MAX_CANDIDATES, SAMPLING_DEFAULTS

    p = Path(directory) / "generation.json"
    if not p.is_file():
        return {}
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise StarterError(f"cannot read {p}: {e}") from None

    def ok(k, v):
        if isinstance(SAMPLING_DEFAULTS.get(k), bool):
            return isinstance(v, bool)
        if k == "repeat_counts":
            return isinstance(v, list) and all(isinstance(x, str) and x.isalpha() for x in v)
        if k == "candidates":
            return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_CANDIDATES
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0

    if not isinstance(d, dict) or set(d) - set(SAMPLING_DEFAULTS) or not all(ok(k, v) for k, v in d.items()):
        raise StarterError(f"{p}: expected non-negative numbers (compose_sequences: true/false; candidates: 1 to "
                           f"{MAX_CANDIDATES}; repeat_counts: a list of verbs) for some of "
                           f"{', '.join(SAMPLING_DEFAULTS)}")
    return {k: (tuple(v) if k == "repeat_counts" else v if isinstance(v, bool)
                else int(v) if k in ("time_steps", "candidates") else float(v)) for k, v in d.items()}


def load_starter_bundle(directory: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                        load_retrieval: bool = True):
    """-> (Bundle, text model). The Bundle's ``retriever`` is set when ``load_retrieval``."""
    from backend.generation.official_release import Bundle
    from backend.motion.normalize import Normalizer

    d = Path(directory) if directory is not None else STARTER_DIR
    if not d.is_dir():
        raise StarterError(f"model folder not found: {d}")
    mods = {n: load_module(d, n, device) for n in MODEL_NAMES}
    try:
        norm = Normalizer.load(d)
    except Exception as e:
        raise StarterError(f"{d}: {e}") from None
    text = load_text_model(d, device)
    retriever = None
    # a folder without database/ (a training run stopped before it, a copied model) still generates, unretrieved;
    # the loader says so (retrieval_note) instead of failing
    if load_retrieval and (d / "database" / "encoded_motions.npy").is_file():
        from backend.retrieval.database import load_database
        from backend.retrieval.retriever import Retriever

        retriever = Retriever(text, load_database(d / "database"), device=device)
    info = {"folder": str(d), "kind": folder_kind(d), "sampling": load_sampling(d)}
    prov = d / "PROVENANCE.json"
    if prov.is_file():
        info["provenance"] = provenance_summary(json.loads(prov.read_text()))
    bundle = Bundle(mods["vq"], mods["mask_aux"], mods["mask_ts"], mods["res_aux"], mods["res_ts"],
                    mods["length_estimator"], np.asarray(norm.mean, np.float32), np.asarray(norm.std, np.float32),
                    retriever, info)
    return bundle, text


def folder_kind(directory) -> str:
    """"starter" for the shipped starter folder, "project" for any other folder in the project's format."""
    return "starter" if Path(directory).resolve() == STARTER_DIR.resolve() else "project"


def describe_project_folder(directory: str | os.PathLike) -> dict:
    """What a project-format folder holds, without loading weights: files and sizes, a one-line provenance
    summary, and ``problems`` (missing files). Never raises for a broken folder."""
    d = Path(directory)
    out: dict = {"models_dir": str(d), "kind": folder_kind(d),
                 "problems": []}
    need = [f"{n}.{ext}" for n in MODEL_NAMES for ext in ("json", "safetensors")] + [
        "mean.npy", "std.npy", "part_tmr/part_tmr.json", "part_tmr/part_tmr.safetensors"]
    files = {}
    for rel in need:
        p = d / rel
        files[rel] = p.stat().st_size if p.is_file() else None
        if files[rel] is None:
            out["problems"].append(f"missing file: {p}")
    out["size_mb"] = round(sum(v for v in files.values() if v) / 2 ** 20, 1)
    db = d / "database"
    out["retrieval"] = "database" if (db / "encoded_motions.npy").is_file() else "unavailable: no database/"
    prov = d / "PROVENANCE.json"
    if prov.is_file():
        try:
            info = json.loads(prov.read_text())
            out["provenance"] = provenance_summary(info)
        except (OSError, ValueError) as e:
            out["problems"].append(f"cannot read {prov}: {e}")
    try:
        out["sampling"] = load_sampling(d)
    except StarterError as e:
        out["problems"].append(str(e))
    return out


def provenance_summary(prov: dict) -> str:
    """One line out of PROVENANCE.json: config, corpus size, training time and machine."""
    cfg = (prov.get("config") or {}).get("name", "?")
    corpus = prov.get("corpus") or {}
    secs = prov.get("total_train_seconds")
    parts = [f"config {cfg}", f"{corpus.get('n_train', '?')} training clips"]
    if isinstance(secs, (int, float)):
        parts.append(f"{secs / 60:.0f} min of training stages")
    if prov.get("machine"):
        parts.append(f"on {str(prov['machine']).splitlines()[0][:60]}")
    return ", ".join(parts)
