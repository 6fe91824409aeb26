"""The campaign's last phase, as a participant of its loop: probes, the diagnosis, the repair rung.

``explain.py`` decides (which checkpoints, what the probe says, which gates);
this module runs those decisions. Like a strategy it proposes trials (the
repair) through ``suggest`` and reads results through ``on_result``, so the
campaign has one loop and no phase drives it from outside. Probes run as Ray
tasks in a background thread and are collected on later turns of the loop,
which never blocks on them: the bad endpoint is probed as soon as both
endpoints are judged, a stable revert as soon as it finishes, and the repair
is queued as soon as the bad endpoint's probe names an aggressor, so probes
and the repair fill slots the search leaves idle. Which trials to probe is
read from the ladder (the rungs' roles and the named culprits), never from
the strategy.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from . import explain, registry, starved
from . import knobs as K
from .probe import ProbeReport, probe_task
from .strategy import TrialSpec
from .trial import trial_key
from .verdicts import Kind


def _lone_revert(rung) -> bool:
    """A stable revert, or a stable repeat of one on another seed: where the first seed read otherwise
    (a noisy seed), its repeats are the healthy runs the campaign judged the knob by."""
    return (rung.role or "").split(",")[0] == "revert" and rung.verdict == Kind.STABLE


def _first_per_change(rungs: list) -> list:
    """The first stable revert of each knob set, in ladder order (seed 0 before its repeats): one healthy
    comparison per fix is what the probe needs."""
    seen: set[tuple[str, ...]] = set()
    out = []
    for r in rungs:
        if (key := tuple(sorted(r.changed))) not in seen:
            seen.add(key)
            out.append(r)
    return out


class ProbePhase:
    """Probe and repair; ``c`` is the campaign (its ladder, plan, options, tracker, nodes and keys)."""

    def __init__(self, c):
        self.c = c
        self.contract = registry.probe_contract(c.runner, c.p.bad.model)
        self.reports: dict[str, ProbeReport] = {}
        self.running: dict[str, Future] = {}
        self.targets: list[explain.ProbeTarget] = []
        self.pool: ThreadPoolExecutor | None = None
        self.queued: list[TrialSpec] = []
        self.repair: TrialSpec | None = None
        self.final = "waiting"  # waiting -> probing -> repairing -> done (or done straight away)
        self.early_done = False

    # -- the participant's side of the loop ---------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Probes still running (the loop waits for them, not on them)."""
        return bool(self.running)

    def wait(self, timeout: float) -> None:
        from concurrent.futures import FIRST_COMPLETED, wait

        wait(list(self.running.values()), timeout=timeout, return_when=FIRST_COMPLETED)

    def suggest(self, sched) -> list[TrialSpec]:
        self._collect()
        if self.final == "waiting" and self.c.answered:
            self._start_final(sched)
        if self.final == "probing" and not self.running:
            self._diagnose_final()
        if self.final == "done":
            self._add_symptoms()
        out, self.queued = self.queued, []
        return out

    def on_result(self, name: str, rung) -> None:
        if self.repair is not None and name == self.repair.name:
            self._gates(rung)
            return
        if not self._can_probe_early():
            return
        bad = self._rung(self.c.strategy.bad.name)
        if not self.early_done:
            self.early_done = True
            targets, why = explain.targets(bad, [], self.c.nodes, self._lister(), self._since())
            if not why:
                for t in targets:
                    self._probe(t)
        if rung is not None and _lone_revert(rung) and rung in _first_per_change(
                [r for r in self.c.ladder.rungs if _lone_revert(r) and r is not rung] + [rung]):
            for t in explain.targets(bad, [rung], self.c.nodes, self._lister(), self._since())[0]:
                if t.trial == name:
                    self._probe(t)

    # -- probes -------------------------------------------------------------------------------------------------

    def _can_probe_early(self) -> bool:
        bad, good = self._rung(self.c.strategy.bad.name), self._rung(self.c.strategy.good.name)
        return bool(self.c.opts.probe and self.contract and bad and good and self.sched_started
                    and not bad.reused and good.verdict == Kind.STABLE and bad.climb_start_step is not None)

    @property
    def sched_started(self) -> bool:
        return bool(self.c.sched is not None and self.c.sched.started)

    def _probe(self, t: explain.ProbeTarget) -> None:
        if t.label in self.reports or t.label in self.running:
            return
        c = self.c
        c.emit("on_note", f"probe: {t.label}")
        self.pool = self.pool or ThreadPoolExecutor(max_workers=2, thread_name_prefix="probe")
        self.running[t.label] = self.pool.submit(
            c.sched.call_on_node, t.node_id, probe_task, c.runner.__name__, c.recipe_of(t.trial), t.checkpoint,
            c.opts.probe_batches, t.label, c.opts.device)

    def _collect(self) -> None:
        for label, fut in list(self.running.items()):
            if fut.done():
                del self.running[label]
                self.reports[label] = ProbeReport.from_json(fut.result())
        self._maybe_queue_repair_early()

    def _maybe_queue_repair_early(self) -> None:
        """As soon as the bad endpoint's probes are in: queue the repair the diagnosis implies."""
        if self.repair is not None or not self.c.opts.repair or not self.reports or self.c.answered:
            return
        bad_reports = {k: v for k, v in self.reports.items() if k.startswith("bad,")}
        if not bad_reports or any(label.startswith("bad,") for label in self.running):
            return
        bad = self._rung(self.c.strategy.bad.name)
        diag = explain.diagnose(bad_reports, bad.climb_start_step, getattr(self.contract, "WEIGHT_KNOBS", {}))
        self._queue_repair(diag)

    def _queue_repair(self, diag: explain.Diagnosis) -> None:
        """A weight knob set to 0 for an aggressor; the runner's declared settings for a starved task."""
        if self.repair is not None or not self.c.opts.repair:
            return
        bad_flat = K.flatten(self.c.p.bad.model)
        if diag.starved and diag.repair:
            knob, name = starved.repair_knob(diag.repair, bad_flat), f"repair {diag.starved}"
        else:
            knob_path = getattr(self.contract, "WEIGHT_KNOBS", {}).get(diag.aggressor or "")
            knob = explain.repair_knob(explain.Diagnosis("", diag.aggressor, None, knob_path), bad_flat)
            name = f"repair {diag.aggressor}"
        if knob is not None:
            self.repair = TrialSpec(name, (knob,), "repair")
            self.queued.append(self.repair)

    # -- the final diagnosis ------------------------------------------------------------------------------------

    def _start_final(self, sched) -> None:
        c = self.c
        if c.ladder.not_finished or not c.opts.probe or not (c.ladder.culprits or self.repair):
            self.final = "done"
            return
        if self.contract is None:
            how = ("add a `probe:` section to the recipe (a module implementing the probe contract and the "
                   "checkpoint pattern; see runners/README.md)" if c.runner.NAME == "command"
                   else "see runners/README.md")
            c.ladder.probe = {"diagnosis": f"no probe: runner {c.runner.NAME!r} offers no probe contract for this "
                                           f"recipe ({how})", "checkpoints": []}
            self.final = "done"
            return
        culprit_paths = {p for k in c.ladder.culprits for p in k.paths}
        stable = _first_per_change([r for r in c.ladder.rungs
                                    if _lone_revert(r) and set(r.changed) <= culprit_paths])
        targets, why = explain.targets(self._rung(self.c.strategy.bad.name), stable, c.nodes, self._lister(),
                                      self._since())
        if why:
            c.ladder.probe = {"diagnosis": f"no probe: {why}", "checkpoints": []}
            self.final = "done"
            return
        self.targets = targets
        self.key = trial_key("probe", "1", {"targets": [[c.keys.get(t.trial), t.step, t.label] for t in targets],
                                            "batches": c.opts.probe_batches})
        cached = c.tracker.find_probe(self.key)
        if cached is not None:
            c.emit("on_note", "probe: reused the probe of an earlier campaign with the same checkpoints")
            c.ladder.probe = cached
            self._after_diagnosis(explain.Diagnosis(cached.get("diagnosis", ""), cached.get("aggressor"),
                                                    starved=cached.get("starved"), repair=cached.get("repair")))
            return
        sched.start()  # here, in the main thread: Ray's start installs signal handlers
        for t in targets:
            self._probe(t)
        self.final = "probing"

    def _diagnose_final(self) -> None:
        c = self.c
        reports = {t.label: self.reports[t.label] for t in self.targets}
        bad = self._rung(self.c.strategy.bad.name)
        who = {t.label: t.who for t in self.targets if t.who}
        if bad.stagnant_task:
            diag = starved.diagnose(reports, bad.stagnant_task, getattr(self.contract, "REPAIRS", {}), who)
        else:
            diag = explain.diagnose(reports, bad.climb_start_step, getattr(self.contract, "WEIGHT_KNOBS", {}), who)
        c.ladder.probe = {
            "diagnosis": diag.text, "aggressor": diag.aggressor, "notes": diag.notes, "starved": diag.starved,
            "repair": diag.repair,
            "checkpoints": [dict(r.summary(), trial=t.trial) for t, r in zip(self.targets, reports.values(),
                                                                              strict=True)],
        }
        self._add_symptoms()
        c.tracker.log_probe([r.to_json() for r in reports.values()], c.ladder.probe, self.key)
        c.emit("on_note", f"diagnosis: {diag.text}")
        self._after_diagnosis(diag)

    def _after_diagnosis(self, diag: explain.Diagnosis) -> None:
        self._queue_repair(diag)
        self.final = "done"
        if self.repair is not None and self._rung(self.repair.name) is not None and self.repair not in self.queued:
            self._gates(self._rung(self.repair.name))

    def _gates(self, rung) -> None:
        c = self.c
        if rung is None or rung.verdict == Kind.INVALID or self.contract is None or rung.gates is not None:
            return
        bad = self._rung(self.c.strategy.bad.name)
        if bad is not None and bad.stagnant_task:
            rung.gates = starved.gates(rung.tasks, bad.tasks, bad.stagnant_task)
            c.tracker.log_gates(rung.name, rung)
            return
        val_metric = getattr(self.contract, "VAL_METRIC", "val_macro_f1")
        prefix = getattr(self.contract, "PER_CLASS_PREFIX", "val_f1.")
        good = self._rung(self.c.strategy.good.name)
        good_val = (self._evals(good).get(val_metric) or [(0, None)])[-1][1] if good else None
        min_val = c.opts.min_val if c.opts.min_val is not None else (0.9 * good_val if good_val is not None else 0.0)
        curve = c.tracker.curves.get(rung.name) or []
        rung.gates = explain.gates(curve, self._evals(rung), val_metric, prefix, min_val, c.opts.max_climb,
                                   c.opts.class_floor)
        c.tracker.log_gates(rung.name, rung)

    def _add_symptoms(self) -> None:
        """The runner's symptom -> likely cause -> remedy rows for the bad endpoint's verdict, as notes."""
        bad = self._rung(self.c.strategy.bad.name)
        if self.c.ladder.probe is None or bad is None:
            return
        notes = self.c.ladder.probe.setdefault("notes", [])
        for line in explain.symptom_notes(registry.symptoms(self.c.runner, bad.verdict), bad.verdict):
            if line not in notes:
                notes.append(line)

    # -- small helpers ------------------------------------------------------------------------------------------

    def _rung(self, name: str):
        return next((r for r in self.c.ladder.rungs if r.name == name), None)

    def _since(self) -> int | None:
        """The bad recipe's phase switch, if its runner reports one (probe early in the failing phase)."""
        return registry.phase_switch(self.c.runner, self.c.p.bad.model)

    def _lister(self):
        """Step -> checkpoint of a trial's out dir, where the runner says its checkpoints are."""
        def lister(out_dir: str | None) -> dict[int, str]:
            found = registry.checkpoints(self.c.runner, self.c.p.bad.model, out_dir)
            return explain.checkpoints(out_dir) if found is None else found
        return lister

    def _evals(self, rung) -> dict[str, list[tuple[int, float]]]:
        if rung.name in self.c.evals:
            return self.c.evals[rung.name]
        return self.c.tracker.eval_histories(rung.run_id) if rung.run_id else {}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

