"""A deterministic, imbalanced synthetic multi-class dataset.

Label 0 is the background (most rows); labels 1..K are the positive classes,
``positive_rate`` of the rows together, the last one ``rare_share`` as
frequent as the others. Features are Gaussian around a class centre, then
bent by a fixed random nonlinearity so a linear scorer is not enough. The
rows depend on ``data_seed`` only: every trial of a campaign sees the same
data, whatever its training seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from .config import Data


@dataclass(frozen=True)
class Split:
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device) -> Split:
        return Split(self.x.to(device), self.y.to(device))


def class_probs(spec: Data) -> torch.Tensor:
    """Probability of each label (background first)."""
    rel = torch.ones(spec.classes)
    rel[-1] = spec.rare_share
    pos = spec.positive_rate * rel / rel.sum()
    return torch.cat([torch.tensor([1.0 - spec.positive_rate]), pos])


@lru_cache(maxsize=4)
def load(spec: Data) -> tuple[Split, Split]:
    g = torch.Generator().manual_seed(spec.data_seed)
    k, d = spec.classes + 1, spec.features
    centres = torch.randn(k, d, generator=g)
    centres = spec.separation * centres / centres.norm(dim=1, keepdim=True) * (d ** 0.5) / 4
    centres[0] = 0.0
    bend = torch.randn(d, d, generator=g) / d ** 0.5

    def rows(n: int) -> Split:
        y = torch.multinomial(class_probs(spec), n, replacement=True, generator=g)
        x = centres[y] + torch.randn(n, d, generator=g)
        x = x + 0.5 * torch.tanh(x @ bend)
        return Split(x, y)

    return rows(spec.train_rows), rows(spec.val_rows)
