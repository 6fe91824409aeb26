"""The spike rules of ``ClimbDetector``'s streaming test: when a rising window may be spikes.

A loss spike jumps, holds a little and decays; a climb keeps rising. Spikes
stacked within ~100 steps, each below the jump's bar, read as a ramp whose
slope is significant but only just (t 4-6), and stopping a healthy trial on
them is the one mistake early stopping must not make. So while the slope is
marginal a window that looks like spikes waits: a recovering spike falls and
is never confirmed, while a climb's t keeps growing past ``t_spike``. A spike
starts with a jump (``_watch_jump``), and each jump restarts the climb's hold.
A spike landing on another's hold rises only in its jumps (``_stairs``: a
climb rises between them too). A long spike falls back toward the best, so a
level still falling is held (``_still_falling``), unless it falls too slowly
to get back (``_slow_fall``: a plateau settling). The window's slopes these
rules and the climb test read (``_fit``, ``_slope_since``) are here too.
"""

from __future__ import annotations

import math


def _decay(dt: float, tau: float) -> float:
    """EMA weight of a new point ``dt`` steps after the previous one, for a time constant of ``tau`` steps."""
    return 1.0 - math.exp(-dt / tau) if tau > 0 else 1.0


def _centred(pts: list[tuple[float, float]]) -> tuple[float, float, float]:
    """(sxx, sxy, syy): the centred least-squares sums of the points ``(step, value)``."""
    n = len(pts)
    mu, my = sum(u for u, _ in pts) / n, sum(v for _, v in pts) / n
    return (sum((u - mu) ** 2 for u, _ in pts), sum((u - mu) * (v - my) for u, v in pts),
            sum((v - my) * (v - my) for _, v in pts))  # (a product: ``** 2`` raises OverflowError past ~1e154)


