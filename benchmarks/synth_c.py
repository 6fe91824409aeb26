"""Generator C: training-loss curves shaped like real runs, built independently of generators A and B.

Each run is a normalised loss starting near 1, scaled by 10^U(-3, 3) (floors from 1e-3 to 1e3), 600-5000 steps.
The descent is a power law ``c + a (t + t0)^-alpha`` (alpha 0.3-1.5: the scaling-law shape of transformers and
CNNs under AdamW/SGD), sometimes after a fast exponential phase (the easy patterns of the first hundred steps),
sometimes behind a linear LR warm-up (flat first steps); the floor c is 1%-50% of the start. Noise is
multiplicative log-normal (relative std 1%-15%), AR(1)-correlated (rho 0-0.9: data order and Adam's moments carry
over), sometimes heavy-tailed (Student t, df 2-4), sometimes skewed by bad batches that only push the loss up.
``clean`` is the run without noise or spikes; the truth is read from it.

Healthy (``stable``: the clean curve never stays above best + 8% of the way back for over 100 steps):
  C power-law           the plain scaling-law descent.
  C cosine restarts     SGDR: each warm restart jumps 5-20% of the way back and recovers in 50-300 steps; within
                        a cycle the loss sits a little higher while the LR is high.
  C epoch sawtooth      multi-epoch training (epochs of 50-500 steps): a drop at each boundary, when the data comes
                        round again, and a slight upward drift within the epoch.
  C transient spikes    transformer loss spikes (a large gradient while Adam's second moment lags): jumps to 1.5-10x
                        decaying in 10-300 steps, 1-6 a run, some in pairs; in ``values`` only, as the run recovers.
  C grokking plateau    a long plateau, then a second drop late in the run (an induction head or circuit forms).
Diverged (``diverged``: the climb ends 30%+ of the way back, its truth 150+ steps before the end):
  C blow-up             exponential growth after the plateau (e-folding 30-400 steps: LR too high, attention
                        logits running away), saturating at 1.6-100x the start.
  C collapse            a logistic rise (50-800 steps) to a plateau at or above the start, as when predictions
                        collapse to uniform (a loss of ln V); onset at 30%-80% of the run.
  C slow drift          a linear or square-root drift over 500-3000 steps ending 30%-200% of the way back (a
                        growing LR, a data-pipeline bug, weight decay fighting the fit).
  C climb after spikes  recovered spikes early, then a real logistic or exponential climb: the spikes must not
                        teach a detector to shrug off the climb.
NaN (``nan``: the truth is the first non-finite step):
  C nan                 a fast blow-up that overflows (fp16/bf16) to inf/nan, logged as nan until the run stops.
"""

from __future__ import annotations

import numpy as np
from logsim import Curve, climb_start

FAMILIES = ("C power-law", "C cosine restarts", "C epoch sawtooth", "C transient spikes", "C grokking plateau",
            "C blow-up", "C collapse", "C slow drift", "C climb after spikes", "C nan")
HEALTHY = FAMILIES[:5]
NAN = "C nan"


