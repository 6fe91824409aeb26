"""A budget stop names the best guess so far, with its confidence, never as proven (simulated oracle, fake loop)."""

from __future__ import annotations

import math

import pytest

from bisector import campaign
from bisector import simulate as S
from bisector.ladder import Ladder
from bisector.posterior import best_guess
from bisector.scheduler import Resources
from bisector.strategy_registry import make
from bisector.tracker import Callback
from bisector.verdicts import Outcome, Result
from bisector.views import mlflow_ui
from bisector.views.markdown import ladder_md
from bisector.views.terminal import Progress

from .test_campaign_loop import BAD, GOOD, FakeSched, FakeTracker, _and, _run, _single


@pytest.mark.parametrize("strategy", ["auto", "split"])
def test_one_culprit_among_16_is_the_best_guess_after_log2_n_plus_2_trials(strategy):
    """Endpoints and ceil(log2 N) halvings point at the culprit before the lone application and the revert prove
    it: a campaign stopped there names it, for every placement, as not finished and not proven."""
    n = 16
    budget = math.ceil(math.log2(n)) + 2
    for c in range(n):
        run = S.drive(make(strategy, S.knobs(n), 1), S.Oracle([frozenset({f"k{c:02d}"})]), max_trials=budget)
        res = run.result
        assert run.trials == budget and res.result is Result.NOT_FINISHED
        assert [k.name for k in res.culprits] == [f"k{c:02d}"] and res.structure == "single"
        assert res.explanation.startswith(f"best guess: k{c:02d} alone breaks training (confidence ")
        assert res.explanation.endswith("%, not proven)")
        assert 0.05 < res.confidence < 0.95 and res.knob_confidence[f"k{c:02d}"] >= res.confidence
        full = S.drive(make(strategy, S.knobs(n), 1), S.Oracle([frozenset({f"k{c:02d}"})]))
        assert full.result.result is Result.CULPRITS and full.result.confidence > res.confidence  # proof pays


def test_the_best_guess_is_the_answer_once_done_and_nothing_before_a_failure():
    s = make("auto", S.knobs(8), 1)
    run = S.drive(s, S.Oracle([frozenset({"k02", "k05"})]))
    assert s.done and s.guess() == [frozenset({"k02", "k05"})] == [frozenset(k.name for k in g)
                                                                   for g in run.result.groups]
    early = S.drive(make("auto", S.knobs(8), 1), S.Oracle([frozenset({"k02"})]), max_trials=1)
    assert early.result.result is Result.NOT_FINISHED and early.result.culprits == []  # only good ran: no guess
    assert best_guess(["a", "b"], {frozenset(): [Outcome.PASS]}) == []


def test_knobs_no_trial_told_apart_are_a_low_confidence_guess():
    """After the endpoints alone every knob is as likely: one is named, and its confidence says so."""
    run = S.drive(make("split", S.knobs(16), 1), S.Oracle([frozenset({"k09"})]), max_trials=2)
    assert run.result.result is Result.NOT_FINISHED and len(run.result.culprits) == 1
    assert run.result.confidence < 0.05


def test_votes_against_the_guess_pick_the_structure_that_explains_them():
    votes = {frozenset(): [Outcome.PASS], frozenset("abcd"): [Outcome.FAIL], frozenset("ab"): [Outcome.PASS],
             frozenset("cd"): [Outcome.PASS], frozenset("ac"): [Outcome.FAIL]}
    assert best_guess(list("abcd"), votes) == [frozenset("ac")]  # only a and c together: an AND pair
    votes[frozenset("a")] = [Outcome.FAIL]
    votes[frozenset("ab")] = [Outcome.FAIL]
    assert best_guess(list("abcd"), votes) == [frozenset("a")]  # ab's pass was the flip


