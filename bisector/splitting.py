"""Adaptive group splitting: culprits that each break training alone, in about d log2(N/d) trials.

Under the usual group-testing model (any culprit present makes the run fail)
a failing set is halved by applying one half to the good recipe: if it fails
the culprit is there, if it passes the half is cleared and the other half
holds it. One culprit among N costs ceil(log2 N) halvings; the knob found is
then applied alone if no test showed it failing by itself, and the found
knobs are reverted from bad to see whether anything else breaks it (unless a
set seen failing without them already shows it).

With one slot the halves that passed are not dropped to good but kept at bad
beside every later half tested (the last lone knob is tested alone, so that
its failure is also its proof). Under the model that changes no outcome and
costs nothing; when a knob breaks training only with one of the passed knobs
(an AND pair split by a halving) the search still follows it instead of
descending by elimination into halves that all pass, and once it passes
alone its partners are found among the kept knobs by dd's minimize (an AND
pair among 16 knobs, every placement, --no-confirm: 14.1 trials on average
instead of 16.1, 17 at worst instead of 21).
Where that does not apply (an unresolved trial, the kept knobs failing
together) the search hands over to delta debugging, which reuses every
result so far, so the answer is always right and only the cost changes.

With k >= 2 free slots every slot is filled: the
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

from .dd import dd_plan, minimize
from .strategy import First, Plan, Search
from .verdicts import Outcome

FAIL, PASS = Outcome.FAIL, Outcome.PASS


def split_plan(s: Search) -> Plan:
    order = [k.name for k in s.knobs]
    found: list[frozenset[str]] = []
    cleared: set[str] = set()
    while True:
        removed = frozenset().union(*found)
        rest = [n for n in order if n not in cleared and n not in removed]
        items = _start(s, order, rest, removed)
        if found and items is rest:  # the found sets reverted (implied when a set seen failing is left at bad)
            (o,) = yield [s.all - removed]
            if o is PASS:
                return s.finish(found)
            if o is not FAIL:
                break
        if items is not rest:  # a part seen failing: asked again (free) so that the answer's confidence counts it
            (o,) = yield [frozenset(items)]
            if o is not FAIL:
                items = rest
        if not items:
            break  # the cleared knobs fail together: not this model
        # the knobs cleared so far (passed), left at bad beside each half tested after them, so that a knob that
        # breaks training only with one of them is still followed: kept + items is the set known to fail
        kept = [n for n in order if n not in removed and n not in items] if items is rest else []
        pool: list[str] = []
        while len(items) > 1:
            if s.slots < 2:  # one slot: test the first half; the other is known by elimination
                left, right = items[:len(items) // 2], items[len(items) // 2:]
                last = len(left) == 1  # a lone knob is tested alone: its failure is then the proof
                pool = pool or (items if last else [])  # kept + pool fails; from here on, lone knobs alone
                (o,) = yield [frozenset(left) if last else frozenset(kept) | frozenset(left)]
                if o is PASS:
                    cleared.update(left)
                    if not last:
                        kept += left
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
        if alone is PASS:  # x breaks training only with knobs kept at bad: those, by dd's minimize
            group = yield from _partners(s, order, kept, pool)
            if group is None:
                break
            found.append(group)
            continue
        if alone is not FAIL:
            break
        found.append(frozenset({x}))
    result = yield from dd_plan(s, found)
    return result


def _partners(s: Search, order: list[str], kept: list[str], pool: list[str]):
    """The knob followed passes alone: the minimal failing set found instead (None: none this way). ``kept``
    passes and ``kept`` + ``pool`` fails: the fewest knobs M of ``pool`` that fail with ``kept``, then the fewest
    of ``kept`` that fail with M (dd's minimize, twice); M plus those is minimal, as each step was."""
    if len(pool) < 2 or s.known.get(frozenset(kept) | frozenset(pool)) is not FAIL:
        return None
    if kept:  # cleared part by part, never yet together
        (o,) = yield [frozenset(kept)]
        if o is not PASS:
            return None
    if len(pool) == 2 and kept:  # [a, b]: when kept + a passes, b is the one needed, with knobs of kept + a
        (o,) = yield [frozenset(kept) | {pool[0]}]
        m = frozenset({pool[o is PASS]}) if o in (PASS, FAIL) else None
        kept = [n for n in order if n in kept or (o is PASS and n == pool[0])]
    else:
        m = yield from minimize(s, pool, frozenset(kept))
    if m is None:
        return None
    (o,) = yield [m]
    if o is PASS and kept:
        more = yield from minimize(s, kept, m)
        (o,) = yield [m | more] if more is not None else [m]
        m = m | (more or frozenset())
    return m if o is FAIL else None


def _start(s: Search, order: list[str], rest: list[str], found: frozenset[str]) -> list[str]:
    """Where to look next: the smallest set already seen failing without the knobs found (a part that failed
    beside the one followed; a new list), else ``rest`` itself, every knob neither cleared nor found."""
    seen = [b for b, o in s.known.items() if o is FAIL and b and not b & found and b <= set(rest)]
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
