import importlib.util
import json
from pathlib import Path

import pytest
import torch

from backend.models.length_estimator import LengthEstimator
from backend.models.mask_transformer import MaskTransformer, MaskTransformer2D
from backend.models.residual_transformer import ResidualTransformer, ResidualTransformer2D
from backend.models.transformer_common import TransformerConfig
from backend.models.vq import RVQVAE, VQConfig

DATA = Path(__file__).resolve().parent.parent / "data"


def _official_modules():
    with torch.device("meta"):
        return {
            "vq": RVQVAE(VQConfig()),
            "mask_aux": MaskTransformer(TransformerConfig(code_dim=512, num_tokens=512)),
            "mask_ts": MaskTransformer2D(TransformerConfig(code_dim=1024, num_tokens=256)),
            "res_aux": ResidualTransformer(TransformerConfig(code_dim=512, num_tokens=512, latent_dim=384,
                                                             num_heads=6)),
            "res_ts": ResidualTransformer2D(TransformerConfig(code_dim=1024, num_tokens=256, latent_dim=384,
                                                              num_heads=6)),
            "estimator": LengthEstimator(512, 50),
        }


@pytest.mark.parametrize("name", ["vq", "mask_aux", "mask_ts", "res_aux", "res_ts", "estimator"])
def test_official_manifest_matches_exactly(name):
    manifest = json.loads((DATA / f"official_manifest_{name}.json").read_text())
    ours = [[k, list(v.shape)] for k, v in _official_modules()[name].state_dict().items()]
    assert dict(map(tuple, [(k, tuple(s)) for k, s in ours])) == {k: tuple(s) for k, s in manifest}
    assert len(ours) == len(manifest)


def test_manifest_files_are_what_the_rules_write():
    spec = importlib.util.spec_from_file_location("rules", Path(__file__).with_name("official_manifest_rules.py"))
    rules = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rules)
    for name, fn in rules.MANIFESTS.items():
        assert json.loads((DATA / f"official_manifest_{name}.json").read_text()) == [[k, s] for k, s in fn()]


def test_official_sizes_parameter_counts():
    mods = _official_modules()
    n = {k: sum(p.numel() for p in m.state_dict().values()) for k, m in mods.items()}
    # linear_merge alone is 6144 x 6144; codebooks 6 x (512x512 + 256x1024)
    assert mods["vq"].linear_merge.weight.shape == (6144, 6144)
    assert n["estimator"] == 512 * 512 + 512 + 2 * 512 + 256 * 512 + 256 + 2 * 256 + 128 * 256 + 128 + 2 * 128 + 50 * 128 + 50


def test_jointwise_roundtrip():
    f = torch.randn(2, 8, 263)
    j = RVQVAE.features_to_jointwise(f)
    assert j.shape == (2, 8, 22, 12)
    assert torch.equal(RVQVAE.jointwise_to_features(j), f)
    assert torch.equal(j[:, :, 0, 4:8], f[..., -4:])  # foot contacts live on the root joint
    assert torch.equal(j[:, :, 5, 9:12], f[..., 193 + 15:193 + 18])  # local velocity of joint 5


def test_encode_decode_shapes_and_dropped_layers(tiny):
    vq = tiny.vq
    x = torch.randn(2, 24, 263)
    ids1, ids2 = vq.encode(x)
    assert ids1.shape == (2, 6, 3) and ids2.shape == (2, 6, 6, 3)
    assert int(ids1.max()) < 24 and int(ids2.max()) < 20 and int(ids1.min()) >= 0
    out = vq.decode(ids1, ids2)
    assert out.shape == (2, 24, 263)
    # -1 marks an unused layer: decoding with the last layer set to -1 equals decoding two layers only
    a = vq.decode(torch.cat([ids1[..., :2], torch.full_like(ids1[..., :1], -1)], -1),
                  torch.cat([ids2[..., :2], torch.full_like(ids2[..., :1], -1)], -1))
    b = vq.decode(ids1[..., :2], ids2[..., :2])
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, out, atol=1e-4)


def test_residual_quantizer_is_greedy_nearest(tiny):
    q = tiny.vq.quantizer1d
    x = torch.randn(3, 16, 5)
    ids = q.quantize(x)
    r = x.permute(0, 2, 1).reshape(-1, 16)
    for i, layer in enumerate(q.layers):
        expect = torch.cdist(r, layer.codebook).argmin(-1)
        assert torch.equal(ids[..., i].reshape(-1), expect)
        r = r - layer.codebook[expect]
