"""``ClimbDetector``: descent, then a sustained climb back toward the start (lower is better).

Users log every step, every 10 or 50, or irregularly, so every time constant
here is in *steps* and adapts to the logging interval seen so far (``interval``:
the median of the last 9 step gaps); a replayed step (a resumed log) is
skipped. Why each rule (the end-of-run rules are in ``climb_finish.py``, where a
run started in ``climb_origin.py``):

* Outliers: a median of 3 points removes one bad batch or row; it is used
  when the 3 points lie within ``median_steps`` (one moment), else a sparse
  log's point stands alone (a median would cost a whole interval). An EMA with
  a time constant of ``smooth`` steps makes the *level*.
* Noise: the median second difference of the last 15 raw values, relative to
  the level (a loss's noise scales with it): a trend's curvature, a spike or an
  outlier moves it little. The *best* is the lowest median-of-3 level plus
  twice its own noise, so the minimum of a noisy sparse log is not its luckiest
  point. Severity ``(level - best) / (start - best)`` is scale-free.
* A divergence needs a real descent first (``min_descent`` of the start, above
  the noise, and a slow EMA that came down too, so a swing or a warmup bump is
  not one; or a smaller one, a sparse log's first row written after most of it,
  then a level ``min_descent`` above the start: ``_risen``), then a level above
  ``best + climb_frac * descent`` (the window opens;
  it closes only below half that). Inside the window, after ``hold`` steps and
  ``min_points`` points, at least ``rise`` of the way back and near its highest
  since the window opened, the least-squares slope of the points must be
  significantly positive (t >= ``t_min``, the residual variance pooled with the
  noise measured before the window (the larger of the median's and the RMS of
  the second differences over ``spread_steps``: a spiky run's spikes count),
  worth ``prior_points`` points, so three points carry a quiet sparse log; a dense log
  counts at most one point per ``indep_steps`` steps: neighbouring batches and a spike's
  hold are not independent evidence), or the level must have stayed ``rise`` of the way back
  for ``sustain`` steps without falling and above its slow average (a fall of
  ``refall`` of its rise from its top since restarts that clock; a long-lived spike's decay,
  significant since the window opened or over its last ``fall_steps``, holds it). A level
  below its slow average after a descent younger than that average's time
  constant is a bounce (a warmup bump after a fast first drop), not a climb. A spike jumps, then stays flat
  or falls: it never fires however tall. A *jump* (``jump_frac`` of the descent within ``jump_steps``)
  restarts the ``hold`` and must not be followed by a fall, so spikes stacked on spikes do not look like a
  climb (a slope past ``t_sure`` waits a quarter of the hold: a steep climb's noisy rises cross the bar
  too). Spikes smaller than a jump stacked within ~100 steps read as a ramp (t 4-6); while t < ``t_spike``
  a window that looks like spikes (``_spike_like``) is not confirmed yet: a recovering spike falls and is
  never confirmed, a climb's t keeps growing. So does a row ``fall_sigmas``
  below its median of 3 (that median lags a spike's decay by a row and reads it as a ramp). A line fitted
  through a step (a spike's rise, then its hold) is significant too, so the window's later half must rise
  (``_levelled``): a step waits for ``sustain``, a ramp rises all along. Rows
  where a spike's spread hides the descent are not judged, but stay in the window. Rows further apart
  than ``jump_steps`` hide a jump: a rise of ``blind_jump`` of the descent between two of them waits
  ``sustain`` steps, unless the loss goes on rising (``_watch_blind_jump``).
* An oscillation whose lows climb (``climb_swings.py``: seven evenly spaced lows, each higher, the last
  ``rise`` of the way back) is a climb, though each upswing jumps and each downswing falls.
* The climb start is where the window's fitted line crosses ``best + climb_frac
  * descent`` (``climb_start.py``: the median's lag, a sparse log's biases).
"""

from __future__ import annotations

import math
from collections import deque

from .climb_finish import _EndRules
from .climb_origin import _Origin
from .climb_spikes import _decay, _SpikeGate
from .climb_start import _ClimbStart
from .curve_verdict import _RUNNING, DIVERGED, FAILURES, Verdict, _Stream


