"""The training stages, in the official order: Part-TMR, retrieval database, RVQ-VAE, masked transformers
(aux + ts), residual transformers, length estimator.

Every stage reads what earlier stages exported into ``out`` (see backend/generation/project_weights.py), trains with a
resumable checkpoint under ``state_dir/<stage>``, logs losses as JSON lines, evaluates on the held-out split
(held-out phrasings) and exports its weights into ``out``.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from backend.models.part_tmr import ClipTokenizer, PartTMR, PartTMRConfig, save_part_tmr, whole2parts
from backend.generation.project_weights import load_module, load_text_model, save_module
from backend.train.common import StageState, run_loop
from backend.train.dataset import build_datasets

N_LENGTH_CLASSES = 50


# ------------------------------------------------------------------------------------------- context ---
@dataclass
class Context:
    cfg: dict
    out: Path
    state_dir: Path
    resume: bool = False
    progress: bool = True
    _data: tuple | None = None

    def data(self):
        """(normalizer, windows, train TextMotionDataset, test TextMotionDataset), built once."""
        if self._data is None:
            c = self.cfg["corpus"]
            self._data = build_datasets(c["n_train"], c["n_test"], c["seed"], window=self.cfg["vq"]["window"],
                                        captions_per_clip=c.get("captions_per_clip", 1), mocap=c.get("mocap"),
                                        noun_phrases=bool(c.get("noun_phrases", False)))
            self.out.mkdir(parents=True, exist_ok=True)
            self._data[0].save(self.out)
        return self._data

    def gen(self, stage: str) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(sum(map(ord, stage)) + self.cfg["corpus"]["seed"])
        return g


def _batches(n: int, bs: int, g: torch.Generator):
    while True:
        perm = torch.randperm(n, generator=g)
        for s in range(0, n - bs + 1 if n >= bs else 1, bs):
            yield perm[s:s + bs]


def _bucketed_batches(lengths, bs: int, g: torch.Generator, chunk: int = 16):
    """Endless batches of indices whose lengths are close: every epoch is a fresh permutation cut into
    chunks of ``chunk`` batches, each chunk sorted by length and cut into batches, the batches then shuffled.
    Padding (and so compute) drops to near the batch's own lengths, while batches stay random."""
    lengths = torch.as_tensor(lengths)
    n = len(lengths)
    bs = min(bs, n)
    while True:
        perm = torch.randperm(n, generator=g)
        batches = []
        for s in range(0, n, bs * chunk):
            part = perm[s:s + bs * chunk]
            part = part[lengths[part].argsort(stable=True)]
            batches += [part[k:k + bs] for k in range(0, len(part) - bs + 1, bs)]
        for k in torch.randperm(len(batches), generator=g):
            yield batches[int(k)]


class CaptionVariants:
    """Every phrasing of every clip, flattened: ``texts`` (F,), ``offsets`` (N+1,) into it, and ``pick``
    to draw one phrasing per clip (the first when no generator is given)."""

    def __init__(self, items):
        vs = [tuple(getattr(it, "variants", None) or (it.caption,)) for it in items]
        self.texts = [t for v in vs for t in v]
        self.counts = torch.tensor([len(v) for v in vs])
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), self.counts.cumsum(0)])
        self.clip_of = torch.repeat_interleave(torch.arange(len(vs)), self.counts)

    def pick(self, idx, g: torch.Generator | None = None) -> torch.Tensor:
        idx = torch.as_tensor(idx, dtype=torch.long)
        if g is None:
            return self.offsets[idx]
        k = (torch.rand(len(idx), generator=g) * self.counts[idx]).long()
        return self.offsets[idx] + k


def _motion_batch(ds, idx, max_frames):
    items = [ds[int(i)] for i in idx]
    m = torch.stack([it["motion"][:max_frames] for it in items])
    return m, [it["caption"] for it in items]


# ------------------------------------------------------------------------------------------ Part-TMR ---
def part_tmr_config(c: dict) -> PartTMRConfig:
    t = c["text"]
    clip = dict(embed_dim=t["width"], vision_cfg=dict(image_size=32, layers=1, width=64, patch_size=16),
                text_cfg=dict(context_length=t["context_length"], vocab_size=49408, width=t["width"],
                              heads=t["heads"], layers=t["layers"]))
    return PartTMRConfig(text_tower="clip", mode="t2m", motion_embedding_dims=c["motion_embedding_dims"],
                         text_embedding_dims=t["width"], projection_dims=c["projection_dims"],
                         dropout=c["dropout"], num_layers=c["num_layers"], num_heads=c["num_heads"],
                         ff_size=c["ff_size"], max_len=c["max_len"], embed_dim=c["projection_dims"],
                         queue_size=c["queue_size"], part_queue_size=None, momentum=c["momentum"], clip=clip,
                         with_momentum=True, with_vision=False)


