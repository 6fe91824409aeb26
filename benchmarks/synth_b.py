"""Generator B: loss-curve families broader than generator A, built independently.

Where A is one exponential descent with Student-t noise and a linear climb, B
draws each part from several shapes, so a detector tuned on A is tested on
curves it was not tuned on:

* descent: exponential, power law, two-phase (a fast drop then a slow one) or
  delayed (a plateau at the start, then the drop); 1000-5000 steps; the loss
  ends at 2-60% of its start; scale 1e-3 to 1e3 (log-uniform).
* noise: log-normal-ish multiplicative noise with Laplace or Student-t tails,
  1-15% (log-uniform), AR(1)-correlated between steps in some runs.
* spikes: heavy-tailed (Pareto) +10% to +500%, held 0-30 steps, decaying over
  2-60 steps, all recovered well before the end.
* warmup bumps (the loss rises 10-60% in its first 20-300 steps), learning-rate
  drops (10-40%, over 5-100 steps), plateaus inside the descent (stair steps).
* climbs: slow (back over 300-1000 steps), fast (30-300), straight after a
  plateau halfway down, shortly after a learning-rate drop, in stair steps
  (2-4 rises of 15-50% with plateaus between), or late (the last 12-25% of the run);
  ramps linear, accelerating or saturating, to 0.4-3x of the way back.
* non-finite (nan or inf, sudden or at the end of a climb), flat (never
  descends), oscillating (20-60% swings with no trend).
"""

from __future__ import annotations

import numpy as np
from logsim import Curve, climb_start

HEALTHY = ("B plain", "B lr drops", "B warmup bump", "B stair descent", "B spiky")
CLIMBS = ("B slow climb", "B fast climb", "B after plateau", "B after lr drop", "B stair climb", "B late climb")
OTHER = ("B nan/inf", "B flat", "B oscillating")
FAMILIES = HEALTHY + CLIMBS + OTHER


def _descent(rng: np.random.Generator, n: int, start: float, floor: float) -> np.ndarray:
    t = np.arange(n, dtype=float)
    shape = rng.choice(["exp", "power", "two-phase", "delayed"])
    if shape == "exp":
        u = np.exp(-t / rng.uniform(n / 40, n / 6))
    elif shape == "power":
        u = (1 + t / rng.uniform(5, 100)) ** -rng.uniform(0.6, 2.0)
        u = (u - u[-1]) / (1 - u[-1])
    elif shape == "two-phase":
        w = rng.uniform(0.3, 0.7)
        u = w * np.exp(-t / rng.uniform(10, 60)) + (1 - w) * np.exp(-t / rng.uniform(n / 20, n / 5))
    else:
        d = rng.uniform(30, 300)  # a plateau at the start, then the drop
        gate = (1 + np.exp(np.minimum((t - d) / rng.uniform(5, 30), 700))) ** -0.3
        u = gate * np.exp(-np.maximum(t - d, 0) / rng.uniform(n / 30, n / 6))
        u = u / u[0]
    return floor + (start - floor) * u


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    sigma = float(np.exp(rng.uniform(np.log(0.01), np.log(0.15))))
    if rng.random() < 0.5:
        e = rng.laplace(0, 1 / np.sqrt(2), n)
    else:
        dof = rng.uniform(2.5, 6)
        e = rng.standard_t(dof, n) * np.sqrt((dof - 2) / dof)
    e = np.clip(e, -8, 8)
    if rng.random() < 0.3:  # batches are not independent: some AR(1) correlation
        rho = rng.uniform(0.2, 0.6)
        for i in range(1, n):
            e[i] = rho * e[i - 1] + np.sqrt(1 - rho * rho) * e[i]
    return np.exp(sigma * e - 0.5 * sigma * sigma)


