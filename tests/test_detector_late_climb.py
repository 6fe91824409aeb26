"""A late slow climb cut by the horizon, judged by the end-of-run rules (``climb_finish.py``).

The real late slow climb (corpus v2 with orphan rows + per-sequence CRF weight
0.2; ``tests/test_sparse_logs.py`` pins it per step and every 10-50 steps)
climbs from a plateau near 0.24 to 0.5-0.7 in the last ~150 steps of its
1200-step horizon, 12-19% of the way back toward its start (2.7), under
30-60% per-step noise. Logged sparsely it has too few rows after its start
for the streaming test, so ``_doubled_at_end`` must read it: the end at
twice the plateau. Logged as means every 50-60 steps, the rows still hid it:
each case here fails on the code before, and healthy counterparts must stay
``stable``. (A spike among the climb's doubled rows, every 26 steps, still
excuses its end: not excusing a spike on a level already doubled from the
lowest window called the ranking runner's healthy runs ``diverged``, whose
loss near zero swings so widely that its lowest window sits at half its
level; ``tests/test_ranking.py``.)
"""

from __future__ import annotations

import math
import random

import pytest

from bisector.detector import DIVERGED, STABLE, classify

from .test_detector_finish import healthy, rows
from .test_sparse_logs import real


def mean_rows(values: list[float], cadence: int, first: int) -> list[tuple[int, float]]:
    """The mean since the last row at steps ``first``, ``first + cadence``, ... (the first row: its own steps)."""
    return [(s, sum(values[max(0, s - cadence):s]) / min(s, cadence)) for s in range(first, len(values) + 1, cadence)]


@pytest.mark.parametrize(("name", "cadence", "first"), [("late seed 2", 50, 1), ("late seed 0", 60, 8)])
def test_a_late_slow_climb_whose_last_rows_rise_to_twice_the_plateau_is_diverged(name, cadence, first):
    """Logged as means every 50-60 steps, the climb's last rows rise steadily (``late seed 2`` every 50
    from step 1: 0.33, 0.33, 0.37, 0.48, 0.60 from a plateau of 0.24). The median of the last three
    (0.48) is just under twice the plateau, and the end window's median (0.37) far under, so the run was
    ``stable``; the line through the end's rows, which rise significantly, ends at 0.56 (0.52 two standard
    errors down, 0.55 without the highest and lowest rows): ``diverged`` at the horizon."""
    values = real(name)
    logged = mean_rows(values, cadence, first)
    v = classify(logged)
    assert v.kind == DIVERGED and v.detected_at_step == logged[-1][0]


@pytest.mark.parametrize("seed", [0, 3, 5])
def test_a_healthy_run_whose_last_row_is_a_bad_batch_is_stable(seed):
    """A healthy run with 10% noise logged every 10 steps, its last row a bad batch at three times the
    level: the line through the end's 5 rows rises significantly and ends at twice the lowest window.
    Without its highest row that line is flat, so no one row carries the end: ``stable`` (a line read
    with the bad batch in it called these ``diverged``). So are healthy runs whose last rows rise by
    chance, and a heavy-tailed one whose end rows hold a lucky batch first and a bad one last (a review's
    cases: the line read at its end, or without only its highest row, called them ``diverged``)."""
    logged = rows(healthy(1000, seed, sigma=0.1), 10)
    logged[-1] = (logged[-1][0], 3 * logged[-1][1])
    assert classify(logged).kind == STABLE
    rising = rows(healthy(1200, 202, sigma=0.2), 10)  # its last 5 rows: 0.47, 0.63, 0.79, 0.97, 1.28
    assert [round(v, 2) for _, v in rising[-5:]] == [0.47, 0.63, 0.79, 0.97, 1.28]
    assert classify(rising).kind == STABLE
    rng = random.Random(seed)
    heavy = [(0.3 + 2.4 * math.exp(-t / 150)) * math.exp(0.4 * rng.gauss(0, 1) * (5 if rng.random() < 0.03 else 1))
             for t in range(1, 1201)]
    logged = rows(heavy, 10)
    logged[-1] = (logged[-1][0], 6 * logged[-1][1])
    assert classify(logged).kind == STABLE
