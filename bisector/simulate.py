"""Drive a strategy against a simulated oracle: no training, no Ray, no MLflow.

An oracle maps the set of knobs left at their bad value to a verdict, with a
known culprit structure (minimal failing sets) and a flip probability. Unit
tests and ``benchmarks/search.py`` use it to check answers and count trials
and rounds (wall clock in trial units: every trial takes one unit, ``slots``
run at once).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from .knobs import Knob
from .strategy import Search, StrategyResult, TrialSpec
from .verdicts import Kind


def knobs(n: int) -> list[Knob]:
    return [Knob((f"k{i:02d}",), (0,), (1,)) for i in range(n)]


@dataclass
class Oracle:
    groups: list[frozenset[str]]
    flip: float = 0.0
    rng: random.Random | None = None

    def __call__(self, bad_side: frozenset[str]) -> Kind:
        fails = any(g <= bad_side for g in self.groups)
        if self.flip and (self.rng or random).random() < self.flip:
            fails = not fails
        return Kind.DIVERGED if fails else Kind.STABLE


@dataclass
class Run:
    result: StrategyResult
    trials: int
    """Trials run to completion (cancelled ones not counted)."""
    rounds: float
    """Wall clock in trial units (a passing trial takes 1, a failing one ``fail_time``)."""
    cancelled: int = 0
    slot_time: float = 0.0
    """Slot-time spent: every trial's duration, a cancelled one's up to its cancellation."""


def drive(s: Search, oracle: Oracle, slots: int = 1, max_trials: int = 10_000, fail_time: float = 1.0,
          after: Callable[[Search], None] | None = None) -> Run:
    """Run ``s`` to its answer, ``slots`` trials at once, as events in time: a trial whose verdict is a failure
    takes ``fail_time`` (failures stop at detection; stable trials run to the horizon, 1), and the trials the
    strategy calls moot are cancelled (the fake scheduler's cancel). With ``fail_time`` 1 every trial started
    together ends together, so ``rounds`` counts rounds. ``max_trials`` is a budget stop (``--max-trials``: the
    result is then the best guess so far); ``after`` sees the search after each trial told (the benchmark's
    "found at")."""
    queue: list[TrialSpec] = []
    running: dict[str, tuple[float, float, TrialSpec, Kind]] = {}  # name -> (start, end, spec, verdict)
    now, trials, cancelled, busy = 0.0, 0, 0, 0.0
    while trials < max_trials:
        if not s.done:
            queue += s.suggest()
        for m in s.moot():
            queue = [t for t in queue if t.name != m.trial.name]
            if m.trial.name in running:
                start = running.pop(m.trial.name)[0]
                busy += now - start
                cancelled += 1
        if s.done:
            queue = []
        while queue and len(running) < slots:
            spec = queue.pop(0)
            verdict = oracle(s.all - {k.name for k in spec.reverted})
            took = fail_time if verdict is not Kind.STABLE else 1.0
            running[spec.name] = (now, now + took, spec, verdict)
        if not running:
            break
        now = min(r[1] for r in running.values())
        for name in [n for n, r in running.items() if r[1] <= now + 1e-9]:
            start, end, spec, verdict = running.pop(name)
            busy += end - start
            trials += 1
            s.on_trial_complete(spec, verdict)
            if after is not None:
                after(s)
    return Run(s.result(), trials, round(now, 6), cancelled, round(busy, 6))
