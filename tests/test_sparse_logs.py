"""Loss logs as users write them: sparse, irregular, resumed, cut by the horizon.

Each case named in the detector-v3 issue is pinned here. The real curves are
the reference tagger's per-step train CE, cut from the benchmark's cache
(``benchmarks/data/tagger_curves.json.gz``, written by
``benchmarks/tagger_curves.py``, whose docstring names each recipe) into
``tests/data/tagger_curves.json.gz``: ``sum seed 2`` (corpus v2 + CRF ``sum``:
2.7 -> 0.66 by step 232 -> 16 at step 2000), ``late seed 0`` (corpus v2 with 35%
orphan rows + per-sequence CRF weight 0.2, to the 1200-step horizon: 0.2 around
step 700 -> 0.6 at the end), ``bad seed 1`` (the bad recipe: corpus v2 + per-sequence CRF,
a steep climb from step ~150), ``late seed 2`` (the late recipe's seed 2) and ``good seed 0``.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bisector.cli import app
from bisector.detector import DIVERGED, FLAT, NAN, STABLE, ClimbDetector, classify

DATA = Path(__file__).resolve().parent / "data" / "tagger_curves.json.gz"


def real(name: str) -> list[float]:
    with gzip.open(DATA, "rt") as f:
        return json.load(f)[name]["train_ce"]


def every(values: list[float], cadence: int) -> list[tuple[int, float]]:
    """The value at every ``cadence``-th step (steps from 1), as a script logging the current loss writes it."""
    return [(s, values[s - 1]) for s in range(cadence, len(values) + 1, cadence)]


def climb(n: int = 1200, at: int = 379, dur: int = 300, sigma: float = 0.04, seed: int = 0) -> tuple[list[float], int]:
    """Descent 2.7 -> 1.2, then from step ``at`` a linear climb of 1.4 over ``dur`` steps; the truth is
    the step where the clean curve crosses 10% of the way back (as the benchmark defines it)."""
    rng = random.Random(seed)
    clean = [1.2 + 1.5 * math.exp(-t / 60) + 1.4 * min(1.0, max(0, t - at) / dur) for t in range(1, n + 1)]
    best = min(clean[:at])
    truth = next(t for t in range(at, n + 1) if clean[t - 1] > best + 0.1 * (clean[0] - best))
    return [c * math.exp(sigma * rng.gauss(0, 1)) for c in clean], truth


def fingerprint(path: Path, *args: str) -> dict:
    res = CliRunner().invoke(app, ["fingerprint", str(path), "--json", *args])
    assert res.exit_code in (0, 1), res.output
    return json.loads(res.stdout)


# -- the cases -------------------------------------------------------------------------------


def test_sparse_csv_with_eval_rows_and_a_resume_that_ends_6x_its_start_is_diverged(tmp_path):
    """A CSV every 10 steps, train and eval rows interleaved, steps 1210-1500 logged again after a
    crash-resume from the step-1200 checkpoint; train loss 2.7 -> 0.66 -> 16: v2 called it stable."""
    values = real("sum seed 2")
    lines = ["step,train_loss,lr,val_loss,val_macro_f1"]
    for step, v in every(values, 10):
        lines.append(f"{step},{v:.4f},0.003,,")
        if step % 100 == 0:
            lines.append(f"{step},,,{1.1 * v:.4f},0.9")
        if step == 1500:  # crashed here; resumed from the checkpoint at 1200: 1210..1500 logged again
            lines += [f"{s},{0.98 * w:.4f},0.003,," for s, w in every(values, 10) if 1200 < s <= 1500]
    path = tmp_path / "metrics.csv"
    path.write_text("\n".join(lines) + "\n")
    out = fingerprint(path)
    assert out["verdict"] == DIVERGED and out["metric"] == "train_loss"
    assert 232 <= out["climb_start_step"] <= 330 and out["detected_at_step"] <= 400
    # the detector fed the rows as written (replayed steps included) says the same
    rows = [(int(ln.split(",")[0]), float(ln.split(",")[1])) for ln in lines[1:] if ln.split(",")[1]]
    assert len(rows) > len({s for s, _ in rows})  # the replay is really there
    v = classify(rows)
    assert (v.kind, v.detected_at_step) == (DIVERGED, out["detected_at_step"])


@pytest.mark.parametrize("cadence", [1, 10])
def test_a_sparse_log_detects_within_steps_not_points(cadence):
    """A climb from step 379 on a log every 10 steps was detected at 770 by v2 (it counted points).
    Bound: the benchmark's p90 goal, 120 steps plus one interval (this one: 55 per step, 89 every 10)."""
    values, truth = climb(at=379, dur=300)
    v = classify(every(values, cadence))
    assert v.kind == DIVERGED
    assert truth <= v.detected_at_step <= truth + 120 + cadence
    assert abs(v.climb_start_step - truth) <= 50


