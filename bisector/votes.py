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

Confidence: with an assumed flip probability f, a lead of L votes makes the
leading outcome wrong with odds (f / (1 - f))^L; an answer's confidence is the
product over the sets its search consumed (errors assumed independent). Quiet
mode assumes f = 0.1% (nothing contradicted the results), noisy mode the
``noise`` given or 10%. A culprit knob's own confidence is the product over
the sets its place in the answer hinges on (``knob_confidence``).
``benchmarks/search.py`` reports the calibration: honest in noisy mode, and
conditional on its assumption in quiet mode (a flip that contradicts nothing
is never seen).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .verdicts import Outcome

FAIL, PASS, UNRESOLVED = Outcome.FAIL, Outcome.PASS, Outcome.UNRESOLVED
QUIET_FLIP = 0.001


class Ballot:
    def __init__(self, repeats: int = 1, noise: float = 0.0, max_votes: int = 9,
                 prior_fail: Callable[[frozenset[str]], float] | None = None):
        self.repeats = max(1, repeats)
        self.flip = noise or 0.1
        self.noisy = noise > 0 or self.repeats > 1
        self.max_votes = max_votes
        self.votes: dict[frozenset[str], list[Outcome]] = {}
        self.extra: dict[frozenset[str], int] = {}  # more lead asked for a weak set
        self.prior_fail = prior_fail
        """How likely a set is to fail before any vote: a surprising outcome needs more votes to be believed."""

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

    def posterior(self, b: frozenset[str]) -> float:
        """How likely the decided outcome of ``b`` is right (1 for an unresolved set: it claims nothing)."""
        v = self.votes.get(b, [])
        out = self.decided(b)
        if out is None or out is UNRESOLVED:
            return 1.0
        lead = abs(v.count(FAIL) - v.count(PASS))
        flip = self.flip if self.noisy else QUIET_FLIP
        odds = ((1 - flip) / flip) ** max(lead, 1)  # likelihood ratio of the votes for the decided outcome
        pf = self.prior_fail(b) if self.prior_fail else 0.5
        prior = pf if out is FAIL else 1 - pf
        return prior * odds / (prior * odds + 1 - prior)

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

    def weakest(self, sets: list[frozenset[str]]) -> frozenset[str] | None:
        """The consumed set whose outcome is least sure and can still get votes."""
        open_ = [b for b in sets if len(self.votes.get(b, [])) < self.max_votes and self.decided(b) is not UNRESOLVED]
        return min(open_, key=self.posterior, default=None)

    @staticmethod
    def confidence(posteriors: list[float]) -> float:
        return math.prod(posteriors) if posteriors else 1.0


def knob_confidence(groups, posteriors: dict[frozenset[str], float]) -> dict[str, float]:
    """Per knob of the answer: the product of the posteriors of the tested sets its membership hinges on.

    A tested set hinges on knob k when the answer predicts a different outcome for it with k toggled (the set
    fails with k at bad and passes with k at good, or the reverse): were that result wrong, k's place in the
    answer would be too. ``groups``: the answer's minimal failing sets (of knobs with ``.name``, or names)."""
    sets = [frozenset(getattr(k, "name", k) for k in g) for g in groups]

    def fails(b: frozenset[str]) -> bool:
        return any(g <= b for g in sets)

    out = {}
    for k in sorted(frozenset().union(*sets)) if sets else []:
        out[k] = math.prod(p for b, p in posteriors.items() if fails(b) != fails(b ^ {k}))
    return out


def group_testing_prior(n: int, culprits: float = 2.0) -> Callable[[frozenset[str]], float]:
    """Before any vote, each of the ``n`` knobs breaks training with probability ``culprits / n`` (at most 1/2),
    independently, and a set fails when it holds one: a lone knob rarely fails on its own (probability about
    2/N), and all but one knob rarely pass. The two endpoints get even odds (their outcome is the question)."""
    q = min(0.5, culprits / max(n, 1))

    def prior(b: frozenset[str]) -> float:
        if not b or len(b) == n:
            return 0.5
        return min(0.95, max(0.05, 1 - (1 - q) ** len(b)))

    return prior