_PAIRS = (("motion_encoder", "motion_encoder_m"), ("motion_projection", "motion_projection_m"),
          ("text_encoder", "text_encoder_m"), ("text_projection", "text_projection_m"))


def bimoco_loss(model: PartTMR, parts, tokens, same_caption: torch.Tensor, temperature: float):
    """Bidirectional momentum contrast: online motion queries against momentum text keys (this batch + the
    text queue) and online text queries against momentum motion keys (batch + motion queue). In-batch
    pairs with identical captions are not treated as negatives. Returns (loss, keys_motion, keys_text)."""
    qm = F.normalize(model.motion_projection(model.motion_encoder(parts)), dim=-1)
    qt = F.normalize(model.text_projection(model.text_encoder(tokens)), dim=-1)
    with torch.no_grad():
        m = model.config.momentum
        for a, b in _PAIRS:
            for p, pm in zip(getattr(model, a).parameters(), getattr(model, b).parameters()):
                pm.mul_(m).add_(p.detach(), alpha=1 - m)
        km = F.normalize(model.motion_projection_m(model.motion_encoder_m(parts)), dim=-1)
        kt = F.normalize(model.text_projection_m(model.text_encoder_m(tokens)), dim=-1)
    b = qm.shape[0]
    eye = torch.eye(b, dtype=torch.bool)
    neg_mask = same_caption & ~eye

    def nce(q, k, queue):
        inb = (q @ k.t()).masked_fill(neg_mask, float("-inf"))
        logits = torch.cat([inb, q @ queue.clone().detach()], 1) / temperature
        return F.cross_entropy(logits, torch.arange(b))

    loss = 0.5 * (nce(qm, kt, model.text_queue) + nce(qt, km, model.motion_queue))
    return loss, km, kt


def _enqueue(model: PartTMR, km, kt):
    k = model.text_queue.shape[1]
    b = km.shape[0]
    ptr = int(model.queue_ptr[0])
    idx = (torch.arange(b) + ptr) % k
    model.motion_queue[:, idx] = km.t()
    model.text_queue[:, idx] = kt.t()
    model.queue_ptr[0] = (ptr + b) % k


@torch.no_grad()
def encode_motions(model, motions: torch.Tensor, bs: int = 64) -> torch.Tensor:
    out = []
    for s in range(0, len(motions), bs):
        out.append(model.encode_motion(whole2parts(motions[s:s + bs])))
    return torch.cat(out)


@torch.no_grad()
def encode_texts(model, texts: list[str], bs: int = 256) -> torch.Tensor:
    return torch.cat([model.encode_text(texts[s:s + bs]) for s in range(0, len(texts), bs)])


def retrieval_metrics(model, test_ds, max_frames: int) -> dict:
    """Text -> motion retrieval over the held-out split: R@1/R@5 by instance and R@1 by family (the top
    motion's family equals the caption's family; the corpus has several clips per family)."""
    model.eval()
    motions = torch.stack([test_ds[i]["motion"][:max_frames] for i in range(len(test_ds))])
    fam = [it.family for it in test_ds.items]
    caps = [it.caption for it in test_ds.items]
    m = F.normalize(encode_motions(model, motions), dim=-1)
    t = F.normalize(encode_texts(model, caps), dim=-1)
    sim = t @ m.t()
    order = sim.argsort(1, descending=True)
    n = len(caps)
    r1 = float((order[:, 0] == torch.arange(n)).float().mean())
    r5 = float((order[:, :5] == torch.arange(n)[:, None]).any(1).float().mean())
    fr1 = float(np.mean([fam[int(order[i, 0])] == fam[i] for i in range(n)]))
    return {"t2m_R@1": r1, "t2m_R@5": r5, "t2m_family_R@1": fr1, "n_test": n}