def test_real_late_slow_climb_at_the_horizon_is_diverged():
    """The tagger's train CE climbs from ~0.2 (step ~700) to ~0.6 at the 1200-step horizon: v2's trial
    detector called this stable."""
    v = classify(enumerate(real("late seed 0"), start=1))
    assert v.kind == DIVERGED
    assert 950 <= v.climb_start_step <= 1100 and v.detected_at_step < 1200  # streamed, not only at finish
    assert v.severity >= 0.15


def means(values: list[float], cadence: int) -> list[tuple[int, float]]:
    """The mean since the last row at every ``cadence``-th step (Hugging Face's ``loss``)."""
    return [(s, sum(values[s - cadence:s]) / cadence) for s in range(cadence, len(values) + 1, cadence)]


@pytest.mark.parametrize("cadence", [10, 20, 25, 50])
@pytest.mark.parametrize("log", [every, means])
def test_real_late_slow_climb_logged_sparsely_is_diverged_at_the_horizon(cadence, log):
    """The same late slow climb logged every 10-50 steps: too few rows after its start to confirm while
    streaming, and its end only ~12% of the way back from the noise-floored best, so v3 called it
    stable (every 50 steps as values and means; every 10, 20 and 25 as values). It ends at 2-3 times its
    plateau (``_doubled_at_end``); the healthy run logged alike stays ``stable``. Every 10 steps as
    values the rows' noise is ~57% and the end sits 2.6 standard errors above the plateau: ``double_z``."""
    v = classify(log(real("late seed 0"), cadence))
    assert v.kind == DIVERGED and 950 <= v.climb_start_step <= 1100
    if log is means and cadence == 10:  # means over 10 steps are quiet enough to confirm before the horizon
        assert v.climb_start_step < v.detected_at_step < 1200
    else:
        assert v.detected_at_step == 1200
    assert classify(log(real("good seed 0"), cadence)).kind == STABLE


def test_real_late_slow_climb_whose_noisy_last_rows_hold_a_big_rise_is_not_read_as_a_spike():
    """Another seed of the late slow climb (``late seed 2``) logged as means every 2 steps: its rows are
    noisy (~18%), and the largest rise between two of its last 100 steps' rows (0.33 -> 0.75) starts at a
    low draw. ``_spike_at_end`` measured the noise at that point, so the rise was 7 noises (a jump) and
    the end read as a spike, the run as ``stable``, though it ends at 3.6 times its plateau. Measured at
    the median of the rows before it (0.57), the rise is 4 noises: a noisy climb's. A run that does end
    inside a spike is still read so (``tests/test_detector_finish.py``), and the healthy run logged alike
    stays ``stable``."""
    v = classify(means(real("late seed 2"), 2))
    assert v.kind == DIVERGED and 950 <= v.climb_start_step <= 1150 and v.detected_at_step == 1200
    assert classify(means(real("good seed 0"), 2)).kind == STABLE


@pytest.mark.parametrize("first", [1, 50])
def test_real_late_slow_climb_whose_last_three_rows_alone_doubled_is_diverged(first):
    """``late seed 2`` logged every 50 steps as values (the first row at step 1 or 50): the median of its
    last three rows is 0.62-0.72, 2.4-2.7 times its plateau's 0.26, but the end window spans five rows
    every 50 steps, and its median (0.48-0.50) still held plateau rows: under twice the plateau, so
    ``stable``. The last rows' own median, at three rows' error, is doubled: ``diverged`` at the horizon;
    the healthy run logged alike stays ``stable``."""
    values = real("late seed 2")
    rows = [(s, values[s - 1]) for s in range(first, len(values) + 1, 50)]
    rows += [] if rows[-1][0] == len(values) else [(len(values), values[-1])]
    v = classify(rows)
    assert v.kind == DIVERGED and 950 <= v.climb_start_step <= 1150 and v.detected_at_step == 1200
    good = real("good seed 0")
    assert classify([(s, good[s - 1]) for s in range(first, len(good) + 1, 50)]).kind == STABLE


