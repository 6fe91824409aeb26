"""A starved task: why one task of a multi-task model stagnates, the repair to try, its gates.

When a trial's verdict is ``stagnant`` (``tasks.py``), the probe measures
each task's gradient on the module the tasks share (the runner's
``SHARED_MODULE``, e.g. a trunk) at the step the verdict was given. The
diagnosis names the starved task and says why: its weighted gradient there
against the loudest task's, beside sqrt(elements ratio) when both are means
(averaging N roughly independent per-element gradients shrinks a gradient by
about sqrt(N): a normaliser that equalises loss *magnitudes* leaves a task
averaged over 105 timesteps with about sqrt(2/105) = 0.14 of the gradient of
one averaged over 2 outputs). The repair is what the runner declares for a
starved task (``REPAIRS["starved"]``: knob settings), checked by gates: the
starved task must improve by at least ``MIN_GAIN`` and every other task keep
at least ``1 - MAX_REGRESS`` of its improvement in the bad run.
"""

from __future__ import annotations

from typing import Any

from .explain import STAGNATING, Diagnosis
from .knobs import Knob
from .probe import ProbeReport

MIN_GAIN = 0.10
"""The starved task's relative improvement a repair must reach (the ``others_above`` of the stagnant rule)."""
MAX_REGRESS = 0.20
"""The share of its improvement in the bad run another task may lose under the repair."""
STARVED_BELOW = 0.5
"""A task is called starved when its weighted gradient is under this share of the loudest task's."""


def diagnose(reports: dict[str, ProbeReport], task: str, repairs: dict[str, dict[str, Any]],
             who: dict[str, str] | None = None) -> Diagnosis:
    pre = next((r for label, r in reports.items() if STAGNATING in label), None)
    if pre is None:
        return Diagnosis("no probe of the stagnant run: no diagnosis")
    scope = pre.scope
    where = "all parameters" if scope == "all" else f"the shared {scope}"
    terms = pre.terms[scope]
    if task not in terms:
        return Diagnosis(f"{task} stagnated but the probe has no term named {task}: no diagnosis")
    others = [t for t in terms if t != task and terms[t].weight]
    if not others:
        return Diagnosis(f"only {task} is trained: no other task to starve it")
    loud = max(others, key=lambda t: terms[t].weighted_norm)
    ratio = terms[task].weighted_norm / max(terms[loud].weighted_norm, 1e-30)
    spread = [terms[task].weighted_norm / max(terms[o].weighted_norm, 1e-30) for o in others]
    cos = [p.cosine for o in others if (p := pre.pair(task, o, scope))]
    red = pre.reductions
    notes = ["elements reduced per batch: " + ", ".join(f"{t} {n} {what} ({how})" for t, (how, n, what)
                                                         in red.items())] if red else []
    why = ""
    if task in red and loud in red:
        (how_t, n_t, what_t), (how_l, n_l, what_l) = red[task], red[loud]
        if how_t == how_l == "mean":
            expect = (n_l / n_t) ** 0.5
            below = " (below even that: the loud task's gradient grew as its loss shrank)" if ratio < expect / 2 else ""
            why = (f", against sqrt({n_l}/{n_t}) = {expect:.3f} from the reductions alone{below}: {task} averages "
                   f"{n_t} {what_t} per batch and {loud} {n_l} {what_l}, and averaging N per-element gradients "
                   "shrinks a gradient by about sqrt(N), so equal loss magnitudes are not equal gradients")
        elif how_t == "sum":
            why = f" although {task} is summed over its {n_t} {what_t}"
    contrasts = []
    for label, r in reports.items():
        if r is pre or "stable" not in label or task not in r.terms.get(r.scope, {}):
            continue
        t2 = r.terms[r.scope]
        r2 = t2[task].weighted_norm / max(t2[loud].weighted_norm, 1e-30) if loud in t2 else float("nan")
        name = (who or {}).get(label) or label.split(",")[0]
        contrasts.append(f"in the {name} at the same step it is {r2:.2f}x {loud}'s and carries "
                         f"{t2[task].projection_share:.0%} of the update")
    early = next((r for label, r in reports.items() if "early" in label and r is not pre), None)
    if early is not None and task in early.terms.get(early.scope, {}) and loud in early.terms[early.scope]:
        te = early.terms[early.scope]
        contrasts.append(f"early in the bad run (step {early.step}) it was "
                         f"{te[task].weighted_norm / max(te[loud].weighted_norm, 1e-30):.3f}x {loud}'s")
    tail = ("; " + "; ".join(contrasts)) if contrasts else ""
    at = f"at step {pre.step} (while it stagnates)"
    if ratio >= STARVED_BELOW:
        return Diagnosis(f"{task} stagnates but is not starved of gradient: on {where} {at} its weighted gradient "
                         f"is {ratio:.2f}x {loud}'s{tail}.", notes=notes)
    cos_text = f", cosine with the others {min(cos):+.2f}..{max(cos):+.2f}" if cos else ""
    text = (f"{task} is starved: on {where} {at} its weighted gradient is {ratio:.3f}x {loud}'s "
            f"({min(spread):.3f}-{max(spread):.3f}x the others'){why}; it carries "
            f"{terms[task].projection_share:.0%} of the update there{cos_text}{tail}.")
    return Diagnosis(text, None, pre.primary, notes=notes, starved=task, repair=repairs.get("starved"))


def repair_knob(settings: dict[str, Any], bad_flat: dict[str, Any]) -> Knob | None:
    """The repair as one knob: the settings (``good`` side) against the bad recipe's values."""
    paths = tuple(p for p in settings if p in bad_flat and bad_flat[p] != settings[p])
    if not paths:
        return None
    return Knob(paths, tuple(settings[p] for p in paths), tuple(bad_flat[p] for p in paths))


def gates(repaired: dict[str, float] | None, bad: dict[str, float] | None, task: str,
          min_gain: float = MIN_GAIN, max_regress: float = MAX_REGRESS) -> dict[str, dict[str, Any]]:
    """The repair's gates on per-task improvements (``Rung.tasks``), each with its value and whether it passed."""
    repaired, bad = repaired or {}, bad or {}
    gain = repaired.get(task)
    out = {"starved_improves": {"passed": gain is not None and gain >= min_gain, "value": gain,
                                "rule": f"{task} improves by at least {min_gain:.0%}"}}
    lost = [t for t, b in bad.items() if t != task and b > 0 and repaired.get(t, -1.0) < (1 - max_regress) * b]
    out["others_hold"] = {"passed": not lost and bool(repaired), "value": lost,
                          "rule": f"every other task keeps at least {1 - max_regress:.0%} of its improvement "
                                  "in the bad run"}
    return out
