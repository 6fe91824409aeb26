"""The campaign loop without Ray or MLflow: a fake scheduler judges each recipe with a known culprit structure."""

from __future__ import annotations

from pathlib import Path

import pytest

from bisector import campaign
from bisector.verdicts import Kind, Result

ROOT = Path(__file__).resolve().parents[1]
GOOD, BAD = str(ROOT / "recipes/tagger/good.yaml"), str(ROOT / "recipes/tagger/bad.yaml")


class FakeTracker:
    tracking_uri = "fake://"

    def __init__(self):
        self.curves = {}

    def find_reusable(self, key):
        return None

    def run_id(self, name):
        return None

    def log_recipe(self, name, text):
        pass


class FakeSched:
    """Runs every submitted trial at once; ``judge(recipe)`` gives (verdict, best loss)."""

    def __init__(self, judge, capacity=2):
        self.judge, self.capacity, self.started, self.queue = judge, capacity, True, []

    @property
    def running(self):
        return len(self.queue)

    def has_room(self):
        return self.running < self.capacity

    def submit(self, req):
        self.queue.append(req)

    def cancel_all(self):
        self.queue = []

    def poll(self, timeout):
        events = []
        for req in self.queue:
            kind, best, *at = self.judge(req.recipe)  # optionally the step a failure is detected at
            failed = kind != Kind.STABLE
            step = (at or [200])[0]
            events.append((req.name, {"result": {
                "name": req.name, "kind": str(kind), "best_value": best, "steps_run": step if failed else 1200,
                "horizon": 1200, "wall_s": 1.0, "detected_at_step": step if failed else None}}))
        self.queue = []
        return events


def _run(judge, **opts):
    from bisector.scheduler import Resources

    opts.setdefault("resources", Resources(max_concurrent=2))  # the plan follows the slots, not the CPUs here
    p = campaign.plan(GOOD, BAD)
    tracker = FakeTracker()
    tracker.curves["good"] = [(1, 2.0)]
    c = campaign._Campaign(p, campaign.Options(probe=False, **opts), tracker, hooks=[])
    c.loop(FakeSched(judge))
    c._answer()
    return c.ladder


def _or(recipe):  # the summed CRF loss breaks training alone, and so does the hashed tokenizer
    fails = recipe["model"]["crf_reduction"] == "sum" or recipe["data"]["tokenizer"]["scheme"] == "hash"
    return (Kind.DIVERGED, 0.5) if fails else (Kind.STABLE, 0.3)


def _and(recipe):
    fails = recipe["model"]["crf_reduction"] == "sum" and recipe["data"]["corpus"] == "v2"
    return (Kind.DIVERGED, 0.5) if fails else (Kind.STABLE, 0.3)


@pytest.mark.parametrize("strategy", ["auto", "dd", "split"])
def test_an_or_pair_is_named_with_its_structure(strategy):
    ladder = _run(_or, strategy=strategy)
    assert ladder.result is Result.CULPRITS
    assert sorted(k.name for k in ladder.culprits) == ["data.tokenizer", "model.crf_reduction"]
    assert ladder.structure == "either alone breaks training"
    assert "Structure: either alone breaks training" in ladder.culprit_line()


def test_oat_says_no_culprit_explains_an_or_pair_and_what_it_tried():
    ladder = _run(_or, strategy="oat")
    assert ladder.result is Result.NO_CULPRIT and not ladder.culprits
    assert ladder.culprit_line().startswith("No culprit explains it") and "revert data.corpus" in ladder.tried


@pytest.mark.parametrize("strategy", ["auto", "dd", "oat"])
def test_an_and_pair_is_only_together(strategy):
    ladder = _run(_and, strategy=strategy)
    assert sorted(k.name for k in ladder.culprits) == ["data.corpus", "model.crf_reduction"]
    assert ladder.structure == "only together"
    roles = {r.name: r.role for r in ladder.rungs}
    assert roles["good"] == "endpoint"
    if strategy == "auto":  # the evidence runs again on the next seed
        assert roles["revert data.corpus (seed +1)"] == "revert, repeat on seed 1"


def test_a_stable_but_degraded_revert_is_never_a_fix():
    def judge(recipe):
        if recipe["model"]["crf_reduction"] == "sum" and recipe["data"]["corpus"] == "v2":
            return Kind.DIVERGED, 0.5
        return Kind.STABLE, (1.5 if recipe["data"]["corpus"] == "v1" and recipe["model"]["hidden_size"] == 96
                             else 0.3)
    ladder = _run(judge, strategy="oat")
    rung = next(r for r in ladder.rungs if r.name == "revert data.corpus")
    assert rung.verdict == Kind.DEGRADED and "stable but degraded" in rung.note
    assert [k.name for k in ladder.culprits] == ["model.crf_reduction"]


def test_bad_that_does_not_fail_has_its_own_result_and_exit_code():
    ladder = _run(lambda recipe: (Kind.STABLE, 0.3))
    assert ladder.result is Result.BAD_DOES_NOT_FAIL
    out = campaign.Outcome(ladder, None, None, 0.0)
    assert out.exit_code == campaign.EXIT_BAD_DOES_NOT_FAIL
    assert out.to_json()["result"] == "bad_does_not_fail"


def test_each_culprit_carries_its_confidence_in_the_ladder_and_json():
    ladder = _run(_and, strategy="auto")
    assert set(ladder.knob_confidence) == {"data.corpus", "model.crf_reduction"}
    line = ladder.culprit_line()
    assert "data.corpus (good 'v1', bad 'v2'; confidence 9" in line and "estimated from the votes" in line
    out = campaign.Outcome(ladder, None, None, 0.0).to_json()
    assert {c["path"]: c["confidence"] for c in out["culprits"]} == ladder.knob_confidence
    assert 0.001 < out["assumed_flip"] < 0.1  # the posterior mean of the flip rate: no vote disagreed
    assert ladder.confidence >= 0.95 and min(ladder.knob_confidence.values()) >= ladder.confidence