@pytest.mark.parametrize("dur", [300, 600, 1000])
def test_slow_climb_delay_and_climb_start_per_step(dur):
    """Climbing back over 300-1000 steps: v2 took up to ~130 steps and misplaced the start by up to ~95."""
    values, truth = climb(at=500, dur=dur, n=1800)
    v = classify(every(values, 1))
    assert v.kind == DIVERGED
    assert 0 <= v.detected_at_step - truth <= 80
    assert abs(v.climb_start_step - truth) <= 50


# -- the finish-time rule ------------------------------------------------------------------------------


def test_a_curve_that_ends_above_its_start_is_never_stable():
    """Descent, plateau, then a climb over the last 40 steps: too soon for the streaming test to confirm
    (it holds 45 steps), but the curve ends above where it started."""
    values = [0.8 + 1.9 * math.exp(-t / 60) for t in range(1, 1001)]
    values[-40:] = [0.8 + 2.4 * k / 39 for k in range(40)]
    det = ClimbDetector()
    assert not any(det.update(t, x).final for t, x in enumerate(values, start=1))
    v = det.finish()
    assert v.kind == DIVERGED and v.detected_at_step == 1000 and v.last_value > v.start_value


def test_a_curve_that_ends_far_back_toward_its_start_is_diverged_at_finish(tmp_path):
    """Every 10 steps, the climb in the last 40 steps: 4 points, too few to confirm while streaming."""
    values, _ = climb(n=1000, at=960, dur=100)
    det = ClimbDetector()
    assert not any(det.update(s, v).final for s, v in every(values, 10))
    v = det.finish()
    assert v.kind == DIVERGED and v.detected_at_step == 1000 and 0.15 < v.severity < 1 and det.judged_at_end
    out = fingerprint(_write(tmp_path / "end.csv", every(values, 10)))
    assert out["verdict"] == DIVERGED and "ended" in out["evidence"] and "still rising" not in out["evidence"]


def test_a_healthy_curve_ending_near_its_best_stays_stable():
    values = [(0.3 + 2.4 * math.exp(-t / 150)) * math.exp(0.05 * random.Random(t).gauss(0, 1))
              for t in range(1, 1501)]
    for cadence in (1, 10, 50):
        assert classify(every(values, cadence)).kind == STABLE


# -- cadence: the same run gives the same verdict ------------------------------------------------------


def _write(path: Path, rows: list[tuple[int, float]]) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("\n".join(json.dumps({"step": s, "train_loss": v}) for s, v in rows))
    else:
        path.write_text("step,train_loss\n" + "".join(f"{s},{v}\n" for s, v in rows))
    return path


@pytest.mark.parametrize(("curve", "verdict"), [("sum seed 2", DIVERGED), ("good seed 0", STABLE)])
def test_fingerprint_gives_one_verdict_per_step_every_10_and_every_50(tmp_path, curve, verdict):
    values = real(curve)
    outs = [fingerprint(_write(tmp_path / f"c{c}{ext}", every(values, c)))
            for c, ext in ((1, ".jsonl"), (10, ".csv"), (50, ".csv"))]
    assert [o["verdict"] for o in outs] == [verdict] * 3
    if verdict == DIVERGED:
        # each log's estimate within 50 steps plus its own interval of the per-step log's (a sparse
        # log only knows the crossing lies between two of its rows)
        starts = [o["climb_start_step"] for o in outs]
        assert all(abs(s - starts[0]) <= 50 + c for s, c in zip(starts, (1, 10, 50), strict=True)), starts


def test_irregular_log_with_a_gap_is_judged_in_steps():
    values, truth = climb(at=379, dur=300)
    rng = random.Random(1)
    steps, s = [], 1
    while s <= len(values):
        steps.append(s)
        s += 200 if 100 < s < 120 else rng.randint(1, 20)  # a lost chunk of the log before the climb
    v = classify([(s, values[s - 1]) for s in steps])
    assert v.kind == DIVERGED and truth <= v.detected_at_step <= truth + 120 + 20
    assert abs(v.climb_start_step - truth) <= 50


# -- resumes, crashes ------------------------------------------------------------------------------------


def test_replayed_steps_after_a_resume_are_skipped():
    values, _ = climb()
    rows = every(values, 10)
    replay = rows[:60] + [(s, 0.5 * v) for s, v in rows[40:60]] + rows[60:]  # steps 410..600 again, lower
    a, b = classify(rows), classify(replay)
    assert (a.kind, a.detected_at_step, a.climb_start_step) == (b.kind, b.detected_at_step, b.climb_start_step)


