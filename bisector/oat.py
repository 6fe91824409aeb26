"""Today's search, kept: revert each knob alone from bad.

Right when each culprit alone can be reverted to fix the run (a single
culprit, or knobs that fail only together): every minimal failing set then
holds each knob whose lone revert passes. Wrong when culprits are independent
(either alone breaks training): no lone revert fixes it, and it says so
instead of naming anyone.
"""

from __future__ import annotations

from .knobs import Knob
from .strategy import Plan, Search
from .verdicts import Outcome


class OneAtATime(Search):
    """Both endpoints, then every knob reverted alone from bad, all at once.

    Right when each culprit alone can be reverted to fix the run (a single
    culprit, or knobs that fail only together); N knobs cost N+2 trials. When no
    lone revert fixes it (independent culprits) it says so instead of naming anyone.
    """

    name = "one-at-a-time"
    confirm_default = False  # today's behaviour: one run per revert

    def __init__(self, knobs: list[Knob], slots: int = 1, **voting):
        super().__init__(knobs, slots, **voting)
        self.reverts = [self.spec(self.all - {k.name}) for k in self.knobs]

    def plan(self) -> Plan:
        sets = [self.all - {k.name} for k in self.knobs]
        outs = yield sets
        fixes = frozenset(k.name for k, o in zip(self.knobs, outs, strict=True) if o is Outcome.PASS)
        if not fixes:
            return self.finish([], explanation="no single knob explains the failure: reverting any one of them "
                                                "alone still fails (try --strategy dd for independent causes)")
        return self.finish([fixes], evidence=[self.all - {k.name} for k in self.knobs if k.name in fixes])
