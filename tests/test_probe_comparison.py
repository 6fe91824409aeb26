"""Which healthy run the probe compares the bad endpoint with (``probe_phase.py``).

A noisy first seed of the culprit's revert can read as a failure while its repeats on other seeds are
stable (the campaign re-runs a surprising rung for exactly that): the probe then takes the first stable
repeat, one comparison per knob set, seed 0 first when it is stable.
"""

from __future__ import annotations

from bisector.ladder import Rung
from bisector.probe_phase import _first_per_change, _lone_revert


def _rung(name, verdict, role, changed):
    return Rung(name=name, verdict=verdict, role=role, changed=changed)


def test_a_stable_repeat_stands_in_for_a_first_seed_that_read_otherwise():
    rungs = [_rung("revert q", "oscillating", "revert", {"q": {}}),
             _rung("revert q (seed +1)", "stable", "revert, repeat on seed 1", {"q": {}}),
             _rung("revert q (seed +2)", "stable", "revert, repeat on seed 2", {"q": {}}),
             _rung("bad (seed +1)", "stable", "endpoint, repeat on seed 1", {"q": {}, "h": {}}),
             _rung("apply q", "stable", "apply", {"q": {}})]
    chosen = _first_per_change([r for r in rungs if _lone_revert(r)])
    assert [r.name for r in chosen] == ["revert q (seed +1)"]


def test_seed_zero_is_the_comparison_when_it_is_stable():
    rungs = [_rung("revert q", "stable", "revert", {"q": {}}),
             _rung("revert q (seed +1)", "stable", "revert, repeat on seed 1", {"q": {}}),
             _rung("revert h", "stable", "revert", {"h": {}})]
    chosen = _first_per_change([r for r in rungs if _lone_revert(r)])
    assert [r.name for r in chosen] == ["revert q", "revert h"]
