"""Text -> motion retrieval over the ReMoMask database with FAISS.

Behaviour matches the official retriever (``MocoTmrRetriever``): cosine similarity between the query's
Part-TMR text embedding and every stored motion embedding, walk the candidates from the most similar
down, skip an entry whose source motion (id before the first '_') was already taken, stop after
``num_retrieval`` picks and return the first ``k``. Differences are in cost only: one batched text
encoding and one batched exact FAISS search (``IndexFlatIP`` over L2-normalised motion embeddings) per
request instead of a per-caption full sort, and only a candidate pool as large as the de-duplication
rule can need is ranked (widened in the rare case it is not enough). Ties in similarity are broken by
the lower database index.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import faiss
import numpy as np
import torch

from backend.retrieval.database import MotionDatabase, load_database

log = logging.getLogger(__name__)

# Without a group bound, a first pool of k * min(max group size, this) is always complete when every
# group is at most this large (pigeonhole); otherwise the pool is widened for the rows that need it.
_POOL_GROUP_CAP = 16


@dataclass
class RetrievalOutput:
    """Result of one request of B texts, k_eff retrieved entries each."""

    re_dict: dict[str, torch.Tensor]  # "re_text": (B, k, 1, Dt), "re_motion": (B, k, 1, Dm), float32
    ids: list[list[str]]  # (B, k) motion ids
    captions: list[list[str]]  # (B, k) captions of the retrieved entries
    scores: list[list[float]]  # (B, k) cosine similarity query text <-> motion
    indices: np.ndarray  # (B, k) int64 database rows
    query_emb: torch.Tensor | None = None  # (B, D) the text model's embedding of each query, as it
    # came out of encode() (not normalised). With the released weights this is also the conditioning
    # vector of the masked transformers, so the pipeline need not encode the prompt twice.


def _l2n(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(n, 1e-12), dtype=np.float32)


def dedup_walk(order: np.ndarray, groups: np.ndarray, want: int) -> list[int]:
    """Walk database rows in ``order``; keep the first row of each group until ``want`` are kept."""
    taken: set[int] = set()
    out: list[int] = []
    for idx in order:
        g = int(groups[idx])
        if g in taken:
            continue
        taken.add(g)
        out.append(int(idx))
        if len(out) >= want:
            break
    return out


class Retriever:
    """``Retriever(text_model, database, num_retrieval=10, top_k=1)``; call with a list of texts.

    ``text_model`` is a TextEncoder (``dim``, ``encode(list[str]) -> (B, dim)``) whose space is the
    database's motion space (the Part-TMR text side). ``device`` is where ``re_dict`` is put.
    """

    def __init__(self, text_model, database: MotionDatabase, num_retrieval: int = 10, top_k: int = 1,
                 device: str | torch.device = "cpu") -> None:
        if num_retrieval < 1 or top_k < 1:
            raise ValueError("num_retrieval and top_k must be >= 1")
        dim = getattr(text_model, "dim", None)
        if dim is not None and int(dim) != database.motion_dim:
            raise ValueError(f"text model gives {dim}-d embeddings but the database's motion "
                             f"embeddings are {database.motion_dim}-d: they do not belong together")
        self.text_model = text_model
        self.db = database
        self.num_retrieval = int(num_retrieval)
        self.top_k = int(top_k)
        self.device = torch.device(device)
        self.index = faiss.IndexFlatIP(database.motion_dim)
        self.index.add(_l2n(database.motion_emb))
        self._motion = torch.from_numpy(database.motion_emb)
        self._text = torch.from_numpy(database.text_emb)

    def __len__(self) -> int:
        return len(self.db)

    # ------------------------------------------------------------------ core
    def search_embeddings(self, queries: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """De-duplicated top-k for query embeddings (B, D): (indices (B, k_eff), scores (B, k_eff))."""
        k = self.top_k if k is None else int(k)
        if k < 1:
            raise ValueError("k must be >= 1")
        q = _l2n(np.asarray(queries, dtype=np.float32))
        if q.ndim != 2 or q.shape[1] != self.db.motion_dim:
            raise ValueError(f"query embeddings must be (B, {self.db.motion_dim}), got {q.shape}")
        n, groups = len(self.db), self.db.groups
        # The reference stops after num_retrieval picks and returns the first k of them; a walk in
        # one order yields the same first picks whatever it stops at, so k_eff picks are enough.
        k_eff = min(k, self.num_retrieval, self.db.num_groups)
        # One entry beyond the pigeonhole bound, so that a tie at the pool's edge can be seen.
        pool = min(n, k_eff * min(self.db.max_group_size, _POOL_GROUP_CAP) + 1)
        b = q.shape[0]
        out_idx = np.zeros((b, k_eff), dtype=np.int64)
        out_sc = np.zeros((b, k_eff), dtype=np.float32)
        todo = np.arange(b)
        while len(todo):
            sims, idx = self.index.search(q[todo], pool)
            again = []
            for row, s, ix in zip(todo, sims, idx):
                valid = ix >= 0
                s, ix = s[valid], ix[valid]
                order = np.lexsort((ix, -s))  # by score descending, then index ascending
                s, ix = s[order], ix[order]
                picks = dedup_walk(np.arange(len(ix)), groups[ix], k_eff)
                complete = len(picks) == k_eff
                # Entries tied with the pool's last score may have been cut arbitrarily: widen then.
                boundary_tie = pool < n and complete and s[picks[-1]] <= s[-1]
                if (not complete or boundary_tie) and pool < n:
                    again.append(row)
                    continue
                out_idx[row] = ix[picks]
                out_sc[row] = s[picks]
            todo = np.asarray(again, dtype=np.int64)
            pool = min(n, pool * 4)
        return out_idx, out_sc

    def __call__(self, texts: Sequence[str], k: int | None = None, *,
                 query_emb: torch.Tensor | None = None) -> RetrievalOutput:
        """Retrieve for each text. ``query_emb`` (B, D): embeddings already computed with the same
        text model (then ``texts`` only label the request and the text model is not run)."""
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            raise ValueError("Retriever: no texts given")
        if query_emb is None:
            with torch.inference_mode():
                query_emb = self.text_model.encode(texts)
        query_emb = torch.as_tensor(query_emb).detach().float()
        if query_emb.shape[0] != len(texts):
            raise ValueError(f"{len(texts)} texts but {query_emb.shape[0]} query embeddings")
        emb = query_emb.cpu().numpy()
        idx, sc = self.search_embeddings(emb, k)
        flat = torch.from_numpy(idx.reshape(-1))
        b, kk = idx.shape
        re_dict = {
            "re_text": self._text[flat].view(b, kk, 1, -1).to(self.device),
            "re_motion": self._motion[flat].view(b, kk, 1, -1).to(self.device),
        }
        return RetrievalOutput(
            re_dict=re_dict,
            ids=[[str(self.db.motion_ids[i]) for i in row] for row in idx],
            captions=[[str(self.db.captions[i]) for i in row] for row in idx],
            scores=sc.tolist(),
            indices=idx,
            query_emb=query_emb.to(self.device),
        )


# ----------------------------------------------------------------------------- release folder
def find_part_tmr_dir(models_dir: str | os.PathLike) -> Path:
    """The Part-TMR checkpoint folder inside a release folder: ``Part_TMR/checkpoints/<exp>/<dataset>``
    holding ``best_model.pt`` or ``last_model.pt`` (the release uses exp_for_mtrans, the public code
    exp1). Also looks one folder level down (an unzipped ``ReMoMask/`` inside ``models_dir``)."""
    root = Path(models_dir)
    roots = [root] + sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else [root]
    found: list[Path] = []
    for r in roots:
        base = r / "Part_TMR" / "checkpoints"
        if base.is_dir():
            for d in sorted(base.glob("*/*")):
                if (d / "best_model.pt").is_file() or (d / "last_model.pt").is_file():
                    found.append(d)
        if found:
            break
    if not found:
        raise FileNotFoundError(
            f"no Part-TMR checkpoint under {root}: expected "
            f"{root}/Part_TMR/checkpoints/<exp>/HumanML3D/best_model.pt (the official release has "
            f"Part_TMR/checkpoints/exp_for_mtrans/HumanML3D/)")
    preferred = [d for d in found if d.parent.name == "exp_for_mtrans"]
    if len(found) > 1:
        log.info("several Part-TMR checkpoints found (%s); using %s",
                 ", ".join(map(str, found)), (preferred or found)[0])
    return (preferred or found)[0]


def find_database_dir(models_dir: str | os.PathLike, part_tmr_dir: Path | None = None) -> Path:
    """``database/`` next to ``Part_TMR/`` (the official relative path ``database``)."""
    root = Path(models_dir)
    cands = []
    if part_tmr_dir is not None:
        cands.append(part_tmr_dir.parents[3] / "database")  # <root>/Part_TMR/checkpoints/x/y
    cands.append(root / "database")
    for c in cands:
        if c.is_dir():
            return c
    raise FileNotFoundError(f"no retrieval database folder found (looked for {', '.join(map(str, cands))})")


def load_retriever(models_dir: str | os.PathLike, device: str | torch.device = "cpu",
                   num_retrieval: int = 10, top_k: int = 1, tokenizer_dir: str | os.PathLike | None = None
                   ) -> Retriever:
    """Build the retriever from the user's release folder: Part-TMR text side + ``database/``."""
    from backend.models.part_tmr import load_part_tmr

    ckpt_dir = find_part_tmr_dir(models_dir)
    db = load_database(find_database_dir(models_dir, ckpt_dir))
    model, report = load_part_tmr(ckpt_dir, device=device, tokenizer_dir=tokenizer_dir,
                                  search_root=models_dir)
    log.info("Part-TMR: %s", report.summary())
    return Retriever(model, db, num_retrieval=num_retrieval, top_k=top_k, device=device)
