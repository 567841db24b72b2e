"""Captioned synthetic motion corpus on the 22-joint HumanML3D skeleton (the starter model's data).

    from backend.synthetic import generate_clip, make_corpus, FAMILIES, TEMPLATES, corpus_stats
    clip = generate_clip("walk", 7, direction="forward", speed="slow")
    clip.joints  # (T, 22, 3) float32, y-up, metres, 20 fps, facing +Z at the start
    corpus = make_corpus(1000, seed=0, split="train")
"""

from .captions import N_TRAIN, SUBJECTS, TEMPLATES
from .corpus import (MAX_FRAMES, MIN_FRAMES, Clip, caption_variants, corpus_stats, generate_clip, generate_sequence,
                     generate_while, is_compound, make_corpus, parts_of)
from .families import END_STATE, FAMILIES, START_STATE

TRAIN_TEMPLATES = {f: t[:N_TRAIN] for f, t in TEMPLATES.items()}
TEST_TEMPLATES = {f: t[N_TRAIN:] for f, t in TEMPLATES.items()}

__all__ = [
    "caption_variants",
    "Clip", "FAMILIES", "TEMPLATES", "TRAIN_TEMPLATES", "TEST_TEMPLATES", "SUBJECTS", "START_STATE",
    "END_STATE", "MIN_FRAMES", "MAX_FRAMES", "generate_clip", "generate_sequence", "generate_while",
    "is_compound", "parts_of", "make_corpus",
    "corpus_stats",
]
