"""Where a confirmed climb started: ``ClimbDetector``'s climb-start estimate (read once, at the verdict).

The start is where the window's fitted line crosses ``best + climb_frac *
descent``: no EMA lag, no cadence quantisation. A dense log is watched on
the median of 3 points, which trails a ramp by one point, so the line moves
back one interval. A sparse log (rows farther apart than the median's span:
every 50 steps, say) is watched on its points themselves, and three biases
then each cost a good share of an interval:

* the best is the lowest level plus ``floor_sigmas`` of its noise (so the
  minimum of a noisy log is not its luckiest point); a sparse log's level is
  its points, so that floor sits a few point-sigmas above where the loss
  bottomed, and the threshold with it (the start read late). Half-way between
  the luckiest point and the floor is the honest estimate of the bottom;
* a slow climb accelerates: a straight line through a convex window crosses
  the threshold late, so with 5 or more points the window gets a parabola
  (the line stays the fallback);
* a row that is the mean since the last row (Hugging Face's ``loss``) stands
  for the middle of its interval, half an interval before its step; a row of
  the value at the step does not. Which kind a log is cannot be told from its
  rows, so the crossing moves back a quarter of an interval (the half of that
  half-interval expected).

The start is not put before the best (a fit over a climb that levelled off
extrapolates far too early), but a sparse log's best is a median of 3, and
where the row after the lowest one is lower than the row before it the median
holds the lowest level for two rows: the best is set one row late. Where the
raw row the best was set at is already above the threshold, the curve crossed
before it, so the start may go back one interval before the best.
"""

from __future__ import annotations

import math


def _parabola_crossing(pts: list[tuple[float, float]], thr: float) -> float | None:
    """The last ``t`` before the window's last point where the least-squares parabola through
    ``pts`` ((t, y), t from 0) crosses ``thr``; None if it does not."""
    span = max(t for t, _ in pts) or 1.0
    s = [0.0] * 5
    r = [0.0] * 3
    for t, y in pts:
        u = t / span  # (scaled: the normal equations stay well conditioned)
        p = 1.0
        for k in range(5):
            s[k] += p
            if k < 3:
                r[k] += p * y
            p *= u
    m = [[s[0], s[1], s[2]], [s[1], s[2], s[3]], [s[2], s[3], s[4]]]

    def det(a):
        return (a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
                + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]))

    d = det(m)
    if abs(d) < 1e-12 * max(abs(s[4]), 1.0) ** 3:
        return None
    c = [det([[r[i] if j == k else m[i][j] for j in range(3)] for i in range(3)]) / d for k in range(3)]
    c0, c1, c2 = c[0] - thr, c[1], c[2]
    if abs(c2) < 1e-15 * (abs(c1) + abs(c0) + 1e-300):
        roots = [-c0 / c1] if c1 else []
    else:
        disc = c1 * c1 - 4 * c2 * c0
        if disc < 0:
            return None
        q = -0.5 * (c1 + math.copysign(math.sqrt(disc), c1))
        roots = [q / c2] + ([c0 / q] if q else [])
    before = [u for u in roots if u < 1.0]
    return max(before) * span if before else None


class _ClimbStart:
    """Mixed into ``ClimbDetector``; reads its window state (``_hist``, ``_cross``, the least-squares sums)."""

    def _climb_start(self) -> int | None:
        """Where the window's fitted line (a sparse log's: parabola) crosses ``best + climb_frac * descent``."""
        if self._cross is None:
            # no window open now: where the last one opened; judged only at finish with no window ever
            # opened, the best (the climb began after it; a probe before it is before the climb)
            return self._last_cross if self._last_cross is not None else self._best_step
        sparse = 2 * self.interval > self.median_steps  # the points themselves are watched, not a median
        best = self._best - 0.5 * (self._best - self._best_low) if sparse else self._best
        thr = best + self.climb_frac * (self._start - best)
        w = self._w
        sxx = self._wtt - self._wt * self._wt / w if w else 0.0
        if w < 2 or sxx <= 0:
            return self._cross
        at = None
        if sparse:
            pts = [(float(s - self._cross), m) for s, m, _ in self._hist if s >= self._cross]
            if len(pts) >= 5:
                u = _parabola_crossing(pts, thr)
                at = None if u is None else self._cross + u
        if at is None:
            slope = (self._wty - self._wt * self._wy / w) / sxx
            if slope <= 0:
                return self._cross
            at = self._cross + self._wt / w + (thr - self._wy / w) / slope
        if at != at:  # a loss near the largest float overflows the window's sums: the line is lost
            return self._cross
        # the median of 3 trails a ramp by one point; a sparse log's row may be a mean (see the module doc)
        at -= self.interval / 4 if sparse else self.interval
        # the level crossed at ``_cross``; the curve itself crossed at most the EMA's lag (plus an
        # interval) before: a fit over a climb that levelled off extrapolates much earlier than that
        lo = max(self._best_step or 0, self._cross - self.smooth - self.interval)
        if sparse and self._best_raw > thr:  # the median's best was set one row late (see the module doc)
            lo = (self._best_step or 0) - self.interval
        return int(round(min(max(at, lo), self._last_step)))
