"""Healthy runs with spikes must never stop a trial: the streaming test's spike rules (``climb.py``).

Spikes smaller than a jump, stacked within ~100 steps, read as a ramp whose slope is only marginally
significant (t 4-6); a window like that waits while it looks like spikes (a step rise, a fall back
from its top, or younger than an excursion this run already recovered from), and a real climb's t
soon passes ``t_spike``. A spike large enough to hide the descent in its own spread still counts
toward the window's top, so its decay is seen as a decay when the descent shows again. A line through
a step up and its hold is not a ramp (the window's later half must rise). The ``sustain`` rule's fall
test, which keeps a long-lived spike from reading as a level held, has its own file
(``test_detector_sustain.py``); its log helpers are here.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from bisector.detector import DIVERGED, STABLE, ClimbDetector, classify

from .test_detector import decay, diverging, noisy, spike, stopped_at

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def detector(**kw) -> ClimbDetector:
    """``ClimbDetector(**kw)``; ``kw`` may also set the rules' class-level settings (``stair_t``,
    ``return_steps``, ``refill``, ``trough_count``, ...) on that one detector, for a counterfactual (a name
    the detector does not have is an error: a misspelt setting would make the counterfactual the default)."""
    settings = {k: kw.pop(k) for k in list(kw) if k not in ClimbDetector.__init__.__code__.co_varnames}
    unknown = [k for k in settings if not hasattr(ClimbDetector, k)]
    if unknown:
        raise TypeError(f"ClimbDetector has no setting {unknown}")
    det = ClimbDetector(**kw)
    for k, v in settings.items():
        setattr(det, k, v)
    return det


def stopped(values: list[float], **kw) -> int | None:
    """The step a trial reading ``values`` (one per step) was stopped at by ``detector(**kw)`` (None: never)."""
    det = detector(**kw)
    return next((s for s, v in enumerate(values) if det.update(s, v).final), None)


def generator_log(gen: str, stream: int, seed: int, run: int, cadence: str, n: int = 20):
    """(curve, rows as written) of run ``run`` of ``synth_<gen>.curves(default_rng([seed, stream]), n)``, logged
    at ``cadence`` as ``benchmarks/detector.py`` logs it."""
    import importlib

    from logsim import CADENCES, log_rows

    curve = importlib.import_module(f"synth_{gen}").curves(np.random.default_rng([seed, stream]), n)[run]
    return curve, log_rows(curve, cadence, np.random.default_rng([seed, run, CADENCES.index(cadence)]))


def c_dev_log(seed: int, run: int, cadence: str):
    """Generator C's development stream (``[seed, 7]``, 20 per family): the C logs the spike rules were built
    on (the benchmark's C stream, ``[seed, 3]``, is held out)."""
    return generator_log("c", 7, seed, run, cadence)


def ab_log(seed: int, run: int, cadence: str, real: bool = False, n: int = 40):
    """(curve, rows as written) of the A+B benchmark's run ``run`` of ``seed`` at ``n`` curves per family (with
    the real tagger curves after A and B when ``real``), logged at ``cadence`` as ``benchmarks/detector.py``
    logs it (the benchmark's own ``--n``: 40; the development runs the newer rules were read on: 20)."""
    import detector as bench
    from logsim import CADENCES, log_rows

    curve = bench.cases(seed, n, real)[run]
    return curve, log_rows(curve, cadence, np.random.default_rng([seed, run, CADENCES.index(cadence)]))


def two_point_jumps(cadence: str) -> dict:
    """On a log written every step, the jump read over the last two points (2 steps), as it was before the rise
    was read over ``jump_steps``: the counterfactuals below showed each rule alone held a log then. Read over
    10 steps, a spike's ramp jumps, and the jump holds those logs as well; at sparser cadences nothing changed."""
    return {"jump_steps": 2} if cadence == "1" else {}


def stop_and_finish(rows, **kw) -> tuple[int | None, str]:
    """The step a trial reading ``rows`` was stopped at by ``detector(**kw)`` (None: never), and its final
    verdict's kind."""
    det = detector(**kw)
    at = next((step for step, value in rows if det.update(step, value).final), None)
    return at, det.finish().kind


@pytest.mark.parametrize("seed", range(3))
def test_spikes_stacked_below_the_jump_bar_never_stop_the_trial(seed):
    # three +30% spikes 30 steps apart on a plateau at 0.8 (each 13-16% of the 1.9 descent, held 20 steps):
    # the level climbs for 90 steps like a ramp, then all three recover
    values = noisy(decay(2000, tau=100), sigma=0.02, seed=seed)
    for k in range(3):
        values = spike(values, 1000 + 30 * k, 0.3, flat=20, tau=30)
    assert stopped_at(values) is None
    assert classify(enumerate(values)).kind == STABLE
    # each spike is under the jump bar, over 10 steps as over 2 (a noisy dip had once made the second cross it over 2
    # points, and the stair test held it too): without the spike gate the slope test stops it
    assert stopped(values, t_spike=0) is not None


def test_a_spike_like_one_this_run_recovered_from_is_waited_out():
    # generator B's spiky family (seed 285, logged every step): an excursion that closed again earlier in
    # the run; the next one, younger than it, is not confirmed on a marginal slope and recovers too. (With the
    # jump read on the median of 5 steps over 10, its slope reaches t 6.04, past the spike gate, at step 1872 and
    # the trial is stopped: the one of B spiky seeds 0-299 every step that is, in the README's known misses; the
    # gate is checked here with the jump read over 2 steps, as it was built)
    import synth_b

    values = [float(v) for v in synth_b.curve(np.random.default_rng(285), "B spiky").values]
    assert stopped(values, **two_point_jumps("1")) is None
    assert stopped(values, recovered_cap=0, **two_point_jumps("1")) is not None


@pytest.mark.parametrize("seed", range(3))
def test_a_climb_after_a_recovered_spike_is_caught_as_fast(seed):
    values, truth = diverging(seed)
    spiky = spike(values, 300, 0.6, flat=30, tau=30)
    det = ClimbDetector()
    for step, value in enumerate(spiky):
        if det.update(step, value).final:
            break
    assert det._recovered > 0  # the spike opened a window that closed again
    v = det.finish()
    assert v.kind == DIVERGED and 0 <= v.detected_at_step - truth < 60
    assert abs(v.detected_at_step - classify(enumerate(values)).detected_at_step) <= 2
    assert abs(v.climb_start_step - truth) <= 50


def test_a_spike_that_hides_the_descent_still_sets_the_window_top():
    # benchmark seed 27, run 278 (generator B spiky, logged every step): a +1000% spike at step ~860 whose
    # spread hides the descent for ~140 steps; the window's top must include it, or its decay back toward
    # the plateau looks like a fresh rise near its top (this run was stopped wrongly at step 1007)
    curve, rows = ab_log(27, 278, "1")
    det, top = ClimbDetector(), -np.inf
    for step, value in rows:
        if step > 1010:
            break
        assert not det.update(step, value).final
        top = max(top, det.level) if det._cross is not None else -np.inf
    assert det._cross is not None and det._wmax >= top
    assert det._wmax > 3 * det.level  # the spike's top, not the level where the descent showed again


@pytest.mark.parametrize(("seed", "run", "cadence"), [(7, 249, "10"), (16, 8, "10"), (29, 103, "10")])
def test_a_spiky_run_s_spikes_count_in_the_noise_the_slope_test_pools(seed, run, cadence):
    # benchmark runs logged every 10 steps (generator B spiky and plain, generator A healthy): spikes
    # stacked within ~100 steps read as a ramp whose t passes 4 against the median noise, which ignores
    # spikes; against the RMS spread of the run's second differences (spikes included) it does not
    curve, rows = ab_log(seed, run, cadence)

    def stops(**kw) -> bool:
        det = ClimbDetector(**kw)
        return any(det.update(step, value).final for step, value in rows)

    assert curve.expect == STABLE
    assert not stops()
    assert stops(spread_steps=float("inf"), fall_sigmas=float("inf"))  # the median's noise alone (no spread)


@pytest.mark.parametrize(("seed", "run"), [(36, 25), (38, 21), (29, 274), (30, 229)])
def test_a_row_back_at_its_base_is_no_climb_whatever_its_median_of_3(seed, run):
    # healthy runs logged every 10 steps (generator A healthy, B spiky, B stair descent): stacked spikes
    # (+40-150%) for 60-150 steps; the median of 3 rows lags their decay by a row, so the medians rise like a
    # ramp while the row itself is already falling back (were stopped at steps 280, 1450, 881, 551); a row 2
    # noise sigmas below its median waits (at 3 sigmas the last two were still stopped)
    curve, rows = ab_log(seed, run, "10")
    det = ClimbDetector()
    assert curve.expect == STABLE
    assert not any(det.update(step, value).final for step, value in rows)
    assert det.finish().kind == STABLE
    det = ClimbDetector(fall_sigmas=float("inf"))
    assert any(det.update(step, value).final for step, value in rows)  # stopped without the rule


def test_a_real_climb_s_row_below_its_median_does_not_delay_a_clear_slope():
    # the reference tagger's bad recipe (real train CE), as benchmark seed 4 writes it every 5 steps: its noisy
    # rows often sit 2 noise sigmas below their median of 3; with a slope far past ``t_spike`` that is noise,
    # not a spike decaying (the gate for every slope held this climb 60 steps longer: 335 -> 395)
    curve, rows = ab_log(4, 641, "5", real=True)
    assert curve.family == "tagger bad recipe"
    det = ClimbDetector()
    v = next((v for step, value in rows if (v := det.update(step, value)).final), None)
    assert v is not None and v.kind == DIVERGED and v.detected_at_step - curve.truth <= 200


@pytest.mark.parametrize(("seed", "run", "cadence"), [(0, 68, "5"), (0, 68, "10"), (1, 70, "10"), (0, 62, "1")])
def test_a_spike_s_trend_is_read_from_its_top_not_from_where_it_crossed_the_jump_bar(seed, run, cadence):
    # generator C's development stream (transient spikes ramping up over 1-8 steps to 4-13x): the jump bar is
    # crossed on the way up, and the trend since the jump counted the rows up the ramp, so a spike decaying
    # over ~300 steps looked flat or rising when the hold ran out and the window's slope (the jump itself)
    # stopped the trial (steps 610, 621, 511, 2547); read from the jump's top, it falls
    curve, rows = c_dev_log(seed, run, cadence)
    det = ClimbDetector()
    assert curve.family == "C transient spikes" and curve.expect == STABLE
    assert not any(det.update(step, value).final for step, value in rows)
    assert det.finish().kind == STABLE
    assert det._jump_top > -np.inf  # the spike registered as a jump


@pytest.mark.parametrize(("seed", "run"), [(0, 77), (1, 67), (2, 74), (2, 79), (0, 164), (0, 171), (1, 178)])
def test_the_window_keeps_the_rows_a_spike_s_spread_hid_the_descent_on(seed, run):
    # generator C's development stream, logged every step: a jump to 5-10x whose spread (the level's mean
    # deviation) hides the descent for up to ~90 steps. The window skipped those rows, so when the descent
    # showed again its slope came from the 2-3 rows before the spike and one row on its decay (run 164: 87
    # steps on, t 7.8) and stopped the trial: healthy runs (transient spikes, at steps 477-2181), or climbs
    # long before they started (climb after spikes: stopped at 411-693, climbs from 1947-2679)
    curve, rows = c_dev_log(seed, run, "1")
    at, kind = stop_and_finish(rows)
    if curve.expect == STABLE:
        assert curve.family == "C transient spikes"
        assert at is None and kind == STABLE
    else:
        assert curve.family == "C climb after spikes"
        assert at is not None and at >= curve.truth and kind == DIVERGED


@pytest.mark.parametrize(("gen", "seed", "run"), [("b", 3, 93), ("c", 2, 67)])
def test_one_row_after_a_lost_chunk_does_not_confirm_a_spike_seen_before_it(gen, seed, run):
    # irregular logs with a chunk lost (gaps of 41 and 263 steps, over the hold and twice the longest of the
    # 9 gaps before): the window saw a spike jump, then one row still inside its decay (or, a mean over the
    # lost chunk, its average), and that row's slope stopped the trial. After such a gap one more row is
    # asked for, and it shows the decay (generator B plain, dev seed 3; generator C transient spikes, its
    # development stream's seed 2)
    curve, rows = ab_log(seed, run, "irregular") if gen == "b" else c_dev_log(seed, run, "irregular")
    assert curve.expect == STABLE
    assert stop_and_finish(rows) == (None, STABLE)


@pytest.mark.parametrize(("seed", "run", "cadence"),
                         [(0, 65, "50"), (0, 75, "50"), (0, 77, "50"), (0, 79, "50"), (1, 68, "50"),
                          (0, 79, "irregular"), (1, 62, "irregular"), (1, 68, "irregular"), (2, 73, "irregular"),
                          (11, 69, "irregular"), (13, 60, "irregular"), (13, 79, "irregular")])
def test_a_rise_between_two_rows_too_far_apart_to_see_a_jump_is_waited_out_as_a_spike(seed, run, cadence):
    # generator C's development stream (transient spikes): every 50 steps, or across an irregular log's gap
    # over ``jump_steps``, a spike's jump falls between two rows, and a cascade of spikes held 3-7x the best for
    # 200-300 steps, as a fast climb holds its level: the trial was stopped (as it still is with the wait off;
    # (0, 77) with the window-top fall test off too: either holds it). The last three jump in a gap of 17-40
    # steps, over two ~8-step intervals: before the wait read gaps up to ``hold`` steps, neither rule saw them
    curve, rows = c_dev_log(seed, run, cadence)
    assert curve.family == "C transient spikes" and curve.expect == STABLE
    assert stop_and_finish(rows) == (None, STABLE)
    assert stop_and_finish(rows, blind_jump=float("inf"), top_sigmas=float("inf"))[0] is not None


@pytest.mark.parametrize(("seed", "run", "by"), [(0, 192, 917), (1, 199, 930), (2, 113, 1201)])
def test_a_blow_up_whose_every_row_jumps_is_not_waited_out_as_a_spike(seed, run, by):
    # generator C's development stream logged every 50 steps: blow-ups (two to nan, at steps 917 and 930) rise
    # ``blind_jump`` of the descent at every row; each row above the last jump's by ``blind_escape``, with no
    # fall between, lifts the wait, so the climb is called before the loss overflows (or, the third, at the
    # step it was called before the wait); without the lift it was called at the nan, or 300 steps later
    curve, rows = c_dev_log(seed, run, "50")
    assert curve.family in ("C nan", "C blow-up")
    at, kind = stop_and_finish(rows)
    assert kind == DIVERGED and at is not None and at <= by
    late, _ = stop_and_finish(rows, blind_escape=float("inf"))
    assert late is None or late > at


@pytest.mark.parametrize("seed", range(3))
def test_a_climb_that_jumps_between_two_rows_and_holds_is_called_once_the_wait_is_over(seed):
    # every 50 steps: the loss falls from 2.7 to 0.8, then at step 1000 returns to 2.5 within 20 steps and
    # holds there. The rise falls between two rows, as a spike's jump does, so the verdict waits; a level held
    # for ``sustain`` (200) steps from that row is called then (a spike would have decayed), not later
    values, _ = diverging(seed, climb_at=1000, dur=20)
    values += [values[-1]] * 600
    rows = [(step, values[step]) for step in range(0, len(values), 50)]
    jumped = next(step for step, v in rows if step > 500 and v > 2.0)
    assert stop_and_finish(rows) == (jumped + 200, DIVERGED)
    # (the wait and the level-held rule are both ``sustain`` long: this pins when, not which)
    assert stop_and_finish(rows, sustain=400) == (jumped + 400, DIVERGED)


@pytest.mark.parametrize(("seed", "run"), [(12, 332), (10, 58), (8, 364)])
def test_a_rise_across_a_lost_chunk_is_not_waited_out_as_a_spike(seed, run):
    # irregular logs of generator B's and A's development seeds (a fast climb, a climb, a climb after a plateau)
    # whose climb rose while a chunk of the log was lost: the rise between the rows either side of the chunk
    # is as often a climb's as a spike's, and the lost-chunk rule already asks for the next row; waiting
    # ``sustain`` more steps for it as for a spike's jump delayed these by 345-610 steps. (A gap up to ``hold``
    # steps is waited out: on held-out C 15 fewer healthy irregular logs stopped, on A+B p90 - gap +0-2; the
    # cases here before, (6, 393), (3, 320), (11, 460), rose across gaps of 17-40 steps, and wait 200-560.)
    curve, rows = ab_log(seed, run, "irregular")
    assert curve.expect == DIVERGED
    at, kind = stop_and_finish(rows)
    assert kind == DIVERGED and at is not None and at >= curve.truth
    assert (at, kind) == stop_and_finish(rows, blind_jump=float("inf"))


@pytest.mark.parametrize(("seed", "run", "cadence"), [(1, 71, "1"), (1, 71, "5"), (1, 71, "irregular"), (2, 125, "ab")])
def test_a_step_up_and_its_hold_are_not_read_as_a_ramp(seed, run, cadence):
    # generator C's development stream, (1, 71): a spike to 1.7x (0.27 -> 0.45) decaying, then a second to 10x
    # risen over ~20 steps (each rise under the jump's bar) and held while it decays slowly; 40 steps on, the
    # line fitted through the rise and the hold had t 4.4-6.5 and the trial was stopped (steps 1309, 1315,
    # 1322). Generator B's spiky run (2, 125), logged irregularly, the same at step 2535. The window's later half
    # does not rise: a step, not a ramp, and it decays before ``sustain`` would call it held
    curve, rows = ab_log(seed, run, "irregular", n=20) if cadence == "ab" else c_dev_log(seed, run, cadence)
    assert curve.expect == STABLE and curve.family in ("C transient spikes", "B spiky")
    assert stop_and_finish(rows, later_t=-float("inf"), **two_point_jumps(cadence))[0] is not None
    assert stop_and_finish(rows) == (None, STABLE)


@pytest.mark.parametrize("seed", range(3))
def test_a_ramp_rises_in_its_later_half_and_is_caught_as_before(seed):
    # a steady climb (and generator C's collapses and blow-ups every step) rises in both halves of its window:
    # the later-half rule does not move its detection
    values, truth = diverging(seed)
    assert stopped(values) == stopped(values, later_t=-float("inf")) <= truth + 60
    for run in (120, 121, 110, 111):
        curve, rows = c_dev_log(seed, run, "1")
        assert curve.family in ("C collapse", "C blow-up")
        assert stop_and_finish(rows) == stop_and_finish(rows, later_t=-float("inf"))


def test_a_stair_climbs_first_step_waits_for_sustain():
    # the price, measured: generator B's stair climb (0, 236) every 10 steps rises in a step and holds it, as a
    # spike does; it is called when ``sustain`` sees the level held (170 steps later than the slope would have)
    curve, rows = ab_log(0, 236, "10", n=20)
    at, kind = stop_and_finish(rows)
    early, _ = stop_and_finish(rows, later_t=-float("inf"))
    assert curve.family == "B stair climb" and kind == DIVERGED
    assert curve.truth <= early < at <= curve.truth + 300


@pytest.mark.parametrize(("seed", "run", "cadence"), [(0, 68, "1"), (1, 63, "5")])
def test_a_second_spike_on_the_first_ones_hold_rose_only_in_its_jumps(seed, run, cadence):
    # generator C's development stream, transient spikes: a spike to 2-4x, held while it decays slowly, then a
    # second, bigger one on it. At the second top the line through the window had t 8-10 (past the spike gate)
    # and its later half rose (the second jump), so the slope test stopped these healthy trials (steps 602 and
    # 1945). Between the jumps the level held or fell: the stretches' common slope is not a climb's
    curve, rows = c_dev_log(seed, run, cadence)
    assert curve.family == "C transient spikes" and curve.expect == STABLE
    assert stop_and_finish(rows) == (None, STABLE)
    assert stop_and_finish(rows, stair_t=-float("inf"), **two_point_jumps(cadence))[0] is not None


def test_a_blow_up_whose_noise_crosses_the_jump_bar_dozens_of_times_is_caught():
    # generator C's development stream (0, 117), a blow-up under correlated noise. Logged every 5 or 10 steps it is
    # stopped 80-110 steps after the truth. Logged every step, its noise crosses the jump bar dozens of times, each
    # restarting the hold: read over 2 steps, at t_sure the stair test was not read and the trial was stopped ~300
    # steps after the truth; read over 10 steps (the same span as every 5 or 10) the hold restarts as often, and
    # the descent test flickers as the climb's lag inflates the level's deviation, so the end-of-run rules call it
    for cadence, within in (("5", 100), ("10", 120)):
        curve, rows = c_dev_log(0, 117, cadence)
        at, kind = stop_and_finish(rows)
        assert curve.family == "C blow-up" and kind == DIVERGED and curve.truth <= at <= curve.truth + within
    curve, rows = c_dev_log(0, 117, "1")
    det = detector(**two_point_jumps("1"))
    at = next((step for step, value in rows if det.update(step, value).final), None)
    assert curve.truth <= at <= curve.truth + 400 and len(det._wjumps) >= 10
    assert stop_and_finish(rows)[1] == DIVERGED


def test_a_fast_climb_whose_top_rises_between_its_jumps_is_caught_as_before():
    # generator B's development seed 1, run 176 (a fast climb, every step): a jump, then a concave rise to a
    # plateau, with noisy jumps on the way up (read over 2 steps). The stretches' common slope is held down by the
    # long flat last one, so the stair test alone waited 256 steps past the truth (step 761); the stretch up the
    # concave top rises by itself (t >= t_min), which no spike's hold does, and the trial is stopped at step 580.
    # Read over 10 steps its noise crosses no jump bar, and it is stopped at step 569
    curve, rows = ab_log(1, 176, "1", n=20)
    assert curve.family == "B fast climb"
    for kw in (two_point_jumps("1"), {}):
        det = detector(**kw)
        at = next((step for step, value in rows if det.update(step, value).final), None)
        assert curve.truth <= at <= curve.truth + 100 and bool(det._wjumps) == bool(kw)


@pytest.mark.parametrize(("seed", "run"), [(0, 125), (1, 149), (6, 153), (8, 131)])
def test_spikes_logged_every_step_jump_as_they_do_every_5_steps(seed, run):
    # generator C's development stream (n=40), transient spikes logged every step, each ramped up over a few steps:
    # read over the last two points (2 steps) the rise never crossed the jump bar, the spike's rise and hold read
    # as a climb, and the trial was stopped (steps 230, 881, 605, 1103); read over ``jump_steps`` as at every cadence
    curve, rows = generator_log("c", 7, seed, run, "1", n=40)
    assert curve.family == "C transient spikes" and curve.expect == STABLE
    assert stop_and_finish(rows) == (None, STABLE)
    assert stop_and_finish(rows, **two_point_jumps("1"))[0] is not None


@pytest.mark.parametrize("cadence", [1, 2, 5])
def test_a_spike_ramped_over_eight_steps_is_a_jump_at_every_cadence(cadence):
    # +80% over 8 steps on a plateau at 0.8 (the jump bar: 15% of the 1.9 descent, 0.28): 0.16 per two steps
    values = noisy(decay(2000, tau=100), sigma=0.02, seed=cadence)
    values = [v * (1 + 0.8 * min(1.0, (t - 999) / 8) * math.exp(-(t - 1000) / 60)) if t >= 1000 else v
              for t, v in enumerate(values)]
    for kw, jumped in (({}, True), ({"jump_steps": 2}, False)):
        det = detector(**kw)
        for step in range(0, 1030, cadence):
            det.update(step, values[step])
        assert (1000 <= det._jump_at <= 1010) == jumped
