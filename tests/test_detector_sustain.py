"""Healthy runs whose spikes hold the level up for longer than ``sustain``: the fall test (``climb_spikes.py``).

The ``sustain`` rule calls a level held ``rise`` of the way back for ``sustain`` steps a climb, unless it
is still falling (``_still_falling``). A long-lived spike (generator C's go to 1.5-10x and decay over up to
300 steps) stays that high for longer, but falls all along: from the window's opening, over its last
``fall_steps``, from the last jump's top, or from the window's top once the last row is well below it (a top
older than the last ``fall_steps`` while they still fall fast enough to get back to the best). A level held
does none of these, and is called. Each case is a development log that once stopped a healthy trial (or,
before a real climb, stopped it on a spike), beside the climbs the same rules must still catch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bisector.detector import DIVERGED, STABLE, classify

from .test_detector import decay, noisy, spike
from .test_detector_spikes import ab_log, c_dev_log, detector, generator_log, stop_and_finish, two_point_jumps


def stops(rows, **kw) -> bool:
    """Whether a trial reading ``rows`` would be stopped (a final streaming verdict) by ``detector(**kw)``."""
    det = detector(**kw)
    return any(det.update(step, value).final for step, value in rows)


def runs_through(seed: int, run: int, cadence: str):
    """Generator C's development log of a healthy run with transient spikes: never stopped, ``stable`` at the
    end. Its rows, for the counterfactual."""
    curve, rows = c_dev_log(seed, run, cadence)
    assert curve.family == "C transient spikes" and curve.expect == STABLE
    assert stop_and_finish(rows) == (None, STABLE)
    return rows


def caught_at_the_climb(seed: int, run: int, within: int):
    """Generator C's development log (every 50 steps) of a climb after spikes: caught, not on a spike before
    the climb, at most ``within`` steps after it started. (curve, rows), for the counterfactual."""
    curve, rows = c_dev_log(seed, run, "50")
    at, kind = stop_and_finish(rows)
    assert curve.family == "C climb after spikes" and kind == DIVERGED
    assert curve.truth <= at <= curve.truth + within
    return curve, rows


@pytest.mark.parametrize("cadence", ["10", "50"])
def test_a_spike_that_decayed_back_leaves_no_sustain_clock_for_the_next_one(cadence):
    # benchmark seed 22, run 253 (generator B spiky, logged every 10 and every 50 steps): a +400% spike at step
    # ~3980 decays over 170 steps to a fifth of the way back, still above ``rise``, so the 200-step ``sustain``
    # clock kept running through the decay; the next spike's first row (steps 4181, 4200) found it run down,
    # above the trailing level, and stopped the trial. A fall of ``refall`` of the rise from its top restarts it
    curve, rows = ab_log(22, 253, cadence)

    assert curve.expect == STABLE
    assert not stops(rows)
    # the clock never restarted: stopped as before (every 50 steps the decay test below waits it out too)
    assert stops(rows, refall=float("inf"), t_fall=float("inf"))


@pytest.mark.parametrize("every", [1, 10])
@pytest.mark.parametrize("seed", range(3))
def test_a_long_lived_spike_on_a_smaller_one_is_waited_out_while_it_decays(seed, every):
    # a jump to 2x, then 120 steps later to 5x, each decaying over 300 steps (generator C's transient spikes):
    # the first starts the ``sustain`` clock and the second holds the level ``rise`` of the way back past it,
    # never falling ``refall`` of its rise from its top; the level was read as held and the trial stopped
    # (step 1521 logged every step, 1530 every 10). Over its last 100 steps it falls significantly: a decay
    values = noisy(decay(3500, tau=100), sigma=0.03, seed=seed)
    values = spike(spike(values, 1300, 1.0, flat=3, tau=300), 1420, 4.0, flat=3, tau=300)
    rows = [(step, value) for step, value in enumerate(values) if step % every == 0]

    assert not stops(rows)
    assert classify(rows).kind == STABLE
    assert stops(rows, t_fall=float("inf"))  # without the decay test: stopped as before


@pytest.mark.parametrize(("seed", "run", "cadence"), [(0, 72, "50"), (1, 64, "50"), (0, 77, "5"), (1, 68, "10")])
def test_a_spike_still_decaying_after_the_sustain_time_does_not_stop_the_trial(seed, run, cadence):
    # generator C's development stream (``synth_c.curves(default_rng([seed, 7]), 20)``, transient spikes): jumps
    # to 3.7-8x that decay over ~300 steps stay ``rise`` of the way back for 200+ steps; every 50 steps the
    # rows fall one after another (6.3, 4.7, 4.1, 3.9, 3.0 times the best) and the trial was stopped at the
    # fifth. A level falling significantly over its last max(100 steps, 4 intervals) is not a level held
    rows = runs_through(seed, run, cadence)
    assert classify(rows).kind == STABLE
    assert stops(rows, t_fall=float("inf"))


@pytest.mark.parametrize(("seed", "run", "cadence"),
                         [(1, 64, "5"), (1, 64, "10"), (1, 64, "irregular"), (0, 79, "10"), (2, 66, "50")])
def test_a_level_that_fell_since_the_window_opened_is_not_a_level_held(seed, run, cadence):
    # generator C's development stream (transient spikes, some stacked): spikes open the window and decay
    # slowly enough that their last 100 steps (5 rows every 50) do not fall significantly, so the level read
    # as held ``rise`` of the way back for ``sustain`` steps and the trial was stopped; since the window
    # opened, it falls significantly
    runs_through(seed, run, cadence)


@pytest.mark.parametrize(("seed", "run", "cadence"), [(0, 79, "5"), (1, 67, "5"), (1, 72, "10")])
def test_a_spike_on_a_decaying_one_is_read_falling_from_its_own_top(seed, run, cadence):
    # generator C's development stream (transient spikes): a second jump (to 4-6x the best) lands on the first
    # spike's decay, 200-300 steps after the window opened; 100 steps on, the last 100 steps still held the rows
    # up the jump, so a fall from the new top (200 -> 130 on (0, 79)) read as flat and ``sustain`` stopped the
    # trial (steps 2185, 835, 2280). Read from that top, it falls
    runs_through(seed, run, cadence)


def test_no_level_is_called_held_within_half_the_sustain_time_of_a_jump():
    # generator C's development stream, run (1, 72) every 5 steps: a spike to 6x at step 2000, decaying, then a
    # second to 8x at step 2165; at 2210, 45 steps after that jump, the level had been ``rise`` of the way back
    # for 210 steps and the slope test's ``sustain`` branch stopped the trial, before the new spike could show
    # its decay (the ``sustain`` rule waits half the sustain time after a jump; this branch did not)
    curve, rows = c_dev_log(1, 72, "5")
    at, kind = stop_and_finish(rows)
    assert curve.expect == STABLE
    assert (at, kind) == (None, STABLE)
    assert stop_and_finish(rows, sustain=10_000)[0] is None  # (no slope confirms it either)


@pytest.mark.parametrize(("seed", "run"), [(0, 171), (2, 173), (2, 175)])
def test_a_spike_risen_over_two_sparse_rows_is_read_falling_from_the_second(seed, run):
    # generator C's development stream, climbs after spikes, every 50 steps: a spike's rise split over two rows
    # (the first partway up, the second at its top) escapes the blind-jump wait as a blow-up would, and 200
    # steps on ``sustain`` read its decay over the last 200 steps, the row before the top among them, as flat:
    # the trial was stopped on the spike (steps 551, 600, 1000), long before the climb. Read from the second
    # row, the decay falls, and the climb itself is caught
    caught_at_the_climb(seed, run, 400)


@pytest.mark.parametrize(("seed", "run", "cadence"), [(2, 78, "irregular"), (0, 63, "50")])
def test_a_level_held_is_not_read_from_fewer_than_3_rows(seed, run, cadence):
    # generator C's development stream, transient spikes: logged irregularly, (2, 78)'s rows fall 10.5 -> 6.7
    # -> 6.0 down a spike's decay, then a lost chunk of 180 steps, then one row back at 10.5 inside the next
    # spike; ``sustain`` (the level ``rise`` of the way back for 237 steps) read its fall test over the last 100
    # steps, one row, as "not falling" and stopped the trial on that row. Every 50 steps (0, 63)'s next spike
    # rises over two rows (27 -> 60 -> 87), and its fall test, read from the second (the top the blind-jump
    # wait lets go at), had that row alone. Fewer than 3 rows cannot tell a fall, so the rule waits for them
    runs_through(seed, run, cadence)


def test_a_climb_after_a_spike_read_over_3_rows_is_caught_at_the_climb():
    # (2, 160) of generator C's development stream, a climb after spikes, every 50 steps: a spike risen over two
    # rows (0.30 -> 0.60 -> 0.92) stopped the trial on the second, at step 1301, 840 steps before the climb (a
    # false alarm); now its decay is seen, and the climb that starts at 2138 is caught 163 steps on
    caught_at_the_climb(2, 160, 250)


@pytest.mark.parametrize(("seed", "run"), [(1, 62), (2, 78)])
def test_a_spike_risen_over_several_sparse_rows_is_read_falling_from_the_window_top(seed, run):
    # generator C's development stream, transient spikes, every 50 steps: a spike risen over two or three rows,
    # each under the blind-jump bar (0.31 -> 0.42 -> 0.60 on (1, 62)), then decaying 0.60 -> 0.53 -> 0.51 -> 0.48;
    # 200 steps on, ``sustain``'s fall test over the last 200 steps began with a row on the way up, read the decay
    # as flat and stopped the trial (steps 1450, 1500). The last row is many sigmas below the window's top, so the
    # fall is read from that top
    rows = runs_through(seed, run, "50")
    assert stop_and_finish(rows, top_sigmas=float("inf"))[0] is not None


@pytest.mark.parametrize(("seed", "run"), [(0, 169), (0, 179)])
def test_a_climb_after_a_spike_risen_over_sparse_rows_is_caught_at_the_climb(seed, run):
    # the same, before a real climb (generator C's climbs after spikes, every 50 steps): the spike stopped the
    # trial at steps 1050 and 850, 1500-2600 steps before the climb; now the climb itself is caught
    curve, rows = caught_at_the_climb(seed, run, 250)
    assert stop_and_finish(rows, top_sigmas=float("inf"))[0] < curve.truth


@pytest.mark.parametrize(("seed", "run"), [(0, 228), (3, 229), (1, 230)])
def test_a_level_held_near_its_top_is_read_over_the_whole_span(seed, run):
    # generator B's development seeds, stair climbs every 50 steps: a step up held as a plateau, whose highest
    # row is a noise high, often the newest row. Read from that row whatever the margin, the fall test had
    # fewer than 3 rows or a fall of noise, and ``sustain`` waited 50-250 steps more (a margin of 2 sigmas
    # still held (1, 230) 50 steps); within ``top_sigmas`` of its top a level is read over the whole span
    curve, rows = ab_log(seed, run, "50", n=20)
    at, kind = stop_and_finish(rows)
    assert curve.family == "B stair climb" and kind == DIVERGED and curve.truth <= at <= curve.truth + 300
    assert stop_and_finish(rows, top_sigmas=float("inf")) == (at, kind)
    assert stop_and_finish(rows, top_sigmas=-1.0)[0] >= at + 50


def test_a_decay_seen_over_the_last_steps_is_not_hidden_by_a_bad_batch_at_the_window_top():
    # generator C's development stream at 40 a family (``[0, 7]``, run 129), transient spikes logged every step:
    # the third of three stacked spikes decays from step 990 (0.019 -> 0.013 by 1088, falling at every step), but
    # two bad batches side by side at 1082 (0.028 and 0.04) made the window's top; the fall test then read from
    # that top alone, 6 rows, found no significant fall and stopped the trial at 1088. The last 100 steps fall
    # significantly whatever the top, so they are read too
    curve, rows = generator_log("c", 7, 0, 129, "1", n=40)
    assert curve.family == "C transient spikes" and curve.expect == STABLE
    assert stop_and_finish(rows) == (None, STABLE)


@pytest.mark.parametrize(("seed", "run"), [(4, 144), (8, 155)])
def test_a_spike_whose_top_is_older_than_the_last_steps_read_is_read_falling_from_it(seed, run):
    # generator C's development stream at 40 a family, transient spikes logged every 50 steps: a spike's top
    # 200-250 steps back (15.8 at step 1750 on (8, 155), then 12.0, 9.4, 11.9, 9.2, 6.9, 8.7); its last 200
    # steps (5 rows) fall, but not significantly, and the fall test read the top only when it lay among them, so
    # the level read as held and ``sustain`` stopped the trial (steps 1601, 2050). The last row is
    # ``top_sigmas`` below the window's top, and the last rows still fall at a rate that would get back to the
    # best: read from the top
    curve, rows = generator_log("c", 7, seed, run, "50", n=40)
    assert curve.family == "C transient spikes" and curve.expect == STABLE
    assert stop_and_finish(rows) == (None, STABLE)
    assert stop_and_finish(rows, top_sigmas=float("inf"))[0] is not None


@pytest.mark.parametrize(("seed", "run", "cadence", "within", "held"),
                         [(25, 320, "1", 1100, 1650), (41, 57, "5", 1200, 1700), (41, 45, "50", 1450, 1600),
                          (36, 66, "50", 1700, 10_000)])
def test_a_climb_whose_plateau_began_with_a_spike_is_not_held_after_the_spike_levelled_out(
        seed, run, cadence, within, held):
    # A+B development logs (fast climbs, climbs back over 100-300 steps): the climb's top is a spike on its
    # plateau, which decays within 100-200 steps and levels out. Read from that top whatever the last steps do
    # (``level_se`` minus infinity), the plateau's rows fell significantly for hundreds of steps (caught at 1692,
    # 1751 and 1600; (36, 66) never while streaming); its last ``fall_steps`` fall, if at all, too slowly to get
    # back to the best within ``return_steps``, so the old top is not read and the climb is caught as before
    curve, rows = ab_log(seed, run, cadence, n=40)
    assert curve.expect == DIVERGED
    at, kind = stop_and_finish(rows)
    assert kind == DIVERGED and curve.truth <= at <= within
    held_at = stop_and_finish(rows, level_se=-float("inf"))[0]
    assert held_at is None or held_at >= held


def test_a_climb_with_a_decaying_spike_on_its_plateau_is_caught_once_the_decay_slows():
    # a review's climb (every 50 steps): a descent, a climb at step 1000 to a plateau 0.62 above the 0.8 floor, and
    # a spike of 3x that height at 1300 decaying with an e-fold of ~200 steps, Student-t noise. Its last 200 steps
    # fall with t -1.5 at step 1651; at that slope itself they would get back to the best within ``return_steps``,
    # the spike's top was read and the trial ran to its end unstopped. Half an error less steep, they would not
    rng = np.random.default_rng([2, 17, 11])
    t = np.arange(3000, dtype=float)
    height = rng.uniform(0.2, 0.6) * 1.9
    clean = 0.8 + 1.9 * np.exp(-t / 80) + height * np.clip((t - 1000) / 30, 0, 1)
    clean += np.where(t >= 1300, 3.0 * height * np.exp(-(t - 1300) / rng.uniform(20, 250)), 0)
    values = clean * np.maximum(0.05, 1 + rng.choice([0.02, 0.05, 0.1]) * rng.standard_t(3, 3000) / math.sqrt(3))
    rows = [(int(s), float(values[s - 1])) for s in range(1, 3001, 50)]
    assert stop_and_finish(rows) == (1651, DIVERGED)
    assert stop_and_finish(rows, level_se=0.0) == (None, DIVERGED)


@pytest.mark.parametrize("cadence", ["1", "5", "10", "50"])
def test_a_jump_to_a_plateau_that_recovers_slowly_stops_the_trial_at_every_cadence(cadence):
    # generator D's development stream, seed 0 run 164: a jump at step ~1600 to a plateau far above the start,
    # which then gives back a fraction of its height over hundreds of steps. That fall is significant for as long
    # as it is watched, so every step, every 5 and every 10 steps the fall test held the verdict to the end of the
    # run (step 4300) while every 50 steps stopped the trial at 1851: at its fastest plausible rate the fall
    # would need thousands of steps to get back to the best, which no spike's decay does
    curve, rows = generator_log("d", 11, 0, 164, cadence)  # (D's development stream; its benchmark seeds are held out)
    at, kind = stop_and_finish(rows)
    assert curve.family == "D jump to plateau" and kind == DIVERGED
    assert curve.truth <= at <= curve.truth + 250
    before = stop_and_finish(rows, return_steps=float("inf"))[0]  # every significant fall a spike's decay
    assert (before is None) == (cadence != "50")


def test_a_spike_cascade_that_falls_slowly_is_still_a_spike_at_the_default_return():
    # the price's margin: generator C's development seed 5, run 79 (transient spikes, logged irregularly), a
    # spike whose decay a new spike and a lost chunk slow to a return of ~800 steps at the bound; a return of
    # 800 steps would have stopped it at step 1166, the default of 1000 lets it run through
    rows = runs_through(5, 79, "irregular")
    assert stop_and_finish(rows, return_steps=800.0)[0] == 1166


@pytest.mark.parametrize(("seed", "run", "cadence"), [(91, 151, "1"), (91, 151, "irregular"), (141, 138, "10")])
def test_a_cascade_of_spikes_that_falls_slowly_on_the_whole_is_not_a_level_settling(seed, run, cadence):
    # generator C's benchmark stream (held-out seeds 91 and 141, read for this rule): 4-6 transient spikes in a
    # row, each decaying most of the way back before the next. Over the whole window the level falls slowly, as
    # a plateau's partial recovery does, and the slow-fall rule alone stopped these healthy trials at steps 2440,
    # 2453 and 1731; the level once fell ``refill`` of its height from its top, so its fall is a spike's
    curve, rows = generator_log("c", 3, seed, run, cadence, n=40)
    assert curve.family == "C transient spikes" and curve.expect == STABLE
    assert stop_and_finish(rows) == (None, STABLE)
    assert stop_and_finish(rows, refill=float("inf"), **two_point_jumps(cadence))[0] is not None
