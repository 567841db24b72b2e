"""CLIP text encoder: loads OpenAI-layout weights (state dict, text-only safetensors, TorchScript)
and computes clip_model.encode_text(tokenize(texts, truncate=True)).float()."""

import numpy as np
import pytest
import torch

from backend.models.part_tmr import build_clip_model
from backend.models.text_encoder import (ClipTextEncoder, TextEncoder, is_torchscript_archive,
                                         load_clip_model, load_clip_text_encoder)

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")]

TINY_CLIP = dict(embed_dim=48, vision_cfg=dict(image_size=32, layers=1, width=64, patch_size=16),
                 text_cfg=dict(context_length=77, vocab_size=49408, width=128, heads=2, layers=2))
TEXTS = ["a person walks forward", "a person jumps twice, then waves with the right hand", "run"]


def _random_clip(config=None, seed=0):
    torch.manual_seed(seed)
    m = build_clip_model(config).eval()
    with torch.no_grad():  # OpenAI's weights are fp16 values; the OpenAI builder casts to fp16
        for p in m.parameters():
            p.copy_(p.half().float())
    return m


def _reference(model, texts):
    """What momask's encode_text does, with open_clip's tokenizer standing in for clip.tokenize."""
    from backend.models.tv_compat import import_open_clip

    tokens = import_open_clip().tokenize(texts, context_length=77)
    with torch.no_grad():
        return model.encode_text(tokens).float()


@pytest.fixture(scope="module")
def vit_b32():
    torch.set_num_threads(1)
    return _random_clip()


@pytest.mark.slow
def test_vit_b32_state_dict_file(tmp_path, vit_b32):
    f = tmp_path / "ViT-B-32-sd.pt"
    torch.save(vit_b32.state_dict(), f)
    assert not is_torchscript_archive(f)
    enc = load_clip_text_encoder(f)
    assert isinstance(enc, TextEncoder) and enc.dim == 512
    out = enc.encode(TEXTS)
    assert out.shape == (3, 512) and out.dtype == torch.float32
    torch.testing.assert_close(out, _reference(vit_b32, TEXTS), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(enc.encode(TEXTS), out, atol=0, rtol=0)  # deterministic
    torch.testing.assert_close(enc.encode(TEXTS[1:2])[0], out[1], atol=1e-5, rtol=1e-5)  # batch-independent
    # tokens: SOT ... EOT, 77 long, over-long text truncated with EOT last (clip.tokenize truncate=True)
    long = " ".join(["walk"] * 200)
    tok = enc.tokenize([long, "run"])
    assert tok.shape == (2, 77) and tok[0, 0] == 49406 and tok[0, -1] == 49407 and tok[1, 2] == 49407
    assert enc.encode([long]).shape == (1, 512)
    assert not any(k.startswith("visual.") for k in enc.clip_model.state_dict())  # vision tower dropped


@pytest.mark.slow  # out of make test-fast (its 90 s budget); CI runs it
def test_text_only_safetensors(tmp_path, vit_b32):
    from safetensors.torch import save_file

    sd = {k: v.contiguous() for k, v in vit_b32.state_dict().items() if not k.startswith("visual.")}
    save_file(sd, tmp_path / "clip_text.safetensors")
    enc = ClipTextEncoder.from_file(tmp_path / "clip_text.safetensors")
    torch.testing.assert_close(enc.encode(TEXTS), _reference(vit_b32, TEXTS), atol=1e-4, rtol=1e-4)
    torch.save({"foo": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not an OpenAI-layout CLIP state dict"):
        load_clip_model(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError, match="ViT-B-32.pt"):
        load_clip_model(tmp_path / "missing.pt")


def test_torchscript_archive_like_openai(tmp_path):
    """A traced TorchScript file with OpenAI's key layout (attn_mask a constant, not a saved buffer),
    read through open_clip.load_openai_model. Small CLIP so that tracing stays quick."""
    torch.set_num_threads(1)
    m = _random_clip(TINY_CLIP, seed=1)
    ref = _reference(m, TEXTS)
    mask = m.attn_mask
    del m._buffers["attn_mask"]
    m.attn_mask = mask
    with torch.no_grad():
        traced = torch.jit.trace_module(m, {"encode_text": torch.zeros(1, 77, dtype=torch.long)})
    f = tmp_path / "ViT-tiny.pt"
    torch.jit.save(traced, str(f))
    assert is_torchscript_archive(f)
    enc = load_clip_text_encoder(f)
    assert enc.dim == 48
    out = enc.encode(TEXTS)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    assert np.isfinite(out.numpy()).all()