def test_a_late_failure_is_run_again_on_the_next_seed():
    def judge(recipe):
        kind, best = _and(recipe)
        late = recipe["data"]["corpus"] == "v2" and recipe["model"]["crf_reduction"] == "sum" \
            and recipe["model"]["hidden_size"] == 64 and recipe["seed"] == 0
        return (kind, best, 1100) if late else (kind, best)
    ladder = _run(judge, strategy="auto")
    assert sorted(k.name for k in ladder.culprits) == ["data.corpus", "model.crf_reduction"]
    assert any("borderline" in n for n in ladder.notes)
    assert "revert model.hidden_size (seed +1)" in {r.name for r in ladder.rungs}


def test_verdicts_that_never_settle_end_not_confident_with_exit_code_6():
    def judge(recipe):  # the summed CRF loss breaks training, except with corpus v1 where it flips with the seed
        if recipe["model"]["crf_reduction"] != "sum":
            return Kind.STABLE, 0.3
        if recipe["data"]["corpus"] == "v1":
            return (Kind.DIVERGED, 0.5) if recipe["seed"] % 2 else (Kind.STABLE, 0.3)
        return Kind.DIVERGED, 0.5
    ladder = _run(judge, strategy="dd", noise=0.1)
    out = campaign.Outcome(ladder, None, None, 0.0)
    assert ladder.result is Result.NOT_CONFIDENT and out.exit_code == campaign.EXIT_NOT_CONFIDENT == 6
    assert out.to_json()["result"] == "not_confident" and ladder.culprit_line().startswith("Not confident")


class TimedSched(FakeSched):
    """A failure reports at the first poll after its launch, a stable trial at the second (failures stop early,
    stable trials run to the horizon); ``cancel`` ends a running one, as Ray's force-cancel does."""

    def __init__(self, judge, capacity=2):
        super().__init__(judge, capacity)
        self.polls, self.cancelled = {}, []

    def submit(self, req):
        super().submit(req)
        self.polls[req.name] = 0

    def cancel(self, name):
        live = [r for r in self.queue if r.name == name]
        self.queue = [r for r in self.queue if r.name != name]
        self.cancelled += [r.name for r in live]
        return bool(live)

    def poll(self, timeout):
        due = []
        for req in self.queue:
            self.polls[req.name] += 1
            if self.polls[req.name] >= (1 if self.judge(req.recipe)[0] != Kind.STABLE else 2):
                due.append(req)
        rest = [r for r in self.queue if r not in due]
        self.queue = due
        events = super().poll(timeout)
        self.queue = rest
        return events


def _single(recipe):
    return (Kind.DIVERGED, 0.5) if recipe["model"]["crf_reduction"] == "sum" else (Kind.STABLE, 0.3)


@pytest.mark.parametrize("strategy", ["split", "dd"])
def test_a_sibling_made_moot_by_a_failure_is_cancelled_and_never_evidence(strategy):
    from bisector.scheduler import Resources

    p = campaign.plan(GOOD, BAD)
    tracker = FakeTracker()
    tracker.curves["good"] = [(1, 2.0)]
    opts = campaign.Options(probe=False, strategy=strategy, resources=Resources(max_concurrent=2))
    c = campaign._Campaign(p, opts, tracker, hooks=[])
    sched = TimedSched(_single)
    c.loop(sched)
    c._answer()
    ladder = c.ladder
    assert [k.name for k in ladder.culprits] == ["model.crf_reduction"] and ladder.structure == "single"
    cancelled = [r for r in ladder.rungs if r.verdict == Kind.CANCELLED]
    assert cancelled and sorted(r.name for r in cancelled) == sorted(sched.cancelled)
    for rung in cancelled:  # made moot by a failing sibling, which was told; the cancelled one never was
        by = rung.note.removeprefix("cancelled: made moot by ")
        assert by != rung.note and c.strategy.verdicts[by] == Kind.DIVERGED
        assert rung.name not in c.strategy.verdicts
        assert "model.crf_reduction" in rung.changed  # it reverted the culprit: a pass the search did not need
    row = next(r for r in ladder.rows() if r[0] == cancelled[0].name)
    assert row[-1].startswith("cancelled: made moot by ")
    assert ladder.totals()["trials_cancelled"] == len(cancelled)
    assert f"{len(cancelled)} cancelled as moot" in ladder.cost_line()


def test_a_rerun_reuses_every_finished_trial_and_never_launches_a_moot_sibling():
    import dataclasses

    from bisector.scheduler import Resources

    def campaign_with(tracker):
        tracker.curves["good"] = [(1, 2.0)]
        opts = campaign.Options(probe=False, strategy="split", resources=Resources(max_concurrent=2))
        c = campaign._Campaign(campaign.plan(GOOD, BAD), opts, tracker, hooks=[])
        sched = TimedSched(_single)
        c.loop(sched)
        c._answer()
        return c.ladder, sched

    first, _ = campaign_with(FakeTracker())
    assert any(r.verdict == Kind.CANCELLED for r in first.rungs)
    done = {r.key: r for r in first.rungs if r.verdict != Kind.CANCELLED}

    class Store(FakeTracker):
        def find_reusable(self, key):
            return dataclasses.replace(done[key], reused=True) if key in done else None

    again, sched = campaign_with(Store())
    assert [k.name for k in again.culprits] == ["model.crf_reduction"] and sched.polls == {}  # nothing launched
    assert {r.name for r in again.rungs} == {r.name for r in first.rungs if r.verdict != Kind.CANCELLED}
