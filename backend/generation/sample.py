"""What generation produces, and its units (pure: no torch). Generation (``pipeline``) and editing
(``backend.editing``) both make these, so they live apart from either."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

UNIT_LENGTH = 4  # frames per token
MAX_FRAMES = 196  # longest motion the released models were trained on (49 tokens)


@dataclass
class GeneratedSample:
    prompt: str
    sample_index: int
    seed: int
    joints: np.ndarray  # (T, 22, 3) float32, metres, y-up
    features: np.ndarray  # (T, 263) float32, de-normalised HumanML3D features
    length: int  # frames (T)
    retrieved: list[str] = field(default_factory=list)  # captions of the retrieved motions
    retrieved_ids: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)  # the sentences a composed motion was generated from
    warnings: list[str] = field(default_factory=list)  # the prompt is outside what the model knows (coverage)
