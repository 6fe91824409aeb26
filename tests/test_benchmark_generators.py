"""The detector benchmark's curves and scoring (``benchmarks/``): a figure is only as true as its truth.

Generators C and D are the third and fourth, written without reading the detector or the generators
before them; these tests pin what each of their families promises (the truth a score is read
against), that adding one moved no curve of A, B or the real set (so figures before and after stay
comparable), and how a ``nan`` run caught as ``diverged`` before it overflowed is scored.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import detector as bench  # noqa: E402
import logsim  # noqa: E402
import synth_c  # noqa: E402
import synth_d  # noqa: E402
import verdict_moves  # noqa: E402

from bisector.detector import DIVERGED, NAN, STABLE  # noqa: E402


@pytest.mark.parametrize("seed", [0, 1])
def test_generator_c_keeps_the_promise_of_each_family(seed):
    for c in synth_c.curves(np.random.default_rng(seed), 3):
        n, k = len(c.values), c.truth or len(c.values) + 1
        assert 600 <= n <= 5000 and c.start == c.clean[0] > 0
        assert np.isfinite(c.values[: k - 1]).all() and (c.values[: k - 1] > 0).all(), c.family
        if c.expect == NAN:
            assert not np.isfinite(c.values[k - 1]), c.family
        elif c.expect == STABLE:  # a healthy run never ends above where it started, spikes only in the values
            assert c.truth is None and c.clean[-1] <= c.start and np.isfinite(c.values).all(), c.family
        else:  # the climb goes 30%+ of the way back, and the truth leaves 150 steps to see it
            assert c.expect == DIVERGED and k <= n - 150, c.family
            best = c.clean[:k].min()
            assert c.clean[-1] >= best + 0.3 * (c.start - best), c.family
            assert (c.clean[k - 1:] > best + 0.1 * (c.start - best)).all(), c.family


def test_adding_generator_c_moves_no_curve_of_a_b_or_the_real_set():
    ab = bench.cases(5, 2, False)
    abc = bench.cases(5, 2, False, "abc")
    assert len(abc) == len(ab) + 2 * len(synth_c.FAMILIES)
    for a, b in zip(ab, abc, strict=False):
        assert a.family == b.family and np.array_equal(a.values, b.values, equal_nan=True)
    assert {c.family for c in abc[len(ab):]} == set(synth_c.FAMILIES)
    only_c = bench.cases(5, 2, False, "c")
    assert [c.family for c in only_c] == [c.family for c in abc[len(ab):]]


def _nan_row(at, blowup, kind=DIVERGED):
    return {"family": "C nan", "cadence": "1", "interval": 1.0, "gap": 1.0, "expect": NAN, "truth": 900,
            "kind": kind, "at": at, "climb": None, "streamed": True, "above": False, "run": (0, 0),
            "blowup": blowup}


def test_a_nan_run_caught_as_diverged_counts_only_after_its_own_climb_began():
    # an explosion caught while still finite is the verdict we want, not a miss; caught before its
    # own climb start it is a false alarm like any other early detection
    assert bench.score([_nan_row(850, 800)])["recall"] == 1.0
    early = bench.score([_nan_row(700, 800)])
    assert early["recall"] == 0.0 and early["fa"] == 1
    assert bench.score([_nan_row(None, 800, STABLE)])["recall"] == 0.0


def test_the_blowup_start_of_a_nan_run_is_read_from_its_finite_part():
    c = next(c for c in synth_c.curves(np.random.default_rng(3), 2) if c.expect == NAN)
    start = bench.blowup_start(c)
    assert start is not None and start < c.truth
    assert c.clean[start - 1] > c.clean[: start - 1].min()
    healthy = next(c for c in synth_c.curves(np.random.default_rng(3), 1) if c.expect == STABLE)
    assert bench.blowup_start(healthy) is None


# Generator D: a fourth set, written blind to the detector and to generators A-C (shapes nobody tuned on).


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generator_d_keeps_the_promise_of_each_family(seed):
    for c in synth_d.curves(np.random.default_rng(seed), 3):
        n, k = len(c.values), c.truth or len(c.values) + 1
        assert 600 <= n <= 5000 and c.start == c.clean[0] > 0 and c.family.startswith("D ")
        assert np.isfinite(c.values[: k - 1]).all() and (c.values[: k - 1] > 0).all(), c.family
        assert c.clean[: k - 1].min() <= 0.75 * c.start, c.family  # a real descent comes first
        if c.expect == NAN:
            assert not np.isfinite(c.values[k - 1]) and np.isnan(c.values[k:]).all(), c.family
        elif c.expect == STABLE:  # never 100+ steps above the running best + 8% of the descent; ends lower
            assert c.family in synth_d.HEALTHY and c.truth is None and c.clean[-1] < c.start, c.family
            best = np.minimum.accumulate(c.clean)
            above = np.concatenate([[False], c.clean > best + 0.08 * (c.start - best), [False]])
            runs = np.diff(np.nonzero(np.diff(above.astype(int)))[0])[::2]
            assert not len(runs) or runs.max() <= 100, c.family
        else:  # the climb goes 30%+ of the way back, and the truth leaves 150 steps to see it
            assert c.expect == DIVERGED and k <= n - 150, c.family
            read = logsim.average(c.clean, synth_d.AVERAGED[c.family]) if c.family in synth_d.AVERAGED else c.clean
            best = read[:k].min()
            assert k == logsim.climb_start(read, c.start, n), c.family
            assert c.clean[-1] >= c.clean[:k].min() + 0.3 * (c.start - c.clean[:k].min()), c.family
            assert (read[k - 1:] > best + 0.1 * (c.start - best)).all(), c.family
            assert k <= logsim.climb_start(c.clean, c.start, n), c.family  # (an average crosses before its troughs)


def test_adding_generator_d_moves_no_curve_of_a_b_c_or_the_real_set():
    abc, abcd = bench.cases(6, 2, False, "abc"), bench.cases(6, 2, False, "abcd")
    assert len(abcd) == len(abc) + 2 * len(synth_d.FAMILIES)
    for a, b in zip(abc, abcd, strict=False):
        assert a.family == b.family and np.array_equal(a.values, b.values, equal_nan=True)
    assert [c.family for c in bench.cases(6, 2, False, "d")] == [c.family for c in abcd[len(abc) :]]


def test_generator_d_is_family_major_and_reproducible():
    a, b = synth_d.curves(np.random.default_rng(7), 2), synth_d.curves(np.random.default_rng(7), 2)
    assert [c.family for c in a] == [f for f in synth_d.FAMILIES for _ in range(2)]
    assert synth_d.HEALTHY == synth_d.FAMILIES[: len(synth_d.HEALTHY)]
    assert all(np.array_equal(x.values, y.values, equal_nan=True) for x, y in zip(a, b, strict=True))
    assert {c.expect for c in a[2 * len(synth_d.HEALTHY):]} == {DIVERGED, NAN}


def test_generator_d_spans_loss_scales_and_observes_through_noise():
    runs = synth_d.curves(np.random.default_rng(4), 4)
    starts = np.array([c.start for c in runs])
    assert starts.max() / starts.min() > 1e3  # each run scaled by 10**U(-3, 3)
    for c in runs:
        ok = np.isfinite(c.values)
        rel = np.abs(np.log(c.values[ok] / c.clean[ok]))
        assert 0 < np.median(rel) < 0.25, c.family  # relative noise of 0.5-20%, never a clean copy


def test_a_cadence_subset_judges_the_same_logs_and_a_setting_reaches_the_detector():
    # ``--cadences 50 --set sustain=300`` measures a trade-off where it acts: the subset must be the very
    # logs of the full run, and the setting must change verdicts, or the rounds' trade-off table lies
    full, _ = bench.run([4], 2, False, gens="c")
    sub, _ = bench.run([4], 2, False, gens="c", cadences=["50"])
    assert sub == [r for r in full if r["cadence"] == "50"]
    held, _ = bench.run([4], 2, False, gens="c", cadences=["50"], settings={"sustain": 10**6, "t_min": 1e9})
    assert sum(r["streamed"] for r in held) < sum(r["streamed"] for r in sub)  # (a nan run streams anyway)
    assert bench._cadences(sub) == ["50"]


def test_dump_and_against_name_the_logs_a_change_moved(tmp_path):
    """A before -> after names the logs that moved: none against its own dump, and against a run whose
    setting holds every climb, each log whose verdict changed; a dump of other logs is refused."""
    before, _ = bench.run([4], 2, False, gens="c", cadences=["50"])
    after, _ = bench.run([4], 2, False, gens="c", cadences=["50"], settings={"sustain": 10**6, "t_min": 1e9})
    path = tmp_path / "before.jsonl"
    verdict_moves.dump(before, path)
    dumped = verdict_moves.load(path)
    same = verdict_moves.moves(dumped, before)
    assert same == f"{len(before)} logs compared: 0 changed verdict, 0 detections moved step."
    moved = [b for a, b in zip(before, after, strict=True) if (a["kind"], a["streamed"]) != (b["kind"], b["streamed"])]
    report = verdict_moves.moves(dumped, after)
    assert moved and report.startswith(f"{len(after)} logs compared: {len(moved)} changed verdict")
    assert f"{moved[0]['family']}, 50, {moved[0]['run']}: " in report
    with pytest.raises(ValueError, match="judged other logs"):
        verdict_moves.moves(dumped, after[1:])
    with pytest.raises(ValueError, match="judged twice"):
        verdict_moves.moves(dumped + dumped[:1], after)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="no rows"):
        verdict_moves.load(tmp_path / "empty.jsonl")


def test_against_a_file_that_is_no_dump_is_a_usage_error(tmp_path):
    import subprocess

    bad = tmp_path / "results.jsonl"
    bad.write_text('{"family": "C nan"}\n')
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "detector.py"
    res = subprocess.run([sys.executable, str(script), "--seeds", "4", "--n", "1", "--gens", "c", "--no-real",
                          "--against", str(bad)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "line 1 is not a --dump row" in res.stderr and "Traceback" not in res.stderr


def test_a_curve_ends_above_its_start_against_its_own_first_value():
    # an oscillation around ``start`` (1.0) that began at a crest and ends a little below it did not end above
    # its start; the same swings ending above their first value did; a curve with no start is never counted
    t = np.arange(1001)
    crest = 1 + 0.4 * np.cos(2 * np.pi * t / 250 * 0.99)
    assert crest[0] > crest[-1] > 1.0
    assert not bench.ends_above_start(logsim.Curve("B oscillating", crest, crest, "oscillating", None, 1.0))
    assert bench.ends_above_start(logsim.Curve("B oscillating", crest[::-1], crest[::-1], "oscillating", None, 1.0))
    assert not bench.ends_above_start(logsim.Curve("real", crest[::-1], crest[::-1], "stable", None, None))


def test_a_log_ends_above_its_start_over_the_span_its_rows_cover():
    # a trough at step 1, a crest by the first row every 50 steps, and an end between them: the curve ends
    # above its step-1 value, the log does not end above its first row; every step, it does
    t = np.arange(1, 1001)
    swing = 1 - 0.4 * np.cos(2 * np.pi * (t - 1) / 100)
    swing[-1] = 1.2
    curve = logsim.Curve("B oscillating", swing, swing, "oscillating", None, 1.0)
    assert swing[49] > swing[-1] > swing[0]
    every_50 = [(s, float(swing[s - 1])) for s in range(50, 1001, 50)]
    every_1 = [(s, float(swing[s - 1])) for s in t]
    assert not bench.ends_above_start(curve, every_50)
    assert bench.ends_above_start(curve, every_1) and bench.ends_above_start(curve)
    # a run that overflows after its last row is read at that row: the clean curve there, not its inf
    blow = np.concatenate([np.linspace(2.0, 1.0, 900), [1.5] * 40, np.full(60, np.inf)])
    nan_run = logsim.Curve("D overflow", blow, blow, "nan", None, 2.0)
    assert bench.ends_above_start(nan_run)
    assert not bench.ends_above_start(nan_run, [(s, float(blow[s - 1])) for s in range(50, 901, 50)])
