"""The elimination ladder: one rung per trial, rendered for people and machines.

Pure data and formatting; the tracker stores these renderings and the CLI
prints them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .knobs import Knob


@dataclass
class Rung:
    name: str
    changed: dict[str, dict[str, Any]]
    verdict: str
    best_step: int | None = None
    best_value: float | None = None
    climb_start_step: int | None = None
    detected_at_step: int | None = None
    steps_run: int = 0
    horizon: int | None = None
    wall_s: float = 0.0
    run_id: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Ladder:
    good_path: str
    bad_path: str
    strategy: str
    rungs: list[Rung] = field(default_factory=list)
    culprits: list[Knob] = field(default_factory=list)
    stopped: str | None = None

    def culprit_line(self) -> str:
        if self.stopped:
            return f"No culprit: {self.stopped}."
        if not self.culprits:
            return "No single knob explains the failure: reverting any one of them alone still fails."
        names = ", ".join(f"{k.name} ({_pair(k)})" for k in self.culprits)
        return f"Culprit{'s' if len(self.culprits) > 1 else ''}: {names}"

    def rows(self) -> list[list[str]]:
        return [
            [r.name, _changed(r, len(self.rungs)), _num(r.best_value), _step(r.climb_start_step),
             _step(r.detected_at_step), f"{r.steps_run}" + (f"/{r.horizon}" if r.horizon else ""), r.verdict]
            for r in self.rungs
        ]

    HEADER = ["Run", "What changed", "Best loss before climb", "Climb started at", "Detected at", "Steps", "Verdict"]

    def markdown(self) -> str:
        lines = [
            f"# Ladder: {self.good_path} -> {self.bad_path}", "",
            f"Strategy: {self.strategy}", "",
            "| " + " | ".join(self.HEADER) + " |",
            "|" + "---|" * len(self.HEADER),
        ]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in self.rows()]
        return "\n".join(lines + ["", self.culprit_line(), ""])

    def to_json(self) -> dict[str, Any]:
        return {
            "good": self.good_path, "bad": self.bad_path, "strategy": self.strategy,
            "culprits": [{"path": k.name, "good": _one(k.good), "bad": _one(k.bad)} for k in self.culprits],
            "stopped": self.stopped,
            "ladder": [r.to_dict() for r in self.rungs],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, default=str)


def _one(values: tuple) -> Any:
    return values[0] if len(values) == 1 else list(values)


def _pair(k: Knob) -> str:
    return f"good {_one(k.good)!r}, bad {_one(k.bad)!r}"


def _changed(r: Rung, n_rungs: int) -> str:
    if r.name == "bad":
        return "nothing (the bad recipe)"
    if r.name == "good":
        return f"all {len(r.changed)} knobs (the good recipe)"
    return "; ".join(_change(p, v["bad"], v["good"]) for p, v in r.changed.items())


def _change(path: str, old: Any, new: Any) -> str:
    """``path: old -> new``; for two dicts only the keys that differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = [k for k in {**old, **new} if old.get(k) != new.get(k)]
        return ", ".join(_change(f"{path}.{k}", old.get(k), new.get(k)) for k in keys)
    return f"{path}: {old!r} -> {new!r}"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def _step(v: int | None) -> str:
    return "-" if v is None else str(v)
