"""Votes per tested knob set: when one run is enough, when to repeat on another seed, how sure we are.

Near a stability boundary a smoke's verdict can flip with the seed, and one
run per trial then names a wrong culprit without a warning. Each knob set a
search tests collects votes (runs on seeds base, base+1, ...). Quiet mode (the
default) decides on one vote, which costs nothing extra while results agree;
the first contradiction of the monotone model (a set fails while a superset
of it passes, or an endpoint disagrees with itself) switches to noisy mode,
where a set is decided only once one outcome leads by ``margin`` votes, and the
search replays from its start on the votes so far. ``repeats`` fixes the
number of votes per set instead (a majority; a tie is unresolved).

How likely the answer is right is not decided here: ``posterior.py`` weighs
it against every competing structure with the flip rate integrated out, and
names the set whose next vote would settle it best.
"""

from __future__ import annotations

from .verdicts import Outcome

FAIL, PASS, UNRESOLVED = Outcome.FAIL, Outcome.PASS, Outcome.UNRESOLVED


class Ballot:
    def __init__(self, repeats: int = 1, noise: float = 0.0, max_votes: int = 9):
        self.repeats = max(1, repeats)
        self.noisy = noise > 0 or self.repeats > 1
        self.max_votes = max_votes
        self.votes: dict[frozenset[str], list[Outcome]] = {}
        self.extra: dict[frozenset[str], int] = {}  # more lead asked for a weak set

    def add(self, b: frozenset[str], out: Outcome) -> None:
        self.votes.setdefault(b, []).append(out)

    def margin(self, b: frozenset[str]) -> int:
        return (2 if self.noisy else 1) + self.extra.get(b, 0)

    def decided(self, b: frozenset[str]) -> Outcome | None:
        v = self.votes.get(b, [])
        if not v:
            return None
        f, p, u = v.count(FAIL), v.count(PASS), v.count(UNRESOLVED)
        lead = abs(f - p)
        if self.repeats > 1 and not self.extra.get(b):
            if len(v) < self.repeats:
                return None
            return UNRESOLVED if f == p else (FAIL if f > p else PASS)
        if lead >= self.margin(b):
            return FAIL if f > p else PASS
        if not self.noisy and u:
            return UNRESOLVED
        if len(v) >= self.max_votes or (u >= 2 and f + p == 0):
            return UNRESOLVED if lead == 0 else (FAIL if f > p else PASS)
        return None

    def wanted(self, b: frozenset[str]) -> int:
        """Votes to issue now for an undecided set (at least one)."""
        v = self.votes.get(b, [])
        if self.repeats > 1 and not self.extra.get(b):
            return max(1, self.repeats - len(v))
        lead = abs(v.count(FAIL) - v.count(PASS))
        return max(1, min(self.margin(b) - lead, self.max_votes - len(v)))

    def contradiction(self, b: frozenset[str], known: dict[frozenset[str], Outcome]) -> bool:
        """Does ``b``'s outcome contradict a monotone failure (a failing set inside a passing one)?"""
        v = self.votes.get(b, [])
        if FAIL in v and PASS in v:
            return True
        out = known.get(b)
        for c, o in known.items():
            if (out is FAIL and o is PASS and b < c) or (out is PASS and o is FAIL and c < b):
                return True
        return False
