"""The elimination ladder: one rung per trial, rendered for people and machines.

Pure data, its JSON and the words every view shares (rows, the culprit and cost
lines); the views (``views/``) render it, the tracker stores the renderings (and
reads ``ladder.json`` back for ``bisector ladder``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .knobs import Knob
from .verdicts import Kind, Result


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
    device_seconds: float = 0.0
    device_kind: str = "CPU"
    run_id: str | None = None
    key: str | None = None
    reused: bool = False
    retries: int = 0
    reproduce: str | None = None
    out_dir: str | None = None
    gates: dict[str, Any] | None = None
    note: str | None = None
    role: str | None = None
    """What the rung is for: endpoint, revert, apply, revert/apply a group of k knobs, repair."""
    tasks: dict[str, float] | None = None
    """A multi-task runner's relative improvement per task loss (``tasks.py``)."""
    stagnant_task: str | None = None
    """The task loss that stagnated while the others learned (verdict ``stagnant``)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def steps_saved(self) -> int:
        """Steps early stopping saved against training to the horizon."""
        return max(0, (self.horizon or 0) - self.steps_run) if not self.reused else 0


@dataclass
class Ladder:
    good_path: str
    bad_path: str
    strategy: str
    rungs: list[Rung] = field(default_factory=list)
    culprits: list[Knob] = field(default_factory=list)
    stopped: str | None = None
    not_finished: str | None = None
    wall_s: float = 0.0
    probe: dict[str, Any] | None = None
    result: Result | None = None
    structure: str | None = None
    groups: list[list[str]] = field(default_factory=list)
    explanation: str | None = None
    tried: str | None = None
    confidence: float | None = None
    notes: list[str] = field(default_factory=list)
    knob_confidence: dict[str, float] = field(default_factory=dict)
    assumed_flip: float | None = None

    HEADER = ["Run", "Role", "What changed", "Best loss before climb", "Climb started at", "Detected at", "Steps",
              "Verdict"]

    def culprit_line(self) -> str:
        if self.not_finished:  # the answer so far: a best guess, not proven, as when not confident
            return f"Not finished: {self.not_finished_text()}." + (f" Tried {self.tried}." if self.tried else "")
        if self.stopped:
            return f"No culprit: {self.stopped}."
        if self.result is Result.NOT_CONFIDENT:
            return f"Not confident: {self.explanation or 'the trials disagree'}. Tried {self.tried}."
        if not self.culprits:
            why = self.explanation or "no single knob explains the failure: reverting any one of them alone still fails"
            return f"No culprit explains it: {why}." + (f" Tried {self.tried}." if self.tried else "")
        names = ", ".join(f"{k.name} ({_pair(k)}{self._knob_conf(k)})" for k in self.culprits)
        line = f"Culprit{'s' if len(self.culprits) > 1 else ''}: {names}"
        if self.structure:
            line += f"\nStructure: {self.structure}: {self.explanation}"
        if self.confidence is not None:
            line += f"\nConfidence: {self.confidence:.1%}" + _basis(self.assumed_flip)
        return line + "".join(f"\nNote: {n}" for n in self.notes)

    def not_finished_text(self) -> str:
        """``budget reached (--max-trials 6); best guess: k03 alone breaks training (confidence 62%, not proven)``."""
        guess = f"; {self.explanation}" if self.culprits and self.explanation else ""
        return f"{self.not_finished}{guess}"

    def _knob_conf(self, k: Knob) -> str:
        c = self.knob_confidence.get(k.name)
        return "" if c is None else f"; confidence {c:.1%}"

    def totals(self) -> dict[str, Any]:
        ran = [r for r in self.rungs if not r.reused and r.verdict != Kind.INVALID]
        return {
            "trials_run": len(ran), "trials_reused": sum(r.reused for r in self.rungs),
            "trials_cancelled": sum(r.verdict == Kind.CANCELLED for r in ran),
            "steps_run": sum(r.steps_run for r in ran), "steps_saved": sum(r.steps_saved for r in ran),
            "trial_seconds": round(sum(r.wall_s for r in ran), 1),
            "device_seconds": round(sum(r.device_seconds for r in ran), 1),
            "device_kind": ran[0].device_kind if ran else "CPU", "wall_s": round(self.wall_s, 1),
        }

    def cost_line(self) -> str:
        t = self.totals()
        cancelled = f", {t['trials_cancelled']} cancelled as moot" if t["trials_cancelled"] else ""
        return (f"Cost: {t['trials_run']} trials run ({t['trials_reused']} reused{cancelled}), {t['steps_run']} steps, "
                f"{t['device_seconds']:.0f} {t['device_kind']}-seconds, {t['wall_s']:.0f} s wall; "
                f"early stopping saved {t['steps_saved']} steps")

    def rows(self) -> list[list[str]]:
        return [
            [r.name + (" (reused)" if r.reused else ""), r.role or "-", _changed(r), _num(r.best_value),
             _step(r.climb_start_step), _step(r.detected_at_step),
             f"{r.steps_run}" + (f"/{r.horizon}" if r.horizon else ""),
             (r.note if r.verdict == Kind.CANCELLED and r.note else str(r.verdict))
             + (f" ({r.stagnant_task})" if r.stagnant_task else "")]
            for r in self.rungs
        ]

    def probe_rows(self) -> list[list[str]]:
        rows = []
        for ck in (self.probe or {}).get("checkpoints", []):
            terms = ck["terms"]
            primary = next(iter(terms))
            cos = {(p["a"], p["b"]): p["cosine"] for p in ck["pairs"]}
            for t, v in terms.items():
                c = cos.get((primary, t), cos.get((t, primary)))
                rows.append([ck["label"], t, f"{v['norm_median']:.3g} ({v['norm_min']:.3g}-{v['norm_max']:.3g})",
                             f"{v['ratio_to_primary']:.3g}", f"{v['weighted_share']:.0%}",
                             f"{v['projection_share']:+.0%}", "-" if c is None else f"{c:+.2f}"])
        return rows

    def repair_line(self) -> str | None:
        rung = next((r for r in self.rungs if r.name.startswith("repair")), None)
        if rung is None:
            return None
        gates = rung.gates or {}
        passed = [g for g, v in gates.items() if v.get("passed")]
        failed = [g for g, v in gates.items() if not v.get("passed")]
        verdict = "passes" if not failed and rung.verdict == Kind.STABLE else "fails"
        detail = ", ".join(f"{g} {'passed' if v.get('passed') else 'FAILED'} ({_gate(v.get('value'))})"
                           for g, v in gates.items())
        return (f"Repair: {rung.name} ({_changed(rung)}) {verdict}: verdict {rung.verdict}; gates: {detail}"
                + (f"; failed: {', '.join(failed)}" if failed else f"; all {len(passed)} passed"))

    def to_json(self) -> dict[str, Any]:
        return {
            "good": self.good_path, "bad": self.bad_path, "strategy": self.strategy,
            "culprits": [{"path": k.name, "good": _one(k.good), "bad": _one(k.bad),
                          "confidence": self.knob_confidence.get(k.name)} for k in self.culprits],
            "stopped": self.stopped, "not_finished": self.not_finished,
            "result": None if self.result is None else str(self.result), "structure": self.structure,
            "groups": self.groups, "explanation": self.explanation, "tried": self.tried,
            "confidence": self.confidence, "notes": self.notes, "knob_confidence": self.knob_confidence,
            "assumed_flip": self.assumed_flip,
            "ladder": [r.to_dict() for r in self.rungs], "totals": self.totals(), "probe": self.probe,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, default=str)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ladder:
        names = {f.name for f in fields(Rung)}
        rungs = [Rung(**{k: v for k, v in r.items() if k in names}) for r in data.get("ladder", [])]
        culprits = []
        for c in data.get("culprits", []):
            paths = tuple(c["path"].split("+"))
            many = len(paths) > 1
            culprits.append(Knob(paths, tuple(c["good"]) if many else (c["good"],),
                                 tuple(c["bad"]) if many else (c["bad"],)))
        result = Result(data["result"]) if data.get("result") else None
        return cls(data["good"], data["bad"], data["strategy"], rungs, culprits, data.get("stopped"),
                   data.get("not_finished"), (data.get("totals") or {}).get("wall_s", 0.0), data.get("probe"),
                   result, data.get("structure"), data.get("groups") or [], data.get("explanation"),
                   data.get("tried"), data.get("confidence"), data.get("notes") or [],
                   data.get("knob_confidence") or {}, data.get("assumed_flip"))


PROBE_HEADER = ["Checkpoint", "Term", "|g| median (min-max)", "Ratio to primary", "Weighted share",
                "Projection share", "Cos vs primary"]


def _gate(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return ", ".join(v) if isinstance(v, list) and v else ("none" if isinstance(v, list) else str(v))


def _one(values: tuple) -> Any:
    return values[0] if len(values) == 1 else list(values)


def _basis(flip: float | None) -> str:
    """What a confidence rests on: every competing structure, and the flip rate (estimated, or --noise's)."""
    if flip is None:
        return ""
    return (f" (against every structure of up to three culprits; a verdict flips with the seed {flip:.1%} of the "
            "time, estimated from the votes unless declared with --noise)")


def _pair(k: Knob) -> str:
    return f"good {_one(k.good)!r}, bad {_one(k.bad)!r}"


def _changed(r: Rung) -> str:
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
