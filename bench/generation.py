"""Generation speed, side by side: the project's ``Pipeline.generate`` vs the reference's batched path.

Both sides run in one process on the same modules with the same random weights at the released sizes
(RVQ-VAE 6 layers, 1D/2D masked transformers latent 512 / 8 heads / 8 layers, residual transformers
latent 384 / 6 heads / 8 layers x 3 encoders for 2D, Part-TMR text side = CLIP ViT-B/32 text tower + projection,
a random 30,000-entry retrieval database), the same prompts, 196 frames, 10 unmasking steps, guidance 4 / 5.

* project: ``backend.generation.pipeline.Pipeline.generate`` as the server calls it (each motion sampled on its own,
  from its own generator; the 1D transformers run their conditional and unconditional passes as one doubled batch;
  FAISS retrieval on the prompt embedding).
* reference: ``bench/reference_generation.py``, a restatement of AIGeeksGroup/ReMoMask ``demo.py`` (commit
  77c0a2b): one call per stage for all prompts, separate conditional and unconditional passes, per-caption
  retrieval with a full sort, one VQ decode of the padded batch (see that module's docstring).

Per batch size: one warm-up run of each side, then ``--repeats`` runs of each, interleaved; medians of wall-clock
and process CPU time (``time.process_time``, all threads). Per stage (text, retrieval, length, mask_aux, mask_ts,
res_aux, res_ts, decode, joints, other = the rest): median wall and CPU time, FLOPs and achieved FLOP/s (FLOPs
over wall time) against the machine's fp32 matmul peak measured here (best of several n x n ``torch.matmul`` at
the thread count used).
FLOPs: counted with ``torch.utils.flop_counter.FlopCounterMode`` around each stage (plus torch's attention
formula for the CPU attention kernel, which the counter leaves out) in one extra run at ``--flops-batch``
(default 1), scaled by the batch size (every stage is linear in it at equal lengths), plus an analytic 2 N D
per query for the retrieval similarity (FAISS and the cosine loop are not torch matmuls). Joint recovery
is numpy element-wise work: not counted.

A check run at the smallest batch compares the token ids of both sides for the same seed (the restatement draws
from the generator the pipeline gives its first motion, in the same order), once with the reference's own residual
sampling and once with the project's rule of never drawing the padding id (where the ids should agree).

    python bench/generation.py [--batch 1 8] [--repeats 3] [--threads N] [--quick] [--json FILE]

On a shared machine, compare runs only at equal load: with 2 torch threads on 2 cores, another busy process
slows every parallel region down many times (threads wait for each other), which ``--threads 1`` avoids.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

_HERE = Path(__file__).resolve().parent
for _p in (str(_HERE.parent), str(_HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from backend.models.length_estimator import LengthEstimator  # noqa: E402
from backend.models.mask_transformer import MaskTransformer, MaskTransformer2D  # noqa: E402
from backend.models.part_tmr import ClipTokenizer, PartTMR, PartTMRConfig  # noqa: E402
from backend.models.residual_transformer import ResidualTransformer, ResidualTransformer2D  # noqa: E402
from backend.models.transformer_common import TransformerConfig  # noqa: E402
from backend.models.vq import RVQVAE, VQConfig  # noqa: E402
from backend.generation.pipeline import Pipeline  # noqa: E402
from backend.retrieval.database import MotionDatabase  # noqa: E402
from backend.retrieval.retriever import Retriever  # noqa: E402
from reference_generation import (ReferenceRetrieval, analytic_similarity_flops,  # noqa: E402
                                  reference_generate)

STAGES = ("text", "retrieval", "length", "mask_aux", "mask_ts", "res_aux", "res_ts", "decode", "joints", "other")
CAPTIONS = ["a person walks forward and then turns around", "a person jumps up and down twice",
            "a man raises both arms above his head", "someone runs in a circle",
            "a person sits down on a chair", "a person waves with the right hand",
            "a person kicks with the left leg", "a person bows slowly"]


# ----------------------------------------------------------------------------------------------- sizes
def sizes(quick: bool) -> dict:
    """Released sizes (README training commands of the reference, ``VQConfig`` defaults) or tiny ones."""
    if quick:
        vq = VQConfig(code_dim1d=32, nb_code1d=32, code_dim2d=32, nb_code2d=16, num_quantizers=3, width=32, depth=1)
        clip = 64
        mask = dict(latent_dim=clip, ff_size=64, num_layers=1, num_heads=2, clip_dim=clip)
        res = dict(latent_dim=32, ff_size=64, num_layers=1, num_heads=2, clip_dim=clip, num_quantizers=3)
        text = PartTMRConfig.released(with_momentum=False, with_vision=False, projection_dims=clip,
                                      text_embedding_dims=clip, motion_embedding_dims=clip, num_layers=1, ff_size=64,
                                      clip={"embed_dim": clip,
                                            "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32,
                                                           "patch_size": 16},
                                            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": clip,
                                                         "heads": 2, "layers": 1}})
        return dict(vq=vq, mask=mask, res=res, text=text, clip=clip, db=300, frames=32, steps=2, peak_n=512)
    return dict(vq=VQConfig(), mask=dict(), res=dict(latent_dim=384, num_heads=6),
                text=PartTMRConfig.released(with_momentum=False, with_vision=False), clip=512, db=30000,
                frames=196, steps=10, peak_n=2048)


def build(quick: bool, seed: int = 0):
    """Random-weight models, text model and database shared by both sides."""
    s = sizes(quick)
    torch.manual_seed(seed)
    vq = RVQVAE(s["vq"])
    for layer in list(vq.quantizer1d.layers) + list(vq.quantizer2d.layers):
        layer.codebook.normal_()
    v = s["vq"]
    m = SimpleNamespace(
        vq=vq,
        mask_aux=MaskTransformer(TransformerConfig(code_dim=v.code_dim1d, num_tokens=v.nb_code1d, **s["mask"])),
        mask_ts=MaskTransformer2D(TransformerConfig(code_dim=v.code_dim2d, num_tokens=v.nb_code2d, **s["mask"])),
        res_aux=ResidualTransformer(TransformerConfig(code_dim=v.code_dim1d, num_tokens=v.nb_code1d, **s["res"])),
        res_ts=ResidualTransformer2D(TransformerConfig(code_dim=v.code_dim2d, num_tokens=v.nb_code2d, **s["res"])),
        length_estimator=LengthEstimator(s["clip"], 50),
        mean=np.zeros(263, np.float32), std=np.ones(263, np.float32))
    for k in ("vq", "mask_aux", "mask_ts", "res_aux", "res_ts", "length_estimator"):
        getattr(m, k).eval()
    text = PartTMR(s["text"], tokenizer=ClipTokenizer()).eval()
    # the reference's retriever keeps the text tower frozen and the projection head trainable
    for p in text.text_encoder.parameters():
        p.requires_grad_(False)
    rng = np.random.default_rng(seed)
    n, d = s["db"], s["clip"]
    ids = np.array([f"{g:06d}_{i}" for i, g in enumerate(rng.integers(0, max(1, n // 3), n))])
    emb = rng.standard_normal((n, d)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    temb = rng.standard_normal((n, d)).astype(np.float32)
    db = MotionDatabase(ids, ids.copy(), emb, temb)
    return m, text, db, s


# ----------------------------------------------------------------------------------------------- timing
def _cpu_sdpa_flops(q, k, v, *args, out_shape=None, **kwargs):
    return sdpa_flop_count(q, k, v)


# torch's counter has no formula for the CPU attention kernel that scaled_dot_product_attention (and so
# nn.MultiheadAttention inside nn.TransformerEncoderLayer) runs on; give it torch's own attention formula.
_EXTRA_FLOP_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}


class StageClock:
    """``with clock(stage):`` adds wall and CPU time to the stage, or, when ``count_flops`` is on, the FLOPs
    that FlopCounterMode sees. ``total(wall)`` fills ``other`` with what no stage took."""

    def __init__(self):
        self.count_flops = False
        self.reset()

    def reset(self):
        self.wall = defaultdict(float)
        self.cpu = defaultdict(float)
        self.flops = defaultdict(int)

    @contextmanager
    def __call__(self, name):
        if self.count_flops:
            with FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS) as fc:
                yield
            self.flops[name] += int(fc.get_total_flops())
            return
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] += time.perf_counter() - t0
            self.cpu[name] += time.process_time() - c0


class _Timed:
    """Stands in for ``obj``: the methods named in ``methods`` (name -> stage) run inside ``clock(stage)`` and
    their last result is kept in ``last[stage]``; everything else is ``obj``'s."""

    def __init__(self, obj, clock, methods):
        self.__dict__.update(_obj=obj, _clock=clock, _methods=methods, last={})

    def __getattr__(self, name):
        attr = getattr(self._obj, name)
        stage = self._methods.get(name)
        if stage is None:
            return attr

        def run(*a, **kw):
            with self._clock(stage):
                out = attr(*a, **kw)
            self.last[stage] = out
            return out
        return run


