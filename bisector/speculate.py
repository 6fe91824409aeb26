"""Speculative trials: siblings run at once, and the ones a result makes moot are cancelled.

A plan may yield ``First(sets)``: knob sets tested at once where the first
failure decides (a failing half or part is followed; the other siblings are
not needed to go on). Failures stop at detection while passes run to the
horizon, so the failing sibling usually reports first: the plan goes on at
once and ``moot()`` names the siblings still running whose result it no
longer needs; the campaign cancels them (``Kind.CANCELLED``: no evidence,
never reused). A sibling the plan asks again is kept running, a result that
arrives anyway is still counted, and once the search is done every trial
still in flight is moot. The race is settled when the campaign next asks for
trials (``suggest``), so results that arrive together are all read first.
``cancel=False`` waits for every sibling instead (the behaviour before, for
``benchmarks/search.py``). A mixin of ``strategy.Search``, whose bookkeeping
it shares; no Ray here.
"""

from __future__ import annotations

from .answer import Moot, TrialSpec
from .verdicts import Outcome


class First(list):
    """Knob sets asked at once where the first failure decides: the plan gets the outcomes as soon as one set
    fails (``None`` for those still running), and the siblings it does not ask again become moot."""


class Speculation:
    _running: dict[str, TrialSpec]  # suggested, not yet told
    _moot: list[Moot]

    def moot(self) -> list[Moot]:
        """Trials in flight whose result the search no longer needs (all of them once it is done), each with the
        trial whose result made it moot; they are forgotten here, so the caller must cancel them."""
        if self.done:
            self._moot += [Moot(t, self._last) for t in self._running.values()]
            self._running.clear()
        out, self._moot = self._moot, []
        return out

    def _race_won(self) -> bool:
        return self._race and any(self.known.get(a) is Outcome.FAIL for a in self._asked)

    def _settle_race(self) -> None:
        """A set of a ``First`` failed: the plan goes on, and the siblings it does not ask again are moot."""
        raced = list(self._asked)
        by = next(self._by[a] for a in raced if self.known.get(a) is Outcome.FAIL)
        self._advance([self.known.get(a) for a in raced])
        for b in raced:
            if b not in self.known and b not in self._asked:
                self._abandon(b, by)

    def _abandon(self, b: frozenset[str], by: str) -> None:
        self._inflight[b] = 0
        self._ready = [t for t in self._ready if self._bad_side(t) != b]
        for name, t in list(self._running.items()):
            if self._bad_side(t) == b:
                self._moot.append(Moot(self._running.pop(name), by))
