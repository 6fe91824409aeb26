"""An MLP scorer: one score per label (background first), the logits of cross-entropy.

The ranking loss ranks rows by the score of each positive class, so the same
outputs serve both phases and the phase switch changes only the objective.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import Data, Model


class Scorer(nn.Module):
    def __init__(self, spec: Model, data: Data):
        super().__init__()
        layers: list[nn.Module] = []
        width = data.features
        for _ in range(spec.layers):
            layers += [nn.Linear(width, spec.hidden), nn.ReLU()]
            width = spec.hidden
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(width, data.classes + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))
