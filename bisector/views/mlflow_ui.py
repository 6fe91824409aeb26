"""How a campaign reads in the MLflow UI: run names, run colours and run notes.

The UI shows a run's name in every list and legend, its colour on every
chart, and its note (``mlflow.note.content``, markdown) at the top of its
Overview. So the answer goes there: the parent run is named after what was
bisected and what was found, each child run is numbered in ladder order and
named with its verdict, colours follow the verdict (one hue per family, a
different shade per run so curves stay apart) and the notes open with the
answer. Pure functions of the ladder: the tracker writes them, tests read them.
"""

from __future__ import annotations

from typing import Any

from ..ladder import Ladder, Rung, _changed, _num, _step
from ..verdicts import FAILURES, Kind, Result
from . import markdown

# One hue per verdict family, several shades each (dark to light, alternating) so neighbouring curves differ.
FAILED = ("#b71c1c", "#ef5350", "#880e4f", "#ff8a65", "#d32f2f", "#f06292", "#6d1010", "#e57373")
FIXED = ("#1b5e20", "#66bb6a", "#2e7d32", "#9ccc65", "#00695c", "#43a047", "#33691e", "#81c784")
DEGRADED = ("#e65100", "#ffb300", "#ef6c00", "#ffd54f", "#f57f17", "#ffa726")
UNTESTED = ("#616161", "#9e9e9e", "#424242", "#bdbdbd")
GOOD, BAD, REPAIR = "#1565c0", "#4a148c", "#00838f"
RUNNING, PARENT, PROBE = "#b0bec5", "#263238", "#78909c"
LEGEND = ("Colours: blue good, purple bad, reds failed, greens fixed (stable and healthy), "
          "amber degraded, cyan the repair, greys untested.")


def family(rung: Rung) -> str:
    """The colour family of a rung: good, bad, repair, failed, fixed, degraded, untested or running."""
    verdict = Kind.of(rung.verdict)
    if rung.name in ("good", "bad") and rung.role in (None, "endpoint"):
        return rung.name
    if verdict is Kind.RUNNING:
        return "running"
    if rung.role == "repair":
        return "repair" if verdict is Kind.STABLE and _gates_pass(rung) else "failed"
    if verdict in FAILURES:
        return "failed"
    if verdict is Kind.STABLE:
        return "fixed"
    if verdict is Kind.DEGRADED:
        return "degraded"
    return "untested"


def colour(fam: str, shade: int = 0) -> str:
    """The hex colour of a family's ``shade``-th run."""
    single = {"good": GOOD, "bad": BAD, "repair": REPAIR, "running": RUNNING}
    if fam in single:
        return single[fam]
    palette = {"failed": FAILED, "fixed": FIXED, "degraded": DEGRADED}.get(fam, UNTESTED)
    return palette[shade % len(palette)]


def colours(ladder: Ladder) -> dict[str, str]:
    """Rung name -> colour, shades counted in ladder order within each family."""
    seen: dict[str, int] = {}
    out = {}
    for rung in ladder.rungs:
        fam = family(rung)
        out[rung.name] = colour(fam, seen.get(fam, 0))
        seen[fam] = seen.get(fam, 0) + 1
    return out


def _gates_pass(rung: Rung) -> bool:
    return all(g.get("passed") for g in (rung.gates or {}).values())


def verdict_word(rung: Rung) -> str:
    """The verdict as a run name ends: the verdict, and for the repair whether its gates passed."""
    if rung.role == "repair" and rung.gates:
        return f"{rung.verdict}, gates {'passed' if _gates_pass(rung) else 'failed'}"
    return str(rung.verdict)


def child_name(index: int, name: str, verdict: str | None = None, attempt: int = 1) -> str:
    """``03 [diverged] revert train.lr``; without a verdict while it runs; ``(attempt 2)`` for a retry.

    The verdict comes before the knob: MLflow's runs list cuts long names at about 25 characters, and a
    name that ends in its verdict hid it exactly where people scan for it."""
    shown = f"[{verdict}] " if verdict and verdict != Kind.RUNNING else ""
    return f"{index:02d} {shown}{name}" + (f" (attempt {attempt})" if attempt > 1 else "")


