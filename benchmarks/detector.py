"""Detector benchmark: false alarms, recall, delay and climb-start error.

    python benchmarks/detector.py [--n 100] [--seed 0] [--no-real]

Seeded synthetic sets (healthy: 1500-3000 steps, 2-8% heavy-tailed noise,
0-4 transient spikes, some with a warmup bump or a learning-rate drop;
divergent: the same, then a climb back to 0.8-1.0x the start over 100-300
steps) and, unless ``--no-real``, the reference tagger's real curves (good and
bad recipes, 3 seeds each, trained to the horizon without early stopping).

The *climb start* is the first step after the best after which the smoothed
(noise- and spike-free for synthetic curves) loss stays above best + 10% of
(start - best); the *delay* is ``detected_at_step`` minus that. A detection
before the climb start counts as a false alarm, not a hit.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bisector.detector import DIVERGED, ClimbDetector, classify  # noqa: E402

# -- synthetic curves -----------------------------------------------------------


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


def _spikes(rng: np.random.Generator, n: int, lo: int = 0) -> np.ndarray:
    """Multiplicative transient spikes: +20-100%, flat for 0-20 steps, then recovering."""
    factor = np.ones(n)
    for _ in range(int(rng.integers(0, 5))):
        at = int(rng.integers(max(lo, 50), n - 10))
        amp, flat, tau = rng.uniform(0.2, 1.0), int(rng.integers(0, 21)), rng.uniform(3, 20)
        t = np.arange(n - at, dtype=float)
        shape = np.where(t < flat, 1.0, np.exp(-(t - flat) / tau))
        factor[at:] *= 1 + amp * shape
    return factor


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    sigma = rng.uniform(0.02, 0.08)
    return np.clip(1 + sigma * rng.standard_t(3, n) / math.sqrt(3), 0.05, None)


def healthy(rng: np.random.Generator) -> tuple[np.ndarray, None]:
    n = int(rng.integers(1500, 3001))
    clean, _ = _base(rng, n)
    return clean * _spikes(rng, n) * _noise(rng, n), None


def climb_start(clean: np.ndarray, start: float, best_before: int) -> int:
    """First step after the best after which ``clean`` stays above best + 10%."""
    best_i = int(np.argmin(clean[:best_before]))
    best = clean[best_i]
    above = clean > best + 0.1 * (start - best)
    below = np.nonzero(~above[best_i:])[0]
    return best_i + int(below[-1]) + 1 if len(below) else best_i


def divergent(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    n = int(rng.integers(1500, 3001))
    clean, start = _base(rng, n)
    dur = int(rng.integers(100, 301))
    onset = int(rng.uniform(0.35, 0.65) * n)
    onset = min(onset, n - dur - 100)
    target = start * rng.uniform(0.8, 1.0)
    t = np.arange(n - onset, dtype=float)
    ramp = np.minimum(1, t / dur)
    clean[onset:] = clean[onset:] + (target - clean[onset:]) * ramp
    truth = climb_start(clean, start, onset + 1)
    return clean * _spikes(rng, n, lo=0) * _noise(rng, n), truth


# -- baselines (the published rules, as streaming functions returning the alarm step) ------


def ma_ratio(values, fast: int = 20, slow: int = 500, ratio: float = 1.2, hold: int = 50):
    """Fast/slow moving-average ratio above ``ratio`` for ``hold`` steps (the settings
    with no false alarm on this set; 20/200/1.1/20 alarms on most spikes)."""
    f = s = None
    held = 0
    for i, v in enumerate(values):
        if not math.isfinite(v):
            return i
        f = v if f is None else f + (v - f) * 2 / (fast + 1)
        s = v if s is None else s + (v - s) * 2 / (slow + 1)
        held = held + 1 if i > slow and f > ratio * s else 0
        if held >= hold:
            return i
    return None


def lightning_spike(values, window: int = 10, mult: float = 3.0):
    """Lightning's SpikeDetection: loss >= 3x the mean of the last 10 steps."""
    buf: deque[float] = deque(maxlen=window)
    for i, v in enumerate(values):
        if not math.isfinite(v) or (len(buf) == window and v >= mult * sum(buf) / window):
            return i
        buf.append(v)
    return None


