"""Writes tests/data/official_manifest_part_tmr_{distilbert,clip}.json: the (name, shape) list of the
official Part-TMR ``MoCoTMR`` state dict at default size, spelled out from reading the reference code
(not from this project's module), so that the manifest test checks the module against it.

Sources (facts only): AIGeeksGroup/ReMoMask Part_TMR/models/{builder_bimoco,encdoc,positional_encoding}.py
and config.py (public master: DistilBERT text tower, text 768, projection 512, queue 512 x 65536);
AIGeeksGroup/ReMoMask-2 Part_TMR/models/* and conf/config.yaml (the layout of the released checkpoint:
CLIP ViT-B-32.pt text tower loaded whole with clip.load(jit=False), text 512, part_queues 6 x 512 x 65536).
Sub-module names are those of torch.nn (TransformerEncoderLayer, Linear, LayerNorm, Embedding),
Hugging Face DistilBertModel and OpenAI CLIP.

Run: python tests/retrieval/make_manifest.py
"""

import json
from pathlib import Path

PARTS = {"Root": 7, "R_Leg": 50, "L_Leg": 50, "Backbone": 60, "R_Arm": 60, "L_Arm": 60}
D, FF, LAYERS, MAXLEN = 512, 1024, 4, 5000


def linear(p, o, i, out):
    out.append((f"{p}.weight", [o, i]))
    out.append((f"{p}.bias", [o]))


def ln(p, d, out):
    out.append((f"{p}.weight", [d]))
    out.append((f"{p}.bias", [d]))


def motion_encoder(prefix, out):
    for name, raw in PARTS.items():
        linear(f"{prefix}.skel_embedding_{name}", D, raw, out)
        out.append((f"{prefix}.emb_token_{name}", [D]))
        out.append((f"{prefix}.sequence_pos_encoding_{name}.pe", [MAXLEN, 1, D]))
        for i in range(LAYERS):
            p = f"{prefix}.seqTransEncoder_{name}.layers.{i}"
            out.append((f"{p}.self_attn.in_proj_weight", [3 * D, D]))
            out.append((f"{p}.self_attn.in_proj_bias", [3 * D]))
            linear(f"{p}.self_attn.out_proj", D, D, out)
            linear(f"{p}.linear1", FF, D, out)
            linear(f"{p}.linear2", D, FF, out)
            ln(f"{p}.norm1", D, out)
            ln(f"{p}.norm2", D, out)


def projection(prefix, i, o, out):
    linear(f"{prefix}.projection", o, i, out)
    linear(f"{prefix}.fc", o, o, out)
    ln(f"{prefix}.layer_norm", o, out)


def distilbert(prefix, out):
    p = f"{prefix}.text_model"
    out.append((f"{p}.embeddings.word_embeddings.weight", [30522, 768]))
    out.append((f"{p}.embeddings.position_embeddings.weight", [512, 768]))
    ln(f"{p}.embeddings.LayerNorm", 768, out)
    for i in range(6):
        q = f"{p}.transformer.layer.{i}"
        for lin in ("q_lin", "k_lin", "v_lin", "out_lin"):
            linear(f"{q}.attention.{lin}", 768, 768, out)
        ln(f"{q}.sa_layer_norm", 768, out)
        linear(f"{q}.ffn.lin1", 3072, 768, out)
        linear(f"{q}.ffn.lin2", 768, 3072, out)
        ln(f"{q}.output_layer_norm", 768, out)


def resblocks(prefix, width, layers, out):
    for i in range(layers):
        p = f"{prefix}.resblocks.{i}"
        out.append((f"{p}.attn.in_proj_weight", [3 * width, width]))
        out.append((f"{p}.attn.in_proj_bias", [3 * width]))
        linear(f"{p}.attn.out_proj", width, width, out)
        ln(f"{p}.ln_1", width, out)
        linear(f"{p}.mlp.c_fc", 4 * width, width, out)
        linear(f"{p}.mlp.c_proj", width, 4 * width, out)
        ln(f"{p}.ln_2", width, out)


def clip_vit_b32(prefix, out):
    p = f"{prefix}.clip_model"
    out.append((f"{p}.positional_embedding", [77, 512]))
    out.append((f"{p}.text_projection", [512, 512]))
    out.append((f"{p}.logit_scale", []))
    out.append((f"{p}.token_embedding.weight", [49408, 512]))
    ln(f"{p}.ln_final", 512, out)
    resblocks(f"{p}.transformer", 512, 12, out)
    v = f"{p}.visual"
    out.append((f"{v}.class_embedding", [768]))
    out.append((f"{v}.positional_embedding", [50, 768]))
    out.append((f"{v}.proj", [768, 512]))
    out.append((f"{v}.conv1.weight", [768, 3, 32, 32]))
    ln(f"{v}.ln_pre", 768, out)
    ln(f"{v}.ln_post", 768, out)
    resblocks(f"{v}.transformer", 768, 12, out)


def manifest(variant):
    out = []
    text_dim = 768 if variant == "distilbert" else 512
    text = distilbert if variant == "distilbert" else clip_vit_b32
    for suffix in ("", "_m"):
        motion_encoder(f"motion_encoder{suffix}", out)
        text(f"text_encoder{suffix}", out)
        projection(f"motion_projection{suffix}", 6 * D, D, out)
        projection(f"text_projection{suffix}", text_dim, D, out)
    out.append(("motion_queue", [512, 65536]))
    out.append(("text_queue", [512, 65536]))
    out.append(("queue_ptr", [1]))
    if variant == "clip":
        out.append(("part_queues", [6, 512, 65536]))
    return sorted(out)


if __name__ == "__main__":
    here = Path(__file__).resolve().parents[1] / "data"
    for v in ("distilbert", "clip"):
        m = manifest(v)
        rows = ",\n".join("  " + json.dumps([k, s]) for k, s in m)  # one tensor per line
        (here / f"official_manifest_part_tmr_{v}.json").write_text(
            f'{{"variant": "{v}", "tensors": [\n{rows}\n]}}\n')
        print(v, len(m), "tensors")
