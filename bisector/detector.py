"""Streaming fingerprint of a loss curve: one point in, a verdict out, O(1) each.

The same objects run inside a trial (to stop it the moment its verdict is
final) and over a finished log (``classify``, ``bisector fingerprint``).
``ClimbDetector`` (``climb.py``) watches a metric that should fall (a loss)
for a descent followed by a sustained climb; ``RiseDetector`` watches one that
should rise (macro-F1) for a collapse back toward its start. The verdict
types are in ``curve_verdict.py``; everything is importable from here.
"""

from __future__ import annotations

from collections.abc import Iterable

from .climb import ClimbDetector
from .curve_verdict import (
    _RUNNING,
    COLLAPSED,
    DIVERGED,
    FAILURES,
    FLAT,
    NAN,
    OSCILLATING,
    RUNNING,
    STABLE,
    STAGNANT,
    Detector,
    Verdict,
    _Stream,
)

__all__ = [
    "COLLAPSED", "DIVERGED", "FAILURES", "FLAT", "NAN", "OSCILLATING", "RUNNING", "STABLE", "STAGNANT",
    "ClimbDetector", "Detector", "RiseDetector", "Verdict", "classify",
]


class RiseDetector(_Stream):
    """A metric that should rise (e.g. validation macro-F1): ``collapsed`` when,
    after a real gain, it falls back ``drop`` of the way from its peak to its
    start at ``confirm`` consecutive points (evaluations are sparse by nature,
    so this one counts points: two evaluations in a row, whatever their spacing)."""

    def __init__(self, *, min_gain: float = 0.05, drop: float = 0.5, confirm: int = 2):
        self.min_gain, self.drop, self.confirm = min_gain, drop, confirm
        self._start = float("nan")
        self._peak = -float("inf")
        self._peak_step: int | None = None
        self._below = 0
        self._first_below: int | None = None

    def update(self, step: int, value: float) -> Verdict:
        value = self._take(step, value)
        if value is None:
            return self._verdict
        if self._start != self._start:
            self._start = value
        if value > self._peak:
            self._peak, self._peak_step, self._below, self._first_below = value, step, 0, None
            return _RUNNING
        gain = self._peak - self._start
        if gain < self.min_gain * max(abs(self._start), abs(self._peak), 1e-12):
            return _RUNNING
        if (self._peak - value) / gain >= self.drop:
            self._below += 1
            self._first_below = self._first_below if self._first_below is not None else step
            if self._below >= self.confirm:
                self._verdict = self._snapshot(COLLAPSED, step)
        else:
            self._below, self._first_below = 0, None
        return self._verdict

    def _snapshot(self, kind: str, step: int | None) -> Verdict:
        sev = None
        if self._peak > self._start and self._last is not None:
            sev = (self._peak - self._last) / (self._peak - self._start)
        return Verdict(
            kind=kind, best_step=self._peak_step, best_value=None if self._peak == -float("inf") else self._peak,
            climb_start_step=self._first_below if kind == COLLAPSED else None,
            detected_at_step=step if kind in FAILURES else None,
            start_value=None if self._start != self._start else self._start, last_value=self._last,
            last_step=self._last_step, severity=sev, points=self.points,
        )

    def finish(self) -> Verdict:
        if self._verdict is _RUNNING:
            self._verdict = self._snapshot(STABLE, None)
        return self._verdict


def classify(points: Iterable[tuple[int, float]], detector: Detector | None = None) -> Verdict:
    """Feed a whole curve in order; the verdict the streaming detector reaches."""
    det = detector or ClimbDetector()
    update = det.update
    for step, value in points:
        if update(step, value) is not _RUNNING:
            break
    return det.finish()