def kill_loss_spike(values, window: int = 100, mult: float = 2.0, patience: int = 5):
    """llm-foundry's KillLossSpike: loss >= 2x the 100-step mean for 5 steps."""
    buf: deque[float] = deque(maxlen=window)
    total, held = 0.0, 0
    for i, v in enumerate(values):
        if not math.isfinite(v):
            return i
        if len(buf) == window:
            held = held + 1 if v >= mult * total / window else 0
            if held >= patience:
                return i
            total -= buf[0]
        buf.append(v)
        total += v
    return None


def shape_rule(values, win: int = 21, hold: int = 30):
    """Median of log-loss; rise over the running minimum > max(15%, 0.25 x descent, 3 sigma),
    still rising, held 30 steps (a careful published-style rule)."""
    buf: deque[float] = deque(maxlen=win)
    start = lo = None
    held = 0
    prev = None
    resid: deque[float] = deque(maxlen=200)
    for i, v in enumerate(values):
        if not math.isfinite(v) or v <= 0:
            return i
        lv = math.log(v)
        buf.append(lv)
        if len(buf) < win:
            continue
        med = statistics.median(buf)
        resid.append(abs(lv - med))
        start = med if start is None else start
        lo = med if lo is None else min(lo, med)
        sigma = 1.4826 * statistics.median(resid)
        need = max(math.log(1.15), 0.25 * (start - lo), 3 * sigma)
        rising = prev is not None and med >= prev
        held = held + 1 if med - lo > need and rising else (held if med - lo > need else 0)
        prev = med
        if held >= hold:
            return i
    return None


def ours(values):
    v = classify(enumerate(values), ClimbDetector())
    return v.detected_at_step if v.kind == DIVERGED or v.kind == "nan" else None, v


RULES = {
    "fast/slow MA ratio": ma_ratio,
    "Lightning SpikeDetection": lightning_spike,
    "llm-foundry KillLossSpike": kill_loss_spike,
    "shape-aware rule": shape_rule,
}


# -- scoring -------------------------------------------------------------------


def score(name, fn, healthy_set, divergent_set):
    false_alarms = sum(fn(c) is not None for c, _ in healthy_set)
    delays, early = [], 0
    for c, truth in divergent_set:
        at = fn(c)
        if at is None:
            continue
        if at < truth:
            early += 1
        else:
            delays.append(at - truth)
    return {
        "rule": name, "false_alarms": false_alarms + early, "recall": len(delays) / len(divergent_set),
        "median_delay": statistics.median(delays) if delays else None,
        "p90_delay": float(np.percentile(delays, 90)) if delays else None,
    }


def score_ours(healthy_set, divergent_set):
    false_alarms, early, delays, errors = 0, 0, [], []
    for c, _ in healthy_set:
        false_alarms += classify(enumerate(c)).failed
    for c, truth in divergent_set:
        v = classify(enumerate(c))
        if v.kind != DIVERGED:
            continue
        if v.detected_at_step < truth:
            early += 1
            continue
        delays.append(v.detected_at_step - truth)
        errors.append(v.climb_start_step - truth)
    row = {
        "rule": "bisector ClimbDetector", "false_alarms": false_alarms + early,
        "recall": len(delays) / len(divergent_set),
        "median_delay": statistics.median(delays) if delays else None,
        "p90_delay": float(np.percentile(delays, 90)) if delays else None,
    }
    row["climb_err_median"] = statistics.median(abs(e) for e in errors) if errors else None
    row["climb_within_50"] = sum(abs(e) <= 50 for e in errors) / len(errors) if errors else None
    return row


