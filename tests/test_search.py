"""split, dd and auto against a simulated oracle (no training, no Ray, no MLflow)."""

from __future__ import annotations

import math

import pytest

from bisector import simulate as S
from bisector.strategy import make, names
from bisector.verdicts import Kind, Result

STRUCTURES = {
    "single": ([["k03"]], "single"),
    "and": ([["k01", "k02"]], "only together"),
    "or": ([["k00"], ["k03"]], "either alone breaks training"),
    "and+1": ([["k00", "k02"], ["k03"]], "mixed"),
    "three": ([["k00"], ["k01"], ["k03"]], "either alone breaks training"),
}


def _groups(result):
    return sorted(tuple(k.name for k in g) for g in result.groups)


@pytest.mark.parametrize("strategy", ["split", "dd", "auto"])
@pytest.mark.parametrize("n", [4, 8, 16, 32])
@pytest.mark.parametrize("structure", list(STRUCTURES))
@pytest.mark.parametrize("slots", [1, 2, 8])
def test_noiseless_answers_are_exact(strategy, n, structure, slots):
    groups, label = STRUCTURES[structure]
    run = S.drive(make(strategy, S.knobs(n), slots), S.Oracle([frozenset(g) for g in groups]), slots)
    assert run.result.result is Result.CULPRITS
    assert _groups(run.result) == sorted(tuple(g) for g in groups)
    assert run.result.structure == label


@pytest.mark.parametrize("n", [8, 16, 32, 64])
def test_split_single_culprit_costs_about_log2_n(n):
    worst = 0
    for c in range(n):
        run = S.drive(make("split", S.knobs(n), 1), S.Oracle([frozenset({f"k{c:02d}"})]))
        assert [k.name for k in run.result.culprits] == [f"k{c:02d}"]
        worst = max(worst, run.trials)
    # endpoints + ceil(log2 N) halvings + at most one lone application + the revert that shows nothing else breaks
    assert worst <= math.ceil(math.log2(n)) + 4


def test_oat_misses_independent_culprits_and_says_so():
    run = S.drive(make("oat", S.knobs(4)), S.Oracle([frozenset({"k00"}), frozenset({"k01"})]))
    assert run.result.culprits == [] and run.result.result is Result.NO_CULPRIT
    assert "no single knob" in run.result.explanation


def test_dd_names_an_or_pair_oat_cannot():
    run = S.drive(make("dd", S.knobs(6)), S.Oracle([frozenset({"k01"}), frozenset({"k04"})]))
    assert [k.name for k in run.result.culprits] == ["k01", "k04"]
    assert "each of k01 and k04 alone breaks training" in run.result.explanation


def test_registry_and_endpoint_check_are_shared():
    assert names() == ["oat", "split", "dd", "auto"]
    with pytest.raises(LookupError, match="unknown strategy"):
        make("nope", S.knobs(2))
    for name in names():
        s = make(name, S.knobs(3))
        good, bad = s.suggest()
        assert (good.name, bad.name) == ("good", "bad")
        s.on_trial_complete(good, Kind.STABLE)
        s.on_trial_complete(bad, Kind.STABLE)
        assert s.done and s.result().result is Result.BAD_DOES_NOT_FAIL and s.suggest() == []


def test_invalid_trials_are_never_a_pass_or_a_fail():
    s = make("dd", S.knobs(4))
    oracle = S.Oracle([frozenset({"k02"})])
    skipped = 0
    while not s.done:
        for spec in s.suggest():
            bad_side = s.all - {k.name for k in spec.reverted}
            if spec.role != "endpoint" and bad_side == frozenset({"k00", "k01"}):
                s.skip(spec)
                skipped += 1
            else:
                s.on_trial_complete(spec, oracle(bad_side))
    assert skipped == 1
    assert [k.name for k in s.result().culprits] == ["k02"]


def test_never_proposes_the_same_knob_set_twice():
    s = make("auto", S.knobs(16), 2)
    seen = set()
    oracle = S.Oracle([frozenset({"k01", "k09"}), frozenset({"k05"})])
    while not s.done:
        for spec in s.suggest():
            key = frozenset(k.name for k in spec.reverted)
            assert key not in seen
            seen.add(key)
            s.on_trial_complete(spec, oracle(s.all - key))
    assert _groups(s.result()) == [("k01", "k09"), ("k05",)]
