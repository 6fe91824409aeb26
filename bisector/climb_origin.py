"""Where a run started, and whether it came down from there: ``ClimbDetector``'s start estimates.

A log does not always show where its run started. Every 50 steps the first row
may come after most of the descent, or be one heavy-tailed value; per step the
first few rows may be correlated high ones, or written during a warmup bump.
So there are three estimates (the median of the first ``start_steps``, of the
first ``early_steps`` with five points at least, and of the first 3 rows,
unless the first row is ``min_descent``, or ``first_sigmas`` of its noise,
above them: ``_first_row_fell``), and each question takes the one that errs on
its safe side:

* did it come down at all (else ``flat``)? The lowest, so a high first row
  never makes a flat run look like a descent;
* is its end below the start (else never ``stable``)? Their lower median;
* is its end *above* the start (a run that dipped too briefly to show and got
  worse is ``diverged``, not ``flat``)? The highest.

A fall (or rise) is clear beyond ``flat_descent`` of the start plus two of the
level's standard deviations and three times the two levels' combined noise, the
start's measured while the loss had not moved yet; a fall of ``min_descent`` is
clear whatever the noise, a rise only from ``min_descent`` on.

While streaming, a climb needs a descent first (``_descended``: ``min_descent``
of the start from the best, above the noise, and a slow EMA that came down
``trend``, so a swing or a warmup bump is not one), or a smaller one that the
rows barely show followed by a level ``min_descent`` above the start
(``_risen``).
"""

from __future__ import annotations

import math


