"""The shape of a search's questions and answers: a trial to run, and the result in words.

``TrialSpec`` is what a strategy asks for (knobs reverted to good on top of
bad, a role, a seed offset); ``StrategyResult`` is its answer, with the
minimal failure-inducing sets named as a structure ("single", "only
together", "either alone breaks training", "mixed") and a confidence per
answer and per knob. Kept apart from ``strategy.py`` so the search driver
stays readable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from .knobs import Knob
from .verdicts import Result


@dataclass(frozen=True)
class TrialSpec:
    name: str
    reverted: tuple[Knob, ...] = ()
    role: str = "revert"  # "endpoint", "revert", "apply", "group-revert", "group-apply", "repair"
    seed: int = 0
    """Offset from the campaign's seed: a repeat of the same knob set on another seed."""

    def role_text(self, total: int, base_seed: int | None = None) -> str:
        """The rung's role in words: endpoint, revert, apply, revert/apply a group of k knobs, repeat on seed s."""
        k = len(self.reverted)
        text = self.role
        if self.role == "group-revert":
            text = f"revert a group of {k} knobs"
        elif self.role == "group-apply":
            text = f"apply a group of {total - k} knobs"
        if self.seed:
            where = f"seed {base_seed + self.seed}" if base_seed is not None else f"seed +{self.seed}"
            text += f", repeat on {where}"
        return text


@dataclass(frozen=True)
class Moot:
    """A trial in flight that a search no longer needs, and the trial whose result made it so."""

    trial: TrialSpec
    by: str


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
    confidence: float | None = None
    """How likely the answer is right against every competing structure, the flip rate integrated out (posterior.py)."""
    notes: list[str] = field(default_factory=list)
    knob_confidence: dict[str, float] = field(default_factory=dict)
    """Per culprit knob: how likely it is one of the culprits."""
    assumed_flip: float | None = None
    """The flip probability behind the confidence: its posterior mean, or the one declared with --noise."""


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


def group_name(verb: str, names: list[str]) -> str:
    text = ", ".join(names)
    if len(text) <= 100:
        return f"{verb} {len(names)} knobs: {text}"
    digest = hashlib.sha1(text.encode()).hexdigest()[:6]
    return f"{verb} {len(names)} knobs: {', '.join(names[:3])} +{len(names) - 3} more #{digest}"