class _TimedRetriever(Retriever):
    def __init__(self, text_model, db, clock):
        super().__init__(text_model, db)
        self.clock = clock

    def __call__(self, texts, k=None, *, query_emb=None):
        with self.clock("retrieval"):
            return super().__call__(texts, k, query_emb=query_emb)


@contextmanager
def _timed_joints(clock):
    """The pipeline recovers joints per motion through ``backend.generation.pipeline._features_to_joints``."""
    import backend.generation.pipeline as bp

    orig = bp._features_to_joints

    def wrapped(f):
        with clock("joints"):
            return orig(f)
    bp._features_to_joints = wrapped
    try:
        yield
    finally:
        bp._features_to_joints = orig


class Sides:
    """Both sides over the same models; ``run(side, prompts)`` -> (wall s, CPU s, {stage: (wall s, CPU s)},
    result)."""

    def __init__(self, models, text, db, frames, steps, seed=0):
        self.clock = StageClock()
        c = self.clock
        self.models, self.text, self.db, self.frames, self.steps, self.seed = models, text, db, frames, steps, seed
        self.proxies = {k: _Timed(getattr(models, k), c, {"generate": k}) for k in
                        ("mask_aux", "mask_ts", "res_aux", "res_ts")}
        self.proxies["vq"] = _Timed(models.vq, c, {"decode": "decode"})
        self.proxies["length_estimator"] = _Timed(models.length_estimator, c, {"sample_tokens": "length"})
        pm = SimpleNamespace(**self.proxies, mean=models.mean, std=models.std)
        text_p = _Timed(text, c, {"encode": "text"})
        self.pipe = Pipeline(pm, text_p, _TimedRetriever(text_p, db, c))
        self.ref_retrieval = ReferenceRetrieval(text, db.motion_emb, db.text_emb, db.motion_ids)

    def _project(self, prompts):
        with _timed_joints(self.clock):
            return self.pipe.generate(prompts, [self.frames] * len(prompts), seed=self.seed, time_steps=self.steps)

    def _reference(self, prompts, exclude_special=False):
        return reference_generate(self.models, self.text, self.ref_retrieval, prompts, [self.frames] * len(prompts),
                                  seed=self.seed, time_steps=self.steps, stage=self.clock,
                                  exclude_special=exclude_special)

    def run(self, side, prompts, **kw):
        self.clock.reset()
        t0, c0 = time.perf_counter(), time.process_time()
        out = self._project(prompts) if side == "project" else self._reference(prompts, **kw)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        stages = {k: (self.clock.wall.get(k, 0.0), self.clock.cpu.get(k, 0.0)) for k in STAGES[:-1]}
        stages["other"] = (max(0.0, wall - sum(w for w, _ in stages.values())),
                           max(0.0, cpu - sum(c for _, c in stages.values())))
        return wall, cpu, stages, out

    def count_flops(self, side, prompts):
        """FLOPs per stage of one run (FlopCounterMode + the analytic retrieval similarity)."""
        self.clock.count_flops = True
        try:
            self.run(side, prompts)
            flops = {k: int(self.clock.flops.get(k, 0)) for k in STAGES}
        finally:
            self.clock.count_flops = False
        flops["retrieval"] += analytic_similarity_flops(len(prompts), len(self.db), self.db.motion_dim)
        return flops

    def agreement(self, prompts):
        """Token ids of both sides for one seed: fraction equal per transformer, with the reference's residual
        sampling and with the project's rule (padding id never drawn); and the motions' largest difference."""
        _, _, _, res = self.run("project", prompts)
        ours = {k: self.proxies[k].last[k] for k in ("mask_aux", "mask_ts", "res_aux", "res_ts")}
        feats = np.stack([r.features for r in res])
        report = {}
        for label, excl in (("reference_sampling", False), ("project_rule", True)):
            _, _, _, ref = self.run("reference", prompts, exclude_special=excl)
            frac = {k: float((ours[k] == ref.ids[k]).float().mean()) for k in ours}
            rf = np.stack([ref.features[i, :n] for i, n in enumerate(ref.lengths)])
            report[label] = {"ids_equal_fraction": frac,
                             "features_max_abs_diff": float(np.abs(rf - feats).max()),
                             "shapes_ok": bool(rf.shape == feats.shape and all(
                                 j.shape == (n, 22, 3) and np.isfinite(j).all()
                                 for j, n in zip(ref.joints, ref.lengths)))}
        return report


