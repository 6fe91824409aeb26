"""A campaign: recipes -> knobs -> strategy -> scheduler -> tracker -> ladder.

This module only wires the roles together; each role lives in its own
module. Every input is validated before anything is started or recorded, so
bad input leaves no trace in MLflow. Finished trials are found by key and
reused, so a campaign re-run after a crash (or ``--resume``) trains only what
had not finished, and a budget stop or an interrupt still leaves a ladder.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import knobs as K
from . import links, preflight, registry
from . import strategy_registry as strategies
from .errors import InputError, RecipeError
from .ladder import Ladder, Rung
from .options import (  # noqa: F401  (re-exported: the campaign's inputs and answer)
    EXIT_BAD_DOES_NOT_FAIL,
    EXIT_BAD_INPUT,
    EXIT_CULPRIT,
    EXIT_GOOD_NOT_STABLE,
    EXIT_NO_CULPRIT,
    EXIT_NOT_CONFIDENT,
    EXIT_NOT_FINISHED,
    EXITS,
    Options,
    Outcome,
)
from .probe_phase import ProbePhase
from .recipe import Recipe, load, read_text
from .scheduler import RayScheduler
from .strategy import TrialSpec
from .tracker import Callback, MlflowTracker
from .trial import TrialRequest, trial_key
from .verdicts import FAILURES, Kind, Result


@dataclass
class Plan:
    good: Recipe
    bad: Recipe
    knobs: list[K.Knob]
    seed: int
    texts: dict[str, str] = field(default_factory=dict)


def plan(good_path: str, bad_path: str, groups: list[str] | None = None, seed: int | None = None,
         texts: dict[str, str] | None = None) -> Plan:
    """Load, validate and diff; raises InputError subclasses on bad input."""
    preflight.check_groups(groups)
    texts = texts or {"good.yaml": read_text(good_path), "bad.yaml": read_text(bad_path)}
    good, bad = load(good_path, texts["good.yaml"]), load(bad_path, texts["bad.yaml"])
    knobs = K.diff(good, bad, K.parse_groups(groups))
    return Plan(good, bad, knobs, bad.model.seed if seed is None else seed, texts)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]


def _changes(spec: TrialSpec) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for k in spec.reverted:
        out.update(k.changes())
    return out


class _Campaign:
    """The event loop of one campaign; state lives here, decisions in the strategy."""

    def __init__(self, p: Plan, opts: Options, tracker: MlflowTracker, hooks: list[Callback]):
        self.p, self.opts, self.tracker, self.hooks = p, opts, tracker, hooks
        self.strategy = strategies.make(opts.strategy, p.knobs, _slots(opts), repeats=opts.repeats,
                                        noise=opts.noise, target=opts.target, confirm=opts.confirm)
        self.ladder = Ladder(p.good.path, p.bad.path, self.strategy.name)
        self.runner = p.bad.runner
        self.specs: dict[str, TrialSpec] = {}
        self.requests: dict[str, TrialRequest] = {}
        self.keys: dict[str, str] = {}
        self.attempts: dict[str, int] = {}
        self.progress: dict[str, tuple[float, int]] = {}  # name -> (started at, last step streamed)
        self.looked: set[str] = set()
        self.launched = 0
        self.nodes: dict[str, str | None] = {}
        self.evals: dict[str, dict[str, list[tuple[int, float]]]] = {}
        self.first_started: float | None = None
        self.t0 = time.time()
        self.campaign_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"  # two started in one second differ
        self.answered = False
        self.sched: RayScheduler | None = None
        self.after = ProbePhase(self)

    def emit(self, hook: str, *args) -> None:
        for h in self.hooks:
            getattr(h, hook)(*args)

    def _recipe(self, spec: TrialSpec) -> dict[str, Any]:
        model = K.toggle(self.p.bad, list(spec.reverted), "good")
        return model.model_copy(update={"seed": self.p.seed + spec.seed}).model_dump(mode="json")

    def recipe_of(self, name: str) -> dict[str, Any]:
        """The recipe a trial trained (or would train, for one found by key)."""
        return self.requests[name].recipe if name in self.requests else self._recipe(self.specs[name])

    def _reproduce(self, run_id: str | None) -> str | None:
        return links.reproduce(self.tracker.display_uri, run_id) if run_id else None  # no local path: portable

    def start(self, spec: TrialSpec, sched: RayScheduler, launch: bool = True) -> str:
        """Reuse a finished trial with the same key, or launch it: 'reused', 'launched', 'invalid' or 'budget'
        ('absent' when not ``launch``)."""
        try:
            recipe = self._recipe(spec)
        except RecipeError as exc:
            self._tell(spec, None)
            self.ladder.rungs.append(Rung(spec.name, _changes(spec), Kind.INVALID, note=str(exc),
                                          role=spec.role_text(len(self.p.knobs), self.p.seed)))
            return "invalid"
        stable_after = self._stable_after(spec)
        key = trial_key(self.runner.NAME, self.runner.VERSION, recipe,
                        {"stable_after": stable_after} if stable_after else None,
                        files=registry.identity(self.runner, self.p.bad.runner.Recipe.model_validate(recipe)))
        self.specs[spec.name], self.keys[spec.name] = spec, key
        found = self.tracker.find_reusable(key)
        if found is not None:
            found.name, found.changed = spec.name, _changes(spec)
            found.reproduce = self._reproduce(found.run_id)
            found.role = spec.role_text(len(self.p.knobs), self.p.seed)
            if stable_after and found.verdict == Kind.STABLE and found.steps_run < (found.horizon or 0):
                found.note = f"stable to step {found.steps_run} (bad failed at {self._bad_failed_at()})"
            self.ladder.rungs.append(found)
            self.emit("on_trial_reused", spec.name, found)
            self._judge_health(found)
            self._tell(spec, found)
            return "reused"
        if not launch:
            return "absent"
        if self.opts.max_trials is not None and self.launched >= self.opts.max_trials:
            return "budget"
        out_dir = Path(self.opts.workdir).resolve() / self.campaign_id / _slug(spec.name)
        self.requests[spec.name] = TrialRequest(spec.name, self.runner.__name__, recipe, str(out_dir), self.opts.device,
                                                early_stop=self.opts.early_stop, base_dir=str(Path.cwd()),
                                                stable_after=stable_after)
        self.launched += 1
        self._submit(spec.name, sched)
        return "launched"

    def _submit(self, name: str, sched: RayScheduler) -> None:
        spec, recipe = self.specs[name], self.requests[name].recipe
        self.attempts[name] = self.attempts.get(name, 0) + 1
        self.progress[name] = (time.time(), 0)
        params = {**K.flatten(type(self.p.bad.model).model_validate(recipe)), "toggled": _changes(spec)}
        tags = {"bisector.trial": name, "bisector.key": self.keys[name],
                "bisector.out_dir": self.requests[name].out_dir}
        self.emit("on_trial_start", name, params, tags)
        header = (f"# bisector smoke recipe.yaml\n# Trial {name!r} of a bisector campaign: {self.p.bad.path} "
                  f"with {len(spec.reverted)} knob(s) set to their value in {self.p.good.path}.\n")
        self.tracker.log_recipe(name, header + yaml.safe_dump(recipe, sort_keys=False))
        sched.submit(self.requests[name])

    def handle(self, name: str, event: dict[str, Any], sched: RayScheduler) -> None:
        if "started" in event:
            self.first_started = self.first_started or time.time()
            self.nodes[name] = event["started"].get("node_id")
            self.emit("on_trial_running", name, event["started"])
        if "metrics" in event:
            self.progress[name] = (self.progress[name][0], int(event["metrics"][-1]["step"]))
            evals = self.evals.setdefault(name, {})
            for rec in event["metrics"]:
                for k, v in rec.items():
                    if k.startswith("val_"):
                        evals.setdefault(k, []).append((int(rec["step"]), float(v)))
            self.emit("on_trial_metrics", name, event["metrics"])
        if "fault" in event:
            retry = self.attempts[name] <= self.opts.retries
            if retry:
                self.emit("on_trial_fault", name, event["fault"], True)
                self._submit(name, sched)
                return
            event = {"result": {"name": name, "kind": Kind.LOST, "error": event["fault"]}}
        if "result" in event:
            res = event["result"]
            r = self.opts.resources
            wall = float(res.get("wall_s") or 0.0)
            rung = Rung(
                name=name, changed=_changes(self.specs[name]), verdict=Kind.of(res.get("kind", Kind.ERROR)),
                best_step=res.get("best_step"), best_value=res.get("best_value"),
                climb_start_step=res.get("climb_start_step"), detected_at_step=res.get("detected_at_step"),
                steps_run=res.get("steps_run", 0), horizon=res.get("horizon"), wall_s=wall,
                device_seconds=round(wall * r.devices, 2), device_kind=r.device_kind,
                run_id=self.tracker.run_id(name), key=self.keys[name], retries=self.attempts[name] - 1,
                reproduce=self._reproduce(self.tracker.run_id(name)), out_dir=self.requests[name].out_dir,
                note=(res.get("error") or "").strip().rsplit("\n", 1)[-1] or res.get("note") or None,
                role=self.specs[name].role_text(len(self.p.knobs), self.p.seed),
                tasks=res.get("tasks"), stagnant_task=res.get("stagnant_task"),
            )
            if res.get("stable_after") and rung.verdict == Kind.STABLE:
                rung.note = f"stable to step {rung.steps_run} (bad failed at {self._bad_failed_at()})"
            self._judge_health(rung)
            self.ladder.rungs.append(rung)
            self._tell(self.specs[name], rung)
            self.emit("on_trial_end", name, rung, res)

    def _bad_failed_at(self) -> int | None:
        bad = next((r for r in self.ladder.rungs if r.name == self.strategy.bad.name), None)
        if bad is None or Kind.of(bad.verdict) not in FAILURES:
            return None
        return bad.detected_at_step

    def _stable_after(self, spec: TrialSpec) -> int | None:
        """Adaptive horizon: once bad's failure step F is known, a search trial stable until multiple x F
        (at least 100 steps past F) is called stable; endpoints and the repair keep the full horizon."""
        failed_at = self._bad_failed_at()
        if not self.opts.stable_multiple or not failed_at or spec.role in ("endpoint", "repair"):
            return None
        return max(int(self.opts.stable_multiple * failed_at), failed_at + 100)

    def _judge_health(self, rung: Rung) -> None:
        """Stable is not healthy: a stable trial whose best loss stays far above good's is ``degraded``, never a fix
        (a revert that plateaus at twice good's loss without climbing explains nothing)."""
        if rung.verdict != Kind.STABLE or rung.role in ("endpoint", "repair") or rung.best_value is None:
            return
        name = self.strategy.good.name
        good = next((r for r in self.ladder.rungs if r.name == name), None)
        curve = (getattr(self.tracker, "curves", None) or {}).get(name) or []
        if good is None or good.best_value is None or not curve:
            return
        descent = curve[0][1] - good.best_value
        gap = rung.best_value - good.best_value
        if descent > 0 and gap > self.opts.healthy_within * descent:
            rung.verdict = Kind.DEGRADED
            rung.note = (f"stable but degraded: best loss {rung.best_value:.4g} against good's {good.best_value:.4g} "
                         f"({gap / descent:.0%} of good's descent; a fix must be within "
                         f"{self.opts.healthy_within:.0%})")

    def _tell(self, spec: TrialSpec, rung: Rung | None) -> None:
        """A result goes to whoever proposed the trial: the strategy or the probe phase."""
        if spec.role == "repair":
            self.after.on_result(spec.name, rung)
            return
        if rung is None:
            self.strategy.skip(spec)
        else:
            self.strategy.on_trial_complete(spec, rung.verdict, borderline=borderline(rung))
            self.after.on_result(spec.name, rung)

    def _cancel_moot(self, queue: list[TrialSpec], sched: RayScheduler) -> list[TrialSpec]:
        """Trials the strategy no longer needs: dropped if not launched yet, else cancelled (worker and process
        group end) and shown as ``cancelled``; never a result, never told to anyone."""
        for m in self.strategy.moot():
            name, r = m.trial.name, self.opts.resources
            if any(t.name == name for t in queue):
                queue = [t for t in queue if t.name != name]
            elif sched.cancel(name):
                started, step = self.progress.get(name, (time.time(), 0))
                wall = round(time.time() - started, 2)
                rung = Rung(name, _changes(m.trial), Kind.CANCELLED, steps_run=step, wall_s=wall,
                            device_seconds=round(wall * r.devices, 2), device_kind=r.device_kind,
                            run_id=self.tracker.run_id(name), key=self.keys.get(name),
                            out_dir=self.requests[name].out_dir, note=f"cancelled: made moot by {m.by}",
                            role=m.trial.role_text(len(self.p.knobs), self.p.seed))
                self.ladder.rungs.append(rung)
                self.emit("on_trial_cancelled", name, rung)
        return queue

    def _reuse_first(self, queue: list[TrialSpec], sched: RayScheduler) -> list[TrialSpec]:
        """Finished trials found by key before anything launches: a known failure may make its siblings moot."""
        while spec := next((t for t in queue if t.name not in self.looked), None):
            self.looked.add(spec.name)  # looked up once here; a launch looks it up again
            if self.start(spec, sched, launch=False) != "absent":
                queue = self._cancel_moot([t for t in queue if t != spec] + self.strategy.suggest(), sched)
        return queue

    def _answer(self, partial: bool = False) -> None:
        """Once the strategy is done: its answer on the ladder (the probe phase reads the culprits from there);
        ``partial`` (a budget stop, an interrupt): its best guess so far, the result ``not_finished``."""
        if not self.answered and (partial or self.strategy.done):
            self.answered = True
            res = self.strategy.result()
            self.ladder.culprits, self.ladder.stopped = res.culprits, res.stopped
            self.ladder.result, self.ladder.structure = res.result, res.structure
            self.ladder.groups = [[k.name for k in g] for g in res.groups]
            self.ladder.explanation, self.ladder.tried = res.explanation, res.tried
            self.ladder.confidence, self.ladder.notes = res.confidence, list(res.notes)
            self.ladder.knob_confidence, self.ladder.assumed_flip = dict(res.knob_confidence), res.assumed_flip
        if partial:
            self.ladder.result = Result.NOT_FINISHED

    def loop(self, sched: RayScheduler) -> None:
        """One loop for every participant: the strategy and the probe phase propose, results go back to them."""
        self.sched = sched
        queue: list[TrialSpec] = []
        deadline = self.t0 + self.opts.max_hours * 3600 if self.opts.max_hours else None
        while True:
            new = self.strategy.suggest()
            queue = self._cancel_moot(queue, sched)
            self._answer()
            new += self.after.suggest(sched)
            queue += new
            progressed = bool(new)  # a reused or invalid trial may unlock the next suggestions
            queue = self._reuse_first(queue, sched)
            while queue and sched.has_room():
                outcome = self.start(queue[0], sched)
                if outcome == "budget":
                    break
                queue.pop(0)
                progressed |= outcome != "launched"
            if deadline and time.time() > deadline:
                sched.cancel_all()
                self.ladder.not_finished = f"budget reached (--max-hours {self.opts.max_hours:g})"
                break
            if not sched.running:
                if self.after.busy:
                    self.after.wait(1.0)
                    continue
                if queue:
                    self.ladder.not_finished = f"budget reached (--max-trials {self.opts.max_trials})"
                    break
                if progressed:
                    continue
                break
            for name, event in sched.poll(1.0):
                self.handle(name, event, sched)
            if self.strategy.done:
                queue = [s for s in queue if s.role == "repair"]
        self._answer(partial=bool(self.ladder.not_finished))


def run(good_path: str | None, bad_path: str | None, opts: Options, callbacks: list[Callback] = ()) -> Outcome:
    t0 = time.time()
    preflight.check(opts)  # options, Ray address, workdir: before anything starts or is recorded
    tracker = None
    if opts.resume:
        tracker = MlflowTracker(opts.tracking_uri, opts.experiment)
        parent = tracker.campaign(opts.resume)
        prm = parent.data.params
        good_path, bad_path = prm["good"], prm["bad"]
        texts = {n: tracker.recipe_text(opts.resume, n) for n in ("good.yaml", "bad.yaml")}
        p = plan(good_path, bad_path, json.loads(prm.get("groups", "[]")), int(prm["seed"]), texts)
    else:
        p = plan(good_path, bad_path, opts.groups, opts.seed)
        tracker = MlflowTracker(opts.tracking_uri, opts.experiment)
    if opts.strategy not in [*strategies.names(), *strategies.ALIASES]:  # bad input: nothing recorded yet
        raise InputError(f"unknown --strategy {opts.strategy!r}; expected one of {strategies.names()}")
    c = _Campaign(p, opts, tracker, [tracker, *callbacks])
    r = opts.resources
    c.emit("on_campaign_start", {
        "name": f"{Path(good_path).stem} vs {Path(bad_path).stem}", "resume": opts.resume,
        "metric": registry.watched(p.bad.runner, p.bad.model), "knobs": p.knobs, "recipes": p.texts,
        "params": {"good": good_path, "bad": bad_path, "runner": p.bad.runner_name, "knob_count": len(p.knobs),
                   "knobs": [k.name for k in p.knobs], "strategy": c.strategy.name, "seed": p.seed,
                   "groups": opts.groups, "cpus_per_trial": r.cpus_per_trial, "gpus_per_trial": r.gpus_per_trial},
        "tags": {"good": good_path, "bad": bad_path},
    })
    finished = False
    try:
        with RayScheduler(opts.resources, opts.address) as sched:
            c.loop(sched)
        finished = True
    except KeyboardInterrupt:
        c.ladder.not_finished = "interrupted (running trials cancelled; finished trials are reusable)"
        try:  # the best guess so far, unless the interrupt cut a result's bookkeeping in half: the caller must
            c._answer(partial=True)  # see the interrupt, not this
        except Exception:  # noqa: BLE001
            c.ladder.result = Result.NOT_FINISHED
        raise
    finally:
        order = c.strategy.order()
        c.ladder.rungs.sort(key=lambda rung: order.index(rung.name) if rung.name in order else len(order))
        c.after.close()
        c.ladder.wall_s = time.time() - t0
        c.emit("on_campaign_end", c.ladder, finished)
    return Outcome(c.ladder, tracker.parent_run_id, tracker.display_uri, time.time() - t0, c.first_started,
                   tracker.landing())


LATE = 0.8


def borderline(rung: Rung) -> bool:
    """A failure seen only in the last 20% of the trial's horizon: on another seed it may not fail in budget."""
    step = rung.detected_at_step
    return Kind.of(rung.verdict) in FAILURES and step is not None and bool(rung.horizon) \
        and step >= LATE * rung.horizon


def _slots(opts: Options) -> int:
    """How many trials can run at once, as far as the driver can tell before Ray starts."""
    r = opts.resources
    fits = max(1, int((os.cpu_count() or 1) // max(r.cpus_per_trial, 1e-9))) if not opts.address else 8
    return max(1, min(fits, r.max_concurrent or fits))
