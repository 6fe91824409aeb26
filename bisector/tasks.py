"""Per-task judging inside a trial: a task that stagnates while the others learn.

A multi-task runner names one loss metric per task (``task_metrics`` in the
runner contract). The trial feeds each to its own ``ClimbDetector`` as the
records stream by and, when the run ends without another failure, applies the
multi-task rule of ``fingerprint.multitask`` (the same rule ``bisector
fingerprint`` applies to a finished log): a task whose loss improved by under
5% while every other improved by 10% or more is ``stagnant``. Nothing stops a
trial early for this: a starved task is only known at the end, and a stable
run needs no early stop.
"""

from __future__ import annotations

from typing import Any

from .detector import STAGNANT, ClimbDetector
from .fingerprint import MetricReport, multitask


class TaskJudge:
    def __init__(self, metrics: list[str]):
        self.detectors = {m: ClimbDetector() for m in metrics}

    @property
    def judges(self) -> bool:
        """Whether the end of the run can turn ``stable`` into ``stagnant`` (two tasks or more)."""
        return len(self.detectors) >= 2

    def update(self, rec: dict[str, Any]) -> None:
        step = int(rec["step"])
        for m, det in self.detectors.items():
            if m in rec and not det.final:
                det.update(step, rec[m])

    def judge(self) -> dict[str, Any]:
        """``{"tasks": {metric: improvement}}``, plus ``stagnant_task`` and ``evidence`` when one starved."""
        if not self.judges:
            return {}
        reports = [MetricReport(m, "falling", det.finish()) for m, det in self.detectors.items()]
        if any(r.verdict.start_value is None for r in reports):
            return {}
        evid: dict[str, str] = {}
        multitask(reports, self.detectors, evid=evid)
        out: dict[str, Any] = {"tasks": {r.metric: round(r.improvement, 4) for r in reports
                                         if r.improvement is not None}}
        starved = next((r for r in reports if r.verdict.kind == STAGNANT), None)
        if starved is not None:
            out |= {"stagnant_task": starved.metric, "evidence": evid.get(starved.metric, "")}
        return out