def test_failing_now_names_the_state_a_crashed_run_was_in():
    healthy = [0.5 + 2.2 * math.exp(-t / 50) for t in range(1, 301)]
    det = ClimbDetector()
    for t, x in enumerate(healthy, start=1):
        det.update(t, x)
    assert det.failing_now() is None and not det.final
    climbing = ClimbDetector()
    for t, x in enumerate(healthy + [0.5 + 0.03 * k for k in range(1, 41)], start=1):
        climbing.update(t, x)  # 0.5 -> 1.7 in 40 steps: over half the way back, too fresh for a verdict
    assert not climbing.final and climbing.failing_now().startswith("climbed back ")
    exploding = ClimbDetector()
    for t, x in enumerate(healthy + [20.0], start=1):
        exploding.update(t, x)
    assert exploding.failing_now().startswith("exploded to 7.")
    broken = ClimbDetector()
    for t, x in enumerate(healthy + [math.inf], start=1):
        broken.update(t, x)
    assert broken.final and broken.finish().kind == NAN and broken.failing_now() == "became non-finite"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_climb_start_of_a_climb_that_levels_off_is_not_extrapolated_before_it(seed):
    """A climb that rises for 150 steps and then holds 70% of the way back, with a 30-step spike early in
    it (a jump followed by a fall, so the confirmation waits): the verdict comes while streaming, once the
    level has held for ``sustain`` steps, not at the end of the run; and a line fitted over the whole
    window (rise and plateau) would put the start hundreds of steps before the crossing: the estimate
    stays within 50 steps of the truth."""
    rng = random.Random(seed)
    clean = [1.2 + 1.5 * math.exp(-t / 60) + 1.05 * min(1.0, max(0, t - 900) / 150) for t in range(1, 2001)]
    values = [c * math.exp(0.04 * rng.gauss(0, 1)) for c in clean]
    for t in range(960, 990):
        values[t] *= 1.6
    best = min(clean[:900])
    truth = next(t for t in range(900, 2001) if clean[t - 1] > best + 0.1 * (clean[0] - best))
    v = classify(list(enumerate(values, 1)))
    assert v.kind == DIVERGED
    assert v.detected_at_step < 1300, v
    assert abs(v.climb_start_step - truth) <= 50, (v.climb_start_step, truth)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_flat_run_whose_first_logged_point_is_high_is_flat_not_stable(seed):
    """A run that never learns, logged every 10 steps with heavy-tailed noise whose first row happened
    to be 9% high: the 'descent' from that row is within three times the start's noise, so ``flat``."""
    rng = random.Random(seed)
    rows = [(s, 28.6 * (1 + 0.00003 * s) * math.exp(0.035 * rng.gauss(0, 1))) for s in range(10, 4001, 10)]
    rows[0] = (10, 28.6 * 1.09)
    v = classify(rows)
    assert v.kind == "flat", v


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_climb_start_of_a_mean_logged_log_every_50_steps_is_not_read_late(power):
    """Rows every 50 steps, each the mean since the last row (Hugging Face's ``loss``), of a slow climb
    from step 600 (linear, or accelerating: ``power`` 2) with 4% noise: a mean row stands for the middle
    of its interval and the best's noise floor lifts the threshold, so the start was read ~15 steps late
    on every seed (median +13 to +16 before the sparse-log estimate); now it is centred on the truth."""
    errors = []
    for seed in range(20):
        rng = random.Random(seed)
        clean = [1.2 + 1.5 * math.exp(-t / 60) + 1.4 * min(1.0, max(0, t - 600) / 700) ** power
                 for t in range(1, 2001)]
        values = [c * math.exp(0.04 * rng.gauss(0, 1)) for c in clean]
        best = min(clean[:600])
        truth = next(t for t in range(600, 2001) if clean[t - 1] > best + 0.1 * (clean[0] - best))
        v = classify(means(values, 50))
        assert v.kind == DIVERGED
        errors.append(v.climb_start_step - truth)
    assert all(abs(e) <= 50 for e in errors), errors
    assert abs(sorted(errors)[len(errors) // 2]) <= 10, sorted(errors)


@pytest.mark.parametrize("seed", range(6))
def test_climb_start_of_a_fast_turn_every_50_steps_is_not_held_at_the_medians_best(seed):
    """Every 50 steps, a descent that turns straight into a climb (the reference tagger's bad recipe at
    that cadence): the row after the lowest one is lower than the row before it, so the median of 3 holds
    the lowest level for two rows and the best is set one row late, at a row already above the threshold.
    The start cannot be before the best, so it was read at that row, 70 steps late on every seed; where
    the best's own row is above the threshold the curve crossed before it (at most one interval)."""
    rng = random.Random(seed)
    clean = [0.6 + 2.1 * math.exp(-t / 50) + (0 if t < 100 else 0.01 * (t - 100)) for t in range(1, 701)]
    best = min(clean)
    low = clean.index(best) + 1
    truth = next(t for t in range(low, 701) if all(c > best + 0.1 * (clean[0] - best) for c in clean[t - 1:]))
    values = [c * math.exp(0.03 * rng.gauss(0, 1)) for c in clean]
    v = classify([(s, values[s - 1]) for s in range(1, 701, 50)])
    assert v.kind == DIVERGED and abs(v.climb_start_step - truth) <= 50, (v.climb_start_step, truth)


def test_a_healthy_run_whose_last_row_is_a_spike_is_stable():
    """Benchmark generator A's healthy run (dev seed 23), logged irregularly: the loss sits at 0.13, and
    the last row is a spike's first row (0.33), after a 17-step gap. A line through the end's 4 rows
    rises to 0.31, twice the plateau: the first version of ``_doubled_at_end`` called it diverged. The
    median of the last 3 rows must be doubled too, as one row is no end level."""
    path = Path(__file__).resolve().parent / "data" / "healthy_irregular_last_row_spike.csv"
    rows = [(int(s), float(v)) for s, v in (ln.split(",") for ln in path.read_text().split()[1:])]
    assert rows[-1][1] > 2 * rows[-2][1]
    assert classify(rows).kind == STABLE


@pytest.mark.parametrize("log", [every, means])
def test_a_steep_climb_logged_every_5_steps_stops_about_when_the_per_step_log_does(log):
    """The tagger's bad recipe (seed 1) stops at step 200 when logged every step. Every 5 steps its noisy
    rises up the steep climb crossed the jump bar every 15-40 steps, and each crossing restarted the
    40-step hold: it stopped at step 335 (values) or 285 (means), though its slope was already past
    t 20. A slope past ``t_sure`` waits a quarter of the hold after a jump."""
    values = real("bad seed 1")
    per_step = classify(enumerate(values, start=1))
    v = classify(log(values, 5))
    assert per_step.kind == v.kind == DIVERGED
    assert v.detected_at_step <= per_step.detected_at_step + 60, (v.detected_at_step, per_step.detected_at_step)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_climb_whose_descent_fell_inside_the_first_interval_stops_the_trial(seed):
    """Every 50 steps from step 50, a loss that falls from 4.4 to 0.9 within its first ~60 steps, so the
    first row (1.12) shows only a fifth of the descent, less than ``min_descent``; at step 1200 it climbs to
    3.0 (2.7 times that first row) over 300 steps. The streaming test waited for a descent it never saw:
    the trial ran to its end and was called ``flat`` (seed 3) or ``diverged`` at finish with its climb
    start at the best (seeds 1, 2). A level ``min_descent`` above the start after a smaller descent is a
    climb too: it stops the trial, with the climb start at the climb's onset."""
    rng = random.Random(seed)
    clean = [0.9 + 3.5 * math.exp(-t / 18) + 2.1 * min(1.0, max(0, t - 1200) / 300) for t in range(1, 2501)]
    values = [c * math.exp(0.03 * rng.gauss(0, 1)) for c in clean]
    det = ClimbDetector()
    stopped = next((s for s, x in every(values, 50) if det.update(s, x).final), None)
    assert stopped is not None and stopped <= 1450, stopped
    v = det.finish()
    assert v.kind == DIVERGED and abs(v.climb_start_step - 1200) <= 50, v


def test_a_low_second_row_of_a_sparse_log_does_not_set_the_best():
    """Benchmark generator B's healthy run (dev seed 21, run 87, "B plain"), logged every 50 steps: the second
    row (step 100) is 28% low, one noisy row. The best is the lowest median of 3, but the second point has no
    median yet, so that row set the best alone: the rows after it, back at the loss's level, read as a climb
    94% of the way back, held for ``sustain``, and the trial was stopped at step 550. It now runs to its end
    (judged ``flat`` there, not ``diverged``: after a first row written when most of the descent was done, its
    slow level sits only 8% below its opening rows, within three of their noises)."""
    import sys

    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import detector as bench
    from logsim import CADENCES, log_rows

    curve = bench.cases(21, 40, False)[87]
    rows = log_rows(curve, "50", np.random.default_rng([21, 87, CADENCES.index("50")]))
    assert curve.expect == STABLE and rows[1][1] < 0.75 * min(rows[0][1], rows[2][1])
    det = ClimbDetector()
    assert not any(det.update(step, value).final for step, value in rows)
    assert det.finish().kind in (STABLE, FLAT)
