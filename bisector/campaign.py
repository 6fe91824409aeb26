"""A campaign: recipes -> knobs -> strategy -> scheduler -> tracker -> ladder.

This module only wires the roles together; each role lives in its own
module. Every input is validated before anything is started or recorded, so
bad input leaves no trace in MLflow.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import knobs as K
from .errors import RecipeError
from .ladder import Ladder, Rung
from .recipe import Recipe, load
from .scheduler import RayScheduler, Resources
from .strategy import OneAtATime, TrialSpec
from .tracker import Callback, MlflowTracker
from .trial import TrialRequest


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


@dataclass
class Outcome:
    ladder: Ladder
    parent_run_id: str | None
    tracking_uri: str | None
    wall_s: float

    @property
    def exit_code(self) -> int:
        return 0 if self.ladder.culprits else 1

    def to_json(self) -> dict[str, Any]:
        return self.ladder.to_json() | {
            "parent_run_id": self.parent_run_id, "tracking_uri": self.tracking_uri, "wall_s": round(self.wall_s, 1),
        }


@dataclass
class Plan:
    good: Recipe
    bad: Recipe
    knobs: list[K.Knob]
    seed: int


def plan(good_path: str, bad_path: str, groups: list[str] | None = None, seed: int | None = None) -> Plan:
    """Load, validate and diff; raises InputError subclasses on bad input."""
    good, bad = load(good_path), load(bad_path)
    knobs = K.diff(good, bad, K.parse_groups(groups))
    return Plan(good, bad, knobs, bad.model.seed if seed is None else seed)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]


def _recipe_for(p: Plan, spec: TrialSpec) -> dict[str, Any]:
    model = K.toggle(p.bad, list(spec.reverted), "good")
    return model.model_copy(update={"seed": p.seed}).model_dump(mode="json")


def run(good_path: str, bad_path: str, opts: Options, callbacks: list[Callback] = ()) -> Outcome:
    t0 = time.time()
    p = plan(good_path, bad_path, opts.groups, opts.seed)
    strategy = OneAtATime(p.knobs)
    tracker = MlflowTracker(opts.tracking_uri, opts.experiment)
    hooks = [tracker, *callbacks]
    ladder = Ladder(good_path, bad_path, strategy.name)
    campaign_id = time.strftime("%Y%m%d-%H%M%S")
    info = {
        "name": f"{Path(good_path).stem} vs {Path(bad_path).stem}",
        "params": {"good": good_path, "bad": bad_path, "runner": p.bad.runner_name, "knob_count": len(p.knobs),
                   "knobs": [k.name for k in p.knobs], "strategy": strategy.name, "seed": p.seed},
        "tags": {"good": good_path, "bad": bad_path},
        "knobs": p.knobs,
    }
    for h in hooks:
        h.on_campaign_start(info)
    specs: dict[str, TrialSpec] = {}
    finished = False
    try:
        with RayScheduler(opts.resources, opts.address) as sched:
            queue: list[TrialSpec] = []
            while True:
                queue += strategy.suggest()
                while queue and sched.has_room():
                    spec = queue.pop(0)
                    try:
                        recipe = _recipe_for(p, spec)
                    except RecipeError as exc:
                        strategy.skip(spec)
                        ladder.rungs.append(Rung(spec.name, _changes(spec), "invalid", note=str(exc)))
                        continue
                    specs[spec.name] = spec
                    flat = K.flatten(type(p.bad.model).model_validate(recipe))
                    params = {**flat, "toggled": _changes(spec)}
                    tags = {"bisector.trial": spec.name, "bisector.role": "trial"}
                    for h in hooks:
                        h.on_trial_start(spec.name, params, tags)
                    out_dir = Path(opts.workdir) / campaign_id / _slug(spec.name)
                    sched.submit(TrialRequest(spec.name, p.bad.runner_name, recipe, str(out_dir.resolve()),
                                              opts.device))
                if not sched.running and not queue:
                    break
                for name, item in sched.poll(1.0):
                    if "metrics" in item:
                        for h in hooks:
                            h.on_trial_metrics(name, item["metrics"])
                    if "result" in item:
                        res = item["result"]
                        rung = _rung(specs[name], res, tracker.run_id(name))
                        ladder.rungs.append(rung)
                        strategy.on_trial_complete(specs[name], rung.verdict)
                        for h in hooks:
                            h.on_trial_end(name, rung, res)
                if strategy.done:
                    queue.clear()
        result = strategy.result()
        ladder.culprits, ladder.stopped = result.culprits, result.stopped
        ladder.rungs.sort(key=_order(strategy))
        finished = True
    finally:
        for h in hooks:
            h.on_campaign_end(ladder, finished)
    return Outcome(ladder, tracker.parent_run_id, tracker.tracking_uri, time.time() - t0)


def _order(strategy: OneAtATime):
    names = ["good", "bad"] + [s.name for s in strategy.reverts]
    return lambda r: names.index(r.name) if r.name in names else len(names)


def _changes(spec: TrialSpec) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for k in spec.reverted:
        out.update(k.changes())
    return out


def _rung(spec: TrialSpec, res: dict[str, Any], run_id: str | None) -> Rung:
    return Rung(
        name=spec.name, changed=_changes(spec), verdict=res.get("kind", "error"),
        best_step=res.get("best_step"), best_value=res.get("best_value"),
        climb_start_step=res.get("climb_start_step"), detected_at_step=res.get("detected_at_step"),
        steps_run=res.get("steps_run", 0), horizon=res.get("horizon"), wall_s=res.get("wall_s", 0.0),
        run_id=run_id, note=(res.get("error") or "").strip().rsplit("\n", 1)[-1] or None,
    )


def smoke(path: str, seed: int | None = None, device: str | None = None, out_dir: str | None = None,
          threads: int | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One run of one recipe in this process: (result, metric records)."""
    from .trial import run_local

    recipe = load(path)
    model = recipe.model if seed is None else recipe.model.model_copy(update={"seed": seed})
    req = TrialRequest(Path(path).stem, recipe.runner_name, model.model_dump(mode="json"), out_dir, device, threads)
    return run_local(req)
