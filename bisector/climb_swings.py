"""Swings around the slow EMA: how many, and how large (``ClimbDetector``'s oscillation evidence).

``finish`` calls a run ``oscillating`` when it swung at least 4 times and did
not trend (``climb_finish.py``). Both questions need a swing's size: a run
whose first rows were written at a crest looks as if it came down by as much
as the swing, and one whose mean rose far beyond its swings trended up. Two
reads of it: the end's rows' spread (``_end_swing``: a short span, net of the
point noise) and how far the level reached from the slow EMA, swing after
swing (``_swing_size``: read over whole swings, so a period longer than the
end's span, or a swing logged with 4 rows a period whose second differences
look like point noise, is still seen). A swing is counted at ``swing`` of the
slow EMA, or, on a quiet log, at ``swing_low`` where only even swings count.
The level's lows, turning point by turning point (``_zigzag``), tell an
oscillation whose lows climb (``_troughs_climb``), a climb the spike gates
would hold swing after swing.
"""

from __future__ import annotations

import math

from .climb_spikes import _decay


class _Swings:
    """Mixed into ``ClimbDetector`` (through ``_EndRules``); uses its state (``_slow``, ``_rel_noise``, ...)."""

    swing_low = 0.1
    """The smallest swing ``_swing_size`` reads (a share of the slow EMA), where the level's noise is below a
    third of it (``swing`` where it is not): a 20% sinusoid with a 550-step period leaves the slow EMA only
    15% behind, and a quiet log shows it plainly (generator B's oscillations: 35 of 6,000 ``stable``). Four
    such swings, even ones, are an oscillation (``_oscillates``); ``swings`` still counts at ``swing``."""

    swing_even = 2.0
    """How much the largest of the last swings may reach beyond the smallest (above or below the slow
    EMA) for ``_swing_size`` to read them as one swing's amplitude."""

    trough_frac = 0.1
    """A low (or a high) of the level is confirmed once the level turned back by this share of itself and by
    three of its noise sigmas (``_zigzag``)."""

    trough_count = 7
    """How many lows in a row must each sit higher than the one before (``_troughs_climb``). Five lows rose by
    chance on a long noisy plateau (2 of 2,000 dev C grokking logs every step); a cascade of spikes has at
    most a few."""

    trough_even = 2.0
    """How much the longest time between those lows may exceed the shortest: an oscillation's period, not
    spikes that came when they came."""

    def _reset_swings(self) -> None:
        self._side = self._swings = self._qside = self._qswings = 0
        self._swing_top, self._swing_tops, self._qnoise = 0.0, (), math.nan
        self._zz_dir, self._zz_top = 0, -math.inf  # 1: rising since the last low, -1: falling since the last high
        self._trough, self._trough_at = math.inf, 0  # the lowest level since the last high
        self._troughs: tuple[tuple[int, float], ...] = ()  # (step, level) of the last lows confirmed

    def _oscillation(self, level: float, dt: float) -> None:
        """Count swings of the level across a slow EMA larger than ``swing`` of it; and, at ``swing_low``
        where the noise allows, keep how far the last few reached from it (``_swing_size``)."""
        self._slow += _decay(dt, max(self.slow, 5 * self.interval)) * (level - self._slow)
        if self._slow < self._slow_min:
            self._slow_min = self._slow
        gap, slow = level - self._slow, abs(self._slow)
        if abs(gap) > self.swing * slow:
            side = 1 if gap > 0 else -1
            if side != self._side:
                self._swings += self._side != 0
                self._side = side
        # the level's noise: a point's (averaged over the slow EMA's time, once 15 rows tell it: the median of 15
        # second differences alone wanders by a third), averaged by the level's EMA
        if len(self._d2) >= 15:
            w = self._rel_noise if self._qnoise != self._qnoise else self._qnoise
            self._qnoise = w + _decay(dt, max(self.slow, 5 * self.interval)) * (self._rel_noise - w)
        a = _decay(dt, self.smooth)
        level_sd = self._qnoise * math.sqrt(a / (2 - a))  # the level's noise, relative (nan before 15 rows)
        noise = level_sd * slow if level_sd == level_sd else math.inf
        if abs(gap) > max(self.swing_low * slow, min(self.swing * slow, 3 * noise)):
            side = 1 if gap > 0 else -1
            if side != self._qside:
                if self._qside != 0:
                    self._qswings += 1
                    self._swing_tops = (*self._swing_tops[-7:], self._qside * self._swing_top)
                self._qside, self._swing_top = side, 0.0
        if self._qside != 0:
            self._swing_top = max(self._swing_top, abs(gap))
        self._zigzag(level, level_sd * abs(level))

    def _zigzag(self, level: float, noise: float) -> None:
        """Confirm the level's lows and highs as it turns back by ``trough_frac`` of itself (and three noise
        sigmas; nan before the noise is known: the fraction alone); keep the last ``trough_count`` lows."""
        h = max(self.trough_frac * abs(level), 3 * noise if noise == noise else 0.0)
        if self._zz_dir <= 0:
            if level < self._trough:
                self._trough, self._trough_at = level, self._last_step
            elif level > self._trough + h:
                if self._zz_dir < 0:
                    self._troughs = (*self._troughs[1 - self.trough_count:], (self._trough_at, self._trough))
                self._zz_dir, self._zz_top = 1, level
        elif level > self._zz_top:
            self._zz_top = level
        elif level < self._zz_top - h:
            self._zz_dir, self._trough, self._trough_at = -1, level, self._last_step

    def _troughs_climb(self) -> bool:
        """Whether the run oscillates with its lows climbing: the last ``trough_count`` lows, all since the best
        and evenly spaced (``trough_even``), each higher than the one before, by ``trough_frac`` of the last in
        all, which is ``rise`` of the way back. A run at the edge of stability swings ever wider around a rising
        mean; each upswing is a jump and each downswing a fall, so the spike gates held it swing after swing
        (dev D p90 delay 738 steps on logs every 5 steps). A cascade of decaying spikes bottoms out lower each
        time, or comes unevenly; a healthy oscillation's lows sit at the best."""
        tr, k = self._troughs, self.trough_count
        if len(tr) < k or self._best_step is None or tr[0][0] <= self._best_step:
            return False
        gaps = [b[0] - a[0] for a, b in zip(tr, tr[1:], strict=False)]
        if max(gaps) > self.trough_even * min(gaps) or tr[-1][1] - tr[0][1] <= self.trough_frac * abs(tr[-1][1]):
            return False
        bar = self._best + self.rise * (self._start - self._best)
        return tr[-1][1] > bar and all(a[1] < b[1] for a, b in zip(tr, tr[1:], strict=False))

    def _oscillates(self) -> bool:
        """Four swings of ``swing``, or four even ones of ``swing_low`` on a quiet log."""
        return self._swings >= 4 or (self._qswings >= 4 and self._swing_size() > 0)

    def _swing_size(self, even: bool = True) -> float:
        """The median of how far the level reached from the slow EMA in the last eight swings: a swing's
        amplitude read over whole swings. The end's rows (``_end_swing``) span less than one swing of a
        period longer than 250 steps, and a swing logged with 4 rows a period spreads its second
        differences like point noise, which ``_end_swing`` nets out."""
        ups = sorted(t for t in self._swing_tops if t > 0)
        downs = sorted(-t for t in self._swing_tops if t < 0)
        if len(ups) < 3 or len(downs) < 3:
            return 0.0  # (two spikes and the falls below the EMA they lifted can look even: three of each)
        tops = sorted(ups + downs)
        if even and tops[-1] > self.swing_even * tops[0]:
            return 0.0  # uneven: a spike's rise and the fall back below the EMA it lifted, not a swing
        return tops[(len(tops) - 1) // 2]

    def _end_swing(self) -> float:
        """The amplitude of the end's swing: half the spread of the end's rows between their quartiles (a
        spike among them does not count), net of what the point noise alone spreads (0.674 of it), times
        sqrt(2) (a sinusoid's half-interquartile spread is 0.71 of its amplitude). The start estimates were
        read at one phase of a swing (a crest, say), so a trend smaller than that is no evidence of a
        descent; a noisy run's rows spread by their noise, which is not a swing."""
        pts = sorted(self._end_points())
        k = len(pts)
        if k < 4:
            return 0.0
        half = (pts[(3 * k) // 4] - pts[k // 4]) / 2
        noise = 0.674 * self._rel_noise * abs(self._slow)  # the half-spread noise alone would give
        return math.sqrt(2 * max(half * half - noise * noise, 0.0))
