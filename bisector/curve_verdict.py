"""What a streaming detector says about one curve (``Verdict``), and the intake every detector shares.

The campaign's vocabulary (``verdicts.Kind``) repeats these kinds as an enum beside its own (error,
lost, ...); this module stays free of it so ``fingerprint`` and the detector run alone."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
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
        already final, the value is non-finite (``nan``, decided here and now), or the step is
        not after the last one taken (a log replaying steps after a crash-resume: the first
        pass was already judged, and judging a step twice would double its weight)."""
        if self._verdict is not _RUNNING:
            return None
        value = float(value)
        finite = value == value and value not in (math.inf, -math.inf)
        if finite and self._last_step is not None and step <= self._last_step:
            return None
        self.points += 1
        self._last, self._last_step = value, step
        if not finite:
            self._verdict = self._snapshot(NAN, step)
            return None
        return value

    def _snapshot(self, kind: str, step: int | None) -> Verdict:  # pragma: no cover - each detector's own
        raise NotImplementedError
