"""Deterministic synthetic sequences with four targets, one per task.

Each row is a 3-channel sequence of ``length`` timesteps. Channel 0 holds one
event (a pulse of one of ``types`` shapes between ``start`` and ``end``) in
noise; channel 1 holds a few spikes in noise; channel 2 is noise with a small
offset. Targets:

* ``pointer`` (2 outputs): the event's start and end, as fractions of the length;
* ``type`` (1 label): the pulse's shape;
* ``flag`` (1 label): whether channel 2's offset is positive;
* ``countdown`` (``length`` outputs): at each timestep t, steps from t + 3 to
  the next spike (clipped at 24), centred per timestep (a head's bias alone
  learns nothing) and scaled to unit variance.

Countdown reads channel 1, which no other task needs: its trunk features
must be learned from its own gradient. That is what a loss balancer that
equalises loss *magnitudes* starves.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import Data

HORIZON = 24
"""Countdown clip: steps until the next spike, at most this."""
LEAD = 3
"""The countdown at t counts from t + LEAD: the input at t says nothing about it, only learned lookahead does."""


@dataclass
class Split:
    x: torch.Tensor  # [N, 3, T]
    pointer: torch.Tensor  # [N, 2]
    type: torch.Tensor  # [N]
    flag: torch.Tensor  # [N] float 0/1
    countdown: torch.Tensor  # [N, T]

    def __len__(self) -> int:
        return self.x.shape[0]

    def batch(self, idx: torch.Tensor) -> Split:
        return Split(self.x[idx], self.pointer[idx], self.type[idx], self.flag[idx], self.countdown[idx])

    def to(self, device) -> Split:
        return Split(*(t.to(device) for t in (self.x, self.pointer, self.type, self.flag, self.countdown)))


def _pulse(kind: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Pulse shape ``kind`` at relative position u in [0, 1] (0 outside)."""
    inside = ((u >= 0) & (u <= 1)).float()
    shapes = torch.stack([
        torch.ones_like(u),  # square
        1 - (2 * u - 1).abs(),  # triangle
        torch.sin(torch.pi * u * 3).abs(),  # three humps
        torch.where(u < 0.5, torch.full_like(u, 0.4), torch.ones_like(u)),  # step up
        u,  # ramp up
        1 - u,  # ramp down
        torch.sin(torch.pi * u),  # arch
        (u > 0.3).float() * (u < 0.7).float(),  # narrow box
    ])
    return shapes[kind, torch.arange(u.shape[0])[:, None], torch.arange(u.shape[1])[None, :]] * inside


def generate(n: int, cfg: Data, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    T = cfg.length
    t = torch.arange(T).float()[None, :]
    start = torch.randint(0, T // 2, (n, 1), generator=g).float()
    span = torch.randint(T // 8, T // 2, (n, 1), generator=g).float()
    kind = torch.randint(0, cfg.types, (n,), generator=g)
    event = _pulse(kind[:, None].expand(n, T), (t - start) / span)
    ch0 = event + 0.3 * torch.randn(n, T, generator=g)
    spikes = torch.rand(n, T, generator=g) < 0.06
    ch1 = spikes.float() * 1.5 + 0.5 * torch.randn(n, T, generator=g)
    offset = torch.randn(n, 1, generator=g) * 0.3
    ch2 = offset + 0.5 * torch.randn(n, T, generator=g)
    # steps until the next spike at or after t, clipped
    nxt = torch.full((n,), float(HORIZON))
    countdown = torch.empty(n, T)
    for i in range(T - 1, -1, -1):
        nxt = torch.where(spikes[:, i], torch.zeros(n), torch.clamp(nxt + 1, max=HORIZON))
        countdown[:, i] = nxt
    countdown = countdown.roll(-LEAD, dims=1)
    countdown[:, T - LEAD:] = HORIZON
    countdown = countdown - countdown.mean(0, keepdim=True)  # per timestep: a head's bias alone learns nothing
    countdown = countdown / countdown.std()
    pointer = torch.cat([start / T, (start + span) / T], dim=1)
    return Split(torch.stack([ch0, ch1, ch2], dim=1), pointer, kind, (offset[:, 0] > 0).float(), countdown)


def load(cfg: Data) -> tuple[Split, Split]:
    """(train, val): the same rows for the same ``cfg``."""
    return generate(cfg.train_rows, cfg, cfg.seed), generate(cfg.val_rows, cfg, cfg.seed + 1)
