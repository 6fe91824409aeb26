"""Writes the run view onto MLflow runs: names, colours, notes, chart markers, experiment settings.

The tracker records what happened; this module makes it readable in the UI
(see ``views.mlflow_ui`` for the rules). It is separate so the tracker stays the
recorder: every call here only sets tags, names and a few marker metrics on
runs the tracker created. Numbering follows launch order while a campaign
runs and the final ladder order at its end, so ``03`` in a run name is row 3
of the ladder.
"""

from __future__ import annotations

import time
from typing import Any

from . import links
from .ladder import Ladder, Rung
from .verdicts import FAILURES, Kind
from .views import mlflow_ui

NOTE, COLOUR = "mlflow.note.content", "mlflow.runColor"


class Presenter:
    def __init__(self, tracker):
        self.t = tracker
        self.index: dict[str, int] = {}
        self.children: dict[str, str] = {}
        """Rung name -> this campaign's child run for it (a launched trial's latest attempt, or a reused marker)."""
        self.last_eval: dict[str, tuple[int, dict[str, float]]] = {}
        self.what = "bisector"
        self.shades: dict[str, int] = {}

    # -- the campaign ---------------------------------------------------------------------------------------------
    def start(self, info: dict[str, Any]) -> dict[str, str]:
        """Tags for a new parent run; sets the experiment's settings once."""
        params = info.get("params", {})
        self.what = str(params.get("runner") or "bisector")
        self._experiment_settings()
        note = (f"**Bisecting** `{params.get('good')}` → `{params.get('bad')}` ({params.get('knob_count')} knobs, "
                f"strategy {params.get('strategy')}): running. The answer will be written here when the campaign "
                "ends; the trials are the child runs below.\n")
        return {"mlflow.runName": mlflow_ui.parent_name(self.what), NOTE: note, COLOUR: mlflow_ui.PARENT}

    def _experiment_settings(self) -> None:
        client, exp_id = self.t.client, self.t._experiment_id()
        try:
            tags = client.get_experiment(exp_id).tags or {}
            for key, value in links.EXPERIMENT_TAGS.items():
                if key not in tags:
                    client.set_experiment_tag(exp_id, key, value)
            if NOTE not in tags:
                client.set_experiment_tag(exp_id, NOTE, (
                    "Bisector campaigns: a parent run per campaign, named after its answer; its trials are the child "
                    "runs, numbered in ladder order, coloured by verdict. On the GenAI pages, pick **Model training** "
                    "(or add `?workflowType=machine_learning` to the address)."))
        except Exception:  # noqa: BLE001 - a store without experiment tags: the runs still say everything
            pass

    # -- trials ---------------------------------------------------------------------------------------------------
    def trial_start(self, name: str, attempt: int) -> dict[str, str]:
        """Name and colour of a new trial run while it runs."""
        idx = self.index.setdefault(name, len(self.index) + 1)
        return {"mlflow.runName": mlflow_ui.child_name(idx, name, attempt=attempt), COLOUR: mlflow_ui.RUNNING,
                "bisector.trial": name}

    def trial_run(self, name: str, run_id: str) -> None:
        self.children[name] = run_id

    def metrics(self, name: str, records: list[dict[str, Any]]) -> None:
        for rec in records:
            evals = {k: float(v) for k, v in rec.items() if k.startswith("val_") and isinstance(v, (int, float))}
            if evals:
                self.last_eval[name] = (int(rec["step"]), evals)

    def fault(self, name: str, run_id: str, attempt: int) -> None:
        idx = self.index.get(name, 0)
        self.t.client.update_run(run_id, name=mlflow_ui.child_name(idx, name, "infrastructure fault", attempt))

    def trial_end(self, name: str, rung: Rung, run_id: str, reused: bool = False) -> dict[str, str]:
        """Rename with the verdict, colour by family, write the note; returns the tags to log."""
        idx = self.index.setdefault(name, len(self.index) + 1)
        fam = mlflow_ui.family(rung)
        shade = self.shades.get(fam, 0)
        self.shades[fam] = shade + 1
        title = mlflow_ui.child_name(idx, name, mlflow_ui.verdict_word(rung)) + (" (reused)" if reused else "")
        tags = {"mlflow.runName": title, COLOUR: mlflow_ui.colour(fam, shade),
                NOTE: mlflow_ui.child_note(rung, self.t.metric, mlflow_ui.parent_name(self.what),
                                          self.last_eval.get(name))}
        if Kind.of(rung.verdict) in FAILURES and name in self.last_eval:  # beside val_* in the runs table: when?
            tags["val_measured_at_step"] = f"{self.last_eval[name][0]} ({rung.verdict} at {rung.steps_run})"
        return tags

    def markers(self, name: str, rung: Rung) -> list:
        """Chart markers: ``climb_start_step`` and ``detected_at_step`` (value = step, at that step), and
        ``<metric>.climb`` with the watched metric's value at both steps (a two-point series beside the curve)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        curve = dict(self.t.curves.get(name) or [])
        out = []
        for key in ("climb_start_step", "detected_at_step"):
            step = getattr(rung, key)
            if step is None:
                continue
            out.append(Metric(key, float(step), now, int(step)))
            near = [s for s in curve if s <= step]
            if near:
                out.append(Metric(f"{self.t.metric}.climb", float(curve[max(near)]), now, int(step)))
        return out

    # -- the end --------------------------------------------------------------------------------------------------
    def finish(self, ladder: Ladder, html_link: bool = True) -> dict[str, str]:
        """Renumber and recolour every child in ladder order; returns the parent's name and note tags."""
        colours = mlflow_ui.colours(ladder)
        names: dict[str, str] = {}
        for i, rung in enumerate(ladder.rungs, 1):
            run_id = self.children.get(rung.name)
            reused = " (reused)" if rung.reused else ""
            names[rung.name] = mlflow_ui.child_name(i, rung.name, mlflow_ui.verdict_word(rung)) + reused
            if run_id is None:
                continue
            self.t._log(run_id, tags=_tags({
                "mlflow.runName": names[rung.name], COLOUR: colours[rung.name], "bisector.ladder_index": str(i),
                NOTE: mlflow_ui.child_note(rung, self.t.metric, mlflow_ui.parent_name(self.what, ladder),
                                          self.last_eval.get(rung.name))}))
        base = links.ui_base(self.t.display_uri)
        exp_id, parent = self.t._experiment_id(), self.t.parent_run_id
        urls = {r.name: links.run_url(base, exp_id, r.run_id) for r in ladder.rungs if base and r.run_id}
        html = links.artifact_url(base, exp_id, parent, "ladder.html") if base and html_link else None
        note = mlflow_ui.parent_note(ladder, names, urls, html)
        self.names, self.urls = names, urls
        return {"mlflow.runName": mlflow_ui.parent_name(self.what, ladder), NOTE: note}

    def probe_tags(self, summary: dict[str, Any]) -> dict[str, str]:
        return {"mlflow.runName": mlflow_ui.probe_name(summary), COLOUR: mlflow_ui.PROBE,
                NOTE: f"**Gradient probe** of the bad run's pre-climb checkpoint and its contrasts.\n\n"
                      f"Diagnosis: {summary.get('diagnosis')}\n\nTables: `probe.md` in Artifacts.\n"}


def _tags(tags: dict[str, str]) -> list:
    from mlflow.entities import RunTag

    return [RunTag(k, v[:8000]) for k, v in tags.items()]
