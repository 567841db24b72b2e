"""Official parameter names and shapes, written out by hand from reading the reference code (not from our
modules), at the released sizes. Run ``python tests/models/official_manifest_rules.py`` to (re)write
tests/data/official_manifest_*.json; the tests compare our modules' state dicts with those files.

Sizes: VQ from the reference README's ``run_rvq.sh`` line (num_quantizers 6, code_dim2d 1024, nb_code2d 256;
options defaults code_dim1d 512, nb_code1d 512, width 512, down_t 2, depth 3); mask transformers from the
``run_mtrans.sh`` line (latent 512, heads 8, --attnj --attnt; defaults 8 layers, ff 1024) which the
ReMoMask-2 notes confirm for the released opt.txt; residual transformers from the ``run_rtrans.sh`` line
(defaults latent 384, heads 6, 8 layers, ff 1024, --share_weight --attnj --attnt). The mask transformers'
SSTA layers use the names of the newer code state (info_mlp/key/value/out_proj) that the released weights
carry.
"""

from __future__ import annotations

import json
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"


def _conv(prefix, out_c, in_c, k, dims):
    ks = [k] * dims
    return [(f"{prefix}.weight", [out_c, in_c, *ks]), (f"{prefix}.bias", [out_c])]


def _resstack(prefix, width, depth, dims):
    out = []
    for i in range(depth):
        out += _conv(f"{prefix}.model.{i}.conv1", width, width, 3, dims)
        out += _conv(f"{prefix}.model.{i}.conv2", width, width, 1, dims)
    return out


def vq(width=512, down_t=2, depth=3, cd1=512, nb1=512, cd2=1024, nb2=256, q=6, feat=263, jch=12, jtok=6):
    out = []
    for dims, name_e, name_d, in_c, cd in ((1, "encoder1d", "decoder1d", feat, cd1), (2, "encoder2d", "decoder2d", jch, cd2)):
        enc = _conv(f"{name_e}.model.0", width, in_c, 3, dims)
        for i in range(down_t):
            enc += _conv(f"{name_e}.model.{2 + i}.0", width, width, 4, dims)
            enc += _resstack(f"{name_e}.model.{2 + i}.1", width, depth, dims)
        enc += _conv(f"{name_e}.model.{2 + down_t}", cd, width, 3, dims)
        dec = _conv(f"{name_d}.model.0", width, cd, 3, dims)
        for i in range(down_t):
            dec += _resstack(f"{name_d}.model.{2 + i}.0", width, depth, dims)
            dec += _conv(f"{name_d}.model.{2 + i}.2", width, width, 3, dims)
        dec += _conv(f"{name_d}.model.{2 + down_t}", width, width, 3, dims)
        dec += _conv(f"{name_d}.model.{4 + down_t}", in_c, width, 3, dims)
        if dims == 1:
            out += enc + dec + [(f"quantizer1d.layers.{i}.codebook", [nb1, cd1]) for i in range(q)]
        else:
            out += enc
            out += [("linear_merge.weight", [cd2 * jtok, cd2 * jtok]), ("linear_merge.bias", [cd2 * jtok])]
            out += dec
            out += [("linear_out.weight", [feat, 2 * feat]), ("linear_out.bias", [feat])]
            out += [(f"quantizer2d.layers.{i}.codebook", [nb2, cd2]) for i in range(q)]
    return out


def _lin(prefix, out_f, in_f):
    return [(f"{prefix}.weight", [out_f, in_f]), (f"{prefix}.bias", [out_f])]


def _ln(prefix, d):
    return [(f"{prefix}.weight", [d]), (f"{prefix}.bias", [d])]


