"""Delta debugging between good and bad: minimal failure-inducing knob sets, any structure.

Zeller's dd isolates a failure-inducing difference by testing halves and,
when neither half alone fails, recursing into each half with the other
applied (the interaction case). That is what tells an AND structure (two
knobs that break training only together) from an OR one (either alone
breaks it): one minimal failing set {a, b} against two, {a} and {b}. After
each minimal set is found its knobs are reverted from bad and the rest is
tested again, so independent causes are all named. Tests have three outcomes;
an unresolved one (an invalid toggled recipe, a skip, a lost trial, a
degraded run) never counts as a pass or a failure, and an answer resting on
one says it is not confident.
"""

from __future__ import annotations

from .strategy import First, Plan, Search, StrategyResult
from .verdicts import Outcome, Result

FAIL, PASS = Outcome.FAIL, Outcome.PASS


def minimize(s: Search, items: list[str], base: frozenset[str] = frozenset()):
    """A minimal subset M of ``items`` with ``base | M`` failing, given ``base | items`` fails
    (None when unresolved tests leave no answer). With two or more slots both halves run at once."""
    if len(items) <= 1:  # none: the good side itself failed (votes flipped an endpoint): no answer here
        return frozenset(items) if items else None
    h = len(items) // 2
    left, right = items[:h], items[h:]
    b1, b2 = base | frozenset(left), base | frozenset(right)
    if s.slots >= 2:  # both at once; the first to fail is followed and the other cancelled
        o1, o2 = yield First([b1, b2])
    else:
        (o1,) = yield [b1]
        o2 = None
        if o1 is not FAIL:
            (o2,) = yield [b2]
    if o1 is FAIL:
        return (yield from minimize(s, left, base))
    if o2 is FAIL:
        return (yield from minimize(s, right, base))
    m1 = yield from minimize(s, left, b2)  # neither half alone fails: what of the left does the right need?
    if m1 is None:
        return None
    if o1 is not PASS:  # base | m1 was never shown to pass
        (alone,) = yield [base | m1]
        if alone is FAIL:
            return m1
    m2 = yield from minimize(s, right, base | m1)
    return None if m2 is None else m1 | m2


def dd_plan(s: Search, groups: list[frozenset[str]] | None = None) -> Plan:
    """Find minimal failing sets one after another until reverting them all fixes bad."""
    groups = list(groups or [])
    order = [k.name for k in s.knobs]
    while True:
        removed = frozenset().union(*groups)
        rest = s.all - removed
        if removed:
            (o,) = yield [rest]
            if o is PASS:
                return s.finish(groups)
            if o is not FAIL:
                return s.finish(groups, result=Result.NOT_CONFIDENT,
                                explanation="reverting the sets found so far gave no verdict (unresolved): "
                                            "cannot tell whether anything else breaks training")
        m = yield from minimize(s, [n for n in order if n in rest])
        if m is None:
            return s.finish(groups, result=Result.NOT_CONFIDENT,
                            explanation="unresolved trials left no minimal failing set")
        groups.append(m)


class DeltaDebug(Search):
    """Zeller-style isolation of every minimal failure-inducing knob set (AND, OR and mixed structures)."""

    name = "dd"

    def plan(self) -> Plan:
        result: StrategyResult = yield from dd_plan(self)
        return result