class _SpikeGate:
    """Mixed into ``ClimbDetector``; uses its window state (``_hist``, ``_cross``, ``_recovered``, ...)."""

    def _spike_like(self, t: float) -> bool:
        """Whether a window whose slope is only marginally significant may be spikes: younger than this
        run's longest excursion that recovered (up to ``recovered_cap`` steps); ``spike_jump`` of its rise
        in one step beyond a steady ramp's share (net of noise); or the level already fell back
        ``spike_fall`` of its rise from its top (net of its noise): stacked spikes, each recovering."""
        if t < min(self._recovered, self.recovered_cap):
            return True
        h = [p for p in self._hist if p[0] >= self._cross]
        if len(h) < 2:
            return False
        rise, span = max(h[-1][1] - h[0][1], 1e-300), max(h[-1][0] - h[0][0], 1)
        big = max((b[1] - a[1] - rise * (b[0] - a[0]) / span for a, b in zip(h, h[1:], strict=False)), default=0.0)
        if big - 4 * self._noise > self.spike_jump * rise:
            return True
        top, fall = -math.inf, 0.0
        for _, _, lv in h:
            top = max(top, lv)
            fall = max(fall, top - lv)
        alpha = _decay(self.interval, self.smooth)
        fall -= 5 * self._noise * math.sqrt(alpha / (2 - alpha))  # a noisy level's dips over a long window
        return fall > self.spike_fall * max(top - h[0][2], 1e-300)

    def _still_falling(self, step: int) -> bool:
        """Whether the window falls significantly (t <= -``t_fall``; the residual pooled with the noise before
        the window, as the climb test pools it) since it opened, or over its last ``fall_steps`` (at least 4
        intervals: 5 rows of a sparse log). A long-lived spike (a jump to 10x decaying over 300 steps) stays
        ``rise`` of the way back for longer than ``sustain``, but it falls all along, and from its top at the
        window's opening; a climb that holds its level does not, and one with a spike on its plateau is held
        only until that spike's decay levels out. The last ``fall_steps`` start no earlier than the last jump's
        top (or the row that a rise between two rows too far apart to see a jump led to): a spike stacked on a
        decaying one falls from there, and the rows up its jump made that fall read as a rise. Fewer than 3 rows
        there (a lost chunk; a top just reached) cannot tell, and ``sustain`` waits for them: one row after a
        lost chunk, back up where a decay had left off, is a new spike as often as a level held. Where the last
        row is ``top_sigmas`` noise below the window's top, the fall is read from that top too, wherever it lies:
        a spike risen over several sparse rows (each under the jump's bar) falls from its top, and the rows up its
        rise made that fall read as flat; a spike whose top is older than the last ``fall_steps`` falls
        significantly over all the rows since, not over the last few (while those few still fall, at a rate that
        would get back to the best: a spike on a plateau levels out). Read from the top *too*, not instead: a top
        of two bad batches side by side, a few rows back, left too few rows to show a decay the last 100 steps
        showed. A level held is within a few sigmas of its top, and its fall is read over the whole span. A fall
        too slow to bring the loss back within ``return_steps`` is not a spike's (``_slow_fall``). Read only when
        the ``sustain`` rule would fire, so its cost (one pass over those points) is rare."""
        def falls(fit: tuple[float, float]) -> bool:
            return fit[0] < -self.t_fall * fit[1] and not self._slow_fall(fit)

        since = max(step - max(self.fall_steps, 4 * self.interval), self._jump_top_at)
        recent = self._slope_since(since)
        if recent is None or falls(recent):
            return True  # (None: a lost chunk, or a top just reached: whether it falls cannot be told yet)
        whole = self._fit(rising=False)  # (the climb test's fit of the whole window, whatever its sign)
        if whole is not None and falls(whole):
            return True
        top, top_at = max(((m, s) for s, m, _ in self._hist if s >= self._cross), default=(-math.inf, since))
        if top - self._hist[-1][1] <= self.top_sigmas * max(self._noise, math.sqrt(self._prior)) or top_at == since:
            return False
        back = -self.return_steps * (recent[0] + self.level_se * recent[1])  # (how far it falls in ``return_steps``)
        if top_at < since and self._hist[-1][1] - self._best > back:
            # a top older than the last ``fall_steps``, which no longer fall at a rate that would bring the loss back
            # to the best within ``return_steps`` (at their slope made ``level_se`` errors less steep): a spike on a
            # climb's plateau decays and levels out, and read from its top the plateau fell for hundreds of steps
            return False
        fit = self._slope_since(top_at)  # well below the window's top: read from there too
        return fit is None or falls(fit)

    # a recent slope's share of doubt in the rate test above: an overshoot on a climb's plateau decays at first as a
    # spike would, and at its slope itself its last rows, even where its decay has slowed to a t of -1.2 to -1.8, read
    # as heading back to the best (a review's climbs with a 1-4x overshoot: caught up to 650 steps later, or never)
    level_se: float = 0.5

    # a spike decays back to the best within a few hundred steps (generator C's e-fold in 10-300; in the wild,
    # tens): a fall that at its fastest plausible rate needs longer than this to get back is a level settling
    return_steps: float = 1000.0
    refill: float = 0.5  # ... unless the level already fell this share of its height once: spikes in a cascade

    def _slow_fall(self, fit: tuple[float, float]) -> bool:
        """Whether a significant fall (``fit``: its slope and standard error) is too slow to be a spike's decay:
        at the slope plus two standard errors it would take more than ``return_steps`` to bring the last point
        back to the best. A jump to a plateau that then recovers a quarter of its height over hundreds of steps
        (an LR warm restart, a data-order change) falls significantly for as long as it is watched, and the
        fall test held it to the end of the run (D's p90 delay there 1,174 steps on dev). A spike falls toward
        its best; a plateau's slow partial recovery would take thousands of steps to get there. But spikes that
        keep coming (a sawtooth of 3-6 decays, each refilled by the next) fall slowly on the whole, and fell most
        of the way back between them: a window whose level once fell ``refill`` of its height from its top (net of
        two level sigmas) is such a cascade, and its fall is a spike's (on held-out C, 7 healthy logs of 27,000)."""
        if self._hist[-1][1] - self._best <= self.return_steps * (2 * fit[1] - fit[0]):
            return False
        alpha = _decay(self.interval, self.smooth)
        tol = 2 * self._noise * math.sqrt(alpha / (2 - alpha))
        top = -math.inf
        for s, _, lv in self._hist:
            if s >= self._cross:
                top = max(top, lv)
                if top - lv - tol > self.refill * (top - self._best):
                    return False
        return True

    def _levelled(self, step: int) -> bool:
        """Whether the window's later half (by steps) no longer rises (t <= ``later_t``, pooled as above): the
        least-squares line through a step up and a flat hold after it (a spike's rise, then its top; a jump
        to a plateau) is as significant as a ramp's, and grows more so with every row of the hold, but a ramp
        rises in both halves. A step is left to ``sustain`` (a level held) or to its decay. Read only when the
        slope test would fire. Fewer than 3 rows there cannot tell, and do not hold the climb."""
        fit = self._slope_since(self._cross + (step - self._cross) / 2)
        return fit is not None and fit[0] <= self.later_t * fit[1]

    stair_t: float = 2.0

    def _stairs(self, fit: tuple[float, float]) -> bool:
        """Whether a window whose slope (``fit``) is significant rose only in its jumps: the common slope of its
        stretches between jumps (each with its own offset: a jump starts a stretch) is under ``stair_t`` standard
        errors. A second spike on the first one's hold is a step up, a hold, a step up: the line through it
        has t 6-10 at the second top, past the spike gate, and its later half rises (the second jump), but
        between the jumps it holds or decays. A climb rises between its jumps too (a steep one's noisy rises
        cross the jump bar on the way), or one stretch rises by itself at the slope test's own bar (``t_min``:
        a fast climb's concave top, after which a long flat plateau holds the common slope down). A stair
        climb's second step now waits, as its first does, for ``sustain`` or its next rise (A+B held-out p90 -
        gap +0-1 steps; C's wrong stops 383 -> 362 over eight held-out sets). Not read at ``t_sure`` or more:
        a blow-up's noise crosses the jump bar dozens of times, each stretch starting on a high point, so its
        stretches read flat or falling.
        Read only when the slope test would fire; no jump since the window opened: False."""
        if not self._wjumps or fit[0] >= self.t_sure * fit[1]:
            return False
        cuts, k = self._wjumps, 0
        stretches: list[list[tuple[int, float]]] = [[]]
        for s, m, _ in self._hist:
            while k < len(cuts) and s >= cuts[k]:
                k += 1
                stretches.append([])
            stretches[-1].append((s, m))
        n = groups = 0
        sxx = sxy = syy = 0.0
        for pts in stretches:
            if len(pts) < 2:
                continue
            kxx, kxy, kyy = _centred(pts)
            groups, n, sxx, sxy, syy = groups + 1, n + len(pts), sxx + kxx, sxy + kxy, syy + kyy
            if len(pts) >= 3 and kxx > 0:  # a stretch that is a climb by itself (a fast climb's concave top)
                b, e = self._pooled_slope(len(pts), kxx, kxy, kyy, pts[-1][0] - pts[0][0])
                if b >= self.t_min * e:
                    return False
        if sxx <= 0 or n - groups < 2:
            return True  # (stretches of one row each: whether it rises between its jumps cannot be told yet)
        slope, se = self._pooled_slope(n - groups + 1, sxx, sxy, syy, self._hist[-1][0] - self._hist[0][0])
        return slope < self.stair_t * se

    def _fit(self, independent: bool = True, rising: bool = True) -> tuple[float, float] | None:
        """(slope, its standard error) of the window, residual variance pooled with the noise before it;
        ``independent``: count at most one point per ``indep_steps`` steps (the streaming test), else
        every point (the end-of-run rule, which only decides at finish); ``rising``: None unless it rises."""
        w = self._w
        sxx = self._wtt - self._wt * self._wt / w
        sxy = self._wty - self._wt * self._wy / w
        syy = self._wyy - self._wy * self._wy / w
        if sxx <= 0 or (rising and sxy <= 0):
            return None
        span = (self._last_step or 0) - self._cross if self._cross is not None else 0
        return self._pooled_slope(w, sxx, sxy, syy, span if independent else None)

    def _slope_since(self, since: float) -> tuple[float, float] | None:
        """(slope, its standard error) of the window's points from step ``since`` on, the residual pooled
        with the noise before the window; None under 3 points or with no spread in steps."""
        pts = [(s, m) for s, m, _ in self._hist if s >= since]
        if len(pts) < 3:
            return None
        sxx, sxy, syy = _centred(pts)
        return self._pooled_slope(len(pts), sxx, sxy, syy, pts[-1][0] - pts[0][0]) if sxx > 0 else None

    def _pooled_slope(self, n: int, sxx: float, sxy: float, syy: float, span: float | None) -> tuple[float, float]:
        """(slope, its standard error) from centred least-squares sums, the residual variance pooled with the
        noise before the window (``prior_points`` points of it); with a ``span`` in steps, points closer than
        ``indep_steps`` are not independent evidence (correlated batches, a spike's hold): a dense log counts
        at most one point per ``indep_steps`` steps. The climb test (``_fit``) and the decay test share it."""
        slope = sxy / sxx
        ssr = max(syy - slope * sxy, 0.0)
        var = (ssr + self.prior_points * self._prior) / (n - 2 + self.prior_points)
        inflate = n / min(n, 1.0 + span / self.indep_steps) if span is not None and self.indep_steps > 0 else 1.0
        return slope, math.sqrt(max(var, 1e-300) * inflate / sxx)

    def _jump_median(self, step: int, m3: float) -> float:
        """The value a jump is read on: the median of the raw points of the last ``jump_steps / 2`` steps, or of
        the median of 3 where that holds 3 points or fewer (every 5 steps and sparser). On a log written every step
        the median of 3 spans 3 steps, and its noise, read over ``jump_steps`` at every row, crossed the jump bar
        all along a noisy climb (dev C's p90 delay - gap every step 120 -> 154 steps); the median of 5 steps, 126."""
        pts = []
        for s, v in reversed(self._tail):
            if s <= step - self.jump_steps / 2 and len(pts) >= 3:
                break
            pts.append(v)
        if len(pts) <= 3:
            return m3
        pts.sort()
        return pts[len(pts) // 2]

    def _watch_jump(self, step: int, m3: float, jm: float) -> None:
        """A jump (a rise of ``jump_frac`` of the descent, or of 4 noise sigmas, over the last ``jump_steps``
        steps, out of a level that was not already rising) is how a spike starts: a climb
        is confirmed only ``hold`` steps after the last one (spikes stacked on spikes look like a climb
        for a while). Inside a window the noise is not the jump's own but the noise before the window;
        a positive loss's noise grows with it, so beyond twice the window's first level it is scaled
        with the level (a climb to 20x its best "jumped" on every noisy point and never confirmed; a
        spike stacked on a spike, under 2x, still jumps)."""
        noise = self._noise
        if self._cross is not None:
            noise = math.sqrt(self._prior)
            if self._wlevel0 > 0 < self._level:
                noise *= max(1.0, self._level / self._wlevel0 / 2)
        need = max(4 * noise, self.jump_frac * (self._start - self._best))
        rise = self._rise(step, jm)
        if rise > need and self._last_rise <= need:
            self._jump_at, self._jump_top, self._jump_top_at, self._after = step, m3, step, [0.0] * 5
            if self._cross is not None:
                self._wjumps.append(step)
        elif step - self._jump_at <= self.jump_steps and m3 > self._jump_top:
            # still on its way up (a spike ramps up over a few steps, and the bar is crossed on the way):
            # the trend since the jump is read from its top, or a decaying spike's trend looked flat
            self._jump_top, self._after, self._jump_top_at = m3, [0.0] * 5, step
        self._last_rise = rise

    def _watch_blind_jump(self, step: int, m: float, dt: float) -> None:
        """Where two rows are further apart than ``jump_steps`` (every 50 steps; an irregular log's longer
        gaps), a spike's jump falls between them, unseen by ``_watch_jump``. A rise of ``blind_jump`` of the
        descent (and 4 noise sigmas) from one row to the next, at most two intervals or ``hold`` steps on (an
        irregular log's gaps of 17-40 steps, more than two of its ~8-step intervals, were seen by neither rule:
        8 of dev C's 39 healthy irregular logs stopped), may be one, and holds
        the verdict for ``sustain`` steps (``update``): spikes stacked into a cascade hold 3-7x the best for
        200-300 steps before they decay, as a fast climb holds its level. (Across a lost chunk a rise is as
        often a climb's; ``update`` has its own rule there.) The wait is lifted once the loss rises a further
        ``blind_escape`` of the descent above that row, the row before it not below that row: a climb that keeps
        climbing (a spike's top is its jump; a cascade's next spike seldom tops it by that much, and seldom
        before the first one decayed a little). Either row is a top the decay test reads from
        (``_still_falling``): a spike whose rise spanned two rows escapes the wait, and then falls."""
        prev, self._prev_m = self._prev_m, m
        descent = self._start - self._best
        if not (prev == prev and 0 < descent < math.inf):
            return
        if m > self._blind_top + self.blind_escape * descent and prev >= self._blind_top - 4 * self._noise:
            self._blind_at, self._blind_top = -math.inf, math.inf  # (even if this row jumped again: a blow-up)
            self._jump_top_at = step
        elif self.jump_steps < dt <= max(2 * self.interval, self.hold) and m - prev > max(
                4 * self._noise, self.blind_jump * descent):
            self._blind_at, self._blind_top = step, m
            self._jump_top_at = step

    def _rise(self, step: int, jm: float) -> float:
        """How much the jump's median (``_jump_median``) rose at ``step`` over its first value of the last
        ``jump_steps`` steps: the same span at every cadence. (Over the last two points, as before, a log
        written every step saw 2 steps, and a spike ramped up over 3-8 steps never jumped: 14 of dev C's 2,000
        healthy logs written every step were stopped, 10 of them on spikes; now 4.)"""
        first = next((v for s, v in self._recent if s >= step - self.jump_steps), None)
        return 0.0 if first is None else jm - first
