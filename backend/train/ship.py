"""Make a trained model folder fit to ship: its retrieval database loses the entries of the real-motion clips.

Training with ``--mocap`` puts every training clip in ``database/``: the procedural ones first, then the
real-motion windows (``build_datasets`` order), so that the masked transformers learn with retrieval over all of
them. The Part-TMR embeddings and captions of the real windows are converted from data that is read from
``../shared/data/mocap`` at training time and never committed, so a folder to ship keeps only the first
``corpus.n_train`` entries (the procedural clips); the weights are the project's.

    python -m backend.train ship --out DIR        (DIR/database rewritten in place; PROVENANCE.json says so)
"""

from __future__ import annotations

import json
from pathlib import Path

from backend.retrieval.database import keep_first_entries
from backend.train.common import atomic_write_json


def drop_captured_entries(folder: str | Path) -> int:
    """Remove the real-motion entries of ``folder``'s database; returns how many were removed (0 for a folder
    trained without real motion, or already shipped). Raises ValueError with a message for people."""
    folder = Path(folder)
    prov_path = folder / "PROVENANCE.json"
    try:
        prov = json.loads(prov_path.read_text())
        corpus = prov["corpus"]
        n = int(corpus["n_train"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{prov_path}: not a trained model folder's provenance ({e})") from None
    from backend.retrieval.database import load_database

    before = len(load_database(folder / "database"))
    if not corpus.get("mocap") or before <= n:
        return 0
    keep_first_entries(folder / "database", n)
    db = prov.setdefault("stages", {}).setdefault("database", {})
    db["entries"] = n
    db["captured_entries_removed"] = before - n
    db["note"] = ("the real-motion windows' entries were removed for shipping (backend/train/ship.py); the model "
                  "was trained with retrieval over all entries")
    atomic_write_json(prov_path, prov)
    return before - n
