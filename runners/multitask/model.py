"""A shared MLP trunk over the whole sequence and one linear head per task.

``trunk`` is the only module every task's gradient flows through (the probe
measures each task's gradient there: ``SHARED_MODULE``). Its last layer is a
narrow bottleneck, so the tasks compete for its features: the countdown head
needs one output per timestep from it, the other heads a handful. Which task
gets features is decided by whose gradient reaches the trunk.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import Data, Model


class Trunk(nn.Module):
    def __init__(self, cfg: Model, inputs: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(cfg.layers):
            layers += [nn.Linear(inputs if i == 0 else cfg.width, cfg.width), nn.ReLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))  # [B, width]


class Heads(nn.Module):
    def __init__(self, width: int, types: int, length: int):
        super().__init__()
        self.pointer = nn.Linear(width, 2)
        self.kind = nn.Linear(width, types)  # not `type`: nn.Module.type exists
        self.flag = nn.Linear(width, 1)
        self.countdown = nn.Linear(width, length)

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pointer": self.pointer(h), "type": self.kind(h), "flag": self.flag(h)[:, 0],
                "countdown": self.countdown(h)}


class MultiTask(nn.Module):
    def __init__(self, cfg: Model, data: Data):
        super().__init__()
        self.trunk = Trunk(cfg, 3 * data.length)
        self.heads = Heads(cfg.width, data.types, data.length)
        self.log_vars = nn.Parameter(torch.zeros(4))
        """Kendall et al.'s per-task log-variances; trained only by the ``uncertainty`` normaliser."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        h = self.trunk(x)
        return h, self.heads(h)
