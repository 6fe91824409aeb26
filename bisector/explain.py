"""After the culprits: probe the pre-climb checkpoint, say why in plain words, propose a repair.

Probes (one forward, one backward per loss term) run on the bad endpoint at
its pre-climb checkpoint (the latest at or before the climb start), on each
stable revert at the same step for contrast, and on the bad endpoint early in
training. The diagnosis uses magnitude *and* direction: a term is called the
aggressor only if it carries most of the update and opposes the primary term
(cosine < 0) before the climb; a large norm ratio alone blames nobody (in our
lab the CRF/CE ratio was larger early in training and in a stable revert than
before the climb, while the cosine turned negative only in diverging runs).
The repair for an aggressor whose weight is a knob is to train with weight 0
and keep the structure at inference; it is checked by a final smoke rung
against explicit gates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .knobs import Knob
from .probe import ProbeReport, reduction_note

STAGNATING = "while a task stagnates"
"""The label of the bad endpoint's probe when its verdict is ``stagnant``."""


@dataclass
class ProbeTarget:
    label: str
    trial: str
    checkpoint: str
    step: int
    node_id: str | None = None
    who: str | None = None
    """How the diagnosis names the trial (e.g. ``stable revert of data.corpus``)."""


@dataclass
class Diagnosis:
    text: str
    aggressor: str | None = None
    primary: str | None = None
    repair_knob: str | None = None
    notes: list[str] = field(default_factory=list)
    starved: str | None = None
    """The task a ``stagnant`` diagnosis found starved (``starved.py``)."""
    repair: dict[str, Any] | None = None
    """Knob settings the repair rung applies (a runner's ``REPAIRS`` for this diagnosis)."""


def checkpoints(out_dir: str | None) -> dict[int, str]:
    """Step -> checkpoint path under a trial's out dir (``checkpoints/step_NNNNNN.pt``)."""
    if not out_dir:
        return {}
    found = {}
    for p in (Path(out_dir) / "checkpoints").glob("step_*.pt"):
        m = re.fullmatch(r"step_(\d+)\.pt", p.name)
        if m:
            found[int(m.group(1))] = str(p)
    return dict(sorted(found.items()))


def targets(bad: Any, stable_reverts: list[Any], nodes: dict[str, str],
            lister=None, since: int | None = None) -> tuple[list[ProbeTarget], str | None]:
    """Which checkpoints to probe, or why none can be (rungs carry ``out_dir`` and ``climb_start_step``;
    ``lister`` maps an out dir to its checkpoints, by default ``checkpoints``; ``since``: the runner's
    phase switch, so "early" means early in the phase that failed, not in its warmup). A climb is probed
    just before it starts; a stagnant task (no climb) at the step its verdict was given."""
    lister = lister or checkpoints
    ckpts = lister(bad.out_dir)
    stagnant = getattr(bad, "stagnant_task", None) and bad.detected_at_step is not None
    ref, where = (bad.detected_at_step, STAGNATING) if stagnant else (bad.climb_start_step, "before the climb")
    if ref is None:
        return [], f"the bad endpoint's verdict ({bad.verdict}) has no climb start to probe before"
    before = [s for s in ckpts if s <= ref]
    if not before:
        where_dir = bad.out_dir or "(unknown)"
        return [], f"no checkpoint of the bad endpoint at or before step {ref} in {where_dir}"
    pre = before[-1]
    out = []
    first = next((s for s in ckpts if since is None or s >= since), pre)
    if first < pre:
        out.append(ProbeTarget(f"bad, early (step {first})", "bad", ckpts[first], first, nodes.get("bad")))
    out.append(ProbeTarget(f"bad, {where} (step {pre})", "bad", ckpts[pre], pre, nodes.get("bad")))
    for rung in stable_reverts:
        theirs = lister(rung.out_dir)
        if pre in theirs:
            who = f"stable {getattr(rung, 'role', None) or 'trial'} of {', '.join(rung.changed) or rung.name}"
            out.append(ProbeTarget(f"{rung.name}, stable (step {pre})", rung.name, theirs[pre], pre,
                                   nodes.get(rung.name), who))
    return out, None


def _cos(r: ProbeReport, a: str, b: str) -> float:
    p = r.pair(a, b)
    return p.cosine if p else 0.0


