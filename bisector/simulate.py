"""Drive a strategy against a simulated oracle: no training, no Ray, no MLflow.

An oracle maps the set of knobs left at their bad value to a verdict, with a
known culprit structure (minimal failing sets) and a flip probability. Unit
tests and ``benchmarks/search.py`` use it to check answers and count trials
and rounds (wall clock in trial units: every trial takes one unit, ``slots``
run at once).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .knobs import Knob
from .strategy import Search, StrategyResult
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
    rounds: int


def drive(s: Search, oracle: Oracle, slots: int = 1, max_trials: int = 10_000) -> Run:
    queue, trials, rounds = [], 0, 0
    while not s.done and trials < max_trials:
        queue += s.suggest()
        if not queue:
            break
        batch, queue = queue[:slots], queue[slots:]
        rounds += 1
        for spec in batch:
            trials += 1
            s.on_trial_complete(spec, oracle(s.all - {k.name for k in spec.reverted}))
    return Run(s.result(), trials, rounds)
