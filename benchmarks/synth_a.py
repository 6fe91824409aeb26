"""Generator A: the detector benchmark's original synthetic curves (v2), unchanged.

Healthy: an exponential descent over 1500-3000 steps, 2-8% heavy-tailed
(Student t, 3 dof) multiplicative noise, 0-4 transient spikes of +20-100%,
some with a warmup bump or a learning-rate drop. Divergent: the same, then a
linear climb back to 0.8-1.0x the start over 100-300 steps. Kept as it was so
the v2 figures stay comparable; generator B (``synth_b``) is the broader one.
"""

from __future__ import annotations

import math

import numpy as np
from logsim import Curve, climb_start


def _base(rng: np.random.Generator, n: int) -> tuple[np.ndarray, float]:
    start = float(np.exp(rng.uniform(np.log(0.5), np.log(10))))
    floor = start * rng.uniform(0.05, 0.5)
    t = np.arange(n, dtype=float)
    tau = rng.uniform(n / 30, n / 8)
    clean = floor + (start - floor) * np.exp(-t / tau)
    if rng.random() < 0.3:  # a bump during warmup, before the loss has come down
        w = int(rng.integers(30, 120))
        clean[:w] *= 1 + rng.uniform(0.1, 0.4) * np.sin(np.pi * t[:w] / w)
    if rng.random() < 0.3:  # a learning-rate drop late in training
        d = int(rng.uniform(0.5, 0.8) * n)
        clean[d:] *= 1 - rng.uniform(0.1, 0.3) * np.minimum(1, (t[d:] - d) / 20)
    return clean, start


def _spikes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Multiplicative transient spikes: +20-100%, flat for 0-20 steps, then recovering."""
    factor = np.ones(n)
    for _ in range(int(rng.integers(0, 5))):
        at = int(rng.integers(50, n - 10))
        amp, flat, tau = rng.uniform(0.2, 1.0), int(rng.integers(0, 21)), rng.uniform(3, 20)
        t = np.arange(n - at, dtype=float)
        shape = np.where(t < flat, 1.0, np.exp(-(t - flat) / tau))
        factor[at:] *= 1 + amp * shape
    return factor


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    sigma = rng.uniform(0.02, 0.08)
    return np.clip(1 + sigma * rng.standard_t(3, n) / math.sqrt(3), 0.05, None)


def healthy(rng: np.random.Generator) -> Curve:
    n = int(rng.integers(1500, 3001))
    clean, start = _base(rng, n)
    return Curve("A healthy", clean * _spikes(rng, n) * _noise(rng, n), clean, "stable", None, start)


def divergent(rng: np.random.Generator) -> Curve:
    n = int(rng.integers(1500, 3001))
    clean, start = _base(rng, n)
    dur = int(rng.integers(100, 301))
    onset = int(rng.uniform(0.35, 0.65) * n)
    onset = min(onset, n - dur - 100)
    target = start * rng.uniform(0.8, 1.0)
    t = np.arange(n - onset, dtype=float)
    clean[onset:] = clean[onset:] + (target - clean[onset:]) * np.minimum(1, t / dur)
    truth = climb_start(clean, start, onset + 1)
    return Curve("A climb 100-300", clean * _spikes(rng, n) * _noise(rng, n), clean, "diverged", truth, start)


def curves(rng: np.random.Generator, n: int) -> list[Curve]:
    return [healthy(rng) for _ in range(n)] + [divergent(rng) for _ in range(n)]
