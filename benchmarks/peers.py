"""The detector's peers in the benchmark: published rules and off-the-shelf change detectors.

Each is a function ``rows -> alarm step or None`` over the rows as logged
(``[(step, value)]``, repeats after a resume skipped like the detector skips
them). The published rules count points, as their authors wrote them, so on a
sparse log their windows cover more steps: that is how they behave there.
"""

from __future__ import annotations

import math
import statistics
from collections import deque


def _fresh(rows):
    """Rows in order with replayed steps (a resume) dropped."""
    last = None
    for step, v in rows:
        if last is not None and step <= last and math.isfinite(v):
            continue
        last = step
        yield step, v


def ma_ratio(rows, fast: int = 20, slow: int = 500, ratio: float = 1.2, hold: int = 50):
    """Fast/slow moving-average ratio above ``ratio`` for ``hold`` points (the v2 benchmark's
    settings with no false alarm on generator A; 20/200/1.1/20 alarms on most spikes)."""
    f = s = None
    held = 0
    for i, (step, v) in enumerate(_fresh(rows)):
        if not math.isfinite(v):
            return step
        f = v if f is None else f + (v - f) * 2 / (fast + 1)
        s = v if s is None else s + (v - s) * 2 / (slow + 1)
        held = held + 1 if i > slow and f > ratio * s else 0
        if held >= hold:
            return step
    return None


def lightning_spike(rows, window: int = 10, mult: float = 3.0):
    """Lightning's SpikeDetection: loss >= 3x the mean of the last 10 points."""
    buf: deque[float] = deque(maxlen=window)
    for step, v in _fresh(rows):
        if not math.isfinite(v) or (len(buf) == window and v >= mult * sum(buf) / window):
            return step
        buf.append(v)
    return None


def kill_loss_spike(rows, window: int = 100, mult: float = 2.0, patience: int = 5):
    """llm-foundry's KillLossSpike: loss >= 2x the 100-point mean for 5 points."""
    buf: deque[float] = deque(maxlen=window)
    total, held = 0.0, 0
    for step, v in _fresh(rows):
        if not math.isfinite(v):
            return step
        if len(buf) == window:
            held = held + 1 if v >= mult * total / window else 0
            if held >= patience:
                return step
            total -= buf[0]
        buf.append(v)
        total += v
    return None


def shape_rule(rows, win: int = 21, hold: int = 30):
    """Median of log-loss; rise over the running minimum > max(15%, 0.25 x descent, 3 sigma),
    still rising, held 30 points (a careful published-style rule)."""
    buf: deque[float] = deque(maxlen=win)
    start = lo = prev = None
    held = 0
    resid: deque[float] = deque(maxlen=200)
    for step, v in _fresh(rows):
        if not math.isfinite(v) or v <= 0:
            return step
        lv = math.log(v)
        buf.append(lv)
        if len(buf) < win:
            continue
        med = statistics.median(buf)
        resid.append(abs(lv - med))
        start = med if start is None else start
        lo = med if lo is None else min(lo, med)
        need = max(math.log(1.15), 0.25 * (start - lo), 3 * 1.4826 * statistics.median(resid))
        rising = prev is not None and med >= prev
        held = held + 1 if med - lo > need and rising else (held if med - lo > need else 0)
        prev = med
        if held >= hold:
            return step
    return None


def adwin(rows, delta: float = 1e-5):
    """river's ADWIN on log-loss, upward changes only (a detected change whose new mean is higher)."""
    from river.drift import ADWIN

    det = ADWIN(delta=delta)
    for step, v in _fresh(rows):
        if not math.isfinite(v) or v <= 0:
            return step
        before = det.estimation
        det.update(math.log(v))
        if det.drift_detected and det.estimation > before:
            return step
    return None


def page_hinkley(rows):
    """river's PageHinkley, defaults, increases only (``mode="up"``), on log-loss (scale-free)."""
    from river.drift import PageHinkley

    det = PageHinkley(mode="up")
    for step, v in _fresh(rows):
        if not math.isfinite(v) or v <= 0:
            return step
        det.update(math.log(v))
        if det.drift_detected:
            return step
    return None


PEERS = {
    "fast/slow MA ratio (20/500 points, 1.2x, 50 points)": ma_ratio,
    "Lightning SpikeDetection (3x 10-point mean)": lightning_spike,
    "llm-foundry KillLossSpike (2x 100-point mean, 5 points)": kill_loss_spike,
    "shape-aware rule (median log-loss, held 30 points)": shape_rule,
    "river ADWIN (log-loss, upward, delta 1e-5)": adwin,
    "river PageHinkley (log-loss, up, defaults)": page_hinkley,
}
