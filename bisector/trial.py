"""One smoke run: train a recipe, watch its primary metric, stop on a verdict.

This is what a Ray worker executes (and what ``bisector smoke`` runs
in-process). It yields batches of metric records so the driver can stream and
log them, then one final result. It imports neither Ray nor MLflow.
"""

from __future__ import annotations

import hashlib
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
from .detector import ClimbDetector

ERROR = "error"


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


def trial_key(runner: str, version: str, recipe: dict[str, Any], detector: dict[str, Any] | None = None) -> str:
    """A trial's identity: its validated recipe (seed and smoke budget included),
    the runner and its version, and the detector settings that stop it."""
    blob = json.dumps({"runner": runner, "version": version, "recipe": recipe, "detector": detector or {}},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def run_trial(req: TrialRequest) -> Iterator[dict[str, Any]]:
    """Yield ``{"started": {pid, host}}``, ``{"metrics": [...]}`` batches, then ``{"result": {...}}``."""
    t0 = time.time()
    yield {"started": {"pid": os.getpid(), "host": socket.gethostname()}}
    runner = registry.resolve(req.runner)
    recipe = runner.Recipe.model_validate(req.recipe)
    metric = runner.primary_metric
    det = ClimbDetector(**req.detector)
    batch: list[dict[str, Any]] = []
    steps, verdict, error = 0, None, None
    out_dir = Path(req.out_dir) if req.out_dir else None
    gen = runner.train(recipe, out_dir=out_dir, device=req.device, threads=req.threads)
    try:
        for rec in gen:
            steps = int(rec["step"])
            batch.append(rec)
            if metric in rec and det.update(steps, rec[metric]).final and req.early_stop:
                break
            if len(batch) >= req.batch_every:
                yield {"metrics": batch}
                batch = []
    except Exception:  # noqa: BLE001 - a training bug is the trial's verdict, not ours
        error = "".join(traceback.format_exc().splitlines(keepends=True)[-12:])
    finally:
        gen.close()
    if batch:
        yield {"metrics": batch}
    verdict = det.finish()
    result = verdict.to_dict() | {
        "name": req.name, "metric": metric, "steps_run": steps, "wall_s": round(time.time() - t0, 3),
        "horizon": runner.horizon(recipe) if hasattr(runner, "horizon") else None,
    }
    if error is not None:
        result |= {"kind": ERROR, "error": error, "detected_at_step": steps}
    yield {"result": result}


def run_local(req: TrialRequest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run a trial in this process: (result, all metric records)."""
    records: list[dict[str, Any]] = []
    result: dict[str, Any] = {}
    for item in run_trial(req):
        records.extend(item.get("metrics", []))
        result = item.get("result", result)
    return result, records
