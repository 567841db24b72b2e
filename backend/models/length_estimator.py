"""Motion length estimator (text embedding -> distribution over token lengths), official names ``output.*``.

The released file is ``length_estimator/model/finest.tar`` with the state dict under ``estimator``;
``LengthEstimator(512, 50)``: 50 classes, class i = i tokens = 4*i frames.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .sampling import categorical


class LengthEstimator(nn.Module):
    def __init__(self, input_size: int = 512, output_size: int = 50, hidden: int = 512):
        super().__init__()
        h = hidden
        self.output = nn.Sequential(
            nn.Linear(input_size, h), nn.LayerNorm(h), nn.LeakyReLU(0.2),
            nn.Dropout(0.2),
            nn.Linear(h, h // 2), nn.LayerNorm(h // 2), nn.LeakyReLU(0.2),
            nn.Dropout(0.2),
            nn.Linear(h // 2, h // 4), nn.LayerNorm(h // 4), nn.LeakyReLU(0.2),
            nn.Linear(h // 4, output_size),
        )
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, text_emb: torch.Tensor) -> torch.Tensor:
        """(B, input_size) -> logits (B, output_size)."""
        return self.output(text_emb)

    @torch.no_grad()
    def sample_tokens(self, text_emb: torch.Tensor, generator: torch.Generator | None = None,
                      min_tokens: int = 1) -> torch.Tensor:
        """Sample a token length per row from softmax(logits); lengths below ``min_tokens`` are raised to it."""
        n = categorical(self(text_emb).float(), 1.0, generator)
        return n.clamp(min=min_tokens)