# ----------------------------------------------------------------------------------------------- helpers
def matmul_peak(n: int, repeats: int = 8) -> float:
    """Best fp32 FLOP/s of an n x n x n ``torch.matmul`` at the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def prompts_for(n: int) -> list[str]:
    return [CAPTIONS[i % len(CAPTIONS)] + (f" ({i // len(CAPTIONS)})" if i >= len(CAPTIONS) else "")
            for i in range(n)]


def machine() -> str:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical CPUs"


def _fmt_rate(flops, secs, peak):
    if flops <= 0 or secs <= 0:
        return "      -       -"
    r = flops / secs
    return f"{r / 1e9:7.1f} {100 * r / peak:6.1f}%"


def print_batch(r, peak):
    b = r["batch"]
    p, q = r["project"], r["reference"]
    print(f"\n== batch {b}: {len(p['wall'])} runs each, load average before {r['load_before']} after {r['load_after']}")
    print(f"   wall  project {p['wall_median']:8.2f} s   reference {q['wall_median']:8.2f} s   "
          f"reference/project x{r['ratio_wall']:.2f}   (runs: project {_l(p['wall'])}, reference {_l(q['wall'])})")
    print(f"   CPU   project {p['cpu_median']:8.2f} s   reference {q['cpu_median']:8.2f} s   "
          f"reference/project x{r['ratio_cpu']:.2f}")
    print(f"   {'':<10}| {'project':<42}| reference")
    head = f"{'wall s':>8} {'CPU s':>7} {'GFLOP':>8} {'GFLOP/s':>7} {'%peak':>7} "
    print(f"   {'stage':<10}| {head}| {head}".rstrip())
    for st in STAGES:
        cells = []
        for x in (p["stages"][st], q["stages"][st]):
            cells.append(f"{x['s']:8.3f} {x['cpu_s']:7.3f} {x['flops'] / 1e9:8.2f} {_fmt_rate(x['flops'], x['s'], peak)} ")
        print(f"   {st:<10}| {cells[0]}| {cells[1]}".rstrip())


def _l(xs):
    return "/".join(f"{x:.2f}" for x in xs)


# ----------------------------------------------------------------------------------------------- main
def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, nargs="+", default=None, help="batch sizes (default 1 8; quick: 1 2)")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per side and batch (default 3; quick: 2)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs per side and batch before timing")
    ap.add_argument("--threads", type=int, default=None, help="torch and FAISS threads (default: torch's)")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--flops-batch", type=int, default=1,
                    help="batch size of the FLOP-counting run (FLOPs are scaled from it; default 1)")
    ap.add_argument("--quick", action="store_true", help="tiny models and database (seconds), for tests")
    ap.add_argument("--no-check", action="store_true", help="skip the token-id agreement check")
    ap.add_argument("--json", type=str, default=None, help="also write the results to this file")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
        import faiss

        faiss.omp_set_num_threads(a.threads)
    batches = a.batch or ([1, 2] if a.quick else [1, 8])
    repeats = a.repeats or (2 if a.quick else 3)
    load_start = load()
    models, text, db, s = build(a.quick, a.seed)
    frames, steps = a.frames or s["frames"], a.steps or s["steps"]
    sides = Sides(models, text, db, frames, steps, a.seed)
    peak = matmul_peak(s["peak_n"])
    info = {"machine": machine(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "sizes": "quick" if a.quick else "released", "frames": frames, "steps": steps, "database": len(db),
            "matmul_peak_flops": peak, "matmul_peak_n": s["peak_n"], "load_start": load_start,
            "flops_method": f"FlopCounterMode per stage at batch {a.flops_batch}, scaled by batch; retrieval + "
                            "analytic 2ND per query; joints (numpy) not counted"}
    print(f"machine: {info['machine']}; torch {info['torch']}, {info['threads']} threads; {info['sizes']} sizes, "
          f"{frames} frames, {steps} steps, database {len(db)}; fp32 matmul peak "
          f"{peak / 1e9:.1f} GFLOP/s (n={s['peak_n']}); load average {load_start}")

    fb = a.flops_batch
    flops = {side: sides.count_flops(side, prompts_for(fb)) for side in ("project", "reference")}
    results = []
    for b in batches:
        prompts = prompts_for(b)
        lb = load()
        for _ in range(a.warmup):
            sides.run("project", prompts)
            sides.run("reference", prompts)
        runs = {"project": [], "reference": []}
        for r in range(repeats):
            order = ("project", "reference") if r % 2 == 0 else ("reference", "project")
            for side in order:
                w, c, st, _ = sides.run(side, prompts)
                runs[side].append((w, c, st))
        entry = {"batch": b, "load_before": lb, "load_after": load()}
        for side, rr in runs.items():
            stages = {}
            for st in STAGES:
                secs = statistics.median(x[2][st][0] for x in rr)
                cpu = statistics.median(x[2][st][1] for x in rr)
                fl = round(flops[side][st] * b / fb)
                stages[st] = {"s": secs, "cpu_s": cpu, "flops": fl,
                              "flops_per_s": fl / secs if secs > 0 and fl > 0 else None,
                              "frac_peak": fl / secs / peak if secs > 0 and fl > 0 else None}
            entry[side] = {"wall": [x[0] for x in rr], "cpu": [x[1] for x in rr],
                           "wall_median": statistics.median(x[0] for x in rr),
                           "cpu_median": statistics.median(x[1] for x in rr), "stages": stages}
        entry["ratio_wall"] = entry["reference"]["wall_median"] / entry["project"]["wall_median"]
        entry["ratio_cpu"] = entry["reference"]["cpu_median"] / entry["project"]["cpu_median"]
        results.append(entry)
        print_batch(entry, peak)

    out = {**info, "results": results}
    if not a.no_check:
        out["agreement"] = sides.agreement(prompts_for(min(batches)))
        print(f"\nagreement at batch {min(batches)}, seed {a.seed} "
              "(fraction of equal token ids; largest feature difference):")
        for label, rep in out["agreement"].items():
            fr = ", ".join(f"{k} {v:.4f}" for k, v in rep["ids_equal_fraction"].items())
            print(f"   {label:<19}: {fr}; features {rep['features_max_abs_diff']:.2e}; "
                  f"reference motions valid: {rep['shapes_ok']}")
    out["load_end"] = load()
    print(f"load average at the end {out['load_end']}")
    print("BENCH_JSON " + json.dumps(out))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
