"""Streaming divergence detector: one point in, a verdict out, O(1) per point.

The same object runs inside a trial (to stop it the moment its verdict is
final) and over a finished curve (``classify``). Why these rules:

* An exponential moving average of the loss hides single-step noise.
* Severity ``(smoothed - best) / (start - best)`` is comparable across loss
  scales: a healthy run at CE 0.02 spiking to 0.04 is far from a run at 1.0
  climbing back toward its starting 2.7.
* A divergence needs a real descent first, a severity held for ``hold``
  points, and a curve still rising, so transient spikes that recover do not
  fire.
* The *climb start* is the last step after the best at which the smoothed
  loss crossed above ``best + climb_frac * (start - best)`` and stayed there.

The seam for a stronger detector is the ``Detector`` protocol:
``update(step, value) -> Verdict`` and ``finish() -> Verdict``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Protocol

RUNNING, STABLE, DIVERGED, NAN = "running", "stable", "diverged", "nan"
FAILURES = frozenset({DIVERGED, NAN})


@dataclass(frozen=True)
class Verdict:
    kind: str = RUNNING
    best_step: int | None = None
    best_value: float | None = None
    climb_start_step: int | None = None
    detected_at_step: int | None = None
    start_value: float | None = None
    last_value: float | None = None
    severity: float | None = None
    points: int = 0

    @property
    def final(self) -> bool:
        return self.kind != RUNNING

    @property
    def failed(self) -> bool:
        return self.kind in FAILURES

    def to_dict(self) -> dict:
        return asdict(self)


class Detector(Protocol):
    def update(self, step: int, value: float) -> Verdict: ...

    def finish(self) -> Verdict: ...


class ClimbDetector:
    """Descent, then a sustained climb back toward the start."""

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        start_points: int = 10,
        min_descent: float = 0.10,
        rise: float = 0.25,
        climb_frac: float = 0.10,
        hold: int = 40,
    ):
        self.alpha, self.start_points, self.min_descent = alpha, start_points, min_descent
        self.rise, self.climb_frac, self.hold = rise, climb_frac, hold
        self._n = 0
        self._start_sum = 0.0
        self._ema: float | None = None
        self._best: float = math.inf
        self._best_step: int | None = None
        self._above_since: int | None = None
        self._held = 0
        self._recent: deque[float] = deque(maxlen=hold)
        self._last: float | None = None
        self._verdict = Verdict()

    @property
    def start(self) -> float | None:
        return self._start_sum / min(self._n, self.start_points) if self._n else None

    def _snapshot(self, kind: str, step: int | None, severity: float | None = None) -> Verdict:
        return Verdict(
            kind=kind, best_step=self._best_step,
            best_value=None if math.isinf(self._best) else self._best,
            climb_start_step=self._above_since if kind == DIVERGED else None,
            detected_at_step=step if kind in FAILURES else None,
            start_value=self.start, last_value=self._last, severity=severity, points=self._n,
        )

    def update(self, step: int, value: float) -> Verdict:
        if self._verdict.final:
            return self._verdict
        value = float(value)
        self._last = value
        if not math.isfinite(value):
            self._verdict = self._snapshot(NAN, step)
            return self._verdict
        self._n += 1
        if self._n <= self.start_points:
            self._start_sum += value
        self._ema = value if self._ema is None else self._ema + self.alpha * (value - self._ema)
        self._recent.append(self._ema)
        if self._n < self.start_points:
            return self._verdict
        if self._ema < self._best:
            self._best, self._best_step, self._above_since, self._held = self._ema, step, None, 0
        start = self.start
        descent = start - self._best
        if descent <= self.min_descent * abs(start) or descent <= 0:
            return self._verdict
        severity = (self._ema - self._best) / descent
        if severity > self.climb_frac:
            if self._above_since is None:
                self._above_since = step
        else:
            self._above_since = None
        self._held = self._held + 1 if severity >= self.rise else 0
        rising = len(self._recent) == self._recent.maxlen and self._ema > self._recent[0]
        if self._held >= self.hold and rising:
            self._verdict = self._snapshot(DIVERGED, step, severity)
        return self._verdict

    def finish(self) -> Verdict:
        if not self._verdict.final:
            severity = None
            start = self.start
            if self._ema is not None and start is not None and start - self._best > self.min_descent * abs(start):
                severity = (self._ema - self._best) / (start - self._best)
            self._verdict = self._snapshot(STABLE, None, severity)
        return self._verdict


def classify(points: Iterable[tuple[int, float]], detector: Detector | None = None) -> Verdict:
    """Feed a whole curve in order; the verdict the streaming detector reaches."""
    det = detector or ClimbDetector()
    for step, value in points:
        if det.update(step, value).final:
            break
    return det.finish()