def train_part_tmr(ctx: Context) -> dict:
    c = ctx.cfg["part_tmr"]
    norm, _, train, test = ctx.data()
    torch.manual_seed(ctx.cfg["corpus"]["seed"])
    model = PartTMR(part_tmr_config(c), ClipTokenizer(c["text"]["context_length"]))
    if c["dropout"] == 0:  # also inside the part transformers (attention dropout is costly on a CPU)
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
            if isinstance(m, torch.nn.MultiheadAttention):
                m.dropout = 0.0
    for a, b in _PAIRS:
        getattr(model, b).load_state_dict(getattr(model, a).state_dict())
        for p in getattr(model, b).parameters():
            p.requires_grad_(False)
    params = [p for n, p in model.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=c["lr"], weight_decay=0.01)
    var = CaptionVariants(train.items)
    tokens_all = model.tokenizer(var.texts)["input_ids"]
    cap_id = torch.tensor(np.unique(var.texts, return_inverse=True)[1])
    g = ctx.gen("part_tmr")
    batches = _batches(len(train), min(c["batch_size"], len(train)), g)
    mf = c["max_frames"]

    def step(_):
        idx = next(batches)
        f = var.pick(idx, g)  # one of the clip's phrasings, drawn afresh every time it is seen
        motions = torch.stack([train[int(i)]["motion"][:mf] for i in idx])
        parts = whole2parts(motions)
        same = cap_id[f][:, None] == cap_id[f][None, :]
        loss, km, kt = bimoco_loss(model, parts, {"input_ids": tokens_all[f]}, same, c["temperature"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            _enqueue(model, km, kt)
        return {"loss": loss.item()}

    st = StageState(ctx.state_dir, "part_tmr")
    run = run_loop(st, {"model": model}, opt, step, c["steps"], c["minutes"], ctx.resume, "part_tmr",
                   progress=ctx.progress)
    metrics = retrieval_metrics(model, test, mf)
    save_part_tmr(model, ctx.out / "part_tmr")
    return {**run, "eval": metrics}


# ------------------------------------------------------------------------------------------ database ---
def build_starter_database(ctx: Context) -> dict:
    from backend.retrieval.database import build_database

    norm, _, train, test = ctx.data()
    text = load_text_model(ctx.out)
    mf = ctx.cfg["part_tmr"]["max_frames"]
    motions = [train.data[i] for i in range(len(train))]
    captions = [it.caption for it in train.items]
    ids = [f"synth{i:05d}_0" for i in range(len(train))]
    t0 = time.monotonic()
    db = build_database(text, text, motions, captions, ids, ctx.out / "database", max_motion_length=mf)
    # held-out texts against the database: does the top entry have the caption's family?
    from backend.retrieval.retriever import Retriever

    r = Retriever(text, db)
    fam_train = [it.family for it in train.items]
    out = r([it.caption for it in test.items], k=1)
    hit = np.mean([fam_train[int(out.indices[i, 0])] == test.items[i].family for i in range(len(test))])
    return {"entries": len(db), "seconds": round(time.monotonic() - t0, 1),
            "eval": {"test_text_to_database_family_R@1": float(hit)}}


# ------------------------------------------------------------------------------------------- RVQ-VAE ---
class EMACodebooks:
    """EMA codebook updates with dead-code reset (the reference's QuantizeEMAReset behaviour) for every
    layer of a ResidualQuantizer (whose codebooks are buffers)."""

    def __init__(self, quantizer, decay: float = 0.99):
        self.q, self.decay = quantizer, decay
        nb, d = quantizer.layers[0].codebook.shape
        nq = len(quantizer.layers)
        self.count = torch.ones(nq, nb)
        self.sum = torch.zeros(nq, nb, d)
        self.initialised = torch.zeros(nq, dtype=torch.bool)

    def state(self, prefix: str) -> dict:
        return {f"{prefix}.count": self.count, f"{prefix}.sum": self.sum,
                f"{prefix}.init": self.initialised.to(torch.uint8)}

    def load(self, extra: dict, prefix: str) -> None:
        self.count = extra[f"{prefix}.count"].clone()
        self.sum = extra[f"{prefix}.sum"].clone()
        self.initialised = extra[f"{prefix}.init"].bool().clone()

    @torch.no_grad()
    def _rand(self, x: torch.Tensor, nb: int) -> torch.Tensor:
        if x.shape[0] < nb:
            x = x.repeat((nb + x.shape[0] - 1) // x.shape[0], 1)
            x = x + 0.01 * x.std() * torch.randn_like(x)
        return x[torch.randperm(x.shape[0])[:nb]]

    @torch.no_grad()
    def update(self, layer: int, x: torch.Tensor, idx: torch.Tensor) -> None:
        cb = self.q.layers[layer].codebook
        nb = cb.shape[0]
        cnt = torch.bincount(idx, minlength=nb).float()
        s = torch.zeros_like(cb).index_add_(0, idx, x)
        self.sum[layer] = self.decay * self.sum[layer] + (1 - self.decay) * s
        self.count[layer] = self.decay * self.count[layer] + (1 - self.decay) * cnt
        usage = (self.count[layer] >= 1.0).float()[:, None]
        new = self.sum[layer] / self.count[layer].clamp(min=1e-6)[:, None]
        cb.copy_(usage * new + (1 - usage) * self._rand(x, nb))

    @torch.no_grad()
    def init_from(self, layer: int, x: torch.Tensor) -> None:
        cb = self.q.layers[layer].codebook
        cb.copy_(self._rand(x, cb.shape[0]))
        self.sum[layer] = cb.clone()
        self.count[layer] = torch.ones(cb.shape[0])
        self.initialised[layer] = True


def quantize_train(quantizer, ema: EMACodebooks | None, x: torch.Tensor, n_active: int):
    """x (N, D, T) latents -> (straight-through quantised (N, T, D), commitment loss, perplexity of layer 0).
    Updates the codebooks by EMA when ``ema`` is given."""
    n, d, t = x.shape
    flat = x.permute(0, 2, 1).reshape(n * t, d)
    total = torch.zeros_like(flat)
    commit = flat.new_zeros(())
    ppl = 0.0
    for i, layer in enumerate(quantizer.layers[:n_active]):
        r = flat - total.detach()
        if ema is not None and not bool(ema.initialised[i]):
            ema.init_from(i, r.detach())
        idx = layer.nearest(r.detach())
        q = layer.codebook[idx]
        commit = commit + F.mse_loss(r, q.detach())
        if ema is not None:
            ema.update(i, r.detach(), idx)
            q = layer.codebook[idx]
        if i == 0:
            p = torch.bincount(idx, minlength=layer.codebook.shape[0]).float()
            p = p / p.sum()
            ppl = float(torch.exp(-(p * (p + 1e-10).log()).sum()))
        total = total + q.detach()
    st = flat + (total - flat).detach()
    return st.reshape(n, t, d), commit, ppl


def vq_forward(vq, feat: torch.Tensor, ema1=None, ema2=None, n_active: int | None = None):
    """Training forward of the two-branch RVQ-VAE: (reconstruction (B,T,263), commitment loss, perplexity)."""
    nq = vq.num_quantizers if n_active is None else n_active
    b = feat.shape[0]
    z1 = vq.encoder1d(feat.permute(0, 2, 1))
    q1, c1, ppl = quantize_train(vq.quantizer1d, ema1, z1, nq)  # (B, T', D1)
    x2 = F.pad(vq.features_to_jointwise(feat), (0, 0, 1, 1))
    z2 = vq.encoder2d(x2.permute(0, 3, 1, 2))  # (B, D2, T', J)
    _, d, tt, jj = z2.shape
    q2, c2, _ = quantize_train(vq.quantizer2d, ema2, z2.permute(0, 3, 1, 2).reshape(b * jj, d, tt), nq)
    return decode_latents(vq, q1.permute(0, 2, 1), q2, b, jj), c1 + c2, ppl


def decode_latents(vq, q1: torch.Tensor, q2: torch.Tensor, b: int, j: int) -> torch.Tensor:
    """Same combination as RVQVAE.decode, from quantised latents q1 (B, D1, T') and q2 (B*J, T', D2)."""
    out1d = vq.decoder1d(q1).permute(0, 2, 1)
    t, d = q2.shape[1], q2.shape[2]
    merged = q2.reshape(b, j, t, d).permute(0, 2, 1, 3).reshape(b * t, j * d)
    merged = vq.linear_merge(merged).reshape(b, t, j, d).permute(0, 3, 1, 2)
    x2 = vq.decoder2d(merged).permute(0, 2, 3, 1)
    return vq.linear_out(torch.cat([out1d, vq.jointwise_to_features(x2[:, :, 1:-1, :])], -1))


_POS = slice(4, 4 + 21 * 3)


def vq_eval(vq, norm, test) -> dict:
    from backend.motion.features import features_to_joints

    errs, l1 = [], []
    with torch.no_grad():
        for i in range(len(test)):
            it = test[i]
            n = it["length"]
            x = it["motion"][None, :n]
            rec = vq.decode(*vq.encode(x))
            l1.append(float((rec - x).abs().mean()))
            j_rec = features_to_joints(norm.denormalize(rec[0].numpy()))
            j_gt = features_to_joints(norm.denormalize(x[0].numpy()))
            errs.append(float(np.linalg.norm(j_rec - j_gt, axis=-1).mean()))
    return {"feature_l1": float(np.mean(l1)), "mpjpe_m": float(np.mean(errs)), "n_test": len(test)}


def train_vq(ctx: Context) -> dict:
    from backend.models.vq import RVQVAE, VQConfig

    c = ctx.cfg["vq"]
    norm, windows, train, test = ctx.data()
    torch.manual_seed(ctx.cfg["corpus"]["seed"] + 1)
    vq = RVQVAE(VQConfig(code_dim1d=c["code_dim1d"], nb_code1d=c["nb_code1d"], code_dim2d=c["code_dim2d"],
                         nb_code2d=c["nb_code2d"], num_quantizers=c["num_quantizers"], width=c["width"],
                         depth=c["depth"]))
    ema1, ema2 = EMACodebooks(vq.quantizer1d), EMACodebooks(vq.quantizer2d)
    opt = torch.optim.AdamW(vq.parameters(), lr=c["lr"], betas=(0.9, 0.99), weight_decay=0.0)
    g = ctx.gen("vq")
    if windows.skipped:
        print(f"[train] vq: {windows.n_skipped} clips are shorter than the {windows.window}-frame window and are "
              f"not seen ({', '.join(windows.skipped[:8])}{', ...' if len(windows.skipped) > 8 else ''})",
              file=sys.stderr, flush=True)
    if c.get("sampling", "window") == "clip":  # every clip equally often (dataset.clip_balanced_batches)
        batches = windows.clip_balanced_batches(c["batch_size"], g)
    else:
        idx_batches = _batches(len(windows), min(c["batch_size"], len(windows)), g)
        batches = (torch.stack([windows[int(i)] for i in idx]) for idx in idx_batches)

    def step(_):
        x = next(batches)
        nq = vq.num_quantizers
        if float(torch.rand((), generator=g)) < c["quantize_dropout"]:
            nq = int(torch.randint(1, vq.num_quantizers + 1, (), generator=g))
        rec, commit, ppl = vq_forward(vq, x, ema1, ema2, nq)
        l_rec = F.smooth_l1_loss(rec, x)
        l_vel = F.smooth_l1_loss(rec[..., _POS], x[..., _POS])
        loss = l_rec + c["vel"] * l_vel + c["commit"] * commit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vq.parameters(), 1.0)
        opt.step()
        return {"loss": loss.item(), "rec": l_rec.item(), "commit": commit.item(), "perplexity": ppl}

    def extra():
        return {**ema1.state("ema1"), **ema2.state("ema2")}

    def load_extra(e):
        ema1.load(e, "ema1")
        ema2.load(e, "ema2")

    st = StageState(ctx.state_dir, "vq")
    run = run_loop(st, {"vq": vq}, opt, step, c["steps"], c["minutes"], ctx.resume, "vq", extra_fn=extra,
                   load_extra=load_extra, progress=ctx.progress)
    metrics = vq_eval(vq, norm, test)
    save_module(vq, ctx.out, "vq")
    return {**run, "eval": metrics, "window": windows.window, "clips_not_seen": windows.n_skipped}


# ------------------------------------------------------------------------------- token data (stages 4-6) ---
@dataclass
class TokenData:
    ids1d: list          # per clip (T', Q) long
    ids2d: list          # per clip (T', 6, Q) long
    cond: torch.Tensor   # (F, clip_dim) Part-TMR text embeddings, one row per phrasing (variants)
    re_motion: torch.Tensor  # (F, D) motion embedding retrieved for that phrasing (never the clip itself; only
    #                          among the entries a shipped folder keeps: shipped_rows)
    re_text: torch.Tensor    # (F, D)
    tokens: torch.Tensor     # (N,) token lengths
    captions: list           # (N,) each clip's first phrasing
    variants: CaptionVariants
    retrieval_ids: np.ndarray  # ids of the database rows retrieved from (shipped_rows)
    database_entries: int


@torch.no_grad()
def token_data(ctx: Context, split: str) -> TokenData:
    from backend.retrieval.database import load_database

    norm, _, train, test = ctx.data()
    ds = train if split == "train" else test
    vq = load_module(ctx.out, "vq")
    text = load_text_model(ctx.out)
    db = load_database(ctx.out / "database")
    ids1d, ids2d, toks = [], [], []
    for i in range(len(ds)):
        it = ds[i]
        n = min(it["length"], 4 * (N_LENGTH_CLASSES - 1))
        a, b = vq.encode(it["motion"][None, :n])
        ids1d.append(a[0])
        ids2d.append(b[0])
        toks.append(a.shape[1])
    var = CaptionVariants(ds.items)
    cond = encode_texts(text, var.texts).float()
    q = F.normalize(cond, dim=-1)
    rows = torch.from_numpy(shipped_rows(ctx.cfg, db.motion_ids))
    mem = torch.from_numpy(db.motion_emb.reshape(len(db), -1))[rows]
    sims = q @ F.normalize(mem, dim=-1).t()
    if split == "train":  # a clip never retrieves itself: the first rows are the training clips', in order
        own = var.clip_of < _clip_rows(ctx.cfg, len(db))
        sims[torch.arange(len(var.texts))[own], var.clip_of[own]] = float("-inf")
    j = sims.argmax(1)
    return TokenData(ids1d, ids2d, cond, mem[j], torch.from_numpy(db.text_emb.reshape(len(db), -1))[rows][j],
                     torch.tensor(toks), [it.caption for it in ds.items], var, db.motion_ids[rows.numpy()], len(db))


def _clip_rows(cfg: dict, n_db: int) -> int:
    """How many of the database's first rows are training clips in corpus order: all of them, or with real motion
    in the corpus the ``n_train`` procedural ones (the real windows' rows follow, or were removed for shipping)."""
    if (cfg.get("corpus") or {}).get("mocap"):
        return min(int(cfg["corpus"]["n_train"]), n_db)
    return n_db


def shipped_rows(cfg: dict, motion_ids) -> np.ndarray:
    """The database rows the masked transformers retrieve from in training: the ones a shipped folder keeps. With
    real motion in the corpus, the ``n_train`` procedural clips' (the first rows) and any stand-ins (``gen*`` ids,
    backend/train/ship.py), because ``ship`` removes the real windows' entries; training with retrieval over them
    taught the transformers to lean on entries that are gone at generation time (starter 2: everyday held-out
    action 69 % with them, 61 % without; README "Starter 2")."""
    from backend.train.ship import is_stand_in

    n_db = len(motion_ids)
    n = _clip_rows(cfg, n_db)
    extra = [i for i in range(n, n_db) if is_stand_in(str(motion_ids[i]))]
    return np.asarray(list(range(n)) + extra, dtype=np.int64)


def _pad_stack(seqs, pad_value):
    t = max(s.shape[0] for s in seqs)
    out = torch.full((len(seqs), t) + tuple(seqs[0].shape[1:]), pad_value, dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        out[i, :s.shape[0]] = s
    return out


def _random_mask(valid: torch.Tensor, g: torch.Generator, ratio: torch.Tensor | None = None) -> torch.Tensor:
    """valid (B,N) -> mask (B,N): per row ceil(cos(pi/2 u) * n_valid) random valid positions (>= 1)."""
    b, n = valid.shape
    if ratio is None:
        ratio = torch.cos(torch.rand(b, generator=g) * math.pi / 2)
    n_valid = valid.sum(1)
    k = (ratio * n_valid).ceil().clamp(min=1).long()
    scores = torch.rand(b, n, generator=g).masked_fill(~valid, 2.0)
    rank = scores.argsort(1).argsort(1)
    return (rank < k[:, None]) & valid


def _bert_corrupt(ids, mask, mask_id, num_tokens, g):
    x = ids.clone()
    u = torch.rand(ids.shape, generator=g)
    rand_tok = torch.randint(0, num_tokens, ids.shape, generator=g)
    x = torch.where(mask & (u < 0.8), torch.full_like(x, mask_id), x)
    x = torch.where(mask & (u >= 0.8) & (u < 0.9), rand_tok, x)
    return x


def mask_losses(aux, ts, batch: dict, g: torch.Generator, cond_drop: float, ratio=None):
    """Masked-token cross-entropy of both branches; returns (loss_aux, loss_ts, acc_aux, acc_ts)."""
    from backend.models.mask_transformer import COND_NONE, COND_TEXT_AND_RETRIEVAL
    from backend.models.transformer_common import length_mask

    ids1, ids2, lens, cond = batch["ids1d"][..., 0], batch["ids2d"][..., 0], batch["tokens"], batch["cond"]
    b, t = ids1.shape
    valid = length_mask(lens, t)
    drop = torch.rand(b, generator=g) < cond_drop
    # 1D aux branch
    m1 = _random_mask(valid, g, ratio)
    x1 = _bert_corrupt(ids1, m1, aux.mask_id, aux.cfg.num_tokens, g)
    x1 = torch.where(valid, x1, torch.full_like(x1, aux.pad_id))
    c1 = torch.where(drop[:, None], torch.zeros_like(cond), cond)
    lg1 = aux.trans_forward(x1, c1, ~valid)
    lab1 = torch.where(m1, ids1, torch.full_like(ids1, -100))
    la = F.cross_entropy(lg1.reshape(-1, lg1.shape[-1]), lab1.reshape(-1), ignore_index=-100, label_smoothing=0.1)
    # 2D ts branch
    j = ids2.shape[2]
    valid2 = valid[..., None].expand(b, t, j).reshape(b, t * j)
    m2 = _random_mask(valid2, g, ratio)
    flat2 = ids2.reshape(b, t * j)
    x2 = _bert_corrupt(flat2, m2, ts.mask_id, ts.cfg.num_tokens, g)
    x2 = torch.where(valid2, x2, torch.full_like(x2, ts.pad_id)).reshape(b, t, j)
    ct = torch.where(drop, float(COND_NONE), float(COND_TEXT_AND_RETRIEVAL)).reshape(b, 1, 1)
    lg2 = ts.trans_forward(x2, cond, ~valid2.reshape(b, t, j), ct, batch["re_motion"][:, None],
                           batch["re_text"][:, None])
    lab2 = torch.where(m2, flat2, torch.full_like(flat2, -100))
    lt = F.cross_entropy(lg2.reshape(-1, lg2.shape[-1]), lab2.reshape(-1), ignore_index=-100, label_smoothing=0.1)
    with torch.no_grad():
        acc1 = float((lg1.argmax(-1) == ids1)[m1].float().mean())
        acc2 = float((lg2.argmax(-1) == flat2)[m2].float().mean())
    return la, lt, acc1, acc2


def _collate(td: TokenData, idx, g: torch.Generator | None = None) -> dict:
    """A batch of clips; with ``g`` each clip's text condition is one of its phrasings drawn at random."""
    idx = [int(i) for i in idx]
    f = td.variants.pick(idx, g)
    return {"ids1d": _pad_stack([td.ids1d[i] for i in idx], 0), "ids2d": _pad_stack([td.ids2d[i] for i in idx], 0),
            "tokens": td.tokens[idx], "cond": td.cond[f], "re_motion": td.re_motion[f],
            "re_text": td.re_text[f]}


def _tcfg(c: dict, code_dim: int, num_tokens: int, clip_dim: int, nq: int, **kw):
    from backend.models.transformer_common import TransformerConfig

    return TransformerConfig(code_dim=code_dim, num_tokens=num_tokens, latent_dim=c["latent_dim"],
                             ff_size=c["ff_size"], num_layers=c["num_layers"], num_heads=c["num_heads"],
                             dropout=c["dropout"], clip_dim=clip_dim, attnj=False, attnt=False,
                             num_quantizers=nq, **kw)


def _freeze_tables(*mods):
    for m in mods:
        for n, p in m.named_parameters():
            if n.endswith(("position_enc.pe", "position2d_enc.pe")):
                p.requires_grad_(False)


def train_mask(ctx: Context) -> dict:
    from backend.models.mask_transformer import MaskTransformer, MaskTransformer2D
    from backend.train.ship import is_stand_in

    c = ctx.cfg["mask"]
    vq = load_module(ctx.out, "vq")
    tr, te = token_data(ctx, "train"), token_data(ctx, "test")
    clip_dim = tr.cond.shape[1]
    vc = vq.cfg
    torch.manual_seed(ctx.cfg["corpus"]["seed"] + 2)
    aux = MaskTransformer(_tcfg(c, vc.code_dim1d, vc.nb_code1d, clip_dim, vc.num_quantizers))
    ts = MaskTransformer2D(_tcfg(c, vc.code_dim2d, vc.nb_code2d, clip_dim, vc.num_quantizers))
    _freeze_tables(aux, ts)
    params = [p for m in (aux, ts) for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=c["lr"], betas=(0.9, 0.99), weight_decay=1e-5)
    g = ctx.gen("mask")
    batches = _bucketed_batches(tr.tokens, c["batch_size"], g)

    def step(_):
        la, lt, a1, a2 = mask_losses(aux, ts, _collate(tr, next(batches), g), g, c["cond_drop"])
        loss = la + lt
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return {"loss": loss.item(), "loss_aux": la.item(), "loss_ts": lt.item(), "acc_aux": a1, "acc_ts": a2}

    st = StageState(ctx.state_dir, "mask")
    run = run_loop(st, {"aux": aux, "ts": ts}, opt, step, c["steps"], c["minutes"], ctx.resume, "mask",
                   progress=ctx.progress)
    with torch.no_grad():
        ge = torch.Generator().manual_seed(0)
        la, lt, a1, a2 = mask_losses(aux, ts, _collate(te, range(len(te.captions))), ge, 0.0,
                                     ratio=torch.full((len(te.captions),), 0.5))
    # Training batches are length-bucketed, so they carry almost no padding; in generation a short motion can
    # share a batch with long ones, whose padding must not enter its attention: the exported model masks
    # padded keys. (A run that also masked them in training reached the same losses and did no better on the
    # semantic suite; README "Training and the starter model".)
    ts.cfg.mask_padding_keys = True
    save_module(aux, ctx.out, "mask_aux")
    save_module(ts, ctx.out, "mask_ts")
    return {**run, "retrieval_entries": len(tr.retrieval_ids), "database_entries": tr.database_entries,
            "retrieval_stand_ins": sum(is_stand_in(str(i)) for i in tr.retrieval_ids),
            "eval": {"test_loss_aux@50%": la.item(), "test_loss_ts@50%": lt.item(),
                     "test_acc_aux@50%": a1, "test_acc_ts@50%": a2}}


# ------------------------------------------------------------------------------------------ residual ---
def residual_losses(res_aux, res_ts, batch: dict, g: torch.Generator, cond_drop: float, layer: int | None = None):
    from backend.models.transformer_common import length_mask

    ids1, ids2, lens, cond = batch["ids1d"], batch["ids2d"], batch["tokens"], batch["cond"]
    b, t, q = ids1.shape
    j = ids2.shape[2]
    if layer is None:
        layer = int(torch.randint(1, q, (), generator=g))
    valid = length_mask(lens, t)
    drop = torch.rand(b, generator=g) < cond_drop
    c = torch.where(drop[:, None], torch.zeros_like(cond), cond)
    out = []
    for model, ids, v in ((res_aux, ids1, valid), (res_ts, ids2.reshape(b, t * j, q),
                                                     valid[..., None].expand(b, t, j).reshape(b, t * j))):
        emb, proj, bias = model.tables()
        x = torch.where(v[..., None], ids, torch.full_like(ids, model.pad_id))
        hist = sum(F.embedding(x[..., k], emb[k]) for k in range(layer))
        if model is res_aux:
            h = model.trans_forward(hist, layer, c, ~v)
        else:
            h = model.trans_forward(hist, layer, c, ~v, t, j)
        logits = model._project(h, layer, proj, bias)
        lab = torch.where(v, ids[..., layer], torch.full_like(ids[..., layer], -100))
        out.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), lab.reshape(-1), ignore_index=-100,
                                   label_smoothing=0.1))
    return out[0], out[1]


