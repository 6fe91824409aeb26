"""Who proposes trials: ask/tell strategies (no Ray, no MLflow here).

A strategy is asked for trials (``suggest``), told each verdict
(``on_trial_complete``) or that a trial could not run (``skip``), and reports
``done``, its ``result`` and the order its rungs read best in (``order``). A
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
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from .knobs import Knob
from .verdicts import FAILURES, Kind, Outcome, Result, outcome


@dataclass(frozen=True)
class TrialSpec:
    name: str
    reverted: tuple[Knob, ...] = ()
    role: str = "revert"  # "endpoint", "revert", "apply", "group-revert", "group-apply", "repair"

    def role_text(self, total: int) -> str:
        """The rung's role in words: endpoint, revert, apply, revert/apply a group of k knobs."""
        k = len(self.reverted)
        if self.role == "group-revert":
            return f"revert a group of {k} knobs"
        if self.role == "group-apply":
            return f"apply a group of {total - k} knobs"
        return self.role


@dataclass
class StrategyResult:
    culprits: list[Knob] = field(default_factory=list)
    stopped: str | None = None  # why the campaign stopped early, if it did
    result: Result = Result.NO_CULPRIT
    groups: list[tuple[Knob, ...]] = field(default_factory=list)
    """Minimal failure-inducing knob sets: one knob that breaks training alone, or knobs that break it only together."""
    structure: str | None = None
    explanation: str | None = None
    tried: str | None = None


class Strategy(Protocol):
    name: str
    good: TrialSpec
    bad: TrialSpec

    def suggest(self) -> list[TrialSpec]: ...

    def on_trial_complete(self, trial: TrialSpec, verdict: str) -> None: ...

    def skip(self, trial: TrialSpec) -> None: ...

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


def structure(groups: list[tuple[Knob, ...]]) -> tuple[str | None, str | None]:
    """A label and a sentence for minimal failure-inducing sets."""
    if not groups:
        return None, None
    if len(groups) == 1 and len(groups[0]) == 1:
        return "single", f"{groups[0][0].name} alone breaks training"
    if len(groups) == 1:
        return "only together", f"{_names(groups[0])} break training only together (reverting any one fixes it)"
    if all(len(g) == 1 for g in groups):
        return "either alone breaks training", (f"each of {_names([g[0] for g in groups])} alone breaks training "
                                                "(all must be reverted)")
    parts = [f"{g[0].name} alone" if len(g) == 1 else f"{_names(g)} only together" for g in groups]
    return "mixed", "independent causes: " + "; ".join(parts) + " (revert one knob of each)"


