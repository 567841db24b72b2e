"""Tiny random-weight models and stand-ins for the text encoder and the retriever."""

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from backend.models.length_estimator import LengthEstimator
from backend.models.mask_transformer import MaskTransformer, MaskTransformer2D
from backend.models.residual_transformer import ResidualTransformer, ResidualTransformer2D
from backend.models.transformer_common import TransformerConfig
from backend.models.vq import RVQVAE, VQConfig

CLIP = 32


class StubTextEncoder:
    """Deterministic: each text maps to a fixed random unit vector derived from its SHA-256."""

    def __init__(self, dim=CLIP):
        self.dim = dim
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        out = []
        for t in texts:
            g = torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little"))
            v = torch.randn(self.dim, generator=g)
            out.append(v / v.norm())
        return torch.stack(out)


class StubRetriever:
    def __init__(self, dim=CLIP):
        self.dim = dim
        self.calls = []

    def __call__(self, texts, k=1):
        self.calls.append(list(texts))
        g = torch.Generator().manual_seed(7)
        n = len(texts)
        re = {"re_text": torch.randn(n, k, 1, self.dim, generator=g),
              "re_motion": torch.randn(n, k, 1, self.dim, generator=g) * 3}
        return SimpleNamespace(re_dict=re, ids=[[f"{i:06d}"] for i in range(n)],
                               captions=[[f"retrieved for {t}"] for t in texts])


def tiny_vq_config():
    return VQConfig(code_dim1d=16, nb_code1d=24, code_dim2d=16, nb_code2d=20, num_quantizers=3, width=24, depth=2)


def tiny_tcfg(branch, residual, **kw):
    base = dict(code_dim=16, num_tokens=24 if branch == "aux" else 20, latent_dim=CLIP, ff_size=48, num_layers=2,
                num_heads=4, dropout=0.1, clip_dim=CLIP, attnj=True, attnt=True, num_quantizers=3,
                share_weight=True)
    base.update(kw)
    return TransformerConfig(**base)


def build_tiny(seed=0, project_cond=None):
    torch.manual_seed(seed)
    vq = RVQVAE(tiny_vq_config())
    for layer in list(vq.quantizer1d.layers) + list(vq.quantizer2d.layers):
        layer.codebook.normal_()
    m = SimpleNamespace(
        vq=vq,
        mask_aux=MaskTransformer(tiny_tcfg("aux", False, project_cond=project_cond)),
        mask_ts=MaskTransformer2D(tiny_tcfg("ts", False, project_cond=project_cond)),
        res_aux=ResidualTransformer(tiny_tcfg("aux", True, project_cond=True)),
        res_ts=ResidualTransformer2D(tiny_tcfg("ts", True, project_cond=True)),
        length_estimator=LengthEstimator(CLIP, 50, hidden=32),
        mean=np.linspace(-0.1, 0.1, 263).astype(np.float32),
        std=np.full(263, 0.5, np.float32),
    )
    # break the zero-initialised cond_emb bias so that the loader sees a "trained" projection when used
    for mod in (m.mask_aux, m.mask_ts, m.res_aux, m.res_ts):
        if getattr(mod, "project_cond", True):
            torch.nn.init.normal_(mod.cond_emb.bias, 0, 0.02)
    # larger output weights so that logits differ visibly between conditions
    for mod in (m.mask_aux, m.mask_ts):
        torch.nn.init.normal_(mod.output_process.poseFinal.weight, 0, 1.0)
    for name in ("vq", "mask_aux", "mask_ts", "res_aux", "res_ts", "length_estimator"):
        getattr(m, name).eval()
    return m


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def tiny():
    return build_tiny()


@pytest.fixture
def encoder():
    return StubTextEncoder()


@pytest.fixture
def retriever():
    return StubRetriever()
