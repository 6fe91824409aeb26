"""Write a per-step curve the way training scripts log it.

The detector never sees a per-step curve in the wild: it sees rows every 1, 5,
10 or 50 steps (or irregularly, with gaps where a log chunk was lost), either
the value at the logged step (Lightning's ``on_step``, most hand-written
loops) or the mean since the previous row (Hugging Face Trainer's ``loss``),
and, after a crash-resume, the steps since the last checkpoint logged twice.
Both generators' curves and the real tagger curves go through ``log_rows`` so
every family is judged at every cadence on the same underlying run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CADENCES = ("1", "5", "10", "50", "irregular")


@dataclass
class Curve:
    """One underlying run: per-step values (index 0 is step 1) and what it should be judged."""

    family: str
    values: np.ndarray  # observed per-step values (noise, spikes, nan included)
    clean: np.ndarray  # the same without noise or spikes: the truth is read from it
    expect: str  # stable | diverged | nan | flat | oscillating
    truth: int | None = None  # climb start (first step of the sustained 10% crossing) or first non-finite step
    start: float | None = None  # the clean starting value


def logged_steps(n: int, cadence: str, rng: np.random.Generator) -> np.ndarray:
    """1-based steps a script with this cadence writes a row at (the first at 1 or at the cadence)."""
    if cadence == "irregular":
        gaps = np.exp(rng.normal(np.log(8), 0.8, size=n)).clip(1, 80).astype(int)
        lost = rng.random(n) < 0.01  # a lost chunk of the log
        gaps[lost] = rng.integers(100, 300, size=int(lost.sum()))
        steps = np.cumsum(np.concatenate([[1], gaps]))
        steps = steps[steps <= n]
        return steps if steps[-1] == n else np.append(steps, n)  # the last row before it stopped
    c = int(cadence)
    first = 1 if rng.random() < 0.5 else c
    steps = np.arange(first, n + 1, c)
    if steps[-1] != n and rng.random() < 0.5:  # many loops also log the last step
        steps = np.append(steps, n)
    return steps


def log_rows(curve: Curve, cadence: str, rng: np.random.Generator, *, mean: bool | None = None,
             resume: bool | None = None) -> list[tuple[int, float]]:
    """The rows as written, in file order: ``[(step, value)]``, repeats after a resume included."""
    n = len(curve.values)
    steps = logged_steps(n, cadence, rng)
    mean = bool(rng.random() < 0.5) if mean is None else mean
    if mean:  # the mean over the steps since the previous row (a nan in there makes it nan)
        csum = np.concatenate([[0.0], np.cumsum(curve.values)])
        prev = np.concatenate([[0], steps[:-1]])
        with np.errstate(invalid="ignore"):  # inf - inf after an overflow: nan, as the mean would be
            vals = (csum[steps] - csum[prev]) / (steps - prev)
    else:
        vals = curve.values[steps - 1]
    rows = list(zip(steps.tolist(), vals.tolist(), strict=True))
    resume = bool(rng.random() < 0.3) if resume is None else resume
    if resume and len(rows) > 20:
        # crashed at row k, resumed from a checkpoint 50-500 steps earlier: those steps are logged again
        k = int(rng.integers(len(rows) // 4, len(rows) - 5))
        crash = rows[k][0]
        back = crash - int(rng.integers(1, 11)) * 50
        again = [(s, v * float(np.exp(0.02 * rng.standard_normal()))) for s, v in rows if back < s <= crash]
        rows = rows[: k + 1] + again + rows[k + 1:]
    return rows


def interval(rows: list[tuple[int, float]]) -> float:
    """The typical logging interval of a log (median step gap)."""
    steps = sorted({s for s, _ in rows})
    return float(np.median(np.diff(steps))) if len(steps) > 1 else 1.0


def average(values: np.ndarray, k: int) -> np.ndarray:
    """The ``k``-step centred moving average of ``values`` (its ends padded with the end values): the curve a
    truth is read from where the clean curve holds more than its trend (real curves' noise, catapults)."""
    return np.convolve(np.pad(values, k // 2, mode="edge"), np.ones(k) / k, mode="valid")


def climb_start(clean: np.ndarray, start: float, best_before: int) -> int:
    """1-based first step after the best (within ``clean[:best_before]``) after which ``clean``
    stays above best + 10% of (start - best)."""
    best_i = int(np.argmin(clean[:best_before]))
    best = clean[best_i]
    above = clean > best + 0.1 * (start - best)
    below = np.nonzero(~above[best_i:])[0]
    return (best_i + int(below[-1]) + 1 if len(below) else best_i) + 1