def fmt(v, pct=False):
    if v is None:
        return "-"
    if pct:
        return f"{100 * v:.0f}%"
    return f"{v:.0f}" if isinstance(v, (int, float)) else str(v)


def table(rows, n_healthy, n_div):
    head = ["rule", f"false alarms /{n_healthy} healthy", f"recall /{n_div}", "median delay", "p90 delay",
            "climb start error (median abs)", "climb start within +-50"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["rule"], fmt(r["false_alarms"]), fmt(r["recall"], True), fmt(r["median_delay"]), fmt(r["p90_delay"]),
            fmt(r.get("climb_err_median")), fmt(r.get("climb_within_50"), True)]) + " |")
    return "\n".join(lines)


# -- real curves -----------------------------------------------------------------


def real_curves(seeds=(0, 1, 2)):
    """Train the reference recipes to the horizon (no early stop): [(name, values, truth)]."""
    import yaml

    from runners.tagger import TaggerRecipe, train

    root = Path(__file__).resolve().parents[1] / "recipes/tagger"
    out = []
    for which in ("good", "bad"):
        raw = yaml.safe_load((root / f"{which}.yaml").read_text())
        for seed in seeds:
            recipe = TaggerRecipe.model_validate({**raw, "seed": seed})
            values = [rec["train_ce"] for rec in train(recipe, threads=1)]
            smooth = np.convolve(np.pad(values, 10, mode="edge"), np.ones(21) / 21, mode="valid")
            truth = None
            if which == "bad":
                best_i = int(np.argmin(smooth[: len(smooth) // 2]))
                truth = climb_start(smooth, float(np.median(values[:5])), best_i + 1) + 1
            out.append((f"{which} seed {seed}", values, truth))
    return out


def speed(n: int = 100_000) -> tuple[float, float]:
    """(detector alone, reading a CSV log + fingerprint) seconds for an n-point log."""
    import tempfile

    from bisector.fingerprint import fingerprint
    from bisector.metrics_log import read

    rng = np.random.default_rng(1)
    t = np.arange(n)
    values = (0.5 + 2.5 * np.exp(-t / 5000)) * _noise(rng, n)
    pts = list(zip(range(n), values.tolist(), strict=True))
    t0 = time.perf_counter()
    classify(pts)
    alone = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.csv"
        path.write_text("step,train_loss,lr\n" + "".join(f"{i},{v:.6g},0.001\n" for i, v in pts))
        t0 = time.perf_counter()
        fingerprint(read(str(path)))
        whole = time.perf_counter() - t0
    return alone, whole


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="curves per synthetic set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-real", action="store_true", help="skip training the tagger's real curves")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    healthy_set = [healthy(rng) for _ in range(args.n)]
    divergent_set = [divergent(rng) for _ in range(args.n)]
    healthy_set = [(c.tolist(), t) for c, t in healthy_set]
    divergent_set = [(c.tolist(), t) for c, t in divergent_set]
    rows = [score(name, fn, healthy_set, divergent_set) for name, fn in RULES.items()]
    rows.append(score_ours(healthy_set, divergent_set))
    print(f"Synthetic: {args.n} healthy and {args.n} divergent curves, seed {args.seed}\n")
    print(table(rows, args.n, args.n))
    alone, whole = speed()
    print(f"\nSpeed, 100,000 points: detector {alone:.3f} s; CSV read + fingerprint {whole:.3f} s")
    if not args.no_real:
        print("\nReal tagger curves (recipes/tagger, trained to the horizon):\n")
        print("| curve | truth climb start | verdict | climb start | detected at | delay |")
        print("|---|---|---|---|---|---|")
        for name, values, truth in real_curves():
            v = classify(enumerate(values, start=1))
            delay = v.detected_at_step - truth if truth is not None and v.detected_at_step is not None else None
            print(f"| {name} | {fmt(truth)} | {v.kind} | {fmt(v.climb_start_step)} | "
                  f"{fmt(v.detected_at_step)} | {fmt(delay)} |")


if __name__ == "__main__":
    main()
