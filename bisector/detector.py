"""Streaming fingerprint of a loss curve: one point in, a verdict out, O(1) each.

The same object runs inside a trial (to stop it the moment its verdict is
final) and over a finished log (``classify``). Why these rules:

* A median of the last 3 points removes single heavy-tailed outliers without
  blurring a real change; an EMA of that gives the *level*.
* Severity ``(level - best) / (start - best)`` is comparable across loss
  scales: a healthy run at 0.02 spiking to 0.04 is far from a run at 1.0
  climbing back toward its starting 2.7.
* A divergence needs a real descent first (so a bump during warmup, before
  any descent, cannot fire), then a rise above ``best + climb_frac * descent``
  that is *still going up*: the least-squares slope of the points since that
  crossing must be significantly positive (t >= ``t_min``) and the level near
  its highest since the crossing. A transient spike jumps and then stays flat
  or falls, so its slope is not significant: it never fires however tall it is.
* The climb start is the crossing, moved back by the EMA's lag on a ramp.
* ``flat`` (never descended), ``oscillating`` (large swings with no downward
  trend) and ``stable`` are decided at ``finish``; ``nan`` at once.

The detector for a metric that should *rise* (macro-F1) is ``RiseDetector``:
``collapsed`` when it falls from its peak back toward its start.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Protocol

RUNNING, STABLE, DIVERGED, NAN = "running", "stable", "diverged", "nan"
FLAT, OSCILLATING, COLLAPSED, STAGNANT = "flat", "oscillating", "collapsed", "stagnant"
FAILURES = frozenset({DIVERGED, NAN, FLAT, OSCILLATING, COLLAPSED, STAGNANT})


@dataclass(frozen=True)
class Verdict:
    kind: str = RUNNING
    best_step: int | None = None
    best_value: float | None = None
    climb_start_step: int | None = None
    detected_at_step: int | None = None
    start_value: float | None = None
    last_value: float | None = None
    last_step: int | None = None
    peak_value: float | None = None
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


_RUNNING = Verdict()


class _Stream:
    """What every streaming detector does with a point before judging it."""

    _verdict: Verdict = _RUNNING
    points = 0
    _last = _last_step = None

    @property
    def final(self) -> bool:
        """Whether the verdict is already decided (no more points change it)."""
        return self._verdict is not _RUNNING

    def _take(self, step: int, value: float) -> float | None:
        """The value as a float, or None when there is nothing left to judge: the verdict was
        already final, or the value is non-finite (``nan``, decided here and now)."""
        if self._verdict is not _RUNNING:
            return None
        value = float(value)
        self.points += 1
        self._last, self._last_step = value, step
        if value != value or value in (math.inf, -math.inf):
            self._verdict = self._snapshot(NAN, step)
            return None
        return value


class ClimbDetector(_Stream):
    """Descent, then a sustained climb back toward the start (lower is better)."""

    def __init__(
        self,
        *,
        alpha: float = 0.1,
        start_points: int = 5,
        min_descent: float = 0.25,
        climb_frac: float = 0.10,
        rise: float = 0.15,
        hold: int = 30,
        t_min: float = 4.0,
        near_max: float = 0.75,
        swing: float = 0.2,
        trend: float = 0.10,
        flat_descent: float = 0.05,
        phase_switch: int | None = None,
    ):
        self.alpha, self.start_points, self.min_descent = alpha, start_points, min_descent
        self.climb_frac, self.rise, self.hold, self.t_min = climb_frac, rise, hold, t_min
        self.near_max, self.swing, self.trend, self.phase_switch = near_max, swing, trend, phase_switch
        self.flat_descent = flat_descent
        self._lag = (1 - alpha) / alpha  # an EMA trails a ramp by this many steps
        self._switched_at: int | None = None
        self._reset()

    def _reset(self) -> None:
        self._n = 0
        self._head: list[float] = []
        self._start = math.nan
        self._a = self._b = math.nan  # the two previous raw values (median of 3)
        self._level = math.nan
        self._best = math.inf
        self._best_step: int | None = None
        self._dev = 0.0  # EMA of |median3 - level|: the noise scale
        self._cross: int | None = None
        self._clear_window()
        # oscillation: swings of the level around a slow EMA
        self._slow = self._slow_min = math.nan
        self._side = 0
        self._swings = 0
        self._first_slow = math.nan

    def _clear_window(self) -> None:
        self._w = self._wt = self._wy = self._wtt = self._wty = self._wyy = 0.0
        self._wmax = -math.inf
        self._wlevel0 = math.nan

    # -- the per-point update -------------------------------------------------
    def update(self, step: int, value: float) -> Verdict:
        value = self._take(step, value)
        if value is None:
            return self._verdict
        if self.phase_switch is not None and step >= self.phase_switch and self._n and self._phase_pending():
            self._reset()
        self._n += 1
        n = self._n
        if n <= self.start_points:
            self._head.append(value)
            if n == self.start_points:
                self._start = sorted(self._head)[n // 2]
            a, self._a, self._b = self._a, self._b, value
            self._level = value if n == 1 else self._level + self.alpha * (value - self._level)
            self._slow = self._first_slow = self._slow_min = self._level
            return _RUNNING
        # median of the last three raw points
        a, b = self._a, self._b
        self._a, self._b = b, value
        m = (a if (a - b) * (a - value) <= 0 else b if (b - a) * (b - value) <= 0 else value)
        level = self._level + self.alpha * (m - self._level)
        self._level = level
        self._dev += 0.05 * (abs(m - level) - self._dev)
        self._oscillation(level)
        if level < self._best:
            self._best, self._best_step, self._cross = level, step, None
            self._clear_window()
            return _RUNNING
        start, best = self._start, self._best
        descent = start - best
        if descent <= self.min_descent * abs(start) or descent <= 4 * self._dev:
            return _RUNNING
        if start - self._slow_min <= self.trend * abs(start):  # a swing, not a descent
            return _RUNNING
        sev = (level - best) / descent
        if sev <= self.climb_frac:
            if self._cross is not None:
                self._cross = None
                self._clear_window()
            return _RUNNING
        if self._cross is None:
            self._cross = step
            self._wlevel0 = level
        # least-squares slope of the points since the crossing (O(1) sums)
        t = float(step - self._cross)
        self._w += 1
        self._wt += t
        self._wy += m
        self._wtt += t * t
        self._wty += t * m
        self._wyy += m * m
        if level > self._wmax:
            self._wmax = level
        if self._w < self.hold or sev < self.rise:
            return _RUNNING
        if level < self._wlevel0 + self.near_max * (self._wmax - self._wlevel0):
            return _RUNNING
        w = self._w
        sxx = self._wtt - self._wt * self._wt / w
        sxy = self._wty - self._wt * self._wy / w
        syy = self._wyy - self._wy * self._wy / w
        if sxx <= 0 or sxy <= 0:
            return _RUNNING
        slope = sxy / sxx
        resid = max(syy - slope * sxy, 1e-30) / (w - 2)
        if slope / math.sqrt(resid / sxx) >= self.t_min:
            self._verdict = self._snapshot(DIVERGED, step, sev)
        return self._verdict

    def _phase_pending(self) -> bool:
        """True once, at the first point at or after the phase switch."""
        self._switched_at, self.phase_switch = self.phase_switch, None
        return True

    def _oscillation(self, level: float) -> None:
        """Count swings of the level across a slow EMA larger than ``swing`` of it."""
        self._slow += 0.01 * (level - self._slow)
        if self._slow < self._slow_min:
            self._slow_min = self._slow
        gap = level - self._slow
        if abs(gap) > self.swing * abs(self._slow):
            side = 1 if gap > 0 else -1
            if side != self._side:
                self._swings += self._side != 0
                self._side = side

    # -- verdicts ---------------------------------------------------------------
    def _snapshot(self, kind: str, step: int | None, severity: float | None = None) -> Verdict:
        climb = None
        if kind == DIVERGED and self._cross is not None:
            climb = max(int(round(self._cross - self._lag)), self._best_step or 0)
        return Verdict(
            kind=kind, best_step=self._best_step,
            best_value=None if math.isinf(self._best) else self._best,
            climb_start_step=climb, detected_at_step=step if kind in FAILURES else None,
            start_value=None if self._start != self._start else self._start,
            last_value=self._last, last_step=self._last_step, severity=severity, points=self.points,
        )

    @property
    def severity(self) -> float | None:
        descent = self._start - self._best
        if not descent > self.min_descent * abs(self._start):
            return None
        return (self._level - self._best) / descent

    def finish(self) -> Verdict:
        if self._verdict is not _RUNNING:
            return self._verdict
        start = self._start if self._start == self._start else (self._head[0] if self._head else math.nan)
        descended = self._n > self.start_points and start - self._best > self.flat_descent * abs(start)
        trend_down = self._slow < (1 - self.trend) * self._first_slow
        if self._switched_at is not None and not descended and self._n > self.start_points:
            # the reference restarted at the phase switch and the loss never came down from there
            self._verdict = replace(self._snapshot(DIVERGED, self._last_step), climb_start_step=self._switched_at)
            return self._verdict
        if self._swings >= 4 and not trend_down:
            kind = OSCILLATING
        elif not descended and self._n > self.start_points:
            kind = FLAT
        else:
            kind = STABLE
        self._verdict = self._snapshot(kind, self._last_step if kind != STABLE else None, self.severity)
        return self._verdict

    @property
    def swings(self) -> int:
        return self._swings

    def failing_now(self, back: float = 0.3, explode: float = 3.0) -> str | None:
        """Why the curve seen so far is already failing, or None: for judging a run that crashed
        before the streaming verdict was final (a crash that follows divergence is the recipe's
        failure, not a bug). Non-finite; the last value ``explode`` times the start or more; or the
        level ``back`` of the way back from its best toward the start after a real descent."""
        if self._verdict.kind == NAN or (self._last is not None and not math.isfinite(self._last)):
            return "became non-finite"
        start = self._start if self._start == self._start else (self._head[0] if self._head else math.nan)
        if self._last is not None and start == start and start > 0 and self._last >= explode * start:
            return f"exploded to {self._last / start:.1f}x its start ({start:.4g} -> {self._last:.4g})"
        sev = self.severity
        if sev is not None and sev >= back:
            return f"climbed back {sev:.0%} of its descent"
        return None

    @property
    def level(self) -> float:
        return self._level


class RiseDetector(_Stream):
    """A metric that should rise (e.g. validation macro-F1): ``collapsed`` when,
    after a real gain, it falls back ``drop`` of the way from its peak to its
    start at ``confirm`` consecutive points."""

    def __init__(self, *, min_gain: float = 0.05, drop: float = 0.5, confirm: int = 2):
        self.min_gain, self.drop, self.confirm = min_gain, drop, confirm
        self._start = math.nan
        self._peak = -math.inf
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
            kind=kind, best_step=self._peak_step, best_value=None if math.isinf(self._peak) else self._peak,
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
