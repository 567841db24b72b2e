"""Generation latency at the released model sizes (random weights), CPU, 196 frames, 10 unmasking steps.

Compares ``backend.generation.pipeline.Pipeline.generate`` (all prompts x samples in one batch, conditional and
unconditional passes of the 1D transformers in one doubled batch) with a re-statement of the reference
``demo.py`` control flow (one prompt at a time, separate conditional / unconditional passes, token-embedding
gathers through expanded tables). Retrieval is not timed here (random retrieved embeddings are used); the text
encoder is a stand-in (random 512-d vectors), so figures cover steps 3-7 of the design's data flow.

    python bench/generation.py [--batch 32] [--threads N] [--full-reference-loop] [--repeats 1]

Without ``--full-reference-loop`` the reference time for a batch of N prompts is N x its measured per-prompt
time (the reference loops over prompts, so the work is N identical runs).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.models.length_estimator import LengthEstimator  # noqa: E402
from backend.models.mask_transformer import (COND_NONE, COND_TEXT_AND_RETRIEVAL, MaskTransformer,  # noqa: E402
                                             MaskTransformer2D, _re_tensors)
from backend.models.residual_transformer import ResidualTransformer, ResidualTransformer2D  # noqa: E402
from backend.models.sampling import categorical, cosine_schedule, gumbel, top_k_filter  # noqa: E402
from backend.models.transformer_common import TransformerConfig, length_mask  # noqa: E402
from backend.models.vq import RVQVAE, VQConfig  # noqa: E402
from backend.generation.pipeline import Pipeline  # noqa: E402


class RandomText:
    dim = 512

    def encode(self, texts):
        g = torch.Generator().manual_seed(len(texts))
        return torch.randn(len(texts), 512, generator=g)


class RandomRetriever:
    def __call__(self, texts, k=1):
        n = len(texts)
        g = torch.Generator().manual_seed(n)
        return SimpleNamespace(re_dict={"re_text": torch.randn(n, k, 1, 512, generator=g),
                                        "re_motion": torch.randn(n, k, 1, 512, generator=g)},
                               ids=[["0"]] * n, captions=[["c"]] * n)


def official_models():
    torch.manual_seed(0)
    vq = RVQVAE(VQConfig())
    for layer in list(vq.quantizer1d.layers) + list(vq.quantizer2d.layers):
        layer.codebook.normal_()
    m = SimpleNamespace(
        vq=vq,
        mask_aux=MaskTransformer(TransformerConfig(code_dim=512, num_tokens=512)),
        mask_ts=MaskTransformer2D(TransformerConfig(code_dim=1024, num_tokens=256)),
        res_aux=ResidualTransformer(TransformerConfig(code_dim=512, num_tokens=512, latent_dim=384, num_heads=6)),
        res_ts=ResidualTransformer2D(TransformerConfig(code_dim=1024, num_tokens=256, latent_dim=384, num_heads=6)),
        length_estimator=LengthEstimator(512, 50), mean=np.zeros(263, np.float32), std=np.ones(263, np.float32))
    for k in ("vq", "mask_aux", "mask_ts", "res_aux", "res_ts", "length_estimator"):
        getattr(m, k).eval()
    return m


# ---------------------------------------------------------------------------------------------------------
# Re-statement of the reference demo.py path (control flow only; same modules and weights).
def _ref_mask(logits_fn, b, n, n_valid, pad, mask_id, pad_id, steps, scale, g):
    ids = torch.where(pad, pad_id, mask_id)
    scores = torch.where(pad, 1e5, 0.0)
    for t in torch.linspace(0, 1, steps):
        k = torch.round(cosine_schedule(t) * n_valid).clamp(min=1)
        is_mask = scores.argsort(1).argsort(1) < k[:, None]
        ids = torch.where(is_mask, mask_id, ids)
        cond = logits_fn(ids, False)
        logits = cond if scale == 1 else (lambda u: u + (cond - u) * scale)(logits_fn(ids, True))
        pred = categorical(top_k_filter(logits, 0.9), 1.0, g)
        ids = torch.where(is_mask, pred, ids)
        scores = logits.softmax(-1).gather(-1, pred[..., None]).squeeze(-1).masked_fill(~is_mask, 1e5)
    return torch.where(pad, -1, ids)


def _ref_res(model, base, pad_flat, fwd, g, scale=5.0):
    emb, proj, bias = model.tables()
    ids = torch.where(pad_flat, model.pad_id, base.clamp(min=0))
    out, hist = [ids], 0
    b = ids.shape[0]
    for layer in range(1, model.cfg.num_quantizers):
        table = emb[layer - 1][None].expand(b, -1, -1)
        hist = hist + table.gather(1, ids[..., None].expand(-1, -1, table.shape[-1]))
        c = model._project(fwd(hist, layer, False), layer, proj, bias)
        u = model._project(fwd(hist, layer, True), layer, proj, bias)
        pred = gumbel(top_k_filter(u + (c - u) * scale, 0.9), 1.0, g)
        ids = torch.where(pad_flat, model.pad_id, pred)
        out.append(ids)
    res = torch.stack(out, -1)
    return torch.where(res == model.pad_id, -1, res)


@torch.no_grad()
def reference_one_prompt(m, cond, m_lens, re_dict, steps, scale, g):
    t = int(m_lens.max())
    pad = ~length_mask(m_lens, t)
    a = m.mask_aux
    aux = _ref_mask(lambda ids, un: a.trans_forward(ids, cond, pad, force_mask=un), 1, t, m_lens.float(), pad,
                    a.mask_id, a.pad_id, steps, scale, g)
    ts = m.mask_ts
    rm, rt = _re_tensors(re_dict, 1, ts.cfg.latent_dim, cond.device, cond.dtype)
    pad3 = pad[..., None].expand(1, t, 6)

    def ts_logits(flat, un):
        code = torch.full((1, 1, 1), float(COND_NONE if un else COND_TEXT_AND_RETRIEVAL))
        return ts.trans_forward(flat.reshape(1, t, 6), cond, pad3, code, rm, rt)

    ids_ts = _ref_mask(ts_logits, 1, t * 6, (m_lens * 6).float(), pad3.reshape(1, -1), ts.mask_id, ts.pad_id,
                       steps, scale, g).reshape(1, t, 6)
    ra, rt2 = m.res_aux, m.res_ts
    all_aux = _ref_res(ra, aux, pad, lambda h, q, un: ra.trans_forward(h, q, cond, pad, un), g)
    pflat = pad3.reshape(1, -1)
    all_ts = _ref_res(rt2, ids_ts.reshape(1, -1), pflat,
                      lambda h, q, un: rt2.trans_forward(h, q, cond, pflat, t, 6, un), g).reshape(1, t, 6, -1)
    return m.vq.decode(all_aux, all_ts)


def reference_loop(m, n_prompts, frames, steps, scale):
    g = torch.Generator().manual_seed(0)
    enc, ret = RandomText(), RandomRetriever()
    for i in range(n_prompts):
        cond = enc.encode([f"p{i}"])
        reference_one_prompt(m, cond, torch.tensor([frames // 4]), ret([f"p{i}"]).re_dict, steps, scale, g)


CPU_TIMES = {}


def timed(fn, repeats, label=None):
    """Best wall-clock time of ``repeats`` runs; the process CPU time of that run goes to CPU_TIMES[label]
    (less sensitive than wall-clock to other processes on a shared machine)."""
    best = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best = wall
            if label:
                CPU_TIMES[label] = cpu
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--frames", type=int, default=196)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--full-reference-loop", action="store_true")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    m = official_models()
    pipe = Pipeline(m, RandomText(), RandomRetriever())
    prompts = [f"prompt {i}" for i in range(a.batch)]
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, frames {a.frames}, steps {a.steps}")

    def ours(n):
        return lambda: pipe.generate(prompts[:n], [a.frames] * n, seed=0, time_steps=a.steps)

    ours(1)()  # warm-up
    t_ours_1 = timed(ours(1), a.repeats, "ours1")
    t_ref_1 = timed(lambda: reference_loop(m, 1, a.frames, a.steps, 4.0), a.repeats, "ref1")
    c1, r1 = CPU_TIMES["ours1"], CPU_TIMES["ref1"]
    print(f"per prompt   : ours {t_ours_1:7.2f} s   reference path {t_ref_1:7.2f} s   x{t_ref_1 / t_ours_1:.2f}"
          f"   | CPU time ours {c1:.1f} s, reference {r1:.1f} s, x{r1 / c1:.2f}")
    t_ours_b = timed(ours(a.batch), 1, "oursb")
    if a.full_reference_loop:
        t_ref_b = timed(lambda: reference_loop(m, a.batch, a.frames, a.steps, 4.0), 1)
        how = "measured"
    else:
        t_ref_b = a.batch * t_ref_1
        how = f"{a.batch} x per-prompt"
    print(f"batch of {a.batch:3d}: ours {t_ours_b:7.2f} s ({t_ours_b / a.batch:.2f} s/prompt)   "
          f"reference path {t_ref_b:7.2f} s ({how})   x{t_ref_b / t_ours_b:.2f}"
          f"   | CPU time ours {CPU_TIMES['oursb']:.1f} s")


if __name__ == "__main__":
    main()
