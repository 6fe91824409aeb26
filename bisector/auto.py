"""The default strategy: choose the search by the knob count and the free slots.

With no more knobs than slots, one round of lone reverts *and* lone
applications runs in the time of one trial and usually states the answer
outright (a lone application that fails: that knob alone breaks training; lone
reverts that each fix it while no application fails: they break it only
together, confirmed by applying them together); whatever it leaves open goes
to delta debugging, which reuses those results. Up to ``LONE_REVERTS`` knobs,
lone reverts from bad (N+2 trials is then about what a search costs, and each
fixing revert is itself the evidence a user wants; with one slot only up to 4
knobs, where N+2 trials is no more than a proven split); if none fixes it, delta
debugging names the independent causes. With more knobs, group splitting (both
halves at once when two slots are free), which hands over to delta debugging
when knobs interact.
"""

from __future__ import annotations

from .dd import dd_plan
from .splitting import split_plan
from .strategy import Plan, Search
from .verdicts import Outcome

FAIL, PASS = Outcome.FAIL, Outcome.PASS


LONE_REVERTS = 8
ONE_SLOT_LONE_REVERTS = 4
"""With one slot wall clock is trials: above 4 knobs splitting finds one culprit in fewer (N+2 > ceil(log2 N)+4)."""


class Auto(Search):
    name = "auto"

    def plan(self) -> Plan:
        lone = LONE_REVERTS if self.slots >= 2 else ONE_SLOT_LONE_REVERTS
        if len(self.knobs) > max(self.slots, lone):
            result = yield from split_plan(self)
            return result
        if len(self.knobs) > self.slots:
            outs = yield [self.all - {k.name} for k in self.knobs]
            fixes = frozenset(k.name for k, o in zip(self.knobs, outs, strict=True) if o is PASS)
            if fixes:  # every minimal failing set holds each knob whose lone revert fixes bad: nothing else to find
                return self.finish([fixes], evidence=[self.all - {k.name} for k in self.knobs if k.name in fixes])
            result = yield from dd_plan(self)
            return result
        names = [k.name for k in self.knobs]
        reverts = [self.all - {n} for n in names]
        applies = [frozenset({n}) for n in names]
        outs = yield reverts + applies
        fixes = [n for n, o in zip(names, outs[:len(names)], strict=True) if o is PASS]
        alone = [n for n, o in zip(names, outs[len(names):], strict=True) if o is FAIL]
        groups = [frozenset({n}) for n in alone]
        if not alone and len(fixes) > 1:
            (together,) = yield [frozenset(fixes)]
            if together is FAIL:
                groups = [frozenset(fixes)]
        result = yield from dd_plan(self, groups)
        return result