def diagnose(reports: dict[str, ProbeReport], climb_start: int | None, weight_knobs: dict[str, str],
             who: dict[str, str] | None = None) -> Diagnosis:
    """``who`` names the probed trials in words, by label (default: the label's trial name)."""
    pre = next((r for label, r in reports.items() if "before the climb" in label), None)
    if pre is None:
        return Diagnosis("no probe of the pre-climb checkpoint: no diagnosis")
    primary = pre.primary
    terms = pre.terms["all"]
    others = [t for t in terms if t != primary and terms[t].weight]
    notes = [n for n in [reduction_note(pre)] if n]
    if not others:
        return Diagnosis(f"only {primary} is trained: no loss conflict to diagnose", notes=notes)
    cand = max(others, key=lambda t: terms[t].weighted_norm)
    cos = _cos(pre, primary, cand)
    ratio = terms[cand].weighted_norm / terms[primary].weighted_norm if terms[primary].weighted_norm else float("inf")
    proj = terms[cand].projection_share
    where = max((s for s in pre.terms if s != "all"), default="all",
                key=lambda s: pre.terms[s][cand].weighted_norm)
    contrasts = []
    for label, r in reports.items():
        if r is pre or "stable" not in label:
            continue
        c = _cos(r, primary, cand)
        verb = "agree" if c >= 0 else "also oppose"
        name = (who or {}).get(label) or label.split(",")[0]
        contrasts.append(f"in the {name} at the same step they {verb} (cos {c:+.2f}, "
                         f"{cand} carries {r.terms['all'][cand].projection_share:.0%} of the update)")
    early = [r for label, r in reports.items() if "early" in label]
    if early:
        e = early[0]
        er = e.terms["all"][cand].weighted_norm / max(e.terms["all"][primary].weighted_norm, 1e-30)
        contrasts.append(f"early in the bad run (step {e.step}) its weighted gradient was {er:.1f}x {primary}'s "
                         f"but agreed with it (cos {_cos(e, primary, cand):+.2f})" if _cos(e, primary, cand) >= 0
                         else f"early in the bad run (step {e.step}) they already opposed (cos "
                         f"{_cos(e, primary, cand):+.2f})")
    tail = ("; " + "; ".join(contrasts)) if contrasts else ""
    before = f"step {pre.step}" + (f" (before the climb at {climb_start})," if climb_start is not None else ",")
    if cos < 0 and proj > 0.5:
        text = (f"{cand} is the aggressor: at {before} its weighted gradient is {ratio:.1f}x {primary}'s, "
                f"opposes it (cos {cos:+.2f}) and carries {proj:.0%} of the update, mostly through the {where}"
                f"{tail}.")
        return Diagnosis(text, cand, primary, weight_knobs.get(cand), notes)
    why = "they agree" if cos >= 0 else f"it carries only {proj:.0%} of the update"
    text = (f"no aggressor: at {before} {cand}'s weighted gradient is {ratio:.1f}x {primary}'s with cos {cos:+.2f}, "
            f"but {why}; magnitude alone blames no term{tail}.")
    return Diagnosis(text, None, primary, None, notes)


def symptom_notes(rows: list[tuple[str, str, str]], kind: str) -> list[str]:
    """The runner's failure-mode table rows for the symptom a run shows, one sentence each."""
    return [f"{kind}: the runner's failure-mode table says: {symptom} -> likely {cause} -> remedy: {remedy}"
            for symptom, cause, remedy in rows]


def repair_knob(diag: Diagnosis, bad_flat: dict[str, Any]) -> Knob | None:
    """Weight 0 for the aggressor (train without it, keep it at inference)."""
    if not diag.repair_knob or diag.repair_knob not in bad_flat:
        return None
    return Knob((diag.repair_knob,), (0.0,), (bad_flat[diag.repair_knob],))


def gates(curve: list[tuple[int, float]], evals: dict[str, list[tuple[int, float]]], val_metric: str,
          per_class_prefix: str, min_val: float, max_climb: float = 0.2,
          class_floor: float = 0.5) -> dict[str, dict[str, Any]]:
    """The repair's gates, each with its measured value and whether it passed."""
    out: dict[str, dict[str, Any]] = {}
    if curve:
        level, start, best, worst = None, curve[0][1], float("inf"), 0.0
        for _, v in curve:
            level = v if level is None else level + 0.1 * (v - level)
            best = min(best, level)
            if start - best > 0.1 * abs(start):  # judged once the loss has really come down
                worst = max(worst, (level - best) / (start - best))
        out["no_climb"] = {"passed": worst <= max_climb, "value": round(worst, 4),
                           "rule": f"smoothed loss never climbs more than {max_climb:.0%} of the way back "
                                   "from its running minimum toward its start"}
    val = evals.get(val_metric, [])
    last = val[-1][1] if val else None
    out["min_val"] = {"passed": last is not None and last >= min_val, "value": last,
                      "rule": f"{val_metric} at the horizon >= {min_val:.4g}"}
    collapsed = []
    for name, pts in evals.items():
        if name.startswith(per_class_prefix) and pts:
            peak = max(v for _, v in pts)
            if pts[-1][1] < class_floor * peak:
                collapsed.append(name[len(per_class_prefix):])
    out["no_class_collapse"] = {"passed": not collapsed, "value": collapsed,
                                "rule": f"no per-class score ends below {class_floor:.0%} of its peak"}
    return out
