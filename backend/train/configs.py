"""Training configurations: ``tiny`` (seconds, for tests) and ``starter`` (the shipped model).

Each stage has ``steps`` (an upper bound) and ``minutes`` (a wall-clock budget; the stage stops at whichever
comes first, so the starter run fits a small CPU machine). Model sizes follow the released architecture
(backend.models) at a small width.
"""

from __future__ import annotations

import copy

STAGES = ("part_tmr", "database", "vq", "mask", "residual", "length")

_TINY = {
    "name": "tiny",
    "corpus": {"n_train": 36, "n_test": 18, "seed": 0, "captions_per_clip": 4},
    "part_tmr": {
        "motion_embedding_dims": 32, "num_layers": 1, "num_heads": 2, "ff_size": 64, "projection_dims": 32,
        "dropout": 0.1, "max_len": 256, "queue_size": 64,
        "text": {"width": 32, "layers": 1, "heads": 2, "context_length": 48},
        "steps": 25, "minutes": 2.0, "batch_size": 12, "lr": 2e-3, "temperature": 0.1, "momentum": 0.99,
        "max_frames": 96,
    },
    "vq": {
        "code_dim1d": 32, "nb_code1d": 32, "code_dim2d": 16, "nb_code2d": 32, "num_quantizers": 3,
        "width": 32, "depth": 1, "steps": 25, "minutes": 2.0, "batch_size": 12, "lr": 2e-3, "window": 32,
        "commit": 0.02, "vel": 0.5, "quantize_dropout": 0.2,
    },
    "mask": {"latent_dim": 32, "ff_size": 64, "num_layers": 1, "num_heads": 2, "dropout": 0.1,
             "steps": 25, "minutes": 2.0, "batch_size": 12, "lr": 2e-3, "cond_drop": 0.1},
    "residual": {"latent_dim": 32, "ff_size": 64, "num_layers": 1, "num_heads": 2, "dropout": 0.1,
                 "steps": 25, "minutes": 2.0, "batch_size": 12, "lr": 2e-3, "cond_drop": 0.1},
    "length": {"hidden": 32, "steps": 40, "minutes": 1.0, "batch_size": 16, "lr": 3e-3},
}

_STARTER = {
    "name": "starter",
    "corpus": {"n_train": 2000, "n_test": 90, "seed": 0, "captions_per_clip": 10},
    "part_tmr": {
        "motion_embedding_dims": 64, "num_layers": 1, "num_heads": 4, "ff_size": 128, "projection_dims": 128,
        "dropout": 0.0, "max_len": 256, "queue_size": 512,
        "text": {"width": 64, "layers": 2, "heads": 4, "context_length": 48},
        "steps": 100000, "minutes": 28.0, "batch_size": 32, "lr": 1e-3, "temperature": 0.07, "momentum": 0.99,
        "max_frames": 196,
    },
    "vq": {
        "code_dim1d": 64, "nb_code1d": 256, "code_dim2d": 32, "nb_code2d": 128, "num_quantizers": 4,
        "width": 64, "depth": 2, "steps": 100000, "minutes": 24.0, "batch_size": 32, "lr": 1e-3, "window": 32,
        "commit": 0.02, "vel": 0.5, "quantize_dropout": 0.2,
        # every clip equally often, in 32-frame windows: with 64-frame windows 40 % of the corpus (every
        # sit-down, stand-up, spin, most turns and kicks and all the short real clips: push-ups, backflip,
        # throw, ...) was never shown to the VQ, which then could not reconstruct them (starter 2)
        "sampling": "clip",
    },
    "mask": {"latent_dim": 128, "ff_size": 256, "num_layers": 3, "num_heads": 4, "dropout": 0.1,
             "steps": 100000, "minutes": 40.0, "batch_size": 32, "lr": 1e-3, "cond_drop": 0.1},
    "residual": {"latent_dim": 128, "ff_size": 256, "num_layers": 2, "num_heads": 4, "dropout": 0.1,
                 "steps": 100000, "minutes": 30.0, "batch_size": 32, "lr": 1e-3, "cond_drop": 0.1},
    "length": {"hidden": 128, "steps": 4000, "minutes": 2.0, "batch_size": 64, "lr": 2e-3},
    # written to generation.json: this small model follows its prompts best with milder guidance than the
    # official 4 (semantic suite, 10 seeds: scale 4 passes 9 of 14 checks, 1.5-2 passes all; README), and
    # its corpus has too few two-part clips to learn "X, then Y", so such prompts are generated part by part
    "generation": {"cond_scale": 2.0, "compose_sequences": True},
    # coverage.json: below this prompt-to-database similarity a prompt gets a warning (chosen on the suites)
    "coverage_min_similarity": 0.76,
}

CONFIGS = {"tiny": _TINY, "starter": _STARTER}


def get_config(name: str) -> dict:
    if name not in CONFIGS:
        raise ValueError(f"unknown training config {name!r}; known: {', '.join(CONFIGS)}")
    return copy.deepcopy(CONFIGS[name])
