"""Text encoders: the protocol the pipeline uses, and CLIP ViT-B/32 (momask/ReMoMask conditioning).

``ClipTextEncoder.encode(texts)`` computes what momask's ``MaskTransformer.encode_text`` computes:
``clip.tokenize(texts, truncate=True)`` (77 tokens; here open_clip's bundled BPE vocabulary, offline)
then ``clip_model.encode_text(tokens).float()`` -> (B, 512). momask runs CLIP in fp16 on CUDA; this
runs fp32 unless ``dtype=torch.float16`` is asked for (differences ~1e-3).

Weights: the user's ``ViT-B-32.pt`` from the official release (OpenAI's TorchScript archive). Reading a
TorchScript archive goes through ``open_clip.load_openai_model``, i.e. ``torch.jit.load`` — it is not a
``weights_only`` load. This is done for that one user-supplied file only; every other file (plain
state dicts, .safetensors) is read with ``torch.load(weights_only=True)`` / safetensors.
"""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import torch
from torch import nn

log = logging.getLogger(__name__)


@runtime_checkable
class TextEncoder(Protocol):
    """Anything that turns a batch of strings into float32 embeddings (B, dim)."""

    dim: int

    def encode(self, texts: list[str]) -> torch.Tensor: ...


def _open_clip():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from backend.models.tv_compat import import_open_clip

    return import_open_clip()


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """A TorchScript archive is a zip with a ``constants.pkl`` and a ``code/`` folder."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") or n == "constants.pkl" for n in names) and \
        any("/code/" in n for n in names)


def causal_mask(n: int) -> torch.Tensor:
    return torch.full((n, n), float("-inf")).triu_(1)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd = load_file(str(path))
    else:
        obj = torch.load(path, map_location="cpu", weights_only=True)
        sd = obj.get("state_dict", obj) if isinstance(obj, dict) else None
        if not isinstance(sd, dict):
            raise ValueError(f"{path}: neither a TorchScript archive nor a CLIP state dict")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[7:]: v for k, v in sd.items()}
    return sd


def load_clip_model(path: str | os.PathLike, device: str | torch.device = "cpu", keep_vision: bool = False):
    """An open_clip ``CLIP`` with OpenAI ViT-B/32 weights from ``path`` (TorchScript archive as
    released by OpenAI, or a state dict with OpenAI key names, .pt or .safetensors)."""
    from backend.models.part_tmr import build_clip_model

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CLIP weights not found: {path} (the official release ships ViT-B-32.pt)")
    oc = _open_clip()
    if is_torchscript_archive(path):
        # The user's own ViT-B-32.pt from the official release: TorchScript, not a weights_only load.
        model = oc.load_openai_model(str(path), precision="fp32", device="cpu")
    else:
        sd = _read_state_dict(path)
        text_keys = ["token_embedding.weight", "positional_embedding", "text_projection", "ln_final.weight"]
        lacking = [k for k in text_keys if k not in sd]
        if lacking:
            raise ValueError(f"{path}: not an OpenAI-layout CLIP state dict (lacks {', '.join(lacking)})")
        if any(k.startswith("visual.") for k in sd):
            model = oc.model.build_model_from_openai_state_dict(sd)
            model.float()
        else:  # text tower only: ViT-B/32 text architecture, vision tower left out
            model = build_clip_model(with_vision=False)
            res = model.load_state_dict(sd, strict=False)
            bad = [k for k in res.missing_keys if not k.startswith("visual.")]
            if bad or res.unexpected_keys:
                raise ValueError(f"{path}: keys do not fit CLIP ViT-B/32 (missing {bad[:5]}, "
                                 f"unexpected {res.unexpected_keys[:5]})")
    if not keep_vision:
        model.visual = nn.Module()
    return model.to(device).eval()


class ClipTextEncoder(nn.Module):
    """CLIP text tower as a TextEncoder: ``encode(list[str]) -> (B, 512)`` float32."""

    def __init__(self, clip_model, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 context_length: int | None = None) -> None:
        super().__init__()
        self.clip_model = clip_model.to(device=device, dtype=dtype).eval()
        if hasattr(self.clip_model, "attn_mask") and self.clip_model.attn_mask is not None:
            self.clip_model.attn_mask = self.clip_model.attn_mask.to(dtype)  # MHA wants the query dtype
        self.context_length = int(context_length or clip_model.context_length)
        self._tok = _open_clip().tokenizer.SimpleTokenizer(context_length=self.context_length)
        self.dim = int(clip_model.text_projection.shape[1])

    @classmethod
    def from_file(cls, path: str | os.PathLike, device: str | torch.device = "cpu",
                  dtype: torch.dtype = torch.float32) -> "ClipTextEncoder":
        return cls(load_clip_model(path, "cpu"), device=device, dtype=dtype)

    @property
    def device(self) -> torch.device:
        return self.clip_model.token_embedding.weight.device

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """(B, 77) int64 like ``clip.tokenize(texts, truncate=True)``."""
        return self._tok(list(texts), context_length=self.context_length)

    def encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.clip_model.encode_text(tokens.to(self.device)).float()

    def encode(self, texts: list[str]) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) == 0:
            raise ValueError("ClipTextEncoder.encode: no texts")
        return self.encode_tokens(self.tokenize(texts))


def load_clip_text_encoder(path: str | os.PathLike, device: str | torch.device = "cpu",
                           dtype: torch.dtype = torch.float32) -> ClipTextEncoder:
    return ClipTextEncoder.from_file(path, device=device, dtype=dtype)