def test_a_budget_stop_shows_the_best_guess_in_the_ladder_json_markdown_and_terminal():
    ladder = _run(_single, strategy="split", max_trials=5, resources=Resources(max_concurrent=1))
    assert [r.name for r in ladder.rungs][-1] == "apply model.phrase_priors" and len(ladder.rungs) == 5
    out = campaign.Outcome(ladder, None, None, 0.0)
    assert out.exit_code == campaign.EXIT_NOT_FINISHED == 3 and ladder.result is Result.NOT_FINISHED
    js = out.to_json()
    assert js["result"] == "not_finished" and js["not_finished"] == "budget reached (--max-trials 5)"
    assert [c["path"] for c in js["culprits"]] == ["model.crf_reduction"] and js["structure"] == "single"
    assert js["groups"] == [["model.crf_reduction"]] and 0 < js["confidence"] < 0.95
    assert js["culprits"][0]["confidence"] == js["knob_confidence"]["model.crf_reduction"] >= js["confidence"]
    conf = f"{js['confidence']:.0%}"
    said = (f"budget reached (--max-trials 5); best guess: model.crf_reduction alone breaks training "
            f"(confidence {conf}, not proven)")
    line = ladder.culprit_line()
    assert line.startswith(f"Not finished: {said}. Tried 5 trials: good (stable), bad (diverged)")
    assert Ladder.from_json(js).culprit_line() == line
    assert f"Not finished: {said}." in ladder_md(ladder)
    assert mlflow_ui.found(ladder) == "not finished, best guess model.crf_reduction"
    assert mlflow_ui.headline(ladder).startswith("Not finished: budget reached")
    heard = []
    progress = Progress()
    progress._say = heard.append
    progress.on_campaign_end(ladder, True)
    assert heard == [f"not finished: {said}"]


def test_a_budget_stop_after_lone_reverts_names_what_they_showed():
    """oat's lone reverts: the revert that fixed bad is the guess (it used to be the only partial answer)."""
    ladder = _run(_and, strategy="oat", max_trials=3, resources=Resources(max_concurrent=1))
    assert [r.name for r in ladder.rungs] == ["good", "bad", "revert data.corpus"]
    assert ladder.result is Result.NOT_FINISHED and [k.name for k in ladder.culprits] == ["data.corpus"]
    assert "best guess: data.corpus alone breaks training" in ladder.culprit_line()


def test_an_interrupt_leaves_the_best_guess_on_the_recorded_ladder(tmp_path, monkeypatch):
    """Ctrl-C (or SIGTERM) after five trials: the ladder the tracker records names the best guess so far."""
    class Sched(FakeSched):
        def __init__(self, *args):
            super().__init__(_single, capacity=1)
            self.polls = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def poll(self, timeout):
            self.polls += 1
            if self.polls == 6:
                raise KeyboardInterrupt
            return super().poll(timeout)

    class Tracker(FakeTracker, Callback):
        parent_run_id = display_uri = None

        def __init__(self, *args):
            super().__init__()
            self.curves["good"] = [(1, 2.0)]
            self.ended = []

        def on_campaign_end(self, ladder, finished):
            self.ended.append((ladder, finished))

    trackers = []
    monkeypatch.setattr(campaign, "RayScheduler", Sched)
    monkeypatch.setattr(campaign, "MlflowTracker", lambda *a: trackers.append(Tracker()) or trackers[-1])
    with pytest.raises(KeyboardInterrupt):
        campaign.run(GOOD, BAD, campaign.Options(probe=False, strategy="split", workdir=str(tmp_path),
                                                 resources=Resources(max_concurrent=1)))
    ((ladder, finished),) = trackers[0].ended
    assert not finished and len(ladder.rungs) == 5 and ladder.result is Result.NOT_FINISHED
    assert ladder.not_finished.startswith("interrupted")
    assert [k.name for k in ladder.culprits] == ["model.crf_reduction"]
    assert "; best guess: model.crf_reduction alone breaks training (confidence " in ladder.culprit_line()
