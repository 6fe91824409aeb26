"""One smoke run: train a recipe, watch its primary metric, stop on a verdict.

This is what a Ray worker executes (and what ``bisector smoke`` runs
in-process). It yields batches of metric records so the driver can stream and
log them, then one final result. It imports neither Ray nor MLflow.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import socket
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import registry
from .detector import DIVERGED, STABLE, STAGNANT, ClimbDetector
from .tasks import TaskJudge
from .verdicts import Kind


@dataclass(frozen=True)
class TrialRequest:
    name: str
    runner: str
    recipe: dict[str, Any]
    out_dir: str | None = None
    device: str | None = None
    threads: int | None = None
    batch_every: int = 50
    detector: dict[str, Any] = field(default_factory=dict)
    early_stop: bool = True
    base_dir: str | None = None
    """The driver's working directory: a command recipe's ``cwd`` is relative to it (not part of the key)."""
    stable_after: int | None = None
    """Call the trial stable once it has run this many steps without a failure verdict (adaptive horizon)."""


def trial_key(runner: str, version: str, recipe: dict[str, Any], detector: dict[str, Any] | None = None,
              files: dict[str, Any] | None = None) -> str:
    """A trial's identity: its validated recipe (seed and smoke budget included),
    the runner and its version, the detector settings that stop it, and hashes of
    the files the runner says the trial depends on (a user's script)."""
    ident = {"runner": runner, "version": version, "recipe": recipe, "detector": detector or {}}
    if files:
        ident["files"] = files
    blob = json.dumps(ident, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def run_trial(req: TrialRequest) -> Iterator[dict[str, Any]]:
    """Yield ``{"started": {pid, host}}``, ``{"metrics": [...]}`` batches, then ``{"result": {...}}``."""
    t0 = time.time()
    yield {"started": {"pid": os.getpid(), "host": socket.gethostname()}}
    runner = registry.resolve(req.runner)
    recipe = runner.Recipe.model_validate(req.recipe)
    metric = registry.watched(runner, recipe)
    settings = dict(req.detector)
    switch = registry.phase_switch(runner, recipe)
    if switch is not None:  # a two-phase objective: judge the second phase against its own start
        settings.setdefault("phase_switch", switch)
    det = ClimbDetector(**settings)
    tasks = TaskJudge(registry.task_metrics(runner, recipe))
    batch: list[dict[str, Any]] = []
    steps, error, failed_run = 0, None, None
    out_dir = Path(req.out_dir) if req.out_dir else None
    kwargs: dict[str, Any] = {"out_dir": out_dir, "device": req.device, "threads": req.threads}
    if req.base_dir and "base_dir" in inspect.signature(runner.train).parameters:
        kwargs["base_dir"] = req.base_dir
    # Stagnation is judged on the whole run, so a multi-task trial is never cut by the adaptive horizon.
    cut_at = req.stable_after if req.early_stop and not tasks.judges else None
    gen = runner.train(recipe, **kwargs)
    try:
        for rec in gen:
            steps = int(rec["step"])
            batch.append(rec)
            tasks.update(rec)
            if metric in rec and det.update(steps, rec[metric]).final and req.early_stop:
                break
            if cut_at and steps >= cut_at:
                break
            if len(batch) >= req.batch_every:
                yield {"metrics": batch}
                batch = []
    except Exception as exc:  # noqa: BLE001 - a training bug is the trial's verdict, not ours
        error = "".join(traceback.format_exc().splitlines(keepends=True)[-12:])
        failed_run = exc
    finally:
        gen.close()
    if batch:
        yield {"metrics": batch}
    crashed = crash_result(failed_run, error, det, steps) if failed_run is not None and not det.final else None
    verdict = det.finish()
    result = verdict.to_dict() | {
        "name": req.name, "metric": metric, "steps_run": steps, "wall_s": round(time.time() - t0, 3),
        "horizon": runner.horizon(recipe) if hasattr(runner, "horizon") else None,
    }
    if cut_at and steps >= cut_at and verdict.kind != DIVERGED and crashed is None:
        result["stable_after"] = cut_at
    if failed_run is None:
        judged = tasks.judge()
        result["tasks"] = judged.get("tasks")
        if verdict.kind == STABLE and "stagnant_task" in judged:
            result |= {"kind": STAGNANT, "detected_at_step": steps, "stagnant_task": judged["stagnant_task"],
                       "note": judged["evidence"]}
    if crashed is not None:
        result |= crashed
    elif failed_run is not None:
        result["note"] = f"the run then crashed: {_last_line(str(failed_run) or error)}"
    yield {"result": result}


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def crash_result(exc: BaseException, error: str, det: ClimbDetector, steps: int) -> dict[str, Any]:
    """How a run that raised (or a script that exited non-zero) is judged.

    ``git bisect run``'s rule: an untestable trial is never a verdict. A crash that follows a
    curve already climbing, exploding or non-finite is the recipe failing (an ``OverflowError``
    from ``math.exp(loss)`` is divergence, not a bug); any other crash is ``error``."""
    detail = str(exc).strip() or error
    if getattr(exc, "untestable", False):
        return {"kind": Kind.UNRESOLVED, "error": detail, "detected_at_step": None}
    why = det.failing_now() if getattr(exc, "failure_if_diverging", True) else None
    if why:
        return {"kind": DIVERGED, "detected_at_step": steps, "error": detail,
                "note": f"crashed after the loss {why}: {_last_line(detail)}"}
    return {"kind": Kind.ERROR, "error": error if not hasattr(exc, "exit_code") else detail, "detected_at_step": steps}


def run_local(req: TrialRequest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run a trial in this process: (result, all metric records)."""
    records: list[dict[str, Any]] = []
    result: dict[str, Any] = {}
    for item in run_trial(req):
        records.extend(item.get("metrics", []))
        result = item.get("result", result)
    return result, records


def smoke(path: str, seed: int | None = None, device: str | None = None, out_dir: str | None = None,
          threads: int | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One run of one recipe in this process: (result, metric records)."""
    from . import preflight
    from .recipe import load

    preflight.check_smoke(seed, out_dir)
    recipe = load(path)
    model = recipe.model if seed is None else recipe.model.model_copy(update={"seed": seed})
    req = TrialRequest(Path(path).stem, recipe.runner.__name__, model.model_dump(mode="json"), out_dir, device,
                       threads, base_dir=str(Path.cwd()))  # the module path: a worker resolves a user's runner by it
    return run_local(req)
