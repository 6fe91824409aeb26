"""Adaptive group splitting: culprits that each break training alone, in about d log2(N/d) trials.

Under the usual group-testing model (any culprit present makes the run fail)
a failing set is halved by applying one half to the good recipe: if it fails
the culprit is there, if it passes the half is cleared and the other half
holds it. One culprit among N costs ceil(log2 N) halvings; the knob found is
then applied alone if no test showed it failing by itself, and the found
knobs are reverted from bad to see whether anything else breaks it. When a
result contradicts the model (neither half fails: knobs that break training
only together; an unresolved trial) the search hands over to delta
debugging, which reuses every result so far, so the answer is always right
and only the cost changes. With two or more slots both halves run at once
(speculation: half the rounds, and the other half's result is kept).
"""

from __future__ import annotations

from .dd import dd_plan
from .strategy import Plan, Search
from .verdicts import Outcome

FAIL, PASS = Outcome.FAIL, Outcome.PASS


def split_plan(s: Search) -> Plan:
    order = [k.name for k in s.knobs]
    found: list[str] = []
    cleared: set[str] = set()
    while True:
        if found:
            (o,) = yield [s.all - frozenset(found)]
            if o is PASS:
                return s.finish([frozenset({n}) for n in found])
            if o is not FAIL:
                break
        items = [n for n in order if n not in cleared and n not in found]
        if not items:
            break  # the cleared knobs fail together: not this model
        while len(items) > 1:
            h = len(items) // 2
            left, right = items[:h], items[h:]
            if s.slots >= 2:
                o1, o2 = yield [frozenset(left), frozenset(right)]
            else:
                (o1,) = yield [frozenset(left)]
                o2 = None
            if o1 is FAIL:
                items = left
            elif o1 is PASS and o2 in (None, FAIL):
                cleared.update(left)
                items = right
            else:
                items = []
        if len(items) != 1:
            break
        x = items[0]
        if s.known.get(frozenset({x})) is not FAIL:
            (alone,) = yield [frozenset({x})]
            if alone is not FAIL:
                break
        found.append(x)
    result = yield from dd_plan(s, [frozenset({n}) for n in found])
    return result


class GroupSplit(Search):
    """Binary splitting over knob groups; hands over to delta debugging when culprits interact."""

    name = "split"

    def plan(self) -> Plan:
        result = yield from split_plan(self)
        return result
