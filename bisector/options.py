"""What a campaign is asked (``Options``, one field per CLI option) and what it returns (``Outcome``:
the ladder, where it was recorded, and the exit code each answer maps to)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .ladder import Ladder
from .scheduler import Resources
from .verdicts import Result

EXIT_CULPRIT, EXIT_NO_CULPRIT, EXIT_BAD_INPUT, EXIT_NOT_FINISHED = 0, 1, 2, 3
EXIT_BAD_DOES_NOT_FAIL, EXIT_GOOD_NOT_STABLE, EXIT_NOT_CONFIDENT = 4, 5, 6
EXITS = {Result.CULPRITS: EXIT_CULPRIT, Result.NO_CULPRIT: EXIT_NO_CULPRIT, Result.NOT_FINISHED: EXIT_NOT_FINISHED,
         Result.BAD_DOES_NOT_FAIL: EXIT_BAD_DOES_NOT_FAIL, Result.GOOD_NOT_STABLE: EXIT_GOOD_NOT_STABLE,
         Result.NOT_CONFIDENT: EXIT_NOT_CONFIDENT}


@dataclass
class Options:
    groups: list[str] = field(default_factory=list)
    seed: int | None = None
    address: str | None = None
    resources: Resources = Resources()
    tracking_uri: str | None = None
    experiment: str = "bisector"
    workdir: str = ".bisector"
    device: str | None = None
    retries: int = 2
    max_trials: int | None = None
    max_hours: float | None = None
    early_stop: bool = True
    resume: str | None = None
    probe: bool = True
    probe_batches: int = 8
    repair: bool = True
    min_val: float | None = None
    max_climb: float = 0.2
    class_floor: float = 0.5
    strategy: str = "auto"
    healthy_within: float = 0.5
    """A stable trial fixes the failure only if its best loss is within this share of good's descent of good's."""
    repeats: int = 1
    noise: float = 0.0
    target: float = 0.95
    confirm: bool | str | None = None
    """None: the strategy's default; False; True (the evidence and a stop); "all" (every knob set used)."""
    stable_multiple: float | None = 3.0
    """Adaptive horizon: a trial stable for this multiple of the step where bad failed is called stable
    (None: every trial to its horizon, ``--full-horizon``)."""


@dataclass
class Outcome:
    ladder: Ladder
    parent_run_id: str | None
    tracking_uri: str | None
    wall_s: float
    first_trial_started_at: float | None = None
    landing: list[str] = field(default_factory=list)
    """Where to open the campaign in the MLflow UI (printed at the end)."""

    @property
    def exit_code(self) -> int:
        if self.ladder.not_finished:
            return EXIT_NOT_FINISHED
        return EXITS.get(self.ladder.result, EXIT_CULPRIT if self.ladder.culprits else EXIT_NO_CULPRIT)

    def to_json(self) -> dict[str, Any]:
        return self.ladder.to_json() | {
            "parent_run_id": self.parent_run_id, "tracking_uri": self.tracking_uri, "wall_s": round(self.wall_s, 1),
            "first_trial_started_at": self.first_trial_started_at,
        }
