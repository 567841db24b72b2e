"""Part-TMR motion embeddings of feature arrays, as the model's own retrieval database was built.

A motion's 263-d features are normalised with the model's mean/std, cut or zero-padded to the length the
model's database used (``backend.retrieval.database.pad_or_crop``: 224 frames for the official release, the
training's ``part_tmr.max_frames`` (196) for the starter and trained folders), split into the six body parts
and encoded by the motion tower; embeddings are L2-normalised so that inner product = cosine.

:func:`model_fingerprint` names the model that made an embedding: SHA-256 over the Part-TMR weights (every
tensor's name, shape, dtype and bytes), the normaliser and the padding length. An index built with one model
is refused by another (their embedding spaces have nothing in common).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from backend.errors import ModelError

OFFICIAL_PAD = 224
PROJECT_PAD = 196


class NoRetrievalModel(ModelError):
    """The loaded models folder has no Part-TMR (retrieval unavailable)."""


def _l2n(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12), dtype=np.float32)


def model_fingerprint(model, mean: np.ndarray, std: np.ndarray, pad_len: int) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
        h.update(t.view(-1).view(__import__("torch").uint8).numpy().tobytes() if t.numel() else b"")
    h.update(np.ascontiguousarray(mean, np.float32).tobytes())
    h.update(np.ascontiguousarray(std, np.float32).tobytes())
    h.update(str(int(pad_len)).encode())
    return h.hexdigest()[:32]


def _project_pad(path: str | None) -> int:
    try:
        prov = json.loads((Path(path) / "PROVENANCE.json").read_text())
        return int(prov["config"]["part_tmr"]["max_frames"])
    except (OSError, ValueError, KeyError, TypeError):
        return PROJECT_PAD


class MotionEmbedder:
    """``MotionEmbedder(part_tmr, mean, std, pad_len, db=None)``; ``from_pipeline(pipe)`` for a loaded models
    folder. ``embed([features (T, 263), ...]) -> (N, D)`` and ``embed_text([str]) -> (N, D)``, L2-normalised."""

    def __init__(self, model, mean, std, pad_len: int, db=None, label: str = "") -> None:
        self.model = model
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        self.pad_len = int(pad_len)
        self.db = db
        self.label = label
        self._fingerprint: str | None = None

    @classmethod
    def from_pipeline(cls, pipe) -> "MotionEmbedder":
        retriever = getattr(pipe, "retriever", None)
        model = getattr(retriever, "text_model", None)
        if model is None or not callable(getattr(model, "encode_motion", None)):
            note = getattr(pipe, "retrieval_note", None) or "the models folder has no Part-TMR retrieval model"
            raise NoRetrievalModel(f"describing and searching motions needs the retrieval model: {note}")
        info = getattr(pipe, "info", {}) or {}
        pad = OFFICIAL_PAD if info.get("kind") == "official" else _project_pad(info.get("path"))
        mean = pipe.mean.detach().cpu().numpy() if hasattr(pipe.mean, "detach") else pipe.mean
        std = pipe.std.detach().cpu().numpy() if hasattr(pipe.std, "detach") else pipe.std
        return cls(model, mean, std, pad, db=retriever.db, label=f"{info.get('kind', 'unknown')}: {info.get('path', '')}")

    @property
    def dim(self) -> int:
        return int(self.model.dim)

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model, self.mean, self.std, self.pad_len)
        return self._fingerprint

    def embed(self, features: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        import torch

        from backend.models.part_tmr import whole2parts
        from backend.retrieval.database import pad_or_crop

        out = []
        with torch.inference_mode():
            for s in range(0, len(features), batch_size):
                batch = np.stack([pad_or_crop((np.asarray(f, np.float32) - self.mean) / self.std, self.pad_len)
                                  for f in features[s:s + batch_size]])
                parts = whole2parts(torch.from_numpy(batch))
                out.append(self.model.encode_motion(parts).float().cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return _l2n(np.concatenate(out))

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return _l2n(self.model.encode(list(texts)).float().cpu().numpy())
