"""The end-of-run rules of ``ClimbDetector``: ``finish`` and the state a crashed run leaves.

A streaming test must wait for evidence; a run can end (its horizon, a crash)
before the evidence arrives. These rules judge what the curve looks like when
it stops:

* ``flat``: it never came down (the slow EMA's lowest point is within
  ``flat_descent`` of the start, or within three times the start's own noise).
* ``oscillating``: at least 4 large swings around the slow EMA and no
  downward trend (checked first: an oscillation ends wherever a swing left it).
* ``diverged`` at finish: after a real descent, it ends above its start, or
  more than ``end_frac`` of the way back from its best (the higher of the
  streaming best and the slow EMA's lowest point) toward its start and
  above the best by three standard errors of its end (the median of the last
  ``end_steps`` steps, at least 5 intervals): a curve that ends far above its
  best is never ``stable``, whatever the streaming test missed (a late slow
  climb cut by the horizon, a climb on a log too sparse or noisy to confirm).
"""

from __future__ import annotations

import math
from dataclasses import replace

from .curve_verdict import _RUNNING, DIVERGED, FLAT, NAN, OSCILLATING, STABLE, Verdict


class _EndRules:
    """Mixed into ``ClimbDetector``; uses its state (``_start``, ``_best``, ``_tail``, ...)."""

    judged_at_end = False
    """True when ``diverged`` came from the end-of-run rule, not from a climb confirmed while streaming."""

    def end_level(self) -> float:
        """The median raw value over the last ``end_steps`` steps (at least 5 logging intervals)."""
        vals = sorted(v for _, v in self._tail)
        return vals[len(vals) // 2] if vals else math.nan

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
        trend_down = self._slow < (1 - self.trend) * self._first_slow
        oscillating = self._swings >= 4 and not trend_down
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
        elif begun and descended and (end > start or (self._descended() and self._ends_high(end))):
            kind = DIVERGED  # the finish-time rule: it ends far back toward (or above) its start
            self.judged_at_end = True
        elif not descended and begun:
            kind = FLAT
        else:
            kind = STABLE
        self._verdict = self._snapshot(kind, self._last_step if kind != STABLE else None, sev)
        return self._verdict

    def _fell(self, start: float) -> bool:
        """Whether the loss came down at all (else ``flat``): the slow EMA's lowest point is below the
        start by ``flat_descent`` of it and by three times the start's own noise (a median of few
        points, often heavy-tailed), measured while the loss had not moved yet (a loss near zero is
        relatively far noisier than its start, so the noise at the end would excuse a real descent); a
        fall of ``min_descent`` is a descent whatever the noise."""
        still = sorted(self._still)
        rel = still[len(still) // 2] / 1.65 if len(still) >= 5 else 0.0
        noise = 1.25 * rel * abs(start) / math.sqrt(max(len(self._head), 1))
        margin = max(self.flat_descent * abs(start), min(3 * noise, self.min_descent * abs(start)))
        return start - self._slow_min > margin

    def _ends_high(self, end: float) -> bool:
        """The end is more than ``end_frac`` of the way back, and above the best by more than three
        standard errors of the end (a median of the tail's points, at the trend-free point noise)."""
        se = 1.25 * self._rel_noise * abs(end) / math.sqrt(len(self._tail))
        best = self._floor()
        return end - best > max(self.end_frac * (self._start - best), 3 * se)

    def _floor(self) -> float:
        """The best the end is compared with: the streaming best, or the slow EMA's lowest point if that
        is higher (on a long plateau the lowest of many noisy levels is lower than where the loss sat)."""
        return max(self._best, self._slow_min)

