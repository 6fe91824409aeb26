"""bisector.strategy.OneAtATime, driven by hand (no Ray, no MLflow)."""

from __future__ import annotations

import pytest

from bisector.detector import DIVERGED, NAN, STABLE
from bisector.knobs import Knob
from bisector.oat import OneAtATime

A = Knob(("data.corpus",), ("v1",), ("v2",))
B = Knob(("model.crf_reduction",), ("token_mean",), ("sum",))
C = Knob(("train.lr",), (3e-3,), (2.5e-3,))
KNOBS = [A, B, C]


def endpoints(s: OneAtATime):
    specs = s.suggest()
    return {t.name: t for t in specs}, specs


def test_first_suggestion_is_exactly_the_endpoints():
    s = OneAtATime(KNOBS)
    by, specs = endpoints(s)
    assert [t.name for t in specs] == ["good", "bad"]
    assert by["good"].role == "endpoint" and by["bad"].role == "endpoint"
    assert by["good"].reverted == (A, B, C)
    assert by["bad"].reverted == ()
    assert not s.done


def test_nothing_more_until_both_endpoints_are_told():
    s = OneAtATime(KNOBS)
    by, _ = endpoints(s)
    assert s.suggest() == []
    s.on_trial_complete(by["good"], STABLE)
    assert s.suggest() == []
    assert not s.done
    s.on_trial_complete(by["bad"], DIVERGED)
    reverts = s.suggest()
    assert [t.name for t in reverts] == ["revert data.corpus", "revert model.crf_reduction", "revert train.lr"]
    assert all(t.role == "revert" for t in reverts)
    assert [t.reverted for t in reverts] == [(A,), (B,), (C,)]


@pytest.mark.parametrize("good_verdict", [DIVERGED, NAN, "error"])
def test_good_not_stable_stops_without_reverts(good_verdict):
    s = OneAtATime(KNOBS)
    by, _ = endpoints(s)
    s.on_trial_complete(by["bad"], DIVERGED)
    s.on_trial_complete(by["good"], good_verdict)
    assert s.done
    assert s.suggest() == []
    res = s.result()
    assert res.culprits == []
    assert res.stopped is not None
    assert "good recipe is not stable" in res.stopped and good_verdict in res.stopped


@pytest.mark.parametrize("bad_verdict", [STABLE, "error"])
def test_bad_that_does_not_fail_stops(bad_verdict):
    s = OneAtATime(KNOBS)
    by, _ = endpoints(s)
    s.on_trial_complete(by["good"], STABLE)
    s.on_trial_complete(by["bad"], bad_verdict)
    assert s.done
    assert s.suggest() == []
    res = s.result()
    assert res.culprits == []
    assert "bad recipe does not fail" in res.stopped and bad_verdict in res.stopped


@pytest.mark.parametrize("bad_verdict", [DIVERGED, NAN])
def test_normal_path_finds_culprits(bad_verdict):
    s = OneAtATime(KNOBS)
    by, _ = endpoints(s)
    s.on_trial_complete(by["good"], STABLE)
    s.on_trial_complete(by["bad"], bad_verdict)
    assert not s.done
    reverts = s.suggest()
    assert len(reverts) == 3
    assert s.suggest() == []  # each revert is suggested once
    verdicts = {"revert data.corpus": STABLE, "revert model.crf_reduction": DIVERGED, "revert train.lr": STABLE}
    for i, t in enumerate(reverts):
        assert not s.done
        s.on_trial_complete(t, verdicts[t.name])
        assert s.done == (i == len(reverts) - 1)
    assert s.suggest() == []
    res = s.result()
    assert res.stopped is None
    assert res.culprits == [A, C]


def test_no_revert_fixes_it_means_no_culprit():
    s = OneAtATime(KNOBS)
    by, _ = endpoints(s)
    s.on_trial_complete(by["good"], STABLE)
    s.on_trial_complete(by["bad"], DIVERGED)
    for t in s.suggest():
        s.on_trial_complete(t, NAN)
    assert s.done
    assert s.result().culprits == [] and s.result().stopped is None


def test_skipped_invalid_trial_counts_as_done_and_never_culprit():
    s = OneAtATime(KNOBS)
    by, _ = endpoints(s)
    s.on_trial_complete(by["good"], STABLE)
    s.on_trial_complete(by["bad"], DIVERGED)
    reverts = s.suggest()
    s.skip(reverts[0])
    s.on_trial_complete(reverts[1], STABLE)
    assert not s.done
    s.on_trial_complete(reverts[2], DIVERGED)
    assert s.done
    assert s.result().culprits == [B]
    assert s.suggest() == []


def test_skip_before_suggested_is_never_suggested():
    s = OneAtATime([A, B])
    by, _ = endpoints(s)
    s.on_trial_complete(by["good"], STABLE)
    s.on_trial_complete(by["bad"], DIVERGED)
    s.skip(s.reverts[0])
    (rest,) = s.suggest()
    assert rest.name == "revert model.crf_reduction"
    s.on_trial_complete(rest, DIVERGED)
    assert s.done
    assert s.result().culprits == []