def _spikes(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    factor = np.ones(n)
    for _ in range(int(rng.poisson(rate))):
        amp = min(5.0, 0.1 * (1 + rng.pareto(1.2)))
        hold, tau = int(rng.integers(0, 31)), rng.uniform(2, 60)
        at = int(rng.integers(100, max(101, n - hold - int(6 * tau) - 150)))
        t = np.arange(n - at, dtype=float)
        factor[at:] *= 1 + amp * np.where(t < hold, 1.0, np.exp(-(t - hold) / tau))
    return factor


def _lr_drop(rng: np.random.Generator, clean: np.ndarray, at: int) -> None:
    t = np.arange(len(clean) - at, dtype=float)
    clean[at:] *= 1 - rng.uniform(0.1, 0.4) * np.minimum(1, t / rng.uniform(5, 100))


def _warmup_bump(rng: np.random.Generator, clean: np.ndarray) -> None:
    w = int(rng.integers(20, 301))
    t = np.arange(w, dtype=float)
    clean[:w] *= 1 + rng.uniform(0.1, 0.6) * np.sin(np.pi * t / w) ** 2


def _climb(rng: np.random.Generator, clean: np.ndarray, onset: int, dur: int, to: float) -> None:
    """Ramp from the curve's value at ``onset`` to ``to`` over ``dur`` steps (then hold there)."""
    q = rng.choice([1.0, rng.uniform(1.3, 2.5), rng.uniform(0.5, 0.8)])  # linear, accelerating, saturating
    t = np.arange(len(clean) - onset, dtype=float)
    ramp = np.minimum(1, t / dur) ** q
    base = clean[onset]
    clean[onset:] = np.maximum(clean[onset:], base + (to - base) * ramp)


def curve(rng: np.random.Generator, family: str) -> Curve:
    n = int(rng.integers(1000, 5001))
    start = float(10 ** rng.uniform(-3, 3))
    floor = start * float(np.exp(rng.uniform(np.log(0.02), np.log(0.6))))
    clean = _descent(rng, n, start, floor)
    if family == "B stair descent" or (family in CLIMBS and rng.random() < 0.2):
        for _ in range(int(rng.integers(1, 4))):  # the descent pauses, then resumes
            a, w = int(rng.uniform(0.05, 0.5) * n), int(rng.uniform(50, 400))
            clean[a:] = np.concatenate([np.full(min(w, n - a), clean[a]), clean[a:]])[: n - a]
    if family == "B warmup bump" or rng.random() < 0.15:
        _warmup_bump(rng, clean)
    if family == "B lr drops" or rng.random() < 0.2:
        for _ in range(int(rng.integers(1, 3))):
            _lr_drop(rng, clean, int(rng.uniform(0.3, 0.9) * n))
    rate = rng.uniform(4, 10) if family == "B spiky" else rng.uniform(0, 3)
    expect, truth = "stable", None
    if family == "B flat":
        clean = start * (1 + rng.uniform(-0.03, 0.03) * np.linspace(0, 1, n))
        expect = "flat"
    elif family == "B oscillating":
        t = np.arange(n, dtype=float)
        clean = start * (1 + rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * t / rng.uniform(200, 800) + rng.uniform(0, 6)))
        expect = "oscillating"
    elif family in CLIMBS:
        expect = "diverged"
        best = None
        if family == "B after plateau":  # halfway down, the loss stalls for 50-300 steps and climbs from there
            at = int(rng.uniform(0.1, 0.4) * n)
            clean[at:] = clean[at]
            onset = at + int(rng.integers(50, 301))
        elif family == "B after lr drop":
            drop = int(rng.uniform(0.3, 0.6) * n)
            _lr_drop(rng, clean, drop)
            onset = drop + int(rng.integers(30, 301))
        elif family == "B late climb":
            onset = int(rng.uniform(0.75, 0.85) * n)
        else:
            onset = int(rng.uniform(0.3, 0.65) * n)
        best = float(clean[:onset + 1].min())
        back = start - best
        if family == "B stair climb":
            level, at = best, onset
            for _ in range(int(rng.integers(2, 5))):
                level += rng.uniform(0.15, 0.5) * back
                dur = int(rng.integers(30, 151))
                _climb(rng, clean, at, dur, level)
                at += dur + int(rng.integers(100, 401))
                if at >= n - 50:
                    break
        else:
            dur = int(rng.integers(30, 301)) if family == "B fast climb" else int(rng.integers(300, 1001))
            if family == "B late climb":
                dur = min(dur, n - onset)
            _climb(rng, clean, onset, dur, best + rng.uniform(0.4, 3.0) * back)
        truth = climb_start(clean, start, onset + 1)
        if back < 0.05 * start:  # a delayed descent had not begun where the climb was put: the loss never
            expect, truth = "flat", None  # came down, so it cannot climb back (about 1 curve per seed)
    values = clean * _noise(rng, n) * _spikes(rng, n, rate)
    if family == "B nan/inf":
        at = int(rng.uniform(0.2, 0.95) * n)
        if rng.random() < 0.5:  # an explosion: a fast climb, then overflow
            _climb(rng, clean, max(1, at - 40), 40, start * 10)
            values[max(1, at - 40):at] = clean[max(1, at - 40):at]
        values[at:] = rng.choice([np.nan, np.inf])
        values = values[: at + int(rng.integers(60, 200))]  # the run logs non-finite values, then dies
        clean = clean[: len(values)]
        expect, truth = "nan", at + 1
    return Curve(family, values, clean, expect, truth, start)


def curves(rng: np.random.Generator, n: int, families=FAMILIES) -> list[Curve]:
    return [curve(rng, fam) for fam in families for _ in range(n)]
