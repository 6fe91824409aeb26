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
and only the cost changes. With k >= 2 free slots every slot is filled: the
failing set is cut into k parts tested at once (k-ary splitting: log_k N
rounds instead of log2 N, for more trials); every part that failed beside the
one followed is kept, and the search for the next culprit starts from the
smallest of them, so independent culprits are found in parallel too.

Why the lone application and the revert cannot be skipped: only testing {x}
shows that x alone breaks training, and only testing "all but x" shows that
nothing else does, so a proven single culprit costs at least ceil(log2 N)+4
trials with both endpoints (N >= 3; a brute force over every monotone
structure agrees for N = 3 and 4: benchmarks/search_floor.py), two more than halving alone.
"""

from __future__ import annotations

from .dd import dd_plan
from .strategy import First, Plan, Search
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
        items = _start(s, order, cleared, found)
        if len(items) < len(order) - len(cleared) - len(found):  # a part seen failing: asked again (free) so
            (o,) = yield [frozenset(items)]                     # that the answer's confidence counts it
            if o is not FAIL:
                items = [n for n in order if n not in cleared and n not in found]
        if not items:
            break  # the cleared knobs fail together: not this model
        while len(items) > 1:
            if s.slots < 2:  # one slot: test the first half; the other is known by elimination
                left, right = items[:len(items) // 2], items[len(items) // 2:]
                (o,) = yield [frozenset(left)]
                if o is PASS:
                    cleared.update(left)
                items = left if o is FAIL else right if o is PASS else []
                continue
            parts = _parts(items, s.slots)  # every free slot: k parts at once, each applied alone to good; the
            outs = yield First(frozenset(p) for p in parts)  # first to fail is followed, the rest cancelled
            cleared.update(n for p, o in zip(parts, outs, strict=True) if o is PASS for n in p)
            # the first failing part; none (all pass, or no verdict): the culprits interact, dd takes over
            items = next((p for p, o in zip(parts, outs, strict=True) if o is FAIL), [])
        if len(items) != 1:
            break
        x = items[0]
        (alone,) = yield [frozenset({x})]  # free when a part was already {x}: asked so the answer counts it
        if alone is not FAIL:
            break
        found.append(x)
    result = yield from dd_plan(s, [frozenset({n}) for n in found])
    return result


def _start(s: Search, order: list[str], cleared: set[str], found: list[str]) -> list[str]:
    """Where to look next: the smallest set already seen failing without the knobs found (a part that failed
    beside the one followed), else every knob neither cleared nor found."""
    rest = [n for n in order if n not in cleared and n not in found]
    seen = [b for b, o in s.known.items() if o is FAIL and b and not b & set(found) and b <= set(rest)]
    if seen:
        best = min(seen, key=lambda b: (len(b), sorted(b)))
        return [n for n in order if n in best]
    return rest


def _parts(items: list[str], slots: int) -> list[list[str]]:
    """``items`` in min(slots, len) contiguous parts of nearly equal size."""
    k = min(slots, len(items))
    size, extra = divmod(len(items), k)
    out, i = [], 0
    for j in range(k):
        n = size + (j < extra)
        out.append(items[i:i + n])
        i += n
    return out


class GroupSplit(Search):
    """Binary splitting over knob groups; hands over to delta debugging when culprits interact."""

    name = "split"

    def plan(self) -> Plan:
        result = yield from split_plan(self)
        return result
