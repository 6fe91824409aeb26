"""The campaign's last phase: probes where the checkpoints are, the diagnosis, the repair rung.

``explain.py`` decides (which checkpoints, what the probe says, which gates);
this module runs those decisions with the campaign's scheduler and tracker.
Probes start as soon as their checkpoints exist (the bad endpoint's when both
endpoints are judged, a stable revert's when it finishes) and the repair is
queued as soon as the bad endpoint's probe names an aggressor, so the probe
and the repair fill slots the reverts leave idle instead of running after them.
"""

from __future__ import annotations

from typing import Any

from . import explain, registry
from . import knobs as K
from .probe import ProbeReport, probe_task
from .strategy import TrialSpec
from .trial import trial_key


def _say(c, text: str) -> None:
    c.emit("on_note", text)


def _rung(c, name: str):
    return next((r for r in c.ladder.rungs if r.name == name), None)


def _recipe_of(c, name: str) -> dict[str, Any]:
    if name in c.requests:
        return c.requests[name].recipe
    spec = next(s for s in [c.strategy.good, c.strategy.bad, *c.strategy.reverts] if s.name == name)
    return c._recipe(spec)


def _lister(c):
    """Step -> checkpoint of a trial's out dir, where the runner says its checkpoints are."""
    def lister(out_dir: str | None) -> dict[int, str]:
        found = registry.checkpoints(c.runner, c.p.bad.model, out_dir)
        return explain.checkpoints(out_dir) if found is None else found
    return lister


def _evals(c, rung) -> dict[str, list[tuple[int, float]]]:
    if rung.name in c.evals:
        return c.evals[rung.name]
    return c.tracker.eval_histories(rung.run_id) if rung.run_id else {}


def _probe(c, sched, t: explain.ProbeTarget) -> ProbeReport:
    if t.label not in c.probe_cache:
        _say(c, f"probe: {t.label}")
        data = sched.call_on_node(t.node_id, probe_task, c.runner.__name__, _recipe_of(c, t.trial), t.checkpoint,
                                  c.opts.probe_batches, t.label, c.opts.device)
        c.probe_cache[t.label] = ProbeReport.from_json(data)
    return c.probe_cache[t.label]


def on_result(c, sched, name: str) -> None:
    """Probe what can be probed already and queue the repair early (trials trained by this campaign only:
    a re-run that reuses everything finds its probe by key at the end, without Ray)."""
    contract = registry.probe_contract(c.runner, c.p.bad.model)
    bad, good = _rung(c, "bad"), _rung(c, "good")
    if not (c.opts.probe and contract and bad and good and sched.started) or bad.reused:
        return
    if good.verdict != "stable" or bad.climb_start_step is None:
        return
    if not c.probe_cache:
        targets, why = explain.targets(bad, [], c.nodes, _lister(c))
        if why:
            return
        reports = {t.label: _probe(c, sched, t) for t in targets}
        diag = explain.diagnose(reports, bad.climb_start_step, getattr(contract, "WEIGHT_KNOBS", {}))
        knob = explain.repair_knob(diag, K.flatten(c.p.bad.model)) if c.opts.repair else None
        if knob is not None:
            c.extra.append(TrialSpec(f"repair {diag.aggressor}", (knob,), "repair"))
    rung = _rung(c, name)
    if rung is not None and rung.verdict == "stable" and name.startswith("revert "):
        for t in explain.targets(bad, [rung], c.nodes, _lister(c))[0]:
            if t.trial == name:
                _probe(c, sched, t)


def explain_and_repair(c, sched) -> None:
    contract = registry.probe_contract(c.runner, c.p.bad.model)
    if contract is None:
        how = ("add a `probe:` section to the recipe (a module implementing the probe contract and the "
               "checkpoint pattern; see runners/README.md)" if c.runner.NAME == "command" else "see runners/README.md")
        c.ladder.probe = {"diagnosis": f"no probe: runner {c.runner.NAME!r} offers no probe contract for this "
                                       f"recipe ({how})", "checkpoints": []}
        return
    bad = _rung(c, "bad")
    culprit_names = {k.name for k in c.ladder.culprits}
    stable = [r for r in c.ladder.rungs
              if r.verdict == "stable" and r.name.startswith("revert ") and r.name[7:] in culprit_names]
    targets, why = explain.targets(bad, stable, c.nodes, _lister(c))
    if why:
        c.ladder.probe = {"diagnosis": f"no probe: {why}", "checkpoints": []}
        return
    key = trial_key("probe", "1", {"targets": [[c.keys.get(t.trial), t.step, t.label] for t in targets],
                                   "batches": c.opts.probe_batches})
    cached = c.tracker.find_probe(key)
    if cached is not None:
        _say(c, "probe: reused the probe of an earlier campaign with the same checkpoints")
        c.ladder.probe = cached
        _after_probe(c, sched, contract, cached.get("aggressor"))
        return
    reports = {t.label: _probe(c, sched, t) for t in targets}
    diag = explain.diagnose(reports, bad.climb_start_step, getattr(contract, "WEIGHT_KNOBS", {}))
    c.ladder.probe = {
        "diagnosis": diag.text, "aggressor": diag.aggressor, "notes": diag.notes,
        "checkpoints": [dict(r.summary(), trial=t.trial) for t, r in zip(targets, reports.values(), strict=True)],
    }
    c.tracker.log_probe([r.to_json() for r in reports.values()], c.ladder.probe, key)
    _say(c, f"diagnosis: {diag.text}")
    _after_probe(c, sched, contract, diag.aggressor)


def _after_probe(c, sched, contract, aggressor: str | None) -> None:
    knob_path = getattr(contract, "WEIGHT_KNOBS", {}).get(aggressor or "")
    if c.opts.repair and knob_path:
        knob = explain.repair_knob(explain.Diagnosis("", aggressor, None, knob_path), K.flatten(c.p.bad.model))
        if knob is not None:
            _repair(c, sched, contract, knob, aggressor)


def _repair(c, sched, contract, knob: K.Knob, term: str) -> None:
    spec = TrialSpec(f"repair {term}", (knob,), "repair")
    if _rung(c, spec.name) is None:  # not queued early (e.g. the bad endpoint was reused)
        c.start(spec, sched)
        c.drain(sched)
    rung = _rung(c, spec.name)
    if rung is None or rung.verdict == "invalid":
        return
    val_metric = getattr(contract, "VAL_METRIC", "val_macro_f1")
    prefix = getattr(contract, "PER_CLASS_PREFIX", "val_f1.")
    good = _rung(c, "good")
    good_val = (_evals(c, good).get(val_metric) or [(0, None)])[-1][1] if good else None
    min_val = c.opts.min_val if c.opts.min_val is not None else (0.9 * good_val if good_val is not None else 0.0)
    curve = c.tracker.curves.get(spec.name) or []
    rung.gates = explain.gates(curve, _evals(c, rung), val_metric, prefix, min_val, c.opts.max_climb,
                               c.opts.class_floor)
    c.tracker.log_gates(spec.name, rung)
