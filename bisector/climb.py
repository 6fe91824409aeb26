"""``ClimbDetector``: descent, then a sustained climb back toward the start (lower is better).

Users log every step, every 10 or 50, or irregularly, so every time constant
here is in *steps*, and each adapts to the logging interval seen so far (an
average needs a few points whatever the cadence). Why each rule:

* A median of the last 3 points removes a single heavy-tailed outlier (one
  bad batch, one bad row) without blurring a real change: it is the one rule
  in points, because an outlier is one row whatever the cadence. An EMA of it
  with a time constant of ``smooth`` steps is the *level*.
* Severity ``(level - best) / (start - best)`` is comparable across loss
  scales: a healthy run at 0.02 spiking to 0.04 is far from a run at 1.0
  climbing back toward its starting 2.7.
* A divergence needs a real descent first (so a bump during warmup, before any
  descent, cannot fire), then a level above ``best + climb_frac * descent``
  that is *still going up*: the least-squares slope of the points since that
  crossing must be significantly positive and the level near its highest since
  the crossing. The slope's noise is the window's own residuals pooled with the
  noise measured before the crossing, so three points at a sparse cadence can
  carry the test when the run is quiet and many are needed when it is noisy. A
  transient spike jumps and then stays flat or falls, so its slope is not
  significant: it never fires however tall it is.
* The climb start is where the fitted line of the window crosses the threshold
  (no EMA lag, no cadence quantisation).
* At ``finish`` a curve that ends above ``end_frac`` of the way back from its
  best toward its start (or above its start) is ``diverged`` whatever the
  streaming test missed (a late slow climb cut by the horizon); ``flat`` (never
  descended) and ``oscillating`` (large swings, no downward trend) are decided
  there too; ``nan`` at once.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace

from .verdict import _RUNNING, DIVERGED, FAILURES, FLAT, NAN, OSCILLATING, STABLE, Verdict, _Stream


def _decay(dt: float, tau: float) -> float:
    """EMA weight of a new point ``dt`` steps after the previous one, for a time constant of ``tau`` steps."""
    return 1.0 - math.exp(-dt / tau) if tau > 0 else 1.0


class ClimbDetector(_Stream):
    """Descent, then a sustained climb back toward the start (lower is better). O(1) per point."""

    def __init__(
        self,
        *,
        smooth: float = 10.0,
        start_steps: int = 5,
        min_descent: float = 0.25,
        climb_frac: float = 0.10,
        rise: float = 0.15,
        hold: int = 30,
        min_points: int = 2,
        sustain: int = 200,
        t_min: float = 4.0,
        prior_points: float = 4.0,
        near_max: float = 0.75,
        swing: float = 0.2,
        slow: float = 100.0,
        trend: float = 0.10,
        flat_descent: float = 0.05,
        end_frac: float = 0.25,
        end_steps: int = 50,
        phase_switch: int | None = None,
    ):
        self.smooth, self.start_steps, self.min_descent = smooth, start_steps, min_descent
        self.climb_frac, self.rise, self.hold, self.min_points = climb_frac, rise, hold, min_points
        self.sustain = sustain
        self.t_min, self.prior_points, self.near_max = t_min, prior_points, near_max
        self.swing, self.slow, self.trend, self.flat_descent = swing, slow, trend, flat_descent
        self.end_frac, self.end_steps, self.phase_switch = end_frac, end_steps, phase_switch
        self._switched_at: int | None = None
        self._reset()

    def _reset(self) -> None:
        self._n = 0
        self._first_step: int | None = None
        self._head: list[float] = []
        self._start = math.nan
        self._prev_step: int | None = None
        self._gaps: deque[int] = deque(maxlen=9)
        self._a = self._b = math.nan  # the two previous raw values (median of 3)
        self._level = math.nan
        self._best = math.inf
        self._best_step: int | None = None
        self._dev = 0.0  # EMA of |median3 - level|
        self._d2: deque[float] = deque(maxlen=15)
        self._rel_noise = 0.0
        self._tail: deque[tuple[int, float]] = deque()  # the last end_steps of raw values (finish rule)
        self._cross: int | None = None
        self._last_cross: int | None = None
        self._clear_window()
        self._slow = self._slow_min = self._first_slow = math.nan
        self._side = 0
        self._swings = 0

    def _clear_window(self) -> None:
        self._w = self._wt = self._wy = self._wtt = self._wty = self._wyy = 0.0
        self._wmax = -math.inf
        self._wlevel0 = math.nan
        self._prior = 0.0

    # -- the per-point update ---------------------------------------------------------------
    @property
    def interval(self) -> float:
        """The logging interval seen so far (median of the last 9 step gaps; 1 before two points)."""
        if not self._gaps:
            return 1.0
        return float(sorted(self._gaps)[len(self._gaps) // 2])

    def update(self, step: int, value: float) -> Verdict:
        value = self._take(step, value)
        if value is None:
            return self._verdict
        if self.phase_switch is not None and step >= self.phase_switch and self._n and self._phase_pending():
            self._reset()
        self._n += 1
        dt = 1.0
        if self._prev_step is not None:
            dt = float(step - self._prev_step)
            self._gaps.append(step - self._prev_step)
        self._prev_step = step
        self._tail.append((step, value))
        while self._tail[0][0] <= step - max(self.end_steps, 5 * self.interval):
            self._tail.popleft()
        a, b = self._a, self._b
        self._a, self._b = b, value
        if a == a and self._level == self._level:
            # a point's noise, relative to the level (the noise of a loss scales with it): the median
            # second difference of the last 15 raw values, which a trend's curvature, a spike or an
            # outlier moves little (|N(0, 6 s^2)| has median 1.65 s)
            self._d2.append(abs(value - 2 * b + a) / max(abs(self._level), 1e-300))
            self._rel_noise = sorted(self._d2)[len(self._d2) // 2] / 1.65
        if self._first_step is None:
            self._first_step = step
        if step - self._first_step < self.start_steps or not self._head:
            self._head.append(value)
            self._level = value if self._n == 1 else self._level + _decay(dt, self.smooth) * (value - self._level)
            self._slow = self._first_slow = self._slow_min = self._level
            return _RUNNING
        if self._start != self._start:
            self._start = sorted(self._head)[len(self._head) // 2]
        m = value if a != a else (a if (a - b) * (a - value) <= 0 else b if (b - a) * (b - value) <= 0 else value)
        alpha = _decay(dt, self.smooth)
        level = self._level + alpha * (m - self._level)
        self._level = level
        self._dev += 0.05 * (abs(m - level) - self._dev)
        self._oscillation(level, dt)
        # the best is the lowest level plus twice the level's own noise: the minimum of a noisy level is
        # its luckiest point (on a sparse log the level is barely averaged), not where the loss bottomed
        floor = level + 2 * self._noise * math.sqrt(alpha / (2 - alpha))
        if floor < self._best:
            self._best, self._best_step, self._cross = floor, step, None
            self._clear_window()
            return _RUNNING
        if not self._descended():
            return _RUNNING
        start, best = self._start, self._best
        sev = (level - best) / (start - best)
        if sev <= self.climb_frac:
            if self._cross is not None:
                self._cross = None
                self._clear_window()
            return _RUNNING
        if self._cross is None:
            self._cross = self._last_cross = step
            self._wlevel0 = level
            self._prior = self._noise * self._noise
        # least-squares slope of the median values since the crossing (O(1) sums)
        t = float(step - self._cross)
        self._w += 1
        self._wt += t
        self._wy += m
        self._wtt += t * t
        self._wty += t * m
        self._wyy += m * m
        if level > self._wmax:
            self._wmax = level
        if self._w < self.min_points or t < self.hold or sev < self.rise:
            return _RUNNING
        slack = max((1 - self.near_max) * (self._wmax - self._wlevel0), 2 * self._noise)
        if level < self._wmax - slack:  # fallen from its highest since the crossing: a spike recovering
            return _RUNNING
        fit = self._fit()
        if fit is None:
            return _RUNNING
        slope, se = fit
        if slope >= self.t_min * se or (t >= self.sustain and self._w >= 4):
            # still climbing, significantly; or up for ``sustain`` steps and not coming down
            self._verdict = self._snapshot(DIVERGED, step, sev)
        return self._verdict

    @property
    def _noise(self) -> float:
        """A point's noise (standard deviation) at the current level."""
        return self._rel_noise * abs(self._level)

    def _fit(self) -> tuple[float, float] | None:
        """(slope, its standard error) of the window, residual variance pooled with the noise before it."""
        w = self._w
        sxx = self._wtt - self._wt * self._wt / w
        sxy = self._wty - self._wt * self._wy / w
        syy = self._wyy - self._wy * self._wy / w
        if sxx <= 0 or sxy <= 0:
            return None
        slope = sxy / sxx
        ssr = max(syy - slope * sxy, 0.0)
        var = (ssr + self.prior_points * self._prior) / (w - 2 + self.prior_points)
        return slope, math.sqrt(max(var, 1e-300) / sxx)

    def _descended(self) -> bool:
        """A real descent: a clear share of the start, above the noise, and not a swing."""
        start, descent = self._start, self._start - self._best
        if descent <= self.min_descent * abs(start) or descent <= 4 * self._dev:
            return False
        return start - self._slow_min > self.trend * abs(start)

    def _phase_pending(self) -> bool:
        """True once, at the first point at or after the phase switch."""
        self._switched_at, self.phase_switch = self.phase_switch, None
        return True

    def _oscillation(self, level: float, dt: float) -> None:
        """Count swings of the level across a slow EMA larger than ``swing`` of it."""
        self._slow += _decay(dt, max(self.slow, 5 * self.interval)) * (level - self._slow)
        if self._slow < self._slow_min:
            self._slow_min = self._slow
        gap = level - self._slow
        if abs(gap) > self.swing * abs(self._slow):
            side = 1 if gap > 0 else -1
            if side != self._side:
                self._swings += self._side != 0
                self._side = side

    # -- verdicts ---------------------------------------------------------------------------
    def _climb_start(self) -> int | None:
        """Where the window's fitted line crosses ``best + climb_frac * descent``."""
        if self._cross is None:
            return self._last_cross
        thr = self._best + self.climb_frac * (self._start - self._best)
        w = self._w
        sxx = self._wtt - self._wt * self._wt / w if w else 0.0
        if w < 2 or sxx <= 0:
            return self._cross
        slope = (self._wty - self._wt * self._wy / w) / sxx
        if slope <= 0:
            return self._cross
        # the median of 3 trails a ramp by one point: move the fitted line back by one interval
        at = self._cross + self._wt / w + (thr - self._wy / w) / slope - self.interval
        lo = self._best_step or 0
        return int(round(min(max(at, lo), self._last_step)))

    def _snapshot(self, kind: str, step: int | None, severity: float | None = None) -> Verdict:
        return Verdict(
            kind=kind, best_step=self._best_step,
            best_value=None if math.isinf(self._best) else self._best,
            climb_start_step=self._climb_start() if kind == DIVERGED else None,
            detected_at_step=step if kind in FAILURES else None,
            start_value=None if self._start != self._start else self._start,
            last_value=self._last, last_step=self._last_step, severity=severity, points=self.points,
        )

    @property
    def severity(self) -> float | None:
        """How far back toward the start the level is, as a share of the descent (None before a descent)."""
        descent = self._start - self._best
        if not descent > self.min_descent * abs(self._start):
            return None
        return (self._level - self._best) / descent

    def end_level(self) -> float:
        """The median raw value over the last ``end_steps`` steps (at least 5 logging intervals)."""
        vals = sorted(v for _, v in self._tail)
        return vals[len(vals) // 2] if vals else math.nan

    def failing_now(self, back: float | None = None, explode: float = 3.0) -> str | None:
        """Why the curve seen so far is already failing, or None: for a run that crashed before its
        streaming verdict was final (a crash that follows a climb is the recipe failing, not a bug).

        In order: a non-finite value was logged; the last value is ``explode`` times the start or
        more; the last value and the level are both above the start after a real descent; the
        verdict is already ``diverged``; or the level is more than ``back`` (default ``end_frac``,
        the finish-time rule's share) of the way back from the best toward the start."""
        if self._verdict.kind == NAN or (self._last is not None and not math.isfinite(self._last)):
            return "became non-finite"
        start = self._start if self._start == self._start else (self._head[0] if self._head else math.nan)
        last = self._last
        if last is not None and start == start and start > 0 and last >= explode * start:
            return f"exploded to {last / start:.1f}x its start ({start:.4g} -> {last:.4g})"
        sev = self.severity
        if sev is not None and last is not None and last > start and self._level > start:
            return f"climbed back above its start ({start:.4g} -> {last:.4g})"
        if self._verdict.kind == DIVERGED or (sev is not None and sev > (self.end_frac if back is None else back)):
            return f"climbed back {sev:.0%} of its descent" if sev is not None else "climbed back toward its start"
        return None

    def finish(self) -> Verdict:
        if self._verdict is not _RUNNING:
            return self._verdict
        start = self._start if self._start == self._start else (self._head[0] if self._head else math.nan)
        begun = self._start == self._start
        descended = begun and start - self._best > self.flat_descent * abs(start)
        trend_down = self._slow < (1 - self.trend) * self._first_slow
        if self._switched_at is not None and not descended and begun:
            # the reference restarted at the phase switch and the loss never came down from there
            self._verdict = replace(self._snapshot(DIVERGED, self._last_step), climb_start_step=self._switched_at)
            return self._verdict
        end = self.end_level()
        if begun and descended and (end > start or (self._descended() and self._ends_high(end))):
            sev = (end - self._best) / (start - self._best)
            self._verdict = self._snapshot(DIVERGED, self._last_step, sev)
            return self._verdict
        if self._swings >= 4 and not trend_down:
            kind = OSCILLATING
        elif not descended and begun:
            kind = FLAT
        else:
            kind = STABLE
        self._verdict = self._snapshot(kind, self._last_step if kind != STABLE else None, self.severity)
        return self._verdict

    def _ends_high(self, end: float) -> bool:
        """The end is more than ``end_frac`` of the way back, by more than its own noise."""
        descent = self._start - self._best
        k = max(len(self._tail), 1)
        return end - self._best > max(self.end_frac * descent, 3 * 1.25 * self._noise / math.sqrt(k))

    @property
    def swings(self) -> int:
        return self._swings

    @property
    def level(self) -> float:
        return self._level
