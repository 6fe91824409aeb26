"""bisector.detector on hand-built curves (math/random with fixed seeds)."""

from __future__ import annotations

import math
import random

import pytest

from bisector.detector import DIVERGED, NAN, RUNNING, STABLE, ClimbDetector, Verdict, classify


def curve(n: int, *, seed: int = 0, noise: float = 0.0, climb_at: int | None = None,
          spikes: tuple[int, ...] = (), floor: float = 1.0, amp: float = 1.0, tau: float = 100.0):
    """floor + amp*exp(-s/tau), optionally climbing 1.5*amp over 200 steps from
    ``climb_at``, with +50% spikes of 20 steps, times (1 + noise*N(0,1))."""
    rng = random.Random(seed)
    points = []
    for s in range(1, n + 1):
        value = floor + amp * math.exp(-s / tau)
        if climb_at is not None and s > climb_at:
            value += 1.5 * amp * min(1.0, (s - climb_at) / 200)
        if any(a <= s < a + 20 for a in spikes):
            value *= 1.5
        points.append((s, value * (1 + noise * rng.gauss(0, 1))))
    return points


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_descent_then_sustained_climb_diverges(seed):
    climb_at, n = 500, 1000
    v = classify(curve(n, seed=seed, noise=0.02, climb_at=climb_at))
    assert v.kind == DIVERGED
    assert v.failed and v.final
    assert abs(v.climb_start_step - climb_at) <= 60
    assert climb_at < v.detected_at_step < n
    assert v.climb_start_step < v.detected_at_step
    assert v.points == v.detected_at_step  # stopped at the detection, not at the end
    assert abs(v.best_step - climb_at) <= 30
    assert v.best_value == pytest.approx(1.0, abs=0.03)
    assert v.start_value == pytest.approx(1.95, abs=0.05)
    assert v.severity >= 0.25


def test_noiseless_climb_exact_values():
    v = classify(curve(1000, climb_at=500))
    assert v.kind == DIVERGED
    assert v.best_step == 500
    # regression values for the default parameters: the EMA (alpha 0.05) lags
    # ~20 steps and severity 0.1 is reached ~28 steps into the climb; then 40
    # points held at severity >= 0.25
    assert v.climb_start_step == 528
    assert v.detected_at_step == 589
    assert v.best_value == pytest.approx(1.0083, abs=1e-4)
    assert v.start_value == pytest.approx(1.9469, abs=1e-4)


def test_streaming_matches_classify():
    points = curve(1000, seed=3, noise=0.02, climb_at=500)
    det = ClimbDetector()
    seen = []
    for step, value in points:
        seen.append(det.update(step, value).kind)
        if seen[-1] != RUNNING:
            break
    assert seen[-1] == DIVERGED
    assert set(seen[:-1]) == {RUNNING}
    assert det.finish() == classify(points)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_healthy_decay_is_stable(seed):
    v = classify(curve(1200, seed=seed, noise=0.05))
    assert v.kind == STABLE
    assert not v.failed and v.final
    assert v.climb_start_step is None and v.detected_at_step is None
    assert v.points == 1200
    assert v.severity < 0.1
    assert v.best_value == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_transient_spikes_are_stable(seed):
    points = curve(1200, seed=seed, noise=0.05, spikes=(400, 700, 1000))
    v = classify(points)
    assert v.kind == STABLE
    assert v.points == 1200
    # the spikes are big: a detector that does not insist on a held climb fires on them
    assert classify(points, ClimbDetector(hold=5)).kind == DIVERGED


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_value_is_nan_immediately(bad):
    points = curve(300, seed=0, noise=0.02)
    points[56] = (57, bad)
    det = ClimbDetector()
    for step, value in points[:56]:
        assert det.update(step, value).kind == RUNNING
    v = det.update(57, bad)
    assert v.kind == NAN and v.failed
    assert v.detected_at_step == 57
    assert v.climb_start_step is None
    assert v.points == 56  # the non-finite point is not counted
    assert classify(points).kind == NAN
    assert classify(points).detected_at_step == 57


def test_nan_on_first_point():
    v = classify([(1, float("nan")), (2, 1.0)])
    assert v.kind == NAN and v.detected_at_step == 1 and v.points == 0
    assert v.start_value is None and v.best_value is None


def test_flat_curve_is_not_diverged():
    rng = random.Random(0)
    v = classify([(s, 1.0 * (1 + 0.05 * rng.gauss(0, 1))) for s in range(1, 1001)])
    assert v.kind == STABLE
    assert v.detected_at_step is None


def test_flat_then_rising_without_descent_is_not_diverged():
    rng = random.Random(1)
    points = [(s, (1 + 0.05 * rng.gauss(0, 1)) + (0.0 if s < 600 else 2 * (s - 600) / 300)) for s in range(1, 1001)]
    v = classify(points)
    assert v.kind != DIVERGED
    assert v.kind == STABLE


def test_verdict_is_final_after_nan():
    det = ClimbDetector()
    for step, value in curve(100):
        det.update(step, value)
    first = det.update(101, float("nan"))
    for step, value in curve(1000, climb_at=10):
        assert det.update(step + 101, value) == first
    assert det.finish() == first
    assert det.finish().kind == NAN


def test_verdict_is_final_after_divergence():
    points = curve(1000, climb_at=500)
    det = ClimbDetector()
    verdict = Verdict()
    i = 0
    while not verdict.final:
        verdict = det.update(*points[i])
        i += 1
    assert verdict.kind == DIVERGED
    for step, value in points[i:]:
        assert det.update(step, value) == verdict
    assert det.update(10_000, float("nan")) == verdict
    assert det.finish() == verdict


def test_finish_is_idempotent_and_stops_updates():
    det = ClimbDetector()
    for step, value in curve(200):
        det.update(step, value)
    stable = det.finish()
    assert stable.kind == STABLE and stable.points == 200
    assert det.update(201, float("nan")) == stable
    assert det.finish() == stable


def test_short_curve_is_stable_with_no_best():
    v = classify([(1, 2.0), (2, 1.9), (3, 1.8)])
    assert v.kind == STABLE
    assert v.best_step is None and v.best_value is None
    assert v.start_value == pytest.approx(1.9)
    assert v.points == 3
