"""Part-TMR: ReMoMask's part-level text-motion retrieval model (momentum contrastive, "BMM").

Module and parameter names follow the official checkpoints so that their state dicts load as they are:

- ``motion_encoder`` / ``motion_encoder_m`` (momentum copy): one transformer per body part
  (Root 7-d, R_Leg 50, L_Leg 50, Backbone 60, R_Arm 60, L_Arm 60 for HumanML3D): attributes
  ``skel_embedding_<part>`` (Linear), ``emb_token_<part>`` (Parameter), ``sequence_pos_encoding_<part>``
  (sin/cos table ``pe`` (5000, 1, D), a saved buffer), ``seqTransEncoder_<part>`` (nn.TransformerEncoder,
  4 layers, 4 heads, ff 1024, GELU, sequence-first). The output of each is the first (token) position.
- ``text_encoder`` / ``text_encoder_m``: two variants exist.
  * ``distilbert``: the public master code: ``text_encoder.text_model`` is a DistilBERT
    (Hugging Face parameter names; re-implemented here, no ``transformers`` needed); the [CLS] state
    (768-d) is the feature. Tokenizer: DistilBERT WordPiece (``vocab.txt``).
  * ``clip``: the released weights (``text_encoder: ViT-B-32.pt`` in their .hydra config):
    ``text_encoder.clip_model`` is a whole OpenAI CLIP ViT-B/32 (vision tower included) built with
    open_clip; the feature is ``clip_model.encode_text(ids).float()`` (512-d). Tokenizer: CLIP BPE, 77.
- ``motion_projection`` / ``text_projection`` (+ ``_m``): ProjectionHead(projection, gelu, fc, dropout,
  layer_norm) with a residual: LN(fc(gelu(p)) + p), p = projection(x).
- buffers ``motion_queue``, ``text_queue`` (C, K), ``queue_ptr`` (1,), and in the released variant
  ``part_queues`` (6, C, K_part).

Inference uses only motion_encoder + motion_projection and text_encoder + text_projection;
``load_part_tmr`` builds just those by default and reports every checkpoint key it did not use.
"""

from __future__ import annotations

import logging
import math
import os
import re
import unicodedata
from dataclasses import dataclass, field, asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

PARTS = ("Root", "R_Leg", "L_Leg", "Backbone", "R_Arm", "L_Arm")
PART_DIMS = {
    "t2m": {"Root": 7, "R_Leg": 50, "L_Leg": 50, "Backbone": 60, "R_Arm": 60, "L_Arm": 60},
    "kit": {"Root": 7, "R_Leg": 62, "L_Leg": 62, "Backbone": 48, "R_Arm": 48, "L_Arm": 48},
}
# Joint indices of each limb (joint 0, the root, is in "Root"); HumanML3D 22 joints / KIT 21 joints.
_PART_JOINTS = {
    "t2m": (22, [2, 5, 8, 11], [1, 4, 7, 10], [3, 6, 9, 12, 15], [9, 14, 17, 19, 21], [9, 13, 16, 18, 20]),
    "kit": (21, [11, 12, 13, 14, 15], [16, 17, 18, 19, 20], [1, 2, 3, 4], [3, 5, 6, 7], [3, 8, 9, 10]),
}


def whole2parts(motion, mode: str = "t2m") -> list[torch.Tensor]:
    """Split (..., T, 263) HumanML3D features (251 for KIT) into the six part inputs, in PARTS order.

    Root = root data (4) + root velocity (3); each limb = per joint (local position 3, 6D rotation 6,
    velocity 3) of its joints; the legs also get their two foot-contact channels (R: 2:4, L: 0:2).
    """
    x = torch.as_tensor(np.asarray(motion) if not isinstance(motion, torch.Tensor) else motion).float()
    nj, r_leg, l_leg, back, r_arm, l_arm = _PART_JOINTS[mode]
    expect = 4 + (nj - 1) * 9 + nj * 3 + 4
    if x.shape[-1] != expect:
        raise ValueError(f"whole2parts({mode}): expected {expect} features, got {x.shape[-1]}")
    lead = x.shape[:-1]
    s = 4
    ric = x[..., s:s + (nj - 1) * 3].reshape(*lead, nj - 1, 3)
    s += (nj - 1) * 3
    rot = x[..., s:s + (nj - 1) * 6].reshape(*lead, nj - 1, 6)
    s += (nj - 1) * 6
    vel = x[..., s:s + nj * 3].reshape(*lead, nj, 3)
    feet = x[..., s + nj * 3:]

    def limb(joints):
        j = torch.tensor(joints)
        return torch.cat([ric[..., j - 1, :], rot[..., j - 1, :], vel[..., j, :]], dim=-1).reshape(*lead, -1)

    root = torch.cat([x[..., :4], vel[..., 0, :]], dim=-1)
    return [root, torch.cat([limb(r_leg), feet[..., 2:]], dim=-1), torch.cat([limb(l_leg), feet[..., :2]], dim=-1),
            limb(back), limb(r_arm), limb(l_arm)]


