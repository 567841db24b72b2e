"""The reference generation path, restated on the project's modules (for bench/generation.py).

Read from AIGeeksGroup/ReMoMask at commit 77c0a2b (``demo.py``, ``models/transformer/transformer_aux.py``,
``models/transformer/transformer_ts.py``, ``models/transformer/semantics_modulated.py``,
``models/rag/t2m_retriever.py``, ``models/vq/model.py``, ``models/vq/residual_vq.py``), which follows
EricGuo5513/momask-codes ``gen_t2m.py``. Only the control flow is restated here, in this project's own code;
every weight is one of the project's modules, so both sides run the same numbers. What the reference does for a
list of captions, and what this module does in the same order:

1. ``retriever(captions)``: a Python loop over the captions. Each caption is tokenised and encoded alone, its
   embedding compared (cosine, both sides normalised again on every call) with all N database motion
   embeddings, the N scores fully sorted, and the order walked, skipping entries whose source motion (id before
   '_') was taken, until 10 are picked; the first k=1 are kept and their stored text/motion embeddings gathered.
2. All captions tokenised and encoded again, as one batch, outside ``no_grad`` (the conditioning vector).
3. Token lengths = frames // 4 (lengths given, as in this benchmark).
4. ``mask_transformer_aux.generate``: ONE call for the whole batch. Per unmasking step (cosine schedule): re-mask
   the lowest-confidence tokens, then a conditional forward pass and, separately, an unconditional one (text
   zeroed) over the whole batch, guidance ``u + (c - u) * scale``, top-k filter (ceil(0.1 V) kept), softmax,
   a categorical draw, confidences from the unfiltered softmax.
5. ``mask_transformer_ts.generate``: the same over T x 6 tokens; the conditional pass carries cond_type 99
   (text + retrieval), the unconditional one cond_type 0; SSTA attention written as matmul, softmax, matmul.
6. ``res_transformer_aux.generate``: ONE call. Concatenates the shared tables once, then per RVQ layer 1..Q-1:
   gathers the previous layer's token embeddings from a table expanded to (B, V, C), adds them to the running
   history, runs a conditional and (separately) an unconditional pass, projects each with per-sample copies of
   the layer's output table (``table[qids]`` then an einsum), guidance 5, top-k over ALL V ids (the padding id
   included), Gumbel-max draw, padding positions set to the padding id.
7. ``res_transformer_ts.generate``: the same on the 2D body (time, joint and per-joint time attention); if any
   id equals the mask id, the reference clips all ids to [0, mask_id - 1].
8. ``vq_model.forward_decoder``: ONE call on the whole batch at the longest length; the code vectors are
   gathered from the codebooks expanded to (Q, B, V, D), masked and summed; 1D decoder; 2D: linear_merge,
   2D decoder, joint-wise layout back to 263-d; linear_out on both.
9. Per motion: de-normalise, cut to its length, recover joints.

Random draws: the reference takes them from torch's global generator, one stream for the batch; here they come
from one ``torch.Generator`` for the batch, the one the project's pipeline gives its first motion
(``backend.models.sampling.row_generator(seed, 0)``; the pipeline gives each motion its own), drawn in the same
order and shapes (categorical draws of the two masked transformers, then Gumbel noise of the two residual ones), so
that at batch 1, where the two control flows compute the same logits, they draw the same ids.
"""

from __future__ import annotations

from contextlib import nullcontext
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from backend.models.mask_transformer import COND_NONE, COND_TEXT_AND_RETRIEVAL
from backend.models.sampling import cosine_schedule, row_generator, top_k_filter
from backend.models.transformer_common import length_mask
from backend.motion.features import features_to_joints

STAGES = ("text", "retrieval", "length", "mask_aux", "mask_ts", "res_aux", "res_ts", "decode", "joints")


# ----------------------------------------------------------------------------------------- sampling
def _categorical(filtered, gen):
    """Categorical(softmax(filtered)).sample(): probabilities re-normalised, one multinomial draw per row."""
    probs = F.softmax(filtered, dim=-1)
    probs = probs / probs.sum(-1, keepdim=True)
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, True, generator=gen).reshape(probs.shape[:-1])


def _gumbel_max(filtered, temperature, gen):
    """argmax(logits / t - log(-log(u))), each log of a value clamped at 1e-20."""
    u = torch.rand(filtered.shape, generator=gen, dtype=torch.float32)
    inner = -torch.log(u.clamp(min=1e-20))
    noise = -torch.log(inner.clamp(min=1e-20))
    return (filtered / max(temperature, 1e-10) + noise).argmax(dim=-1)