def found(ladder: Ladder) -> str:
    """What the campaign found, in a few words: ``a + b (only together)``, ``a, b (either alone)``, ..."""
    if ladder.not_finished:
        return "not finished" + (f", best guess {_sets(ladder)}" if ladder.culprits else "")
    if ladder.result is Result.NOT_CONFIDENT:
        return "not confident" + (f", best guess {_sets(ladder)}" if ladder.culprits else "")
    if ladder.result is Result.BAD_DOES_NOT_FAIL:
        return "no culprit: bad does not fail"
    if ladder.result is Result.GOOD_NOT_STABLE:
        return "no culprit: good is not stable"
    if not ladder.culprits:
        return "no culprit: " + (ladder.stopped or "no knob set explains it")[:80]
    structure = ladder.structure
    short = {"either alone breaks training": "either alone"}.get(structure or "", structure)
    return _sets(ladder) + (f" ({short})" if short and structure != "single" else "")


def _sets(ladder: Ladder) -> str:
    """Knob sets: ``+`` joins knobs that break training only together, ``, `` separates independent causes."""
    if ladder.groups:
        return ", ".join(" + ".join(g) for g in ladder.groups)
    return ", ".join(k.name.replace("+", " + ") for k in ladder.culprits)


def parent_name(what: str, ladder: Ladder | None = None) -> str:
    """``tagger: data.corpus + model.crf_reduction (only together)``; ``tagger: bisecting ...`` while it runs."""
    if ladder is None:
        return f"{what}: bisecting"
    return f"{what}: {found(ladder)}"


def headline(ladder: Ladder) -> str:
    """The note's first line: the answer, its structure and its confidence."""
    if not ladder.culprits or ladder.not_finished or ladder.result is Result.NOT_CONFIDENT:
        return ladder.culprit_line().splitlines()[0]
    plural = "s" if len(ladder.culprits) > 1 else ""
    conf = f" · confidence {ladder.confidence:.1%}" if ladder.confidence is not None else ""
    return f"Culprit{plural}: {found(ladder)}{conf}"


NOTE_LIMIT = 7900
"""MLflow truncates a tag value at 8000 characters: a longer note is rendered more compactly."""


