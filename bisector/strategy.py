"""Who proposes trials: ask/tell strategies (no Ray, no MLflow here).

A strategy is asked for trials (``suggest``), told each verdict
(``on_trial_complete``) or that a trial could not run (``skip``), names the
trials in flight it no longer needs (``moot``: the loop cancels them), and
reports ``done``, its ``result`` and the order its rungs read best in (``order``). A
trial is a set of knobs set to their *good* value on top of the bad recipe;
the good endpoint reverts every knob and the bad endpoint none. The campaign
loop only ever sees this Protocol, so it never knows which search runs.

Every search here shares ``Search``: it runs both endpoints first and stops
with the shared ``check_endpoints`` explanation when good is not stable or bad
does not fail (that check is not a strategy's business), never proposes the
same knob set twice, and drives the search itself, written as a generator that
yields the knob sets it wants tested (as sets of knobs left at their *bad*
value) and receives their outcomes: the algorithm reads like its textbook
version while the campaign stays ask/tell.

A plan may also yield ``First(sets)``: sets run at once where the first
failure decides, and the siblings it makes moot are cancelled (``speculate.py``).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol

from .answer import Moot, StrategyResult, TrialSpec, group_name, structure
from .knobs import Knob
from .posterior import FLIP_PRIOR, answer_posterior, best_guess, confirm_next
from .speculate import First, Speculation
from .verdicts import FAILURES, Kind, Outcome, Result, outcome
from .votes import Ballot


class Strategy(Protocol):
    name: str
    good: TrialSpec
    bad: TrialSpec

    def suggest(self) -> list[TrialSpec]: ...

    def on_trial_complete(self, trial: TrialSpec, verdict: str, borderline: bool = False) -> None: ...

    def skip(self, trial: TrialSpec) -> None: ...

    def moot(self) -> list[Moot]: ...

    @property
    def done(self) -> bool: ...

    def result(self) -> StrategyResult: ...

    def order(self) -> list[str]: ...


def check_endpoints(good: str, bad: str) -> tuple[Result, str] | None:
    """Why there is nothing to bisect, or None when good is stable and bad fails (shared by every strategy)."""
    if Kind.of(good) is not Kind.STABLE:
        return Result.GOOD_NOT_STABLE, (
            f"the good recipe is not stable (verdict {good}): a bisection needs a known-good "
            "endpoint; fix or shorten the good recipe first")
    if Kind.of(bad) not in FAILURES:
        return Result.BAD_DOES_NOT_FAIL, (
            f"the bad recipe does not fail within the smoke budget (verdict {bad}): "
            "raise its train steps or check that it really fails")
    return None


Plan = Generator[list[frozenset[str]], list[Outcome], "StrategyResult | None"]


class Search(Speculation):
    """Endpoints, votes, bookkeeping and the generator driver shared by every strategy.

    ``repeats``, ``noise`` and ``target`` set the voting (see ``votes.py``): by default one run per
    knob set until a result contradicts another, then repeats on other seeds and a replay of the search.
    """

    name = "search"
    confirm_default = True

    def __init__(self, knobs: list[Knob], slots: int = 1, repeats: int = 1, noise: float = 0.0,
                 target: float = 0.95, confirm: bool | str | None = None, cancel: bool = True):
        self.knobs = list(knobs)
        self.slots = max(1, slots)
        self.by_name = {k.name: k for k in self.knobs}
        self.all = frozenset(self.by_name)
        self.good = TrialSpec("good", tuple(self.knobs), "endpoint")
        self.bad = TrialSpec("bad", (), "endpoint")
        self.ballot = Ballot(repeats, noise)
        self.flips = [(noise, 1.0)] if noise else FLIP_PRIOR  # the prior on the flip rate (posterior.py)
        self.target = target
        confirm = self.confirm_default if confirm is None else confirm
        self.confirm = "stops" if confirm is True else confirm or None
        """None; "evidence": the answer's evidence once more on the next seed; "stops" (default): that and an
        endpoint stop; "all": every knob set the answer used, and a stop (see README "Noise and confidence")."""
        self.cancel = cancel
        self.known: dict[frozenset[str], Outcome] = {}
        self.verdicts: dict[str, str] = {}
        self.notes: list[str] = []
        self.trials = 0  # trials told (not counting skips), for the benchmarks
        self._said: dict[frozenset[str], list[str]] = {}
        self._order: list[str] = []
        self._ready: list[TrialSpec] = []
        self._asked: list[frozenset[str]] = []
        self._consumed: set[frozenset[str]] = set()
        self._inflight: dict[frozenset[str], int] = {}
        self._running: dict[str, TrialSpec] = {}  # suggested, not yet told
        self._moot: list[Moot] = []
        self._race = False
        self._by: dict[frozenset[str], str] = {}  # the trial whose result decided each set
        self._last = "the answer"  # the last trial told
        self._started = False
        self._revoting = False
        self._confirming: StrategyResult | None = None
        self._evidence: list[frozenset[str]] = []
        self._gen: Plan | None = None
        self._stopped: tuple[Result, str] | None = None
        self._result: StrategyResult | None = None

    # -- the search, written by subclasses ---------------------------------------------------------------------

    def plan(self) -> Plan:
        raise NotImplementedError
        yield []

    # -- the Protocol -------------------------------------------------------------------------------------------

    def suggest(self) -> list[TrialSpec]:
        if self.done:
            return []
        if not self._started:
            self._started = True
            self._ask([frozenset(), self.all])
        if self._race_won():
            self._settle_race()
        out = [t for t in self._ready if self._bad_side(t) not in self.known]
        self._ready = []
        self._running.update((t.name, t) for t in out)
        return out

    def on_trial_complete(self, trial: TrialSpec, verdict: str, borderline: bool = False) -> None:
        """``borderline``: the verdict was barely reached (e.g. a failure seen only near the horizon); while
        no result has contradicted another, that knob set is run once more on another seed before it counts."""
        self.verdicts[trial.name] = verdict
        self.trials += 1
        self._last = trial.name
        b = self._bad_side(trial)
        if self._running.pop(trial.name, None) is None and trial.name in self._order:
            self._inflight[b] = self._inflight.get(b, 0) + 1  # abandoned, yet it reported: its vote still counts
        if borderline and not self.ballot.noisy and not self.ballot.extra.get(b):
            self.ballot.extra[b] = 1
            self.notes.append(f"{trial.name} ({verdict}) was borderline: run once more on another seed")
        self._learn(trial, outcome(verdict), str(verdict))

    def skip(self, trial: TrialSpec) -> None:
        """A trial that could not run (its toggled recipe is invalid): nothing learned, never a culprit."""
        self.verdicts[trial.name] = Kind.INVALID
        self._running.pop(trial.name, None)
        if trial.name not in self._order:
            self._order.append(trial.name)
        self._learn(trial, Outcome.UNRESOLVED, str(Kind.INVALID))

    @property
    def done(self) -> bool:
        return self._stopped is not None or self._result is not None

    def result(self) -> StrategyResult:
        if self._stopped:
            return StrategyResult([], self._stopped[1], self._stopped[0], tried=self.tried(), notes=self.notes)
        if self._result is not None:
            return self._result
        return self._best_guess()

    def guess(self) -> list[frozenset[str]]:  # the most probable answer given every vote so far, done or not
        return best_guess([k.name for k in self.knobs], self.ballot.votes, self.flips)

    def _best_guess(self) -> StrategyResult:
        """A budget stop or an interrupt: the most probable answer so far with its confidence, never proven (result
        ``not_finished``, worded as ``not_confident``'s best guess): halving points before it proves (splitting.py)."""
        groups = self.guess()
        res = self._answer_of(groups, Result.NOT_FINISHED)
        if groups:
            post = answer_posterior([k.name for k in self.knobs], self.ballot.votes, groups, self.flips)
            res.explanation = f"best guess: {res.explanation} (confidence {post.confidence:.0%}, not proven)"
            res.confidence, res.knob_confidence, res.assumed_flip = post.confidence, post.knobs, post.flip
        return res

    def order(self) -> list[str]:
        return list(self._order)

    # -- helpers for plans --------------------------------------------------------------------------------------

    def spec(self, bad_side: frozenset[str], seed: int = 0) -> TrialSpec:
        """The trial that leaves ``bad_side`` at bad and reverts every other knob to good (on seed +``seed``)."""
        base = self._spec(bad_side)
        if not seed:
            return base
        return TrialSpec(f"{base.name} (seed +{seed})", base.reverted, base.role, seed)

    def _spec(self, bad_side: frozenset[str]) -> TrialSpec:
        reverted = tuple(k for k in self.knobs if k.name not in bad_side)
        if not reverted:
            return self.bad
        if not bad_side:
            return self.good
        rev = [k.name for k in reverted]
        app = sorted(bad_side, key=[k.name for k in self.knobs].index)
        if len(rev) == 1:
            return TrialSpec(f"revert {rev[0]}", reverted, "revert")
        if len(app) == 1:
            return TrialSpec(f"apply {app[0]}", reverted, "apply")
        if len(rev) <= len(app):
            return TrialSpec(group_name("revert", rev), reverted, "group-revert")
        return TrialSpec(group_name("apply", app), reverted, "group-apply")

    def finish(self, groups: list[frozenset[str]], tried: str | None = None, result: Result | None = None,
               explanation: str | None = None, evidence: list[frozenset[str]] | None = None) -> StrategyResult:
        """A result from minimal failing sets (knob names), in knob order. ``evidence``: the knob sets whose
        outcomes the answer rests on (default: each set applied alone fails, all of them reverted passes);
        they are confirmed on a second seed before the answer is given."""
        if evidence is None and groups:
            evidence = [*groups, self.all - frozenset().union(*groups)]
        self._evidence = [b for b in evidence or [] if b in self.known and b not in (frozenset(), self.all)]
        return self._answer_of(groups, result, explanation, tried)

    def _answer_of(self, groups: list[frozenset[str]], result: Result | None = None, explanation: str | None = None,
                   tried: str | None = None) -> StrategyResult:
        idx = [k.name for k in self.knobs].index
        ordered = [tuple(self.by_name[n] for n in sorted(g, key=idx)) for g in groups]
        ordered.sort(key=lambda g: idx(g[0].name))
        culprits = [k for k in self.knobs if any(k in g for g in ordered)]
        label, text = structure(ordered)
        if result is None:
            result = Result.CULPRITS if culprits else Result.NO_CULPRIT
        return StrategyResult(culprits, None, result, ordered, label, explanation or text, tried or self.tried(),
                              notes=self.notes)

    def tried(self) -> str:
        told = [n for n in self._order if n in self.verdicts]
        return f"{len(told)} trials: " + ", ".join(f"{n} ({self.verdicts[n]})" for n in told)

    # -- the driver ---------------------------------------------------------------------------------------------

    def _bad_side(self, trial: TrialSpec) -> frozenset[str]:
        return self.all - {k.name for k in trial.reverted}

    def _ask(self, sets: list[frozenset[str]]) -> None:
        self._asked = [frozenset(a) for a in sets]
        self._consumed.update(self._asked)
        for b in dict.fromkeys(self._asked):
            if b in self.known or self._inflight.get(b):
                continue
            have = len(self.ballot.votes.get(b, []))
            for i in range(self.ballot.wanted(b)):
                spec = self.spec(b, have + i)
                self._inflight[b] = self._inflight.get(b, 0) + 1
                if spec.name not in self._order:
                    self._order.append(spec.name)
                self._ready.append(spec)

    def _learn(self, trial: TrialSpec, out: Outcome, verdict: str) -> None:
        b = self._bad_side(trial)
        self._inflight[b] = max(0, self._inflight.get(b, 0) - 1)
        self._said.setdefault(b, []).append(verdict)
        self.ballot.add(b, out)
        decided = self.ballot.decided(b)
        if decided is not None:
            self.known[b] = decided
            self._by[b] = trial.name
        if self.done:
            return
        if not self.ballot.noisy and self.ballot.contradiction(b, self.known):
            self.ballot.noisy = True
            self.notes.append(f"{trial.name} ({verdict}) contradicts an earlier result: verdicts flip with the "
                              "seed here; from now on each knob set is repeated on other seeds until one outcome "
                              "leads by two, and the search replays on the votes")
            self.known = {c: o for c in self.ballot.votes if (o := self.ballot.decided(c)) is not None}
            if self._gen is not None:
                self._restart()
                return
        if self._gen is None:
            self._endpoints()
            return
        if b in self._asked and b not in self.known and not self._inflight.get(b):
            self._ask(self._asked)  # more votes for this set
        if self._asked and all(a in self.known for a in self._asked):
            if self._confirming is not None:
                result, self._confirming = self._confirming, None
                self._conclude(result)
            elif self._revoting:  # the weak set is decided again: replay the search on the new votes
                self._revoting = False
                self._restart()
            else:
                self._advance([self.known[a] for a in self._asked])

    def _endpoints(self) -> None:
        good, bad = frozenset(), self.all
        if self._inflight.get(good) or self._inflight.get(bad):
            return
        for b in (good, bad):
            if b not in self.known:
                self._ask([good, bad])
                return
        wrong = [b for b, want in ((good, Outcome.PASS), (bad, Outcome.FAIL)) if self.known[b] is want.other]
        if self.ballot.noisy and wrong and self._more_votes(wrong[0], lead=3):
            return  # a noisy stop needs a lead of 3 votes (odds 1:729 at 10% flips), not 2 (1:81)
        if wrong and self.confirm in ("all", "stops") and self._more_votes(wrong[0], lead=2):
            return  # a quiet stop is confirmed on the next seed first: a disagreement switches to repeats
        said = self._said[bad]
        fails = sum(Kind.of(v) in FAILURES for v in said)
        if 0 < fails < len(said):
            self.notes.append(f"the bad recipe failed on only {fails} of {len(said)} seeds")
        rep = {b: next((v for v in self._said[b] if outcome(v) is self.known[b]), self._said[b][-1])
               for b in (good, bad)}
        self._stopped = check_endpoints(rep[good] if self.known[good] is Outcome.PASS else _not(rep[good]),
                                        rep[bad] if self.known[bad] is Outcome.FAIL else _not(rep[bad], Kind.STABLE))
        if self._stopped is None:
            self._restart()

    def _more_votes(self, b: frozenset[str], lead: int) -> bool:
        """Ask more votes of ``b`` until one outcome leads by ``lead`` (False when it already does or cannot)."""
        v = self.ballot.votes.get(b, [])
        if abs(v.count(Outcome.FAIL) - v.count(Outcome.PASS)) >= lead or len(v) >= self.ballot.max_votes:
            return False
        self.ballot.extra[b] = lead - self.ballot.margin(b) + self.ballot.extra.get(b, 0)
        self.known.pop(b, None)
        self._ask([frozenset(), self.all])
        return True

    def _to_confirm(self) -> list[frozenset[str]]:
        if self.confirm != "all":
            return self._evidence
        return [b for b in sorted(self._consumed, key=sorted) if b in self.known and b not in (frozenset(), self.all)]

    def _restart(self) -> None:
        self._confirming, self._revoting = None, False
        self._gen = self.plan()
        self._asked = []
        self._consumed = {frozenset(), self.all}
        self._advance(None)

    def _advance(self, answers: list[Outcome] | None) -> None:
        while True:
            try:
                asked = self._gen.send(answers) if answers is not None else next(self._gen)
            except StopIteration as stop:
                self._asked = []
                self._conclude(stop.value or self.finish([]))
                return
            self._ask(asked)
            self._race = self.cancel and isinstance(asked, First)
            if any(a not in self.known for a in self._asked):
                if self._race_won():  # decided by results already known: the rest is never launched
                    self._settle_race()
                return
            answers = [self.known[a] for a in self._asked]

    def _conclude(self, result: StrategyResult) -> None:
        """Accept the plan's answer, or ask more votes of its least sure knob set and replay."""
        if self.confirm and not self.ballot.noisy and result.result is Result.CULPRITS:
            todo = [b for b in self._to_confirm() if len(self.ballot.votes.get(b, [])) < 2]
            if todo and self.confirm != "all":  # the most disputed first (one per slot), the rest while needed
                todo = confirm_next([k.name for k in self.knobs], self.ballot.votes,
                                    [[k.name for k in g] for g in result.groups], todo, self.target,
                                    first=len(todo) == len(self._to_confirm()), slots=self.slots)
            if todo:  # one more run of each, on another seed: a disagreement switches to noisy mode and replays
                for b in todo:
                    self.ballot.extra[b] = 1
                    self.known.pop(b, None)
                self._confirming = result
                self._ask(todo)
                return
        # below the target: a vote where competitors dispute the answer most, and replay (posterior.py); quiet and
        # unconfirmed (oat, --no-confirm) pays for no votes: the answer is named with its honest confidence
        post = answer_posterior([k.name for k in self.knobs], self.ballot.votes,
                                [[k.name for k in g] for g in result.groups], self.flips) if result.groups else None
        if post is not None and post.confidence < self.target and (self.ballot.noisy or self.confirm):
            weak = post.most_doubted(lambda b: len(self.ballot.votes[b]) < self.ballot.max_votes and
                                     self.ballot.decided(b) is not Outcome.UNRESOLVED)
            if weak is not None:
                while self.ballot.decided(weak) is not None and len(self.ballot.votes[weak]) < self.ballot.max_votes:
                    self.ballot.extra[weak] = self.ballot.extra.get(weak, 0) + 1
                self.known.pop(weak, None)
                self._revoting = True
                self._ask([weak])
                return
            if result.result is Result.CULPRITS:
                result.result = Result.NOT_CONFIDENT
                result.explanation = (f"best guess: {result.explanation}, at confidence {post.confidence:.0%} below "
                                      f"the {self.target:.0%} target")
        if post is not None:
            result.confidence, result.knob_confidence, result.assumed_flip = post.confidence, post.knobs, post.flip
        self._result = result


def _not(verdict: str, fallback: Kind = Kind.ERROR) -> str:
    """A representative verdict for an endpoint whose majority was not what the check wants."""
    return verdict if outcome(verdict) is not Outcome.PASS else str(fallback)