def _encoder(prefix, d, ff, layers):
    out = []
    for i in range(layers):
        p = f"{prefix}.layers.{i}"
        out += [(f"{p}.self_attn.in_proj_weight", [3 * d, d]), (f"{p}.self_attn.in_proj_bias", [3 * d])]
        out += _lin(f"{p}.self_attn.out_proj", d, d)
        out += _lin(f"{p}.linear1", ff, d) + _lin(f"{p}.linear2", d, ff)
        out += _ln(f"{p}.norm1", d) + _ln(f"{p}.norm2", d)
    return out


def _head(d, out_f):
    return _lin("output_process.dense", d, d) + _ln("output_process.LayerNorm", d) + _lin("output_process.poseFinal", out_f, d)


def mask_aux(d=512, ff=1024, layers=8, code=512, ntok=512, clip=512):
    return (_lin("input_process.poseEmbedding", d, code) + [("position_enc.pe", [5000, 1, d])]
            + _encoder("seqTransEncoder", d, ff, layers) + _lin("cond_emb", d, clip) + _head(d, ntok)
            + [("token_emb.weight", [ntok + 2, code])])


def mask_ts(d=512, ff=1024, layers=8, code=1024, ntok=256, clip=512):
    out = _lin("input_process.poseEmbedding", d, code) + [("position2d_enc.pe", [200, 50, d])]
    out += _encoder("seqTransEncoder2", d, ff, layers) + _encoder("seqTransEncoder3", d, ff, layers)
    out += _lin("cond_emb", d, clip) + _head(d, ntok) + [("token_emb.weight", [ntok + 2, code])]
    for i in range(layers):
        p = f"semanticTransEncoder.{i}"
        out += _ln(f"{p}.norm", d) + _ln(f"{p}.text_norm", clip) + _lin(f"{p}.query", d, d)
        out += _lin(f"{p}.info_mlp.0", d, 3 * d) + _lin(f"{p}.info_mlp.2", d, d)
        out += _lin(f"{p}.key", d, d) + _lin(f"{p}.value", d, d) + _lin(f"{p}.out_proj", d, d)
    return out


def _res_tables(q, v, code):
    return [("embed_proj_shared_weight", [q - 2, v, code]), ("token_embed_weight_", [1, v, code]),
            ("output_proj_weight_", [1, v, code])]


def res_aux(d=384, ff=1024, layers=8, code=512, ntok=512, clip=512, q=6):
    return (_lin("input_process.poseEmbedding", d, code) + [("position_enc.pe", [5000, 1, d])]
            + _encoder("seqTransEncoder", d, ff, layers) + _lin("quant_emb", d, q) + _lin("cond_emb", d, clip)
            + _head(d, code) + _res_tables(q, ntok + 1, code))


def res_ts(d=384, ff=1024, layers=8, code=1024, ntok=256, clip=512, q=6):
    return (_lin("input_process.poseEmbedding", d, code) + [("position2d_enc.pe", [200, 50, d])]
            + _encoder("seqTransEncoder", d, ff, layers) + _encoder("seqTransEncoder2", d, ff, layers)
            + _encoder("seqTransEncoder3", d, ff, layers) + _lin("quant_emb", d, q) + _lin("cond_emb", d, clip)
            + _head(d, code) + _res_tables(q, ntok + 2, code))


def estimator(inp=512, out=50, nd=512):
    return (_lin("output.0", nd, inp) + _ln("output.1", nd) + _lin("output.4", nd // 2, nd) + _ln("output.5", nd // 2)
            + _lin("output.8", nd // 4, nd // 2) + _ln("output.9", nd // 4) + _lin("output.11", out, nd // 4))


MANIFESTS = {"vq": vq, "mask_aux": mask_aux, "mask_ts": mask_ts, "res_aux": res_aux, "res_ts": res_ts,
             "estimator": estimator}


def write_all():
    DATA.mkdir(parents=True, exist_ok=True)
    for name, fn in MANIFESTS.items():
        (DATA / f"official_manifest_{name}.json").write_text(json.dumps([[k, s] for k, s in fn()], indent=0) + "\n")


if __name__ == "__main__":
    write_all()