class ClimbDetector(_EndRules, _Origin, _SpikeGate, _ClimbStart, _Stream):
    """Descent, then a sustained climb back toward the start (lower is better). O(1) per point."""

    def __init__(
        self,
        *,
        smooth: float = 10.0,
        median_steps: int = 20,
        jump_steps: int = 10,
        jump_frac: float = 0.15,
        start_steps: int = 5,
        floor_sigmas: float = 3.0,
        min_descent: float = 0.25,
        climb_frac: float = 0.10,
        rise: float = 0.15,
        hold: int = 40,
        min_points: int = 3,
        sustain: int = 200,
        t_min: float = 4.0,
        prior_points: float = 4.0,
        near_max: float = 0.75,
        swing: float = 0.2,
        slow: float = 100.0,
        trend: float = 0.10,
        flat_descent: float = 0.05,
        end_frac: float = 0.15,
        end_steps: int = 30,
        early_steps: int = 50,
        spike_steps: int = 100,
        phase_switch: int | None = None,
        indep_steps: float = 2.0,
        t_spike: float = 6.0,
        spike_jump: float = 0.4,
        spike_fall: float = 0.1,
        recovered_cap: int = 150,
        spread_steps: float = 200.0,
        fall_sigmas: float = 2.0,
        t_sure: float = 15.0,
        refall: float = 0.7,
        t_fall: float = 2.0,
        fall_steps: int = 100,
        blind_jump: float = 0.75,
        blind_escape: float = 0.3,
        top_sigmas: float = 4.0,
        later_t: float = 0.0,
    ):
        self.refall, self.t_fall, self.fall_steps, self.t_sure = refall, t_fall, fall_steps, t_sure
        self.blind_jump, self.blind_escape, self.top_sigmas = blind_jump, blind_escape, top_sigmas
        self.fall_sigmas, self.spread_steps, self.later_t = fall_sigmas, spread_steps, later_t
        self.t_spike, self.spike_jump, self.spike_fall = t_spike, spike_jump, spike_fall
        self.smooth, self.median_steps, self.start_steps = smooth, median_steps, start_steps
        self.min_descent, self.floor_sigmas, self.recovered_cap = min_descent, floor_sigmas, recovered_cap
        self.climb_frac, self.rise, self.hold, self.min_points = climb_frac, rise, hold, min_points
        self.sustain, self.jump_steps, self.jump_frac = sustain, jump_steps, jump_frac
        self.t_min, self.prior_points, self.near_max = t_min, prior_points, near_max
        self.swing, self.slow, self.trend, self.flat_descent = swing, slow, trend, flat_descent
        self.end_frac, self.end_steps, self.phase_switch = end_frac, end_steps, phase_switch
        self.early_steps, self.spike_steps, self.indep_steps = early_steps, spike_steps, indep_steps
        self._switched_at: int | None = None
        self._reset()

    def _reset(self) -> None:
        self._opening: list[float] = []  # the first ``opening_rows`` values
        self._n = 0
        self._first_step: int | None = None
        self._head: list[float] = []
        self._early: list[float] = []  # the raw values of the first early_steps steps: flat test
        self._start = math.nan
        self._prev_step: int | None = None
        self._gaps: deque[int] = deque(maxlen=9)
        self._interval = 1.0
        self._steps: deque[int] = deque(maxlen=3)
        self._a = self._b = math.nan  # the two previous raw values (median of 3)
        self._level = self._low = math.nan
        self._recent: deque[tuple[int, float]] = deque()  # (step, ``_jump_median``) of the last jump_steps
        self._last_rise = 0.0
        self._reset_swings()
        self._prev_m, self._blind_at, self._blind_top = math.nan, -math.inf, math.inf  # (``_watch_blind_jump``)
        self._jump_at = self._jump_top = self._jump_top_at = -math.inf
        self._after = [0.0] * 5  # least-squares sums of the median values since the last jump's top
        self._best = self._best_low = math.inf  # the best, and the lowest level it was set from
        self._best_raw = math.inf  # the raw value logged where the best was set (``climb_start.py``)
        self._best_step: int | None = None
        self._dev = self._dev_best = 0.0  # EMA of |median3 - level|; its value where the best was set
        self._d2: deque[float] = deque(maxlen=15)
        self._rel_noise = 0.0
        self._spread = 0.0  # EMA of squared relative second differences outside windows: spikes included
        self._still: deque[float] = deque(maxlen=31)  # relative second differences before the loss moved
        self._tail: deque[tuple[int, float]] = deque()  # the last spike_steps (>= 5 points) of raw values
        self._cross: int | None = None
        self._last_cross = self._cross
        self._clear_window()
        self._slow = self._slow_min = self._first_slow = self._trail = math.nan
        self._recovered = 0  # steps the longest window that closed again stayed open (a recovered excursion)
        self._low_window, self._low_window_n, self._low_next = math.inf, 0, -math.inf  # (``climb_finish.py``)

    def _clear_window(self) -> None:
        self._w = self._wt = self._wy = self._wtt = self._wty = self._wyy = 0.0
        self._wmax = -math.inf
        self._wlevel0 = math.nan
        self._prior = 0.0
        self._hist: deque[tuple[int, float, float]] = deque()  # (step, median value, level) in the window
        self._above_since: int | None = None  # since when the level is ``rise`` of the way back
        self._above_n = 0  # points logged since then
        self._above_top = -math.inf
        self._wjumps: list[int] = []  # the jumps since the window opened (``_stairs``)

    # -- the per-point update ---------------------------------------------------------------
    @property
    def interval(self) -> float:
        """The logging interval seen so far (median of the last 9 step gaps; 1 before two points)."""
        return self._interval

    def update(self, step: int, value: float) -> Verdict:
        value = self._take(step, value)
        if value is None:
            return self._verdict
        if self.phase_switch is not None and step >= self.phase_switch and self._n and self._phase_pending():
            self._reset()
        self._n += 1
        if len(self._opening) < self.opening_rows:
            self._opening.append(value)  # where a sparse log started (``opening_level``)
        dt, lost = 1.0, False
        if self._prev_step is not None:
            dt = float(step - self._prev_step)
            gaps = self._gaps
            lost = dt > self.hold and bool(gaps) and dt > 2 * max(gaps)  # a chunk of the log lost
            if len(gaps) < 9 or gaps[0] != step - self._prev_step or gaps[-1] != gaps[0]:  # (equal gaps: no new median)
                gaps.append(step - self._prev_step)
                self._interval = float(sorted(gaps)[len(gaps) // 2])
        self._prev_step = step
        self._steps.append(step)
        self._tail.append((step, value))
        while len(self._tail) > 5 and self._tail[0][0] <= step - max(self.spike_steps, 5 * self.interval):
            self._tail.popleft()
        a, b = self._a, self._b
        self._a, self._b = b, value
        if a == a and self._level == self._level:
            # a point's noise, relative to the level (the noise of a loss scales with it): the median
            # second difference of the last 15 raw values, which a trend's curvature, a spike or an
            # outlier moves little (|N(0, 6 s^2)| has median 1.65 s)
            self._d2.append(abs(value - 2 * b + a) / max(abs(self._level), 1e-300))
            if self._cross is None and len(self._d2) >= 5 and dt <= 2 * self._interval:  # not a lost chunk
                tau = max(self.spread_steps, 20 * self._interval)
                self._spread += _decay(dt, tau) * (min(self._d2[-1], 0.5) ** 2 / 6 - self._spread)
            self._rel_noise = sorted(self._d2)[len(self._d2) // 2] / 1.65
            if self._head and abs(self._level - self._head[0]) <= self.trend * abs(self._head[0]):
                self._still.append(self._d2[-1])
        if self._first_step is None:
            self._first_step = step
        if step - self._first_step < self.early_steps:
            self._early.append(value)
        if step - self._first_step < self.start_steps or not self._head:
            self._head.append(value)
            self._level = value if self._n == 1 else self._level + _decay(dt, self.smooth) * (value - self._level)
            self._slow = self._first_slow = self._slow_min = self._low = self._trail = self._level
            return _RUNNING
        if self._start != self._start:
            self._start = sorted(self._head)[len(self._head) // 2]
        if step >= self._low_next:
            self._track_low_window(step)
        m3 = value if a != a else a if (a - b) * (a - value) <= 0 else b if (b - a) * (b - value) <= 0 else value
        # the climb is watched on the median of 3 points when they are close enough in steps to be one
        # moment; further apart (a sparse log) the median would cost a whole interval, so the point itself
        m = m3 if step - self._steps[0] <= self.median_steps else value
        jm = self._jump_median(step, m3)
        if self._best < math.inf:
            self._watch_jump(step, m3, jm)  # (``climb_spikes.py``)
        self._watch_blind_jump(step, m, dt)
        self._recent.append((step, jm))
        while self._recent[0][0] < step - self.jump_steps:  # (a jump is a rise within ``jump_steps``)
            self._recent.popleft()
        alpha = _decay(dt, self.smooth)
        level = self._level = self._level + alpha * (m - self._level)
        self._low += alpha * (m3 - self._low)
        self._dev += 0.05 * (abs(m - level) - self._dev)
        self._oscillation(level, dt)
        self._trail += _decay(dt, self.sustain / 4) * (level - self._trail)  # is the level still falling?
        # the best is the lowest median level (one low outlier never sets it, at any cadence) plus twice
        # its own noise: the minimum of a noisy level is its luckiest point, not where the loss bottomed
        # (noise trusted from 5 second differences on: a sparse log's first few measure the descent's curve)
        noise = self._noise if len(self._d2) >= 5 else 0.0
        floor = self._low + self.floor_sigmas * noise * math.sqrt(alpha / (2 - alpha))
        if floor < self._best and a == a:  # (from the third point on: before, a second row was its own "median")
            self._best, self._best_step, self._cross = floor, step, None
            self._best_low, self._best_raw, self._dev_best = self._low, value, self._dev
            self._clear_window()
            return _RUNNING
        if not self._descended() and not self._risen(level):
            if self._cross is not None:
                # a spike's spread can hide the descent: its rows still count in the window, or one row on its
                # decay ~90 steps on, read with the 2-3 rows from before it, made a slope of its own
                self._record(step, m, level)
            return _RUNNING
        start, best = self._start, self._best
        sev = (level - best) / (start - best)
        if sev <= (self.climb_frac if self._cross is None else self.climb_frac / 2):
            # (hysteresis: an open window closes only well below the threshold, not on every noisy dip)
            if self._cross is not None:
                self._recovered = max(self._recovered, step - self._cross)
                self._cross = None
                self._clear_window()
            return _RUNNING
        if self._cross is None:
            self._cross = self._last_cross = step
            self._wlevel0 = level
            # the noise the slope test pools: a spiky run's spikes are part of it (the median ignores them)
            self._prior = max(self._noise * self._noise, self._spread * level * level)
        self._record(step, m, level)
        t = float(step - self._cross)
        if sev < self.rise:
            self._above_since = None
            return _RUNNING
        if self._above_since is None:
            self._above_since, self._above_n, self._above_top = step, 0, level
        self._above_top = max(self._above_top, level)
        if level < self._above_top - self.refall * (self._above_top - best):
            # fell back most of its rise: a recovering excursion (a spike's decay), not a level held; a new
            # spike's first row must not find the ``sustain`` clock already run down
            self._above_since, self._above_n, self._above_top = step, 0, level
        self._above_n += 1
        if self._w < self.min_points or t < self.hold:
            return _RUNNING
        if self._troughs_climb():  # (``climb_swings.py``: an oscillation whose lows climb)
            self._verdict = self._snapshot(DIVERGED, step, sev)
            return self._verdict
        fit = None  # (the window's slope, read once per point: the gates below do not change it)
        if step - self._jump_at < self.hold:
            # a steep, steady climb's noisy rises keep crossing the jump bar, each restarting the hold; a slope as
            # sure as ``t_sure`` waits a quarter of it (healthy stops on dev 0-43 reached t 13.4; a bar of 10: +1)
            fit = self._fit() if step - self._jump_at >= self.hold / 4 else None
            if fit is None or fit[0] < self.t_sure * fit[1]:
                return _RUNNING
        if step - self._blind_at < self.sustain:
            return _RUNNING  # a rise this cadence cannot tell from a spike's jump (``_watch_blind_jump``)
        if (self._above_n < 2 and dt > 2 * self.interval) or (lost and self._jump_at >= self._cross):
            # the first point after a lost chunk: its rise cannot be told from a spike alone, nor, after a gap over the
            # hold and twice the last 9, a jump the window saw before it (a spike's top, then a row inside its decay)
            return _RUNNING
        if (step - self._above_since >= self.sustain and step - self._jump_at >= self.sustain / 2
                and level >= self._trail - 2 * self._noise and level >= self._slow
                and self._above_n >= max(4, self.sustain / (2 * self.interval))  # points, not a lost chunk
                and not self._still_falling(step)):
            # ``rise`` of the way back for ``sustain`` steps, no longer falling: whatever spike came before (its
            # top, the trend since a jump no longer matter), it is not recovering
            self._verdict = self._snapshot(DIVERGED, step, sev)
            return self._verdict
        if level < self._slow and self._best_step - self._first_step < max(self.slow, 5 * self.interval):
            # a descent younger than the slow EMA's time constant, and the level still below that average: the
            # loss fell fast and bounced (a warmup bump); a climb lifts the level above that within a few steps
            return _RUNNING
        slack = max((1 - self.near_max) * (self._wmax - self._wlevel0), 2 * self._noise)
        if level < self._wmax - slack:  # fallen from its highest since the crossing: a spike recovering
            return _RUNNING
        after = self._after
        if self._jump_at >= self._cross and after[4] * after[0] < after[1] * after[2]:
            return _RUNNING  # falling since the jump inside the window: a spike (on a spike) recovering
        fit = fit or self._fit()
        if fit is None:
            return _RUNNING
        slope, se = fit
        if slope < self.t_spike * se and (self._spike_like(t) or value < m - self.fall_sigmas * self._noise):
            return _RUNNING  # (a row ``fall_sigmas`` below its median of 3, which lags a spike's decay: falling)
        if (slope >= self.t_min * se and not self._levelled(step) and not self._stairs(fit)) or (
                step - self._above_since >= self.sustain and self._w >= 4 and step - self._jump_at >= self.sustain / 2
                and not self._still_falling(step)):
            # still climbing, significantly, its later half and between its jumps too (``_stairs``); or ``rise`` of the
            # way back for ``sustain`` steps, not coming down (no jump in the last ``sustain / 2``, as above)
            self._verdict = self._snapshot(DIVERGED, step, sev)
        return self._verdict

    def _record(self, step: int, m: float, level: float) -> None:
        """Add a point to the open window: least-squares sums (its slope, the trend since a jump), shape, top."""
        t = float(step - self._cross)
        self._w += 1
        self._wt += t
        self._wy += m
        self._wtt += t * t
        self._wty += t * m
        self._wyy += m * m
        self._hist.append((step, m, level))
        if self._hist[0][0] < step - 4 * self.sustain:  # (only the window's shape is read, and rarely)
            self._hist.popleft()
        if self._jump_at > -math.inf:  # the trend since the last jump's top (least-squares sums)
            u, after = float(step - self._jump_at), self._after
            after[0] += 1
            after[1] += u
            after[2] += m
            after[3] += u * u
            after[4] += u * m
        if level > self._wmax:
            self._wmax = level

    @property
    def _noise(self) -> float:
        """A point's noise (standard deviation) at the current level."""
        return self._rel_noise * abs(self._level)

    def _phase_pending(self) -> bool:
        """True once, at the first point at or after the phase switch."""
        self._switched_at, self.phase_switch = self.phase_switch, None
        return True

    # -- verdicts ---------------------------------------------------------------------------
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

    @property
    def swings(self) -> int:
        return self._swings

    @property
    def level(self) -> float:
        return self._level
