"""A tiny official-release folder with random weights: the VQ, masked/residual transformers and length
estimator in the released layout (``save_official_layout``), a tiny traced CLIP text tower saved as
``ViT-B-32.pt`` (an OpenAI-style TorchScript archive) and, optionally, a tiny Part-TMR (CLIP variant) with a
retrieval database. Every model conditions on 32-d text embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

CLIP = 32
CAPTIONS = ["a person walks forward", "a person runs", "a person jumps twice", "someone waves",
            "a person kicks with the right leg", "a person sits down"]


def make_tiny_release(root: Path, with_retrieval: bool = False, seed: int = 0) -> Path:
    """Write the release under ``root`` (one torch thread while building; the caller's count is restored)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _make(Path(root), with_retrieval, seed)
    finally:
        torch.set_num_threads(n)


def _make(root: Path, with_retrieval: bool, seed: int) -> Path:
    from backend.generation import official_release as checkpoints
    from backend.models.length_estimator import LengthEstimator
    from backend.models.mask_transformer import MaskTransformer, MaskTransformer2D
    from backend.models.part_tmr import build_clip_model
    from backend.models.residual_transformer import ResidualTransformer, ResidualTransformer2D
    from backend.models.transformer_common import TransformerConfig
    from backend.models.vq import RVQVAE, VQConfig

    torch.manual_seed(seed)
    vq = RVQVAE(VQConfig(code_dim1d=16, nb_code1d=24, code_dim2d=16, nb_code2d=20, num_quantizers=3, width=24,
                         depth=2))

    def cfg(branch, residual):
        return TransformerConfig(code_dim=16, num_tokens=24 if branch == "aux" else 20, latent_dim=CLIP,
                                 ff_size=48, num_layers=1, num_heads=4, dropout=0.1, clip_dim=CLIP, attnj=True,
                                 attnt=True, num_quantizers=3, share_weight=True,
                                 **({"project_cond": True} if residual else {}))

    parts = [MaskTransformer(cfg("aux", False)), MaskTransformer2D(cfg("ts", False)),
             ResidualTransformer(cfg("aux", True)), ResidualTransformer2D(cfg("ts", True))]
    estimator = LengthEstimator(CLIP, 50, hidden=32)
    torch.nn.init.normal_(estimator.output[-1].weight, 0, 2.0)  # a peaked, text-dependent length distribution
    checkpoints.save_official_layout(root, vq, *parts, estimator, np.zeros(263, np.float32),
                                     np.full(263, 0.5, np.float32))
    # tiny CLIP text tower, traced like OpenAI's JIT archive
    clip = build_clip_model(dict(embed_dim=CLIP, vision_cfg=dict(image_size=32, layers=1, width=64, patch_size=16),
                                 text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=1)))
    clip.eval()
    mask = clip.attn_mask
    del clip._buffers["attn_mask"]
    clip.attn_mask = mask
    with torch.no_grad():
        traced = torch.jit.trace_module(clip, {"encode_text": torch.zeros(1, 77, dtype=torch.long)})
    torch.jit.save(traced, str(root / "ViT-B-32.pt"))
    if with_retrieval:
        _part_tmr(root)
    return root


def _part_tmr(root: Path) -> None:
    from backend.models.part_tmr import PartTMR, PartTMRConfig, load_part_tmr
    from backend.retrieval.database import build_database

    cfg = PartTMRConfig.released(
        motion_embedding_dims=32, projection_dims=CLIP, ff_size=64, max_len=300, embed_dim=CLIP, queue_size=64,
        part_queue_size=64, text_embedding_dims=48,
        clip=dict(embed_dim=48, vision_cfg=dict(image_size=32, layers=1, width=64, patch_size=16),
                  text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=1)))
    d = root / "Part_TMR" / "checkpoints" / "exp_for_mtrans" / "HumanML3D"
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "config.yaml").write_text(
        "model:\n  text_encoder: ViT-B-32.pt\ndataset:\n  dataset_name: HumanML3D\neval:\n  use_best_model: true\n")
    torch.save(dict(PartTMR(cfg).eval().state_dict()), d / "best_model.pt")
    model, _ = load_part_tmr(d)
    rng = np.random.default_rng(0)
    motions = [rng.standard_normal((60 + 10 * i, 263)).astype(np.float32) for i in range(len(CAPTIONS))]
    ids = [f"{i:06d}_0" for i in range(len(CAPTIONS))]
    build_database(model, model, motions, CAPTIONS, ids, root / "database")