def _descent(rng: np.random.Generator, n: int, floor: float | None = None, two_phase: bool | None = None):
    """Normalised clean loss of a run that learns (1 at step 1): a power law, maybe after a fast phase."""
    t = np.arange(n, dtype=float)
    if rng.random() < 0.5:  # linear LR warm-up: progress is the integral of the LR, so the first steps are flat
        w = rng.uniform(20, 300)
        t = np.where(t < w, t * t / (2 * w), t - w / 2)
    floor = 10 ** rng.uniform(-2, -0.3) if floor is None else floor
    t0, alpha = 10 ** rng.uniform(0.7, 2.5), rng.uniform(0.3, 1.5)
    shape = ((t + t0) / t0) ** -alpha
    if rng.random() < 0.5 if two_phase is None else two_phase:
        p = rng.uniform(0.3, 0.8)
        shape = p * np.exp(-t / rng.uniform(10, 150)) + (1 - p) * shape
    return floor + (1 - floor) * shape


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Multiplicative noise: log-normal with AR(1) correlation, sometimes heavy-tailed, sometimes bad batches."""
    sigma, rho = rng.uniform(0.01, 0.15), rng.uniform(0.0, 0.9)
    heavy = rng.random() < 0.3  # Student t, its spread brought near the normal's by the /1.2
    eps = np.clip(rng.standard_t(rng.uniform(2, 4), n) / 1.2, -12, 12) if heavy else rng.standard_normal(n)
    z, k = eps.copy(), np.sqrt(1 - rho * rho)
    for i in range(1, n):  # unit-variance AR(1)
        z[i] = rho * z[i - 1] + k * eps[i]
    out = np.exp(sigma * z)
    if rng.random() < 0.3:  # skew: an occasional bad batch, upward only
        bad = rng.random(n) < rng.uniform(0.002, 0.02)
        out[bad] *= 1 + rng.exponential(rng.uniform(0.2, 1.0), int(bad.sum()))
    return out


def _spikes(rng: np.random.Generator, n: int, lo: int, hi: int, count: int) -> np.ndarray:
    """Multiplier of loss spikes starting in [lo, hi): a jump to m x over 1-8 steps, decayed by hi."""
    t, mult, s = np.arange(n), np.ones(n), None
    for _ in range(count):
        tau = min(rng.uniform(10, 300), (hi - lo) / 6)
        if s is not None and rng.random() < 0.3:  # a second spike close after the previous one
            s += int(rng.integers(20, 200))
        else:
            s = int(rng.integers(lo, int(hi - 5 * tau)))
        if s > hi - 5 * tau:  # would not have decayed in time
            continue
        m, ramp = 10 ** rng.uniform(np.log10(1.5), 1), int(rng.integers(1, 9))
        u = t[s:] - s
        mult[s:] += (m - 1) * np.minimum(1, (u + 1) / ramp) * np.exp(-u / tau)
    return mult


def _rise(u: np.ndarray, s: float) -> np.ndarray:
    """A logistic from 0 at u = 0 (``u`` is clipped at 0) to 1, with its midpoint 3 s in."""
    c = 1 / (1 + np.exp(3.0))
    return (1 / (1 + np.exp(-(u - 3 * s) / s)) - c) / (1 - c)


def _exp_climb(rng: np.random.Generator, base: np.ndarray, o: int):
    """Exponential growth from step o (e-folding 30-400 steps), saturating at 1.6-100x the start."""
    n, b = len(base), base[o]
    tau = min(rng.uniform(30, 400), (n - o - 200) / np.log1p(0.5 * (1 - b) / b))  # half way back 200 before end
    if tau < 30:
        return None
    cap = 10 ** rng.uniform(0.2, 2) - b
    u = np.maximum(np.arange(n) - o, 0)
    return base + cap * np.tanh(b * np.expm1(np.minimum(u / tau, 700)) / cap)


def _logistic_climb(rng: np.random.Generator, base: np.ndarray, o: int):
    """A logistic rise from step o (10-90% in 50-800 steps) to a plateau at 1-1.4x the start."""
    n = len(base)
    s = min(rng.uniform(50, 800) / 4.4, (n - o - 200) / 2.5)
    if s < 50 / 4.4:
        return None
    r = _rise(np.maximum(np.arange(n) - o, 0), s)
    return base * (1 - r) + rng.uniform(1.0, 1.4) * r


def _healthy(rng: np.random.Generator, family: str):
    """(clean, spike multiplier or None, None) of a run that learns."""
    n = int(rng.integers(600, 5001))
    t = np.arange(n, dtype=float)
    if family == "C power-law":
        return _descent(rng, n, two_phase=False), None, None
    base = _descent(rng, n)
    if family == "C cosine restarts":
        tmult = int(rng.choice([1, 2]))
        lens = float(tmult) ** np.arange(int(rng.integers(2, 7 if tmult == 1 else 5)))
        ends = np.round(np.cumsum(lens) / lens.sum() * n).astype(int)
        starts = np.concatenate([[0], ends[:-1]])
        phase = np.concatenate([np.arange(b - a) / (b - a) for a, b in zip(starts, ends, strict=True)])
        clean = base + rng.uniform(0.01, 0.03) * 0.5 * (1 + np.cos(np.pi * phase)) * (1 - base)  # high-LR excess
        for a in starts[1:]:  # the jump at a restart, recovered in 50-300 steps (5 time constants)
            jump = rng.uniform(0.05, 0.2) * (clean[0] - clean[a - 1])
            clean[a:] += jump * np.exp(-(t[a:] - a) / (rng.uniform(50, 300) / 5))
        return clean, None, None
    if family == "C epoch sawtooth":
        epoch = int(rng.integers(50, min(500, n // 3) + 1))
        return base + rng.uniform(0.02, 0.06) * (1 - base) * (t % epoch) / epoch, None, None
    if family == "C transient spikes":
        return base, _spikes(rng, n, n // 10, n - 50, int(rng.integers(1, 7))), None
    # grokking plateau: descend to a plateau, creep up a little on it, then drop to 3%-50% of it late in the run
    plateau = rng.uniform(0.15, 0.6)
    base = _descent(rng, n, floor=plateau)
    g = int(rng.uniform(0.4, 0.8) * n)
    s = min(rng.uniform(10, 150), (n - g) / 8)
    creep = rng.uniform(0, 0.04) * (1 - plateau) * np.clip((t - n // 5) / (g - n // 5), 0, 1)
    r = _rise(np.maximum(t - g, 0), s)
    return base + creep * (1 - r) - plateau * (1 - 10 ** rng.uniform(-1.5, -0.3)) * r, None, None


def _failing(rng: np.random.Generator, family: str):
    """(clean, spike multiplier or None, onset) of a run that climbs back, or None to draw again."""
    if family == "C slow drift":
        d = int(rng.integers(500, 3001))
        n = int(rng.integers(max(600, int(1.4 * d)), 5001))
        base, o = _descent(rng, n), int(rng.uniform(0.25 * n, n - d))
        g = np.clip((np.arange(n) - o) / d, 0, 1)
        g = g if rng.random() < 0.5 else np.sqrt(g)
        best = base[o - 1]  # the drift lands at F of the way back at the end, the base's own decline included
        clean = base + (best - base[-1] + rng.uniform(0.3, 2.0) * (1 - best)) * g
        return (clean, None, o) if _ok(clean, o) else None
    n = int(rng.integers(600, 5001))
    base, spiky = _descent(rng, n), family == "C climb after spikes"
    o = int(rng.uniform(0.5 if spiky else 0.3, 0.8) * n)
    mult = _spikes(rng, n, n // 10, o - 50, int(rng.integers(1, 5))) if spiky else None
    exp = family == "C blow-up" or (spiky and rng.random() < 0.5)  # climb after spikes: either kind
    clean = (_exp_climb if exp else _logistic_climb)(rng, base, o)
    return (clean, mult, o) if clean is not None and _ok(clean, o) else None


def _nan(rng: np.random.Generator, family: str = NAN):
    """(clean, None, None) of a run that blows up to inf/nan, or None to draw again."""
    n = int(rng.integers(600, 5001))
    base, o = _descent(rng, n), int(rng.uniform(0.3, 0.9) * n)
    limit = 10 ** rng.uniform(0.5, 4)  # where it overflows, as a multiple of the start
    tau = min(rng.uniform(5, 150), (n - o - 10) / np.log1p(limit / base[o]))
    if tau < 3:
        return None
    clean = base + base[o] * np.expm1(np.minimum(np.maximum(np.arange(n) - o, 0) / tau, 700))
    k = int(np.argmax(clean > limit))
    clean = clean[: min(n, max(600, k + 1 + int(rng.integers(0, 500))))]  # nan logged until the run is stopped
    clean[k] = np.inf if rng.random() < 0.5 else np.nan
    clean[k + 1:] = np.nan
    return clean, None, None


def _ok(clean: np.ndarray, o: int) -> bool:
    """A well-defined climb: ends 30%+ of the way back, its truth 150+ steps before the end."""
    best = clean[:o].min()
    return climb_start(clean, clean[0], o) <= len(clean) - 150 and clean[-1] >= best + 0.3 * (clean[0] - best)


def curve(rng: np.random.Generator, family: str) -> Curve:
    """One run of ``family``, drawn from ``rng``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}")
    make = _healthy if family in HEALTHY else _nan if family == NAN else _failing
    for _ in range(1000):  # a failing draw whose climb is not well defined is drawn again
        if (made := make(rng, family)) is not None:
            break
    else:
        raise RuntimeError(f"{family}: no valid curve in 1000 draws")
    clean, mult, onset = made
    clean = clean * 10 ** rng.uniform(-3, 3)
    start = float(clean[0])
    values = clean * _noise(rng, len(clean)) * (1.0 if mult is None else mult)
    if family == NAN:
        return Curve(family, values, clean, "nan", int(np.argmax(~np.isfinite(values))) + 1, start)
    if onset is None:
        return Curve(family, values, clean, "stable", None, start)
    return Curve(family, values, clean, "diverged", climb_start(clean, start, onset), start)


