"""Who proposes trials: ask/tell strategies (no Ray, no MLflow here).

A strategy is asked for trials (``suggest``), told each verdict
(``on_trial_complete``), and reports ``done`` and its ``result``. A trial is
a set of knobs set to their *good* value on top of the bad recipe; the good
endpoint reverts every knob and the bad endpoint none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .detector import FAILURES, STABLE
from .knobs import Knob


@dataclass(frozen=True)
class TrialSpec:
    name: str
    reverted: tuple[Knob, ...] = ()
    role: str = "revert"  # "endpoint" or "revert"


@dataclass
class StrategyResult:
    culprits: list[Knob] = field(default_factory=list)
    stopped: str | None = None  # why the campaign stopped early, if it did


class Strategy(Protocol):
    name: str

    def suggest(self) -> list[TrialSpec]: ...

    def on_trial_complete(self, trial: TrialSpec, verdict: str) -> None: ...

    @property
    def done(self) -> bool: ...

    def result(self) -> StrategyResult: ...


class OneAtATime:
    """Run both endpoints, then revert each knob alone from bad, all at once.

    A knob whose revert turns the failure into ``stable`` is a culprit. If good
    is not stable or bad does not fail, there is nothing to explain: stop.
    """

    name = "one-at-a-time"

    def __init__(self, knobs: list[Knob]):
        self.knobs = list(knobs)
        self.good = TrialSpec("good", tuple(self.knobs), "endpoint")
        self.bad = TrialSpec("bad", (), "endpoint")
        self.reverts = [TrialSpec(f"revert {k.name}", (k,)) for k in self.knobs]
        self._verdicts: dict[str, str] = {}
        self._issued: set[str] = set()
        self._stopped: str | None = None

    def _issue(self, specs: list[TrialSpec]) -> list[TrialSpec]:
        fresh = [s for s in specs if s.name not in self._issued]
        self._issued.update(s.name for s in fresh)
        return fresh

    def suggest(self) -> list[TrialSpec]:
        if self.done:
            return []
        if not {"good", "bad"} <= set(self._verdicts):
            return self._issue([self.good, self.bad])
        return self._issue(self.reverts)

    def on_trial_complete(self, trial: TrialSpec, verdict: str) -> None:
        self._verdicts[trial.name] = verdict
        if {"good", "bad"} <= set(self._verdicts) and self._stopped is None and len(self._verdicts) == 2:
            good, bad = self._verdicts["good"], self._verdicts["bad"]
            if good != STABLE:
                self._stopped = (
                    f"the good recipe is not stable (verdict {good}): a bisection needs a known-good "
                    "endpoint; fix or shorten the good recipe first"
                )
            elif bad not in FAILURES:
                self._stopped = (
                    f"the bad recipe does not fail within the smoke budget (verdict {bad}): "
                    "raise its train steps or check that it really fails"
                )

    def skip(self, trial: TrialSpec) -> None:
        """A trial that could not run (e.g. its toggled recipe is invalid)."""
        self._issued.add(trial.name)
        self._verdicts[trial.name] = "invalid"

    @property
    def done(self) -> bool:
        if self._stopped:
            return True
        return all(s.name in self._verdicts for s in [self.good, self.bad, *self.reverts])

    def result(self) -> StrategyResult:
        if self._stopped:
            return StrategyResult([], self._stopped)
        culprits = [s.reverted[0] for s in self.reverts if self._verdicts.get(s.name) == STABLE]
        return StrategyResult(culprits, None)
