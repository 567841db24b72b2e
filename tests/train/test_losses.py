"""Unit checks of the training objectives and the project weight format."""

import pytest
import torch

from backend.models.vq import RVQVAE, VQConfig
from backend.generation.project_weights import StarterError, load_module, save_module
from backend.train.stages import EMACodebooks, decode_latents, quantize_train, vq_forward


def _vq():
    torch.manual_seed(0)
    return RVQVAE(VQConfig(code_dim1d=16, nb_code1d=16, code_dim2d=8, nb_code2d=16, num_quantizers=3, width=16,
                           depth=1))


def test_training_forward_matches_inference_decode():
    """With codebooks fixed, the straight-through training path reconstructs exactly what encode/decode do."""
    vq = _vq().eval()
    for q in (vq.quantizer1d, vq.quantizer2d):
        for layer in q.layers:
            layer.codebook.normal_()
    x = torch.randn(2, 16, 263)
    with torch.no_grad():
        rec, commit, _ = vq_forward(vq, x)
        ref = vq.decode(*vq.encode(x))
    assert torch.allclose(rec, ref, atol=1e-5)
    assert commit > 0


def test_residual_quantisation_error_shrinks_with_layers():
    vq = _vq()
    ema = EMACodebooks(vq.quantizer1d)
    z = torch.randn(8, 16, 12)
    for _ in range(20):  # EMA k-means on one batch
        quantize_train(vq.quantizer1d, ema, z, 3)
    errs = []
    for n in (1, 2, 3):
        q, _, _ = quantize_train(vq.quantizer1d, None, z, n)
        errs.append(float((q - z.permute(0, 2, 1)).pow(2).mean()))
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 0.5 * float(z.pow(2).mean())


def test_save_load_module_roundtrip(tmp_path):
    vq = _vq().eval()
    for layer in vq.quantizer1d.layers:
        layer.codebook.normal_()
    save_module(vq, tmp_path, "vq")
    back = load_module(tmp_path, "vq")
    x = torch.randn(1, 8, 263)
    with torch.no_grad():
        assert torch.equal(vq.decode(*vq.encode(x)), back.decode(*back.encode(x)))
    (tmp_path / "vq.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(StarterError, match="cannot read"):
        load_module(tmp_path, "vq")
    with pytest.raises(StarterError, match="missing file"):
        load_module(tmp_path, "mask_aux")


def test_decode_latents_shapes():
    vq = _vq()
    b, t = 2, 5
    out = decode_latents(vq, torch.randn(b, 16, t), torch.randn(b * 6, t, 8), b, 6)
    assert out.shape == (b, 4 * t, 263)