def _names(knobs: Iterable[Knob]) -> str:
    names = [k.name for k in knobs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


Plan = Generator[list[frozenset[str]], list[Outcome], "StrategyResult | None"]


class Search:
    """Endpoints, bookkeeping and the generator driver shared by every strategy."""

    name = "search"

    def __init__(self, knobs: list[Knob], slots: int = 1):
        self.knobs = list(knobs)
        self.slots = max(1, slots)
        self.by_name = {k.name: k for k in self.knobs}
        self.all = frozenset(self.by_name)
        self.good = TrialSpec("good", tuple(self.knobs), "endpoint")
        self.bad = TrialSpec("bad", (), "endpoint")
        self.known: dict[frozenset[str], Outcome] = {}
        self.verdicts: dict[str, str] = {}
        self.trials = 0  # trials told (not counting skips), for the benchmarks
        self._order: list[str] = []
        self._ready: list[TrialSpec] = []
        self._asked: list[frozenset[str]] = []
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
        if "good" not in self._order:
            self._ready += [self.good, self.bad]
            self._order += ["good", "bad"]
        elif self._gen is None and {"good", "bad"} <= set(self.verdicts) and not self._stopped:
            self._gen = self.plan()
            self._advance(None)
        out, self._ready = self._ready, []
        return out

    def on_trial_complete(self, trial: TrialSpec, verdict: str) -> None:
        self.verdicts[trial.name] = verdict
        self.trials += 1
        self._learn(trial, outcome(verdict))

    def skip(self, trial: TrialSpec) -> None:
        """A trial that could not run (its toggled recipe is invalid): nothing learned, never a culprit."""
        self.verdicts[trial.name] = Kind.INVALID
        if trial.name not in self._order:
            self._order.append(trial.name)
        self._learn(trial, Outcome.UNRESOLVED)

    @property
    def done(self) -> bool:
        return self._stopped is not None or self._result is not None

    def result(self) -> StrategyResult:
        if self._stopped:
            return StrategyResult([], self._stopped[1], self._stopped[0], tried=self.tried())
        return self._result or StrategyResult(result=Result.NOT_FINISHED, tried=self.tried())

    def order(self) -> list[str]:
        return list(self._order)

    # -- helpers for plans --------------------------------------------------------------------------------------

    def spec(self, bad_side: frozenset[str]) -> TrialSpec:
        """The trial that leaves ``bad_side`` at bad and reverts every other knob to good."""
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
            return TrialSpec(_group_name("revert", rev), reverted, "group-revert")
        return TrialSpec(_group_name("apply", app), reverted, "group-apply")

    def finish(self, groups: list[frozenset[str]], tried: str | None = None,
               result: Result | None = None, explanation: str | None = None) -> StrategyResult:
        """A result from minimal failing sets (knob names), in knob order."""
        idx = [k.name for k in self.knobs].index
        ordered = [tuple(self.by_name[n] for n in sorted(g, key=idx)) for g in groups]
        ordered.sort(key=lambda g: idx(g[0].name))
        culprits = [k for k in self.knobs if any(k in g for g in ordered)]
        label, text = structure(ordered)
        if result is None:
            result = Result.CULPRITS if culprits else Result.NO_CULPRIT
        return StrategyResult(culprits, None, result, ordered, label, explanation or text, tried or self.tried())

    def tried(self) -> str:
        told = [n for n in self._order if n in self.verdicts]
        return f"{len(told)} trials: " + ", ".join(f"{n} ({self.verdicts[n]})" for n in told)

    # -- the driver ---------------------------------------------------------------------------------------------

    def _learn(self, trial: TrialSpec, out: Outcome) -> None:
        bad_side = self.all - {k.name for k in trial.reverted}
        self.known[bad_side] = out
        if trial.role == "endpoint" and {"good", "bad"} <= set(self.verdicts) and self._gen is None:
            self._stopped = check_endpoints(self.verdicts["good"], self.verdicts["bad"])
        if self._gen is not None and self._asked and all(a in self.known for a in self._asked):
            self._advance([self.known[a] for a in self._asked])

    def _advance(self, answers: list[Outcome] | None) -> None:
        while True:
            try:
                asked = self._gen.send(answers) if answers is not None else next(self._gen)
            except StopIteration as stop:
                self._result = stop.value or self.finish([])
                self._asked = []
                return
            self._asked = [frozenset(a) for a in asked]
            missing = [a for a in dict.fromkeys(self._asked) if a not in self.known]
            if missing:
                for a in missing:
                    spec = self.spec(a)
                    if spec.name not in self._order:
                        self._order.append(spec.name)
                        self._ready.append(spec)
                return
            answers = [self.known[a] for a in self._asked]


def _group_name(verb: str, names: list[str]) -> str:
    text = ", ".join(names)
    if len(text) <= 100:
        return f"{verb} {len(names)} knobs: {text}"
    digest = hashlib.sha1(text.encode()).hexdigest()[:6]
    return f"{verb} {len(names)} knobs: {', '.join(names[:3])} +{len(names) - 3} more #{digest}"


class OneAtATime(Search):
    """Both endpoints, then every knob reverted alone from bad, all at once.

    Right when each culprit alone can be reverted to fix the run (a single
    culprit, or knobs that fail only together); N knobs cost N+2 trials. When no
    lone revert fixes it (independent culprits) it says so instead of naming anyone.
    """

    name = "one-at-a-time"

    def __init__(self, knobs: list[Knob], slots: int = 1):
        super().__init__(knobs, slots)
        self.reverts = [self.spec(self.all - {k.name}) for k in self.knobs]

    def plan(self) -> Plan:
        sets = [self.all - {k.name} for k in self.knobs]
        outs = yield sets
        fixes = frozenset(k.name for k, o in zip(self.knobs, outs, strict=True) if o is Outcome.PASS)
        if not fixes:
            return self.finish([], explanation="no single knob explains the failure: reverting any one of them "
                                                "alone still fails (try --strategy dd for independent causes)")
        return self.finish([fixes])


REGISTRY = {
    "oat": "bisector.strategy:OneAtATime",
    "split": "bisector.splitting:GroupSplit",
    "dd": "bisector.dd:DeltaDebug",
    "auto": "bisector.auto:Auto",
}
ALIASES = {"one-at-a-time": "oat"}


def names() -> list[str]:
    return list(REGISTRY)


def make(name: str, knobs: list[Knob], slots: int = 1) -> Search:
    """A strategy by its registry name (``oat``, ``split``, ``dd``, ``auto``)."""
    import importlib

    key = ALIASES.get(name, name)
    if key not in REGISTRY:
        raise LookupError(f"unknown strategy {name!r}; expected one of {names()}")
    module, cls = REGISTRY[key].split(":")
    return getattr(importlib.import_module(module), cls)(knobs, slots)