def train_residual(ctx: Context) -> dict:
    from backend.models.residual_transformer import ResidualTransformer, ResidualTransformer2D

    c = ctx.cfg["residual"]
    vq = load_module(ctx.out, "vq")
    tr, te = token_data(ctx, "train"), token_data(ctx, "test")
    clip_dim = tr.cond.shape[1]
    vc = vq.cfg
    torch.manual_seed(ctx.cfg["corpus"]["seed"] + 3)
    ra = ResidualTransformer(_tcfg(c, vc.code_dim1d, vc.nb_code1d, clip_dim, vc.num_quantizers, share_weight=True))
    rt = ResidualTransformer2D(_tcfg(c, vc.code_dim2d, vc.nb_code2d, clip_dim, vc.num_quantizers,
                                     share_weight=True))
    _freeze_tables(ra, rt)
    params = [p for m in (ra, rt) for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=c["lr"], betas=(0.9, 0.99), weight_decay=1e-5)
    g = ctx.gen("residual")
    batches = _bucketed_batches(tr.tokens, c["batch_size"], g)

    def step(_):
        la, lt = residual_losses(ra, rt, _collate(tr, next(batches), g), g, c["cond_drop"])
        loss = la + lt
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return {"loss": loss.item(), "loss_aux": la.item(), "loss_ts": lt.item()}

    st = StageState(ctx.state_dir, "residual")
    run = run_loop(st, {"aux": ra, "ts": rt}, opt, step, c["steps"], c["minutes"], ctx.resume, "residual",
                   progress=ctx.progress)
    ev = {}
    with torch.no_grad():
        batch = _collate(te, range(len(te.captions)))
        for layer in range(1, vc.num_quantizers):
            la, lt = residual_losses(ra, rt, batch, torch.Generator().manual_seed(0), 0.0, layer)
            ev[f"test_loss_layer{layer}"] = (la.item() + lt.item()) / 2
    save_module(ra, ctx.out, "res_aux")
    save_module(rt, ctx.out, "res_ts")
    return {**run, "eval": ev}