def parent_note(ladder: Ladder, names: dict[str, str], links: dict[str, str] | None = None,
                html_link: str | None = None, limit: int = NOTE_LIMIT) -> str:
    """The parent run's note: the answer first, then the ladder, the diagnosis, the repair and the cost.

    ``names`` maps rung names to their child run names, ``links`` to run URLs (when the store is a server).
    Over ``limit`` characters the links go, then the "What changed" column, then the last rungs."""
    text = _parent_note(ladder, names, links or {}, html_link, True, len(ladder.rungs))
    if len(text) > limit:
        text = _parent_note(ladder, names, {}, html_link, True, len(ladder.rungs))
    if len(text) > limit:
        text = _parent_note(ladder, names, {}, html_link, False, len(ladder.rungs))
    rows = len(ladder.rungs)
    while len(text) > limit and rows > 0:
        rows = max(0, rows - max(1, rows // 4))
        text = _parent_note(ladder, names, {}, html_link, False, rows)
    return text[:limit]


def _parent_note(ladder: Ladder, names: dict[str, str], links: dict[str, str], html_link: str | None,
                 changed: bool, max_rows: int) -> str:
    out = [f"## {headline(ladder)}", ""]
    if ladder.culprits:
        out += markdown.table(["Culprit knob", "Good", "Bad"],
                              [[f"`{p}`", repr(v['good']), repr(v['bad'])]
                               for k in ladder.culprits for p, v in k.changes().items()])
        out.append("")
    if ladder.structure and ladder.explanation:
        out += [f"**Structure:** {ladder.structure}: {ladder.explanation}", ""]
    out += [f"_{n}_" for n in ladder.notes] + ([""] if ladder.notes else [])
    out += [f"### Ladder: `{ladder.good_path}` → `{ladder.bad_path}` (strategy {ladder.strategy})", ""]
    rows = []
    for rung in ladder.rungs[:max_rows]:
        label = names.get(rung.name, rung.name)
        label = f"[{label}]({links[rung.name]})" if rung.name in links else label
        rows.append([label, rung.role or "-", *([_changed(rung)] if changed else []), f"**{verdict_word(rung)}**",
                     _num(rung.best_value), _step(rung.climb_start_step), _step(rung.detected_at_step),
                     f"{rung.steps_run}" + (f"/{rung.horizon}" if rung.horizon else "")])
    out += markdown.table(["Run", "Role", *(["What changed"] if changed else []), "Verdict", "Best loss",
                           "Climb start", "Detected at", "Steps"], rows)
    if max_rows < len(ladder.rungs):
        out.append(f"\n_{len(ladder.rungs) - max_rows} more rungs in `ladder.md`._")
    out.append("")
    if ladder.probe:
        out += ["### Diagnosis", "", str(ladder.probe.get("diagnosis")), ""]
        out += [f"_Note: {n}_" for n in ladder.probe.get("notes", [])] + [""]
    repair = ladder.repair_line()
    if repair:
        out += ["### Repair", "", repair, ""]
    out += [ladder.cost_line() + ".", "", LEGEND]
    out.append("Full report with the probe tables and the curves: `ladder.html` in Artifacts"
               + (f" ([open]({html_link}))" if html_link else "") + ".")
    return "\n".join(out) + "\n"


def child_note(rung: Rung, metric: str, campaign: str, last_eval: tuple[int, dict[str, float]] | None = None) -> str:
    """A trial's note: what it changed, what happened, and how to read its validation scores."""
    out = [f"**{rung.name}: {verdict_word(rung)}** · a trial of `{campaign}`", ""]
    if rung.name == "bad":
        out.append("Changed: nothing: this is the bad recipe.")
    elif rung.name == "good":
        out.append(f"Changed: every knob ({len(rung.changed)}): this is the good recipe.")
    else:
        out.append(f"Changed (set to the good recipe's value on top of the bad one): {_changed(rung)}.")
    out += ["", f"Role: {rung.role or '-'}.", "", "What happened: " + happened(rung, metric)]
    if rung.reused:
        out += ["", f"Reused: the same trial (same key) finished earlier as run `{rung.run_id}`; its curves and "
                    "checkpoints are there, nothing was trained again."]
    if last_eval and Kind.of(rung.verdict) in FAILURES:
        step, values = last_eval
        shown = ", ".join(f"{k} {v:.3g}" for k, v in sorted(values.items()) if "." not in k)
        stop = rung.detected_at_step or rung.steps_run
        out += ["", f"The validation scores ({shown}) were last measured at step {step}"
                    + (f", before the climb started at step {rung.climb_start_step}"
                       if rung.climb_start_step is not None and step <= rung.climb_start_step else "")
                    + f"; the run was stopped at step {stop} and never evaluated after it failed: "
                      "they do not describe a good model."]
    if rung.note:
        out += ["", f"Note: {rung.note}"]
    if rung.gates:
        out += ["", *markdown.table(["Gate", "Result", "Value", "Rule"],
                                    [[g, "passed" if v.get("passed") else "FAILED", str(v.get("value")),
                                      v.get("rule", "")] for g, v in rung.gates.items()])]
    if rung.reproduce:
        out += ["", f"Reproduce: `{rung.reproduce}`"]
    return "\n".join(out) + "\n"


def happened(rung: Rung, metric: str) -> str:
    """One sentence on the curve: where it was best, where it climbed, where it was stopped."""
    horizon = f" of {rung.horizon}" if rung.horizon else ""
    best = (f"best {metric} {_num(rung.best_value)} at step {rung.best_step}"
            if rung.best_value is not None else f"no {metric} value")
    if Kind.of(rung.verdict) in FAILURES:
        climb = f", climbed from step {rung.climb_start_step}" if rung.climb_start_step is not None else ""
        det = f", {rung.verdict} detected at step {rung.detected_at_step}" if rung.detected_at_step else ""
        saved = f" ({rung.steps_saved} steps saved)" if rung.steps_saved else ""
        return f"{best}{climb}{det}; stopped at step {rung.steps_run}{horizon}{saved}."
    return f"{rung.verdict} for {rung.steps_run}{horizon} steps; {best}."


def probe_name(summary: dict[str, Any]) -> str:
    aggressor = summary.get("aggressor")
    return f"probe: {aggressor} is the aggressor" if aggressor else "probe: no aggressor"