def _median(vals: list[float]) -> float:
    """The median of sorted ``vals`` (of an even count, the mean of the middle two); nan if empty."""
    k = len(vals)
    return (vals[(k - 1) // 2] + vals[k // 2]) / 2 if vals else math.nan


class _Origin:
    """Mixed into ``ClimbDetector``; reads its state (``_head``, ``_early``, ``_opening``, ``_still``, ...)
    and its end (``end_level``, ``final_level``, ``_spike_at_end`` from ``climb_finish.py``)."""

    opening_rows = 3
    """How many first rows ``opening_level`` takes the median of, whatever their spacing in steps."""

    first_sigmas = 8.0
    """How many of its noise a first row must sit above the next rows to be a descent (``_first_row_fell``)."""

    def opening_level(self) -> tuple[float, int]:
        """(median, count) of the first ``opening_rows`` rows: where a sparse log started. Every 50 steps
        the first 5 or 50 steps hold one row, and one heavy-tailed first row (or one written at a
        swing's crest) is not a start; three rows are, whatever the cadence."""
        vals = sorted(self._opening)
        return (_median(vals), len(vals)) if vals else (math.inf, 0)

    def _where_started(self, start: float, lowest: bool | None = True) -> tuple[float, int]:
        """(level, points) where the run started, from ``start`` (the first ``start_steps``),
        ``early_level`` (the first ``early_steps``, 5 points at least) and ``opening_level`` (the first
        3 rows, while the first row is less than ``min_descent`` above them: a larger drop is a descent
        whatever the noise).

        ``lowest`` (did it come down at all?): the lowest of them, so that a high first row, a few
        correlated high ones or a first row at a crest never make a flat run look like a descent; the
        opening rows count there only where the early window is too sparse for ``early_level``
        (during a warmup bump three rows of a dense log can sit below where the run started). Else
        (is the end below the start?): their lower median, the middle one where they disagree (a lone
        low first row before a warmup bump, one high first row of a sparse log). None (is the end
        above the start?): the highest (a lone low first row is no start to rise from)."""
        est = [(start, max(len(self._head), 1))]
        early = self.early_level()
        if early < math.inf:
            est.append((early, len(self._early)))
        opening, n = self.opening_level()
        if opening < math.inf and not self._first_row_fell(opening) and (not lowest or early == math.inf):
            est.append((opening, n))
        est.sort(key=lambda e: e[0])
        return est[0] if lowest else est[-1] if lowest is None else est[(len(est) - 1) // 2]

    def _first_row_fell(self, opening: float) -> bool:
        """Whether the first row is a descent inside the first interval, not a noisy first row: it is
        ``min_descent`` above the opening rows' median, or ``first_sigmas`` of its own noise (the rows'
        noise, times sqrt(interval / its step) where the first row may be one step's value and the
        rest means over an interval). Heavy tails put a flat run's first row 5-7 noises high; a loss
        that came down between the first row and the next sits 10-20 above."""
        if not self._opening:
            return False
        first = self._opening[0]
        rows_noise = self._rel_noise * abs(opening) * math.sqrt(max(1.0, self.interval / max(self._first_step, 1)))
        return first - opening >= self.min_descent * abs(first) or (
            rows_noise > 0 and first - opening > self.first_sigmas * rows_noise)

    def early_level(self) -> float:
        """The median raw value over the first ``early_steps`` steps: where the run started, robust to
        one high first row (an outlier, or a first row written at a crest); ``inf`` (unknown) with fewer
        than 5 points there (a sparse log's 3 points cannot tell an outlier from a fast descent)."""
        vals = sorted(self._early)
        if len(vals) < 5:
            return math.inf  # too few points to tell a high first row from a descent inside the window
        return vals[len(vals) // 2]

    def _fell(self, start: float) -> bool:
        """Whether the loss came down at all (else ``flat``): its lowest level (the slow EMA's lowest
        point) or its end is clearly below where it started (``_below_start``). The lowest level's own
        noise counts (the lowest of many noisy slow-EMA values sits about two of its standard deviations
        low); the end catches a short run, or a drop inside the early window, that the slow EMA has not
        followed yet."""
        a = 1.0 - math.exp(-self.interval / max(self.slow, 5 * self.interval))
        low = self._slow_min
        return self._below_start(start, low, self._rel_noise * abs(low) * math.sqrt(a / (2 - a))) \
            or self._ends_below_start(start)

    def _ends_below_start(self, start: float, lowest: bool = True) -> bool:
        """Whether the end (``end_level``, at its own standard error) is clearly below where the run
        started. A run whose end is not is never ``stable``: whatever its best was, it finished where
        it began (a flat run read from a high first row, a swing that ends at a crest)."""
        if not lowest:  # is it ``stable``: where it ended, a rise at the end included
            return self._below_start(start, *self.final_level(), lowest)
        end, n_end = self.end_level(), len(self._end_points())
        return self._below_start(start, end, 1.25 * self._rel_noise * abs(end) / math.sqrt(max(n_end, 1)), lowest)

    def _ends_above_start(self, start: float) -> bool:
        """Whether the end (the median of ``end_rows`` rows at least: no lone spike) is clearly *above* the
        highest start estimate, and not inside a spike: a run that got worse than where it began."""
        end, n_end = self.end_level(self.end_rows), len(self._end_points(self.end_rows))
        sd = 1.25 * self._rel_noise * abs(end) / math.sqrt(max(n_end, 1))
        return self._below_start(start, end, sd, above=True) and not self._spike_at_end()

    def _below_start(self, start: float, low: float, low_sd: float, lowest: bool = True, above: bool = False) -> bool:
        """``low`` is below where the run started (``_where_started``) by ``flat_descent`` of it plus two
        of ``low``'s standard deviations, and by three times the combined noise of the two levels, the
        start's measured while the loss had not moved yet (a loss near zero is relatively far noisier
        than its start, so the noise at the end would excuse a real descent); a fall of ``min_descent``
        is clear whatever the noise. ``above``: that far above the highest start estimate instead."""
        early, k = self._where_started(start, None if above else lowest)
        still = sorted(self._still)
        rel = still[len(still) // 2] / 1.65 if len(still) >= 5 else 0.0
        noise = 1.25 * rel * abs(early) / math.sqrt(k)
        clear, big = 3 * math.hypot(noise, low_sd), self.min_descent * abs(early)
        if above:  # (a flat run drifts a few percent: a rise is clear from ``min_descent`` only, and beyond the noise)
            return low - early > max(self.flat_descent * abs(early) + 2 * low_sd, clear, big)
        return early - low > max(self.flat_descent * abs(early) + 2 * low_sd, min(clear, big))

    def _descended(self) -> bool:
        """A real descent: a clear share of the start, above the noise, and not a swing."""
        start, descent = self._start, self._start - self._best
        if descent <= self.min_descent * abs(start) or descent <= 4 * self._dev:
            return False
        return start - self._slow_min > self.trend * abs(start)

    def _dipped(self, at_best: bool = False) -> bool:
        """Some descent, if less than ``_descended`` asks: the best ``trend`` of the start below it, and
        more than the level's noise (a loss that only rose never came down: ``flat``). ``at_best`` (at the
        end of a run): that noise as it was where the best was set, if lower. The noise is in the loss's
        units, and a climb to 30 times the start swings 30 times wider than the dip it came from did: read
        now, it undid the dip, and a run that dipped and ended 30 times above its start was ``flat``."""
        dev = min(self._dev, self._dev_best) if at_best else self._dev
        return self._start - self._best > max(self.trend * abs(self._start), 4 * dev)

    def _risen(self, level: float) -> bool:
        """A descent too small for ``_descended`` (a sparse log's first row came after most of it), then a
        level ``min_descent`` above the start: the loss got worse than where it started, which no
        healthy run does after it came down. The slow EMA came down too, and at most one swing so far:
        an oscillation's first swing up from a trough is no climb."""
        start = self._start
        if not self._dipped() or start - self._slow_min <= self.trend * abs(start) or self._swings > 1:
            return False
        return level - start > max(self.min_descent * abs(start), 4 * self._noise)
