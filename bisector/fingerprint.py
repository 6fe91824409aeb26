"""The verdict on a metrics log people already have, with a sentence of evidence.

Each metric is fed, in step order, to the same streaming detectors trials
use: ``ClimbDetector`` for a metric that should fall (losses),
``RiseDetector`` for one that should rise (F1, accuracy). Given several loss
metrics, the multi-task check compares how much each improved: a task that
improves by under ``stagnant_below`` while the others improve by at least
``others_above`` is ``stagnant``; GradNorm's relative training rate
``r_i = (L_i(t)/L_i(0)) / mean_j(L_j(t)/L_j(0))`` is reported per task.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from .detector import (
    COLLAPSED,
    DIVERGED,
    FLAT,
    NAN,
    OSCILLATING,
    STABLE,
    STAGNANT,
    ClimbDetector,
    RiseDetector,
    Verdict,
)
from .metrics_log import MetricsLog

RISING = re.compile(r"(f1|acc|accuracy|auc|precision|recall|bleu|rouge|map|iou|score|reward)", re.I)
SEVERITY_ORDER = [NAN, DIVERGED, COLLAPSED, STAGNANT, OSCILLATING, FLAT, STABLE]


def rising(metric: str) -> bool:
    """Whether a metric should rise, judged by its name (losses fall)."""
    return bool(RISING.search(metric)) and "loss" not in metric.lower()


@dataclass
class MetricReport:
    metric: str
    direction: str
    verdict: Verdict
    improvement: float | None = None
    training_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "direction": self.direction, **asdict(self.verdict),
                "improvement": self.improvement, "training_rate": self.training_rate}


@dataclass
class Fingerprint:
    verdict: str
    metric: str
    best_step: int | None
    best_value: float | None
    climb_start_step: int | None
    detected_at_step: int | None
    evidence: str
    source: str = ""
    metrics: list[MetricReport] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("verdict", "metric", "best_step", "best_value", "climb_start_step",
                                             "detected_at_step", "evidence")}
        if len(self.metrics) > 1:
            out["metrics"] = [m.to_dict() for m in self.metrics]
        return out


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def _above(last: float | None, start: float | None) -> bool:
    return last is not None and start is not None and last == last and last > start


def _back(severity: float | None) -> str | None:
    """The share of the way back, or None where the end is at or under the best (whose floor sits a few
    noises above the luckiest point: such an end read "-1% of the way back")."""
    return f"{severity:.0%} of the way back" if severity is not None and severity >= 0.005 else None


def evidence(metric: str, v: Verdict, swings: int = 0, up: bool = False, at_end: bool = False) -> str:
    if v.kind == NAN:
        return f"{metric} became non-finite ({v.last_value}) at step {v.detected_at_step}"
    if v.kind == DIVERGED and at_end and v.best_value is not None and _above(v.last_value, v.start_value):
        back = f" and ended {_back(v.severity)} to it" if _back(v.severity) else ""
        return (f"{metric} fell from {_g(v.start_value)} to {_g(v.best_value)} at step {v.best_step}{back}; its last "
                f"value, {_g(v.last_value)} at step {v.last_step}, is above where it started: a run last seen above "
                "its start is not stable")
    if v.kind == DIVERGED and at_end and v.severity is not None and v.best_value is not None:
        return (f"{metric} fell from {_g(v.start_value)} to {_g(v.best_value)} at step {v.best_step} and ended "
                f"{v.severity:.0%} of the way back to the start (last {_g(v.last_value)} at step {v.last_step}): "
                "a run that ends that far above its best is not stable")
    if v.kind == DIVERGED and v.best_value is not None and v.start_value is not None and v.severity is not None:
        return (f"{metric} rose from {_g(v.best_value)} at step {v.best_step} to {_g(v.last_value)} at step "
                f"{v.detected_at_step}, {v.severity:.0%} of the way back to the start ({_g(v.start_value)}), "
                "and still rising")
    if v.kind == DIVERGED:
        return (f"{metric} jumped at the phase switch (step {v.climb_start_step}) and never came down: "
                f"{_g(v.start_value)} after the switch, best {_g(v.best_value)}, last {_g(v.last_value)}")
    if v.kind == COLLAPSED:
        return (f"{metric} peaked at {_g(v.best_value)} at step {v.best_step} and fell to {_g(v.last_value)} "
                f"at step {v.detected_at_step}, {v.severity:.0%} of the way back to its start ({_g(v.start_value)})")
    if v.kind == FLAT:
        drop = (v.start_value - v.best_value) / abs(v.start_value) if v.start_value else 0.0
        below = f"{drop:.1%} below that" if drop > 0 else "no lower"
        return (f"{metric} never descended: it started at {_g(v.start_value)} and its best, {_g(v.best_value)}, "
                f"is {below} over {v.points} points")
    if v.kind == OSCILLATING:
        return f"{metric} swung {swings} times by more than 20% around its running mean with no downward trend"
    if up and v.best_value is not None:
        return (f"{metric} rose from {_g(v.start_value)} to its peak {_g(v.best_value)} at step {v.best_step} "
                f"and ended at {_g(v.last_value)} at step {v.last_step}")
    if v.best_value is not None and v.start_value is not None:
        back = "" if v.severity is None else f", {_back(v.severity) or 'at its best level'}"
        return (f"{metric} fell from {_g(v.start_value)} to {_g(v.best_value)} at step {v.best_step} and ended at "
                f"{_g(v.last_value)} at step {v.last_step}{back}")
    return f"{metric}: {v.points} points, nothing to judge"


def fingerprint(
    log: MetricsLog, metrics: list[str] | None = None, phase_switch: int | None = None,
    stagnant_below: float = 0.05, others_above: float = 0.10,
) -> Fingerprint:
    names = list(dict.fromkeys(metrics or [log.default_metric()]))
    reports: list[MetricReport] = []
    detectors = {}
    for name in names:
        series = log.get(name)
        up = rising(name)
        det = RiseDetector() if up else ClimbDetector(phase_switch=phase_switch)
        update = det.update
        for step, value in series:
            if update(step, value).final:
                break
        detectors[name] = det
        reports.append(MetricReport(name, "rising" if up else "falling", det.finish()))
    losses = [r for r in reports if r.direction == "falling" and r.verdict.kind not in (NAN,)]
    evid: dict[str, str] = {}
    if len(losses) >= 2:
        multitask(losses, detectors, stagnant_below, others_above, evid)
    top = min(reports, key=lambda r: SEVERITY_ORDER.index(r.verdict.kind))
    v = top.verdict
    det = detectors[top.metric]
    sentence = evid.get(top.metric) or evidence(
        top.metric, v, getattr(det, "swings", 0), top.direction == "rising", getattr(det, "judged_at_end", False))
    return Fingerprint(v.kind, top.metric, v.best_step, v.best_value, v.climb_start_step, v.detected_at_step,
                       sentence, log.source, reports)


def multitask(losses: list[MetricReport], detectors: dict, below: float = 0.05, above: float = 0.10,
              evid: dict | None = None) -> None:
    """Relative improvement and GradNorm training rate per task; mark a stagnant task (in place; its
    sentence goes to ``evid``). Used on a finished log here and at the end of a trial (``tasks.py``)."""
    evid = {} if evid is None else evid
    ratios = {}
    for r in losses:
        start, end = r.verdict.start_value, detectors[r.metric].level
        if not start:
            return
        ratios[r.metric] = end / start
        r.improvement = 1 - end / start
    mean = sum(ratios.values()) / len(ratios)
    for r in losses:
        r.training_rate = ratios[r.metric] / mean if mean else None
    for r in losses:
        others = [o for o in losses if o is not r]
        if r.improvement < below and all(o.improvement >= above for o in others):
            r.verdict = Verdict(**{**asdict(r.verdict), "kind": STAGNANT, "detected_at_step": r.verdict.last_step})
            rest = ", ".join(f"{o.metric} {o.improvement:.0%}" for o in others)
            evid[r.metric] = (f"{r.metric} improved only {r.improvement:.1%} while {rest}; its relative training "
                              f"rate L(t)/L(0) over the mean is {r.training_rate:.2f} (above 1 means it lags)")