# -------------------------------------------------------------------------------------------- length ---
def train_length(ctx: Context) -> dict:
    from backend.models.length_estimator import LengthEstimator

    c = ctx.cfg["length"]
    norm, _, train, test = ctx.data()
    text = load_text_model(ctx.out)
    var = CaptionVariants(train.items)  # every phrasing of a clip predicts the clip's length
    cap_te = [it.caption for it in test.items]
    x_tr, x_te = encode_texts(text, var.texts).float(), encode_texts(text, cap_te).float()
    y_tr = torch.tensor([min(train[i]["tokens"], N_LENGTH_CLASSES - 1) for i in range(len(train))])[var.clip_of]
    y_te = torch.tensor([min(test[i]["tokens"], N_LENGTH_CLASSES - 1) for i in range(len(test))])
    torch.manual_seed(ctx.cfg["corpus"]["seed"] + 4)
    est = LengthEstimator(x_tr.shape[1], N_LENGTH_CLASSES, hidden=c["hidden"])
    opt = torch.optim.AdamW(est.parameters(), lr=c["lr"], weight_decay=1e-4)
    g = ctx.gen("length")
    batches = _batches(len(y_tr), min(c["batch_size"], len(y_tr)), g)

    def step(_):
        idx = next(batches)
        loss = F.cross_entropy(est(x_tr[idx]), y_tr[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    st = StageState(ctx.state_dir, "length")
    run = run_loop(st, {"estimator": est}, opt, step, c["steps"], c["minutes"], ctx.resume, "length",
                   warmup=10, progress=ctx.progress)
    with torch.no_grad():
        lg = est(x_te)
        ce = F.cross_entropy(lg, y_te).item()
        mean_tok = (lg.softmax(-1) * torch.arange(N_LENGTH_CLASSES)).sum(-1)
        mae = float((mean_tok - y_te).abs().mean() * 4)
    save_module(est, ctx.out, "length_estimator")
    return {**run, "eval": {"test_ce": ce, "test_mean_abs_error_frames": mae}}


STAGE_FNS = {"part_tmr": train_part_tmr, "database": build_starter_database, "vq": train_vq,
             "mask": train_mask, "residual": train_residual, "length": train_length}