def curves(rng: np.random.Generator, n: int, families=FAMILIES) -> list[Curve]:
    """``n`` runs of each family, in family order."""
    return [curve(rng, family) for family in families for _ in range(n)]


def _longest_above(clean: np.ndarray, start: float, running: bool) -> int:
    """Longest run of steps after the best (or above the running best) beyond best + 8% of the way back."""
    best = np.minimum.accumulate(clean) if running else clean.min()
    above = (clean > best + 0.08 * (start - best))[0 if running else int(np.argmin(clean)):]
    edges = np.diff(np.concatenate([[0], above.astype(int), [0]]))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max(initial=0))


if __name__ == "__main__":  # 20 runs per family on seeds 0-2: ranges, and the invariants asserted
    made = [c for seed in range(3) for c in curves(np.random.default_rng(seed), 20)]
    for family in FAMILIES:
        cs = [c for c in made if c.family == family]
        lens, starts = [len(c.values) for c in cs], [c.start for c in cs]
        line = f"{family:22s} n={len(cs)} len {min(lens)}-{max(lens)} start {min(starts):.2g}-{max(starts):.2g}"
        for c in cs:
            n, v, cl, k = len(c.values), c.values, c.clean, c.truth or len(c.values) + 1
            assert len(cl) == n and 600 <= n <= 5000 and c.start == cl[0] and 0 < c.start < np.inf, family
            assert np.isfinite(v[: k - 1]).all() and (v[: k - 1] > 0).all() and (cl[: k - 1] > 0).all(), family
            if c.expect == "nan":
                assert 1 <= k <= n and not np.isfinite(v[k - 1]) and not np.isfinite(cl[k - 1]), family
            elif c.expect == "stable":
                assert c.truth is None and np.isfinite(v).all() and cl[-1] <= c.start, family
                assert max(_longest_above(cl, c.start, running) for running in (False, True)) <= 100, family
            else:
                best = cl[:k].min()
                assert np.isfinite(v).all() and (v > 0).all() and 1 <= k <= n - 150, (family, k, n)
                assert cl[-1] >= best + 0.3 * (c.start - best), family
                assert (cl[k - 1:] > best + 0.1 * (c.start - best)).all(), family
        if cs[0].expect != "stable":
            line += f" median truth/len {np.median([c.truth / len(c.values) for c in cs]):.2f}"
        print(line)
    print("ok")