# ----------------------------------------------------------------------------------------- forward passes
def _ssta(layer, x, xf, src_mask, cond_type, re_motion, re_text):
    """One SSTA layer as the reference writes it (explicit scores, softmax, weighted sum); returns the update."""
    b, n, d = x.shape
    h = layer.num_heads
    hd = d // h
    use_text = (cond_type % 10 > 0).float()
    use_retr = (cond_type // 10 > 0).float()
    z = layer.norm(x)
    q = layer.query(z) * src_mask
    rm = re_motion.mean(dim=1, keepdim=True)
    rt = re_text.mean(dim=1, keepdim=True)
    info = layer.info_mlp(torch.cat([xf * use_text, rm * use_retr, rt * use_retr], dim=-1))
    k = layer.key(torch.cat([z, info], dim=1))
    v = layer.value(torch.cat([z, rm], dim=1))
    q = q.view(b, n, h, hd).transpose(1, 2)
    k = k.view(b, n + 1, h, hd).transpose(1, 2)
    v = v.view(b, n + 1, h, hd).transpose(1, 2)
    weights = F.softmax(torch.matmul(q, k.transpose(-2, -1)) * hd ** -0.5, dim=-1)
    out = torch.matmul(weights, v).transpose(1, 2).contiguous().view(b, n, d)
    return layer.out_proj(out)


def _mask_ts_logits(model, ids, cond, padding, cond_code, re_motion, re_text):
    """2D masked transformer, one pass: ids (B,T,J) -> logits (B, T*J, V) (a view of a (T*J, B, V) buffer)."""
    b, t, j = ids.shape
    cond_type = torch.zeros(b, 1, 1) + cond_code
    x = model.token_emb(ids)
    x = model.input_process(x.reshape(b, t * j, -1).permute(1, 0, 2))  # (T*J, B, D)
    x = model.position2d_enc(x.reshape(t, j, b, -1)).reshape(t * j, b, -1)
    hidden = x.permute(1, 0, 2)
    xf = (model.cond_emb(cond) if model.project_cond else cond)[:, None, :]
    src_mask = (~padding.reshape(b, t * j)).unsqueeze(-1)
    for layer in model.semanticTransEncoder:
        hidden = hidden + _ssta(layer, hidden, xf, src_mask, cond_type, re_motion, re_text)
    return model.output_process(hidden.permute(1, 0, 2)).permute(1, 0, 2)


def _guided(cond_pass, uncond_pass, scale):
    logits = cond_pass()
    if scale == 1:
        return logits
    uncond = uncond_pass()
    return uncond + (logits - uncond) * scale


# ----------------------------------------------------------------------------------------- generation stages
def _unmask(logits_fn, padding_flat, n_valid, mask_id, pad_id, steps, temperature, topk, gen, temp_on_probs):
    """Iterative unmasking over flat ids (B, N); logits_fn(flat ids) -> guided logits (B, N, V)."""
    ids = torch.where(padding_flat, pad_id, mask_id)
    scores = torch.where(padding_flat, 1e5, 0.0)
    for t in torch.linspace(0, 1, steps):
        n_mask = torch.round(cosine_schedule(t) * n_valid).clamp(min=1)
        is_mask = scores.argsort(dim=1).argsort(dim=1) < n_mask.unsqueeze(-1)
        ids = torch.where(is_mask, mask_id, ids)
        logits = logits_fn(ids)
        filtered = top_k_filter(logits, topk)
        # the 1D transformer divides the logits by the temperature, the 2D one the probabilities (no effect)
        pred = _categorical(filtered if temp_on_probs else filtered / temperature, gen)
        ids = torch.where(is_mask, pred, ids)
        scores = logits.softmax(dim=-1).gather(2, pred.unsqueeze(-1)).squeeze(-1).masked_fill(~is_mask, 1e5)
    return ids


def _project_out(proj, h, qids):
    """output_project: per-sample copies of the layer's table, (B,V,C) x (B,C,N) -> (B,V,N)."""
    return torch.einsum("bnc,bcs->bns", proj[qids], h.transpose(1, 2))


def _residual(model, base_flat, padding_flat, pass_fn, cond_scale, temperature, topk, gen,
              exclude_special=False):
    """base_flat (B,N) with -1 at padding -> (B,N,Q), -1 at padding. pass_fn(history, layer, uncond)."""
    emb, proj, _ = model.tables()  # process_embed_proj_weight: the shared tables concatenated per call
    b, n = base_flat.shape
    ids = torch.where(padding_flat, model.pad_id, base_flat)
    out, history = [ids], 0
    for layer in range(1, model.cfg.num_quantizers):
        table = emb[layer - 1].unsqueeze(0).expand(b, -1, -1)
        history = history + table.gather(1, ids.unsqueeze(-1).expand(-1, -1, table.shape[-1]))
        qids = torch.full((b,), layer, dtype=torch.long)
        logits = _guided(lambda: _project_out(proj, pass_fn(history, layer, False), qids - 1),
                         lambda: _project_out(proj, pass_fn(history, layer, True), qids - 1), cond_scale)
        logits = logits.permute(0, 2, 1)
        if exclude_special:  # the project's rule (not the reference's): never draw the padding / mask id
            logits = logits.clone()
            logits[..., model.cfg.num_tokens:] = float("-inf")
        ids = torch.where(padding_flat, model.pad_id, _gumbel_max(top_k_filter(logits, topk), temperature, gen))
        out.append(ids)
    return torch.stack(out, dim=-1)


def _gather_codes(quantizer, idx):
    """get_codes_from_indices + sum over layers: idx (B,N,q), -1 unused -> (B,N,D)."""
    books = torch.stack([layer.codebook for layer in quantizer.layers], 0)  # (Q,V,D)
    nq = books.shape[0]
    if idx.shape[-1] < nq:
        idx = F.pad(idx, (0, nq - idx.shape[-1]), value=-1)
    b = idx.shape[0]
    books = books.unsqueeze(1).expand(-1, b, -1, -1)
    gidx = idx.permute(2, 0, 1).unsqueeze(-1).expand(-1, -1, -1, books.shape[-1])
    unused = gidx == -1
    codes = books.gather(2, gidx.masked_fill(unused, 0)).masked_fill(unused, 0.0)
    return codes.sum(dim=0)


def _decode(vq, ids_aux, ids_ts):
    """forward_decoder on the whole batch at its longest length -> normalised features (B, 4T, 263)."""
    out1d = vq.decoder1d(_gather_codes(vq.quantizer1d, ids_aux).permute(0, 2, 1)).permute(0, 2, 1)
    b, t, j, q = ids_ts.shape
    codes = _gather_codes(vq.quantizer2d, ids_ts.permute(0, 2, 1, 3).reshape(b * j, t, q))  # (B*J, T, D)
    d = codes.shape[-1]
    x = codes.reshape(b, j, t, d).permute(0, 1, 3, 2).reshape(b, j * d, t)
    x = vq.linear_merge(x.permute(0, 2, 1).reshape(b * t, j * d)).reshape(b, t, j * d).permute(0, 2, 1)
    x2d = vq.decoder2d(x.reshape(b, j, d, t).permute(0, 2, 3, 1)).permute(0, 2, 3, 1)  # (B, 4T, 24, 12)
    joint_feats = vq.jointwise_to_features(x2d[:, :, 1:-1, :])
    return vq.linear_out(torch.cat([out1d, joint_feats], dim=2))


# ----------------------------------------------------------------------------------------- retrieval
class ReferenceRetrieval:
    """MocoTmrRetriever's per-caption loop over a database held as torch tensors."""

    def __init__(self, text_model, motion_emb: np.ndarray, text_emb: np.ndarray, motion_ids, num_retrieval=10,
                 top_k=1):
        self.text_model = text_model
        self.motion = torch.from_numpy(np.ascontiguousarray(motion_emb, dtype=np.float32))
        self.text = torch.from_numpy(np.ascontiguousarray(text_emb, dtype=np.float32))
        self.names = [str(m) for m in motion_ids]
        self.num_retrieval, self.top_k = num_retrieval, top_k

    def knn(self, caption: str) -> list[int]:
        with torch.inference_mode():
            q = self.text_model.encode_text(self.text_model.tokenize([caption]))[0].unsqueeze(0).float()
        sim = F.cosine_similarity(F.normalize(q, dim=-1), F.normalize(self.motion, dim=-1), dim=1, eps=1e-6)
        order = torch.argsort(sim, descending=True).cpu().numpy()
        picked, seen = [], []
        for i in order:
            name = self.names[i].split("_")[0]
            if name in seen:
                continue
            picked.append(int(i))
            seen.append(name)
            if len(picked) >= self.num_retrieval:
                break
        return picked[:self.top_k]

    def __call__(self, captions):
        idx = torch.tensor([self.knn(c) for c in captions], dtype=torch.long)
        b, k = idx.shape
        flat = idx.view(-1)
        return {"re_text": self.text[flat].view(b, k, 1, -1), "re_motion": self.motion[flat].view(b, k, 1, -1)}


# ----------------------------------------------------------------------------------------- the whole path
def reference_generate(models, text_model, retrieval: ReferenceRetrieval | None, prompts, frames, seed=0,
                       time_steps=10, cond_scale=4.0, res_cond_scale=5.0, temperature=1.0, topk=0.9,
                       stage=None, exclude_special=False):
    """Generate one motion per prompt the way the reference demo does. ``frames``: one length per prompt.
    ``stage(name)`` -> context manager around each step (timing, FLOP counting). Returns a namespace with
    ``ids`` (per transformer), ``features`` (B, 4T, 263) de-normalised and ``joints`` (list of (T_i, 22, 3))."""
    stage = stage or (lambda name: nullcontext())
    m = models
    gen = row_generator("cpu", seed, 0)  # the pipeline's first motion's generator: at batch 1 the same draws
    captions = list(prompts)

    with stage("retrieval"):
        re_dict = retrieval(captions) if retrieval is not None else None
    with stage("text"):
        # demo.py encodes the captions outside no_grad (autograd records the trainable projection head)
        cond = text_model.encode_text(text_model.tokenize(captions)).float()
    with stage("length"):
        token_lens = torch.LongTensor(list(frames)) // 4
    cond = cond.detach()
    out = SimpleNamespace(ids={})
    with torch.no_grad():
        b, t = len(captions), int(token_lens.max())
        pad = ~length_mask(token_lens, t)
        with stage("mask_aux"):
            a = m.mask_aux
            ids_aux = _unmask(lambda ids: _guided(lambda: a.trans_forward(ids, cond, pad),
                                                  lambda: a.trans_forward(ids, cond, pad, force_mask=True),
                                                  cond_scale),
                              pad, token_lens, a.mask_id, a.pad_id, time_steps, temperature, topk, gen, False)
            ids_aux = torch.where(pad, -1, ids_aux)
        with stage("mask_ts"):
            ts = m.mask_ts
            j = ts.n_j
            pad3 = pad.unsqueeze(-1).repeat(1, 1, j)
            if re_dict is None:
                rm = rt = torch.zeros(b, 1, ts.cfg.latent_dim)
            else:
                rm, rt = re_dict["re_motion"].squeeze(2), re_dict["re_text"].squeeze(2)

            def ts_logits(flat):
                ids3 = flat.reshape(b, t, j)
                return _guided(lambda: _mask_ts_logits(ts, ids3, cond, pad3, COND_TEXT_AND_RETRIEVAL, rm, rt),
                               lambda: _mask_ts_logits(ts, ids3, cond, pad3, COND_NONE, rm, rt), cond_scale)

            ids_ts = _unmask(ts_logits, pad3.reshape(b, t * j), token_lens * j, ts.mask_id, ts.pad_id, time_steps,
                             temperature, topk, gen, True).reshape(b, t, j)
            ids_ts = torch.where(pad3, -1, ids_ts)
        with stage("res_aux"):
            ra = m.res_aux
            all_aux = _residual(ra, ids_aux, pad, lambda h, q, un: ra.trans_forward(h, q, cond, pad, un),
                                res_cond_scale, 1.0, topk, gen, exclude_special)
            all_aux = torch.where(all_aux == ra.pad_id, -1, all_aux)
        with stage("res_ts"):
            rt2 = m.res_ts
            pflat = pad3.reshape(b, t * j)
            all_ts = _residual(rt2, ids_ts.reshape(b, t * j), pflat,
                               lambda h, q, un: rt2.trans_forward(h, q, cond, pflat, t, j, un),
                               res_cond_scale, 1.0, topk, gen, exclude_special)
            all_ts = torch.where(all_ts == rt2.pad_id, -1, all_ts)
            if int(all_ts.max()) == rt2.mask_id:
                all_ts = all_ts.clip(0, rt2.mask_id - 1)
            all_ts = all_ts.reshape(b, t, j, -1)
        with stage("decode"):
            feats = _decode(m.vq, all_aux, all_ts)
    data = feats.detach().cpu().numpy() * np.asarray(m.std, np.float32) + np.asarray(m.mean, np.float32)
    with stage("joints"):
        n_frames = (token_lens * 4).tolist()
        joints = [np.asarray(features_to_joints(torch.from_numpy(data[i, :n]).float()))
                  for i, n in enumerate(n_frames)]
    out.ids = {"mask_aux": ids_aux, "mask_ts": ids_ts, "res_aux": all_aux, "res_ts": all_ts}
    out.features, out.joints, out.lengths = data, joints, n_frames
    return out


def analytic_similarity_flops(n_queries: int, n_db: int, dim: int) -> int:
    """Multiply-adds of comparing each query with every database embedding (2 N D per query)."""
    return 2 * n_queries * n_db * dim


__all__ = ["STAGES", "ReferenceRetrieval", "reference_generate", "analytic_similarity_flops"]