# ----------------------------------------------------------------------------- motion side
class PositionalEncoding(nn.Module):
    """Sinusoidal table ``pe`` (max_len, 1, d) added to sequence-first input; saved in the state dict."""

    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 5000) -> None:
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        pos = torch.arange(max_len, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * freq)
        pe[:, 1::2] = torch.cos(pos * freq)
        self.register_buffer("pe", pe[:, None, :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x + self.pe[: x.shape[0]])


class ProjectionHead(nn.Module):
    def __init__(self, embedding_dim: int, projection_dim: int, dropout: float) -> None:
        super().__init__()
        self.projection = nn.Linear(embedding_dim, projection_dim)
        self.gelu = nn.GELU()
        self.fc = nn.Linear(projection_dim, projection_dim)
        self.dropout = nn.Dropout(dropout)
        self.layer_norm = nn.LayerNorm(projection_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.projection(x)
        return self.layer_norm(self.dropout(self.fc(self.gelu(p))) + p)


class MotionEncoder(nn.Module):
    """Six independent part transformers; output: concatenation of their token outputs (B, 6*D)."""

    def __init__(self, latent_dim: int = 512, mode: str = "t2m", ff_size: int = 1024, num_layers: int = 4,
                 num_heads: int = 4, dropout: float = 0.1, max_len: int = 5000) -> None:
        super().__init__()
        self.parts_name = list(PARTS)
        for name in PARTS:
            setattr(self, f"skel_embedding_{name}", nn.Linear(PART_DIMS[mode][name], latent_dim))
            setattr(self, f"emb_token_{name}", nn.Parameter(torch.randn(latent_dim)))
            setattr(self, f"sequence_pos_encoding_{name}", PositionalEncoding(latent_dim, dropout, max_len))
            layer = nn.TransformerEncoderLayer(latent_dim, num_heads, ff_size, dropout, activation="gelu")
            setattr(self, f"seqTransEncoder_{name}",
                    nn.TransformerEncoder(layer, num_layers=num_layers, enable_nested_tensor=False))

    def part_feature(self, x: torch.Tensor, name: str) -> torch.Tensor:
        b = x.shape[0]
        h = getattr(self, f"skel_embedding_{name}")(x).permute(1, 0, 2)  # (T, B, D)
        tok = getattr(self, f"emb_token_{name}")[None, None].expand(1, b, -1)
        h = getattr(self, f"sequence_pos_encoding_{name}")(torch.cat([tok, h], dim=0))
        return getattr(self, f"seqTransEncoder_{name}")(h)[0]

    def forward(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(parts) != len(PARTS):
            raise ValueError(f"MotionEncoder expects {len(PARTS)} part tensors, got {len(parts)}")
        return torch.cat([self.part_feature(p, n) for p, n in zip(parts, PARTS)], dim=1)


# ----------------------------------------------------------------------------- DistilBERT
@dataclass
class DistilBertConfig:
    vocab_size: int = 30522
    max_position_embeddings: int = 512
    dim: int = 768
    n_layers: int = 6
    n_heads: int = 12
    hidden_dim: int = 3072
    dropout: float = 0.1
    attention_dropout: float = 0.1
    pad_token_id: int = 0


class _DBEmbeddings(nn.Module):
    def __init__(self, c: DistilBertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.dim, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.dim)
        self.LayerNorm = nn.LayerNorm(c.dim, eps=1e-12)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)[None]
        return self.dropout(self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings(pos)))


class _DBAttention(nn.Module):
    def __init__(self, c: DistilBertConfig) -> None:
        super().__init__()
        self.n_heads = c.n_heads
        self.q_lin, self.k_lin = nn.Linear(c.dim, c.dim), nn.Linear(c.dim, c.dim)
        self.v_lin, self.out_lin = nn.Linear(c.dim, c.dim), nn.Linear(c.dim, c.dim)
        self.dropout = nn.Dropout(c.attention_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.n_heads

        def heads(y):
            return y.view(b, t, h, d // h).transpose(1, 2)

        q = heads(self.q_lin(x)) / math.sqrt(d // h)
        scores = q @ heads(self.k_lin(x)).transpose(-1, -2)
        scores = scores.masked_fill(~mask.bool()[:, None, None, :], torch.finfo(scores.dtype).min)
        ctx = self.dropout(scores.softmax(-1)) @ heads(self.v_lin(x))
        return self.out_lin(ctx.transpose(1, 2).reshape(b, t, d))


class _DBFFN(nn.Module):
    def __init__(self, c: DistilBertConfig) -> None:
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(c.dim, c.hidden_dim), nn.Linear(c.hidden_dim, c.dim)
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x):
        return self.dropout(self.lin2(self.activation(self.lin1(x))))


class _DBLayer(nn.Module):
    def __init__(self, c: DistilBertConfig) -> None:
        super().__init__()
        self.attention = _DBAttention(c)
        self.sa_layer_norm = nn.LayerNorm(c.dim, eps=1e-12)
        self.ffn = _DBFFN(c)
        self.output_layer_norm = nn.LayerNorm(c.dim, eps=1e-12)

    def forward(self, x, mask):
        x = self.sa_layer_norm(self.attention(x, mask) + x)
        return self.output_layer_norm(self.ffn(x) + x)


class _DBTransformer(nn.Module):
    def __init__(self, c: DistilBertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_DBLayer(c) for _ in range(c.n_layers))

    def forward(self, x, mask):
        for blk in self.layer:
            x = blk(x, mask)
        return x


class DistilBertModel(nn.Module):
    """DistilBERT encoder with Hugging Face parameter names; returns the last hidden state (B, T, dim)."""

    def __init__(self, config: DistilBertConfig | None = None) -> None:
        super().__init__()
        self.config = config or DistilBertConfig()
        self.embeddings = _DBEmbeddings(self.config)
        self.transformer = _DBTransformer(self.config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self.transformer(self.embeddings(input_ids), attention_mask)


class DistilBertTextEncoder(nn.Module):
    """``text_model`` = DistilBERT; feature = hidden state at [CLS] (position 0)."""

    kind = "distilbert"

    def __init__(self, config: DistilBertConfig | None = None) -> None:
        super().__init__()
        self.text_model = DistilBertModel(config)

    @property
    def out_dim(self) -> int:
        return self.text_model.config.dim

    def forward(self, tokens: dict) -> torch.Tensor:
        return self.text_model(tokens["input_ids"], tokens["attention_mask"])[:, 0, :]


# ----------------------------------------------------------------------------- CLIP text tower
def build_clip_model(config: dict | None = None, with_vision: bool = True):
    """An OpenAI-layout CLIP (open_clip ``CLIP``, QuickGELU as in OpenAI's weights), no weights loaded.
    ``config`` defaults to ViT-B/32. Built on the current default device (use torch.device('meta'))."""
    from backend.models.tv_compat import import_open_clip

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    oc = import_open_clip()
    cfg = dict(config or oc.get_model_config("ViT-B-32"))
    model = oc.model.CLIP(**cfg, quick_gelu=True)
    if not with_vision:
        model.visual = nn.Module()  # encode_text never touches it; its weights are not kept
    return model


class ClipTowerTextEncoder(nn.Module):
    """``clip_model`` = OpenAI CLIP; feature = ``clip_model.encode_text(ids).float()``."""

    kind = "clip"

    def __init__(self, config: dict | None = None, with_vision: bool = True) -> None:
        super().__init__()
        self.clip_model = build_clip_model(config, with_vision)
        self.context_length = int(self.clip_model.context_length)

    @property
    def out_dim(self) -> int:
        return int(self.clip_model.text_projection.shape[1])

    def forward(self, tokens) -> torch.Tensor:
        ids = tokens["input_ids"] if isinstance(tokens, dict) else tokens
        return self.clip_model.encode_text(ids).float()


# ----------------------------------------------------------------------------- the model
@dataclass
class PartTMRConfig:
    text_tower: str = "distilbert"  # "distilbert" (public code) or "clip" (released weights)
    mode: str = "t2m"
    motion_embedding_dims: int = 512
    text_embedding_dims: int = 768  # 768 DistilBERT, 512 CLIP
    projection_dims: int = 512
    dropout: float = 0.5
    num_layers: int = 4
    num_heads: int = 4
    ff_size: int = 1024
    max_len: int = 5000
    embed_dim: int = 512  # queue width
    queue_size: int = 65536
    part_queue_size: int | None = None  # 65536 in the released variant
    momentum: float = 0.99
    distilbert: dict = field(default_factory=dict)  # DistilBertConfig overrides
    clip: dict | None = None  # open_clip CLIP config (None: ViT-B/32)
    with_momentum: bool = True  # momentum copies + queues (training only)
    with_vision: bool = True  # CLIP vision tower (in the checkpoint, never used)

    @classmethod
    def released(cls, **kw) -> "PartTMRConfig":
        """The configuration of the released checkpoint (exp_for_mtrans)."""
        base = dict(text_tower="clip", text_embedding_dims=512, part_queue_size=65536, momentum=0.999)
        base.update(kw)
        return cls(**base)


class PartTMR(nn.Module):
    """Official ``MoCoTMR`` layout. Also a TextEncoder: ``dim`` and ``encode(list[str])``."""

    def __init__(self, config: PartTMRConfig | None = None, tokenizer=None) -> None:
        super().__init__()
        c = self.config = config or PartTMRConfig()
        self.tokenizer = tokenizer

        def motion_enc():
            return MotionEncoder(c.motion_embedding_dims, c.mode, c.ff_size, c.num_layers, c.num_heads,
                                 max_len=c.max_len)

        def text_enc():
            if c.text_tower == "clip":
                return ClipTowerTextEncoder(c.clip, c.with_vision)
            if c.text_tower == "distilbert":
                return DistilBertTextEncoder(DistilBertConfig(**c.distilbert))
            raise ValueError(f"unknown text tower {c.text_tower!r}")

        def heads():
            return (ProjectionHead(c.motion_embedding_dims * len(PARTS), c.projection_dims, c.dropout),
                    ProjectionHead(c.text_embedding_dims, c.projection_dims, c.dropout))

        self.motion_encoder = motion_enc()
        self.text_encoder = text_enc()
        self.motion_projection, self.text_projection = heads()
        if c.with_momentum:
            self.motion_encoder_m = motion_enc()
            self.motion_projection_m = heads()[0]
            self.text_encoder_m = text_enc()
            self.text_projection_m = heads()[1]
            self.register_buffer("motion_queue", nn.functional.normalize(torch.randn(c.embed_dim, c.queue_size), dim=0))
            self.register_buffer("text_queue", nn.functional.normalize(torch.randn(c.embed_dim, c.queue_size), dim=0))
            self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
            if c.part_queue_size:
                self.register_buffer("part_queues", nn.functional.normalize(
                    torch.randn(len(PARTS), c.embed_dim, c.part_queue_size), dim=1))

    # TextEncoder protocol
    @property
    def dim(self) -> int:
        return self.config.projection_dims

    @property
    def device(self) -> torch.device:
        return self.text_projection.projection.weight.device

    def tokenize(self, texts: Sequence[str]) -> dict:
        if self.tokenizer is None:
            raise RuntimeError("Part-TMR has no tokenizer attached (see load_part_tmr)")
        return self.tokenizer(list(texts))

    def encode_text_tokens(self, tokens: dict) -> torch.Tensor:
        tokens = {k: v.to(self.device) for k, v in tokens.items()}
        return self.text_projection(self.text_encoder(tokens))

    def encode_text(self, texts) -> torch.Tensor:
        """(B, projection_dims) from a list of strings (or an already tokenised dict)."""
        if isinstance(texts, dict):
            return self.encode_text_tokens(texts)
        return self.encode_text_tokens(self.tokenize(texts))

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        with torch.inference_mode():
            return self.encode_text(list(texts)).float()

    def encode_motion(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """(B, projection_dims) from the six part tensors (B, T, d_part) (see whole2parts)."""
        parts = [p.to(self.device).float() for p in parts]
        return self.motion_projection(self.motion_encoder(parts))


# ----------------------------------------------------------------------------- tokenizers
class ClipTokenizer:
    """CLIP BPE (open_clip's bundled vocabulary), 77 tokens, truncated like ``clip.tokenize(truncate=True)``."""

    def __init__(self, context_length: int = 77) -> None:
        from backend.models.tv_compat import import_open_clip

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self._tok = import_open_clip().tokenizer.SimpleTokenizer(context_length=context_length)
        self.context_length = context_length

    def __call__(self, texts: Sequence[str]) -> dict:
        return {"input_ids": self._tok(list(texts), context_length=self.context_length)}


class WordPieceTokenizer:
    """BERT/DistilBERT uncased WordPiece from a ``vocab.txt`` (what ``AutoTokenizer`` does for
    distilbert-base-uncased): clean, lowercase, strip accents, split on whitespace/punctuation,
    greedy longest-match sub-words ('##'), [CLS] ... [SEP], truncated to 512, padded to the longest."""

    def __init__(self, vocab_file: str | os.PathLike, max_length: int = 512) -> None:
        with open(vocab_file, encoding="utf-8") as f:
            self.vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
        for t in ("[CLS]", "[SEP]", "[PAD]", "[UNK]"):
            if t not in self.vocab:
                raise ValueError(f"{vocab_file}: not a BERT vocabulary (no {t} token)")
        self.max_length = max_length

    @staticmethod
    def _is_punct(ch: str) -> bool:
        cp = ord(ch)
        if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
            return True
        return unicodedata.category(ch).startswith("P")

    def basic(self, text: str) -> list[str]:
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
                continue
            if (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF
                    or 0x20000 <= cp <= 0x2FA1F):
                out.append(f" {ch} ")
            else:
                out.append(" " if ch.isspace() else ch)
        words = []
        for w in "".join(out).lower().split():
            w = "".join(c for c in unicodedata.normalize("NFD", w) if unicodedata.category(c) != "Mn")
            cur = ""
            for ch in w:
                if self._is_punct(ch):
                    if cur:
                        words.append(cur)
                    words.append(ch)
                    cur = ""
                else:
                    cur += ch
            if cur:
                words.append(cur)
        return words

    def wordpiece(self, word: str) -> list[str]:
        if len(word) > 100:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                if sub in self.vocab:
                    pieces.append(sub)
                    break
                end -= 1
            if end == start:
                return ["[UNK]"]
            start = end
        return pieces

    def encode_one(self, text: str) -> list[int]:
        toks = [p for w in self.basic(text) for p in self.wordpiece(w)][: self.max_length - 2]
        return [self.vocab["[CLS]"]] + [self.vocab[t] for t in toks] + [self.vocab["[SEP]"]]

    def __call__(self, texts: Sequence[str]) -> dict:
        seqs = [self.encode_one(t) for t in texts]
        n = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), n), self.vocab["[PAD]"], dtype=torch.long)
        mask = torch.zeros((len(seqs), n), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        return {"input_ids": ids, "attention_mask": mask}


def find_distilbert_vocab(*roots: str | os.PathLike | None) -> Path:
    """vocab.txt of distilbert-base-uncased: as the official code caches it
    (``local_tokenizer/models--distilbert-base-uncased/snapshots/<rev>/vocab.txt``) or a plain folder."""
    tried = []
    for r in roots:
        if r is None:
            continue
        r = Path(r)
        pats = ["vocab.txt", "local_tokenizer/vocab.txt", "distilbert-base-uncased/vocab.txt",
                "local_tokenizer/distilbert-base-uncased/vocab.txt",
                "local_tokenizer/models--distilbert-base-uncased/snapshots/*/vocab.txt"]
        for p in pats:
            tried.append(str(r / p))
            hits = sorted(r.glob(p))
            if hits:
                return hits[0]
    raise FileNotFoundError(
        "this Part-TMR checkpoint uses a DistilBERT text tower, whose WordPiece vocabulary "
        "(vocab.txt of distilbert-base-uncased) was not found. Place it at "
        "<models folder>/local_tokenizer/vocab.txt (any file named vocab.txt from the Hugging Face "
        "model 'distilbert-base-uncased'). Looked for: " + ", ".join(tried))


# ----------------------------------------------------------------------------- loading
_KNOWN_UNUSED = [
    (re.compile(r"^(motion_encoder_m|motion_projection_m|text_encoder_m|text_projection_m)\."), "momentum encoders (training only)"),
    (re.compile(r"^(motion_queue|text_queue|queue_ptr|part_queues)$"), "contrastive queues (training only)"),
    (re.compile(r"^(motion_projection_global|part_projection)(_m)?\."), "HBM training heads (not used for retrieval)"),
    (re.compile(r"^text_encoder\.clip_model\.visual\."), "CLIP vision tower (never used)"),
    (re.compile(r"^text_encoder\.clip_model\.(logit_scale|logit_bias)$"), "CLIP logit scale (never used)"),
    (re.compile(r"^text_encoder\.text_model\.embeddings\.position_ids$"), "DistilBERT position ids (recomputed)"),
    (re.compile(r"^generator\."), "generator.* (the official loader ignores these)"),
]


@dataclass
class LoadReport:
    variant: str
    checkpoint: str
    used: int
    unused_known: dict[str, list[str]]
    unknown: list[str]
    config: dict

    def summary(self) -> str:
        groups = "; ".join(f"{g}: {len(v)} keys" for g, v in self.unused_known.items())
        s = f"{self.variant} text tower, {self.used} tensors loaded from {self.checkpoint}"
        if groups:
            s += f"; skipped {groups}"
        if self.unknown:
            s += f"; UNRECOGNISED keys not used: {', '.join(self.unknown)}"
        return s


def _unwrap_state_dict(obj, path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        sd = obj
    elif isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict", "net"):
            if isinstance(obj.get(key), dict):
                return _unwrap_state_dict(obj[key], path)
        raise ValueError(f"{path}: not a Part-TMR state dict (top-level keys: {sorted(obj)[:10]})")
    else:
        raise ValueError(f"{path}: not a state dict (got {type(obj).__name__})")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors only (``weights_only=True``), memory-mapped where the file format allows;
    ``.safetensors`` through safetensors."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return _unwrap_state_dict(load_file(str(path)), path)
    import pickle

    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL [^ ]+", str(err))
        first = found.group(0) if found else type(err).__name__
        raise ValueError(f"{path}: holds Python objects other than tensors, which are not unpickled "
                         f"(weights_only=True): {first}") from err
    return _unwrap_state_dict(obj, path)


def _read_hydra(ckpt_dir: Path) -> dict:
    p = ckpt_dir / ".hydra" / "config.yaml"
    if not p.is_file():
        return {}
    try:
        import yaml

        return yaml.safe_load(p.read_text()) or {}
    except Exception as err:  # noqa: BLE001 - the config is advisory; keys decide
        log.warning("could not read %s (%s); relying on the checkpoint's keys", p, err)
        return {}


def infer_config(sd: dict[str, torch.Tensor], hydra: dict | None = None) -> PartTMRConfig:
    """Recognise the variant and sizes from key names and shapes."""
    def shape(k):
        if k not in sd:
            raise KeyError(k)
        return tuple(sd[k].shape)

    if any(k.startswith("text_encoder.clip_model.") for k in sd):
        tower = "clip"
    elif any(k.startswith("text_encoder.text_model.") for k in sd):
        tower = "distilbert"
    else:
        heads = sorted({k.split(".")[0] + "." + k.split(".")[1] for k in sd if k.startswith("text_encoder.")})
        raise ValueError("unrecognised Part-TMR text tower: expected text_encoder.clip_model.* (released, "
                         "CLIP) or text_encoder.text_model.* (DistilBERT); found "
                         + (", ".join(heads) or "no text_encoder.* keys"))
    need = ["motion_encoder.skel_embedding_Root.weight", "motion_encoder.skel_embedding_R_Leg.weight",
            "motion_projection.projection.weight", "text_projection.projection.weight"]
    missing = [k for k in need if k not in sd]
    if missing:
        raise ValueError(f"not a Part-TMR checkpoint: missing {', '.join(missing)}")
    d_motion = shape("motion_encoder.skel_embedding_Root.weight")[0]
    mode = "t2m" if shape("motion_encoder.skel_embedding_R_Leg.weight")[1] == 50 else "kit"
    proj, d_text = shape("text_projection.projection.weight")
    layers = 1 + max(int(m.group(1)) for k in sd
                     if (m := re.match(r"motion_encoder\.seqTransEncoder_Root\.layers\.(\d+)\.", k)))
    ff = shape("motion_encoder.seqTransEncoder_Root.layers.0.linear1.weight")[0]
    max_len = shape("motion_encoder.sequence_pos_encoding_Root.pe")[0] if \
        "motion_encoder.sequence_pos_encoding_Root.pe" in sd else 5000
    model_cfg = (hydra or {}).get("model", {}) or {}
    heads = int(model_cfg.get("num_heads", 4))
    kw = dict(text_tower=tower, mode=mode, motion_embedding_dims=d_motion, text_embedding_dims=d_text,
              projection_dims=proj, num_layers=layers, num_heads=heads, ff_size=ff, max_len=max_len)
    if tower == "distilbert":
        p = "text_encoder.text_model."
        vocab, dim = shape(p + "embeddings.word_embeddings.weight")
        n_layers = 1 + max(int(m.group(1)) for k in sd
                           if (m := re.match(re.escape(p) + r"transformer\.layer\.(\d+)\.", k)))
        kw["distilbert"] = dict(vocab_size=vocab, dim=dim, n_layers=n_layers,
                                max_position_embeddings=shape(p + "embeddings.position_embeddings.weight")[0],
                                hidden_dim=shape(p + "transformer.layer.0.ffn.lin1.weight")[0],
                                n_heads=max(1, dim // 64))  # DistilBERT heads are 64 wide (768/12)
    else:
        p = "text_encoder.clip_model."
        vocab, width = shape(p + "token_embedding.weight")
        ctx = shape(p + "positional_embedding")[0]
        n_layers = 1 + max(int(m.group(1)) for k in sd
                           if (m := re.match(re.escape(p) + r"transformer\.resblocks\.(\d+)\.", k)))
        embed = shape(p + "text_projection")[1]
        default = dict(embed_dim=512, vision_cfg=dict(image_size=224, layers=12, width=768, patch_size=32),
                       text_cfg=dict(context_length=77, vocab_size=49408, width=512, heads=8, layers=12))
        text_cfg = dict(context_length=ctx, vocab_size=vocab, width=width, heads=max(1, width // 64),
                        layers=n_layers)
        if (embed, text_cfg) != (default["embed_dim"], default["text_cfg"]):
            kw["clip"] = dict(embed_dim=embed, vision_cfg=dict(image_size=32, layers=1, width=64, patch_size=16),
                              text_cfg=text_cfg)
    return PartTMRConfig(**kw)


SAVED_WEIGHTS = "part_tmr.safetensors"


def save_part_tmr(model: PartTMR, directory: str | os.PathLike) -> Path:
    """Project format: ``part_tmr.safetensors`` (the inference tensors: encoders and heads, no momentum
    copies, queues or CLIP vision tower) + ``part_tmr.json`` (the PartTMRConfig). Written atomically.
    ``load_part_tmr(directory)`` reads it back."""
    import json

    from safetensors.torch import save_file

    from backend.atomic import atomic_write

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    keep = ("motion_encoder.", "motion_projection.", "text_encoder.", "text_projection.")
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
          if k.startswith(keep) and not k.startswith("text_encoder.clip_model.visual.")}
    cfg = asdict(model.config)
    cfg.update(with_momentum=False, with_vision=False)
    for name, write in ((SAVED_WEIGHTS, lambda f: save_file(sd, f)),
                        ("part_tmr.json", lambda f: Path(f).write_text(json.dumps(cfg, indent=1)))):
        atomic_write(d / name, write)
    return d / SAVED_WEIGHTS


def _materialise_meta_buffers(model: nn.Module) -> None:
    """Non-saved buffers of a model built on the meta device (CLIP's causal ``attn_mask``)."""
    for mod in model.modules():
        for name, buf in list(mod._buffers.items()):
            if buf is None or not buf.is_meta:
                continue
            if name == "attn_mask":
                n = buf.shape[0]
                mod._buffers[name] = torch.full((n, n), float("-inf")).triu_(1)
            else:
                raise RuntimeError(f"buffer {name} of {type(mod).__name__} has no saved value")


def load_part_tmr(path: str | os.PathLike, device: str | torch.device = "cpu", *,
                  tokenizer_dir: str | os.PathLike | None = None, search_root: str | os.PathLike | None = None,
                  inference_only: bool = True) -> tuple[PartTMR, LoadReport]:
    """Load an official (or project-made) Part-TMR checkpoint.

    ``path``: a checkpoint file, or its folder (``Part_TMR/checkpoints/<exp>/HumanML3D``: uses
    ``best_model.pt`` when ``.hydra/config.yaml`` says ``eval.use_best_model`` (the default), else
    ``last_model.pt``, falling back to whichever exists). The variant is recognised from key names.
    ``inference_only`` builds only the encoders and heads used for retrieval; every other checkpoint
    key is listed in the report (known groups by name; anything unrecognised key by key).
    """
    p = Path(path)
    hydra = {}
    if p.is_dir() and (p / SAVED_WEIGHTS).is_file():
        p = p / SAVED_WEIGHTS
    if p.is_dir():
        hydra = _read_hydra(p)
        best = bool(((hydra.get("eval") or {}).get("use_best_model", True)))
        order = ["best_model.pt", "last_model.pt"] if best else ["last_model.pt", "best_model.pt"]
        files = [p / f for f in order if (p / f).is_file()]
        if not files:
            raise FileNotFoundError(f"{p}: neither best_model.pt nor last_model.pt found")
        if files[0].name != order[0]:
            log.warning("%s: %s not found, using %s", p, order[0], files[0].name)
        ckpt = files[0]
        ckpt_dir = p
    else:
        ckpt, ckpt_dir = p, p.parent
    sd = read_checkpoint(ckpt)
    cfg = infer_config(sd, hydra)
    saved_cfg = ckpt.with_suffix(".json")
    if saved_cfg.is_file():  # written by save_part_tmr: also holds what the weights cannot tell
        import json

        known = {f for f in PartTMRConfig.__dataclass_fields__}
        cfg = PartTMRConfig(**{k: v for k, v in json.loads(saved_cfg.read_text()).items() if k in known})
    cfg.with_momentum = not inference_only and any(k.startswith("motion_encoder_m.") for k in sd)
    cfg.with_vision = not inference_only and any(k.startswith("text_encoder.clip_model.visual.") for k in sd)
    if cfg.with_momentum and "part_queues" in sd:
        cfg.part_queue_size = int(sd["part_queues"].shape[2])
    if cfg.with_momentum and "motion_queue" in sd:
        cfg.embed_dim, cfg.queue_size = map(int, sd["motion_queue"].shape)
    hyd_tower = str(((hydra.get("model") or {}).get("text_encoder", "")))
    if hyd_tower and (("ViT" in hyd_tower) != (cfg.text_tower == "clip")):
        log.warning("%s: .hydra config names text encoder %r but the weights hold a %s tower; "
                    "following the weights", ckpt, hyd_tower, cfg.text_tower)

    if cfg.text_tower == "clip":
        tokenizer = ClipTokenizer(cfg.clip["text_cfg"]["context_length"] if cfg.clip else 77)
    else:
        # the release root is <root>/Part_TMR/checkpoints/<exp>/<dataset>
        release = ckpt_dir.parents[3] if len(ckpt_dir.parents) > 3 and ckpt_dir.parents[2].name == "Part_TMR" else None
        roots = [tokenizer_dir, search_root, ckpt_dir, release]
        tokenizer = WordPieceTokenizer(find_distilbert_vocab(*roots))

    with torch.device("meta"):
        model = PartTMR(cfg, tokenizer)
    expected = model.state_dict()
    load, unused, unknown = {}, {}, []
    for k, v in sd.items():
        if k in expected:
            load[k] = v
            continue
        for pat, group in _KNOWN_UNUSED:
            if pat.search(k):
                unused.setdefault(group, []).append(k)
                break
        else:
            unknown.append(k)
    missing = [k for k in expected if k not in load]
    if missing:
        raise ValueError(f"{ckpt}: the {cfg.text_tower} Part-TMR needs {len(missing)} tensors the "
                         f"checkpoint lacks: {', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}")
    bad = [f"{k}: checkpoint {tuple(load[k].shape)} vs model {tuple(expected[k].shape)}"
           for k in load if tuple(load[k].shape) != tuple(expected[k].shape)]
    if bad:
        raise ValueError(f"{ckpt}: shape mismatch: " + "; ".join(bad[:10]))
    model.load_state_dict(load, strict=True, assign=True)
    _materialise_meta_buffers(model)
    model = model.to(device=device, dtype=torch.float32).eval()
    report = LoadReport(cfg.text_tower, str(ckpt), len(load), unused, unknown, asdict(cfg))
    if unknown:
        log.warning("Part-TMR %s: %d checkpoint keys not recognised and not used: %s",
                    ckpt, len(unknown), ", ".join(unknown))
    return model, report
