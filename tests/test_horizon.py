"""Adaptive horizon: a search trial stable well past the step where bad failed is called stable early."""

from __future__ import annotations

from bisector.trial import TrialRequest, run_local, trial_key


def _req(**kw):
    return TrialRequest("t", "tests.fake_runner", {"runner": "tests.fake_runner", "steps": 600}, **kw)


def test_a_stable_trial_stops_at_stable_after_and_says_so():
    result, records = run_local(_req(stable_after=240))
    assert result["kind"] == "stable" and result["steps_run"] == 240 and result["stable_after"] == 240
    assert records[-1]["step"] == 240


def test_full_horizon_without_stable_after_or_early_stop():
    assert run_local(_req())[0]["steps_run"] == 600
    assert run_local(_req(stable_after=240, early_stop=False))[0]["steps_run"] == 600


def test_the_cut_is_part_of_the_trial_key():
    recipe = {"runner": "tests.fake_runner", "steps": 600}
    assert trial_key("fake", "1", recipe) != trial_key("fake", "1", recipe, {"stable_after": 240})


def test_a_multi_task_trial_runs_its_whole_horizon_because_stagnation_is_judged_at_the_end():
    """Cut at 240 steps, the task that learns from step 300 on would read as starved (``stagnant``)."""
    recipe = {"runner": "tests.fake_runner", "steps": 600, "late_task": True}
    result, _ = run_local(TrialRequest("t", "tests.fake_runner", recipe, stable_after=240))
    assert result["steps_run"] == 600 and "stable_after" not in result
    assert result["kind"] == "stable" and result["tasks"]["loss_late"] > 0.4
    cut, _ = run_local(TrialRequest("t", "tests.fake_runner", {**recipe, "steps": 240}))
    assert cut["kind"] == "stagnant"  # what the cut would have said
