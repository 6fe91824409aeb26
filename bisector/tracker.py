"""Who logs: campaign callbacks, and the MLflow ladder.

``Callback`` has a no-op hook per campaign event; ``MlflowTracker`` writes one
parent run per campaign and one child run per trial attempt. The driver is
the only writer (MLflow's sqlite store contends under several writers), and
metrics go in with ``log_batch`` in chunks because per-step ``log_metric``
costs seconds per trial. Every finished trial carries its key
(``bisector.key``), so a later campaign finds and reuses it.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from . import links, orphans
from .errors import ResumeError
from .ladder import Ladder, Rung
from .presenter import Presenter
from .verdicts import Kind
from .views.markdown import ladder_md, probe_md

CHUNK = 1000
RUNG_TAGS = ("verdict", "best_step", "best_value", "climb_start_step", "detected_at_step", "steps_run", "horizon",
             "wall_s", "device_seconds", "device_kind", "tasks", "stagnant_task")


class Callback:
    def on_campaign_start(self, info: dict[str, Any]) -> None: ...

    def on_trial_start(self, name: str, params: dict[str, Any], tags: dict[str, str]) -> None: ...

    def on_trial_running(self, name: str, info: dict[str, Any]) -> None: ...

    def on_trial_metrics(self, name: str, records: list[dict[str, Any]]) -> None: ...

    def on_trial_fault(self, name: str, error: str, will_retry: bool) -> None: ...

    def on_trial_reused(self, name: str, rung: Rung) -> None: ...

    def on_trial_cancelled(self, name: str, rung: Rung) -> None: ...

    def on_trial_end(self, name: str, rung: Rung, result: dict[str, Any]) -> None: ...

    def on_note(self, text: str) -> None: ...

    def on_campaign_end(self, ladder: Ladder, finished: bool) -> None: ...


def _params(params: dict[str, Any]) -> list:
    from mlflow.entities import Param

    return [Param(k, (v if isinstance(v, str) else json.dumps(v, default=str))[:6000]) for k, v in params.items()]


def _tags(tags: dict[str, Any], limit: int = 5000) -> list:
    from mlflow.entities import RunTag

    return [RunTag(k, "" if v is None else (json.dumps(v) if isinstance(v, dict) else str(v))[
                :8000 if k == "mlflow.note.content" else limit]) for k, v in tags.items()]


def _parse(value: str | None) -> Any:
    if value in (None, "", "None"):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


class MlflowTracker(Callback):
    def __init__(self, tracking_uri: str | None = None, experiment: str = "bisector"):
        from . import store

        self.tracking_uri, self.client = store.open_client(tracking_uri, experiment)  # StoreError if unusable
        self.display_uri = store.redact(self.tracking_uri)  # what is printed and stored: no credentials
        self.experiment = experiment
        self.parent_run_id: str | None = None
        self._exp_id: str | None = None
        self._runs: dict[str, str] = {}
        self._pending: dict[str, list] = {}
        self._attempts: dict[str, int] = {}
        self.curves: dict[str, list[tuple[int, float]]] = {}
        self.metric = "loss"
        self.view = Presenter(self)  # names, colours, notes and markers for the UI

    # -- writing --------------------------------------------------------------------
    def _log(self, run_id: str, *, metrics=(), params=(), tags=()) -> None:
        metrics, params, tags = list(metrics), list(params), list(tags)
        for i in range(0, max(len(metrics), 1), CHUNK):
            self.client.log_batch(run_id, metrics=metrics[i : i + CHUNK])
        for i in range(0, max(len(params), len(tags)), 100):
            self.client.log_batch(run_id, params=params[i : i + 100], tags=tags[i : i + 100])

    def _experiment_id(self) -> str:
        if self._exp_id is None:
            from mlflow.exceptions import MlflowException

            exp = self.client.get_experiment_by_name(self.experiment)
            try:
                self._exp_id = exp.experiment_id if exp else self.client.create_experiment(self.experiment)
            except MlflowException:  # another campaign created it first
                self._exp_id = self.client.get_experiment_by_name(self.experiment).experiment_id
        return self._exp_id

    def on_campaign_start(self, info: dict[str, Any]) -> None:
        self.metric = info.get("metric", self.metric)
        if info.get("resume"):
            self.view.what = str(info.get("params", {}).get("runner") or self.view.what)
            self.parent_run_id = info["resume"]
            self._exp_id = self.client.get_run(self.parent_run_id).info.experiment_id
            self.client.update_run(self.parent_run_id, status="RUNNING")
            stale = self.client.search_runs(  # trials of a driver that died without cleaning up
                [self._exp_id], f"tags.mlflow.parentRunId = '{self.parent_run_id}' AND attributes.status = 'RUNNING'")
            for run in stale:
                self.client.set_terminated(run.info.run_id, status="KILLED")
            self._log(self.parent_run_id, tags=_tags({"bisector.resumed_at": time.strftime("%Y-%m-%d %H:%M:%S"),
                                                      orphans.TAG: orphans.identity()}))
            orphans.close(self.client, self._exp_id, self.parent_run_id)
            return
        shown = self.view.start(info)
        run = self.client.create_run(self._experiment_id(), run_name=shown.pop("mlflow.runName"),
                                     tags={"bisector.role": "campaign", orphans.TAG: orphans.identity(), **shown})
        self.parent_run_id = run.info.run_id
        orphans.close(self.client, self._exp_id, self.parent_run_id)
        self._log(self.parent_run_id, params=_params(info["params"]), tags=_tags(info.get("tags", {})))
        for fname, text in info.get("recipes", {}).items():
            self.client.log_text(self.parent_run_id, text, f"recipes/{fname}")

    def on_trial_start(self, name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        attempt = self._attempts[name] = self._attempts.get(name, 0) + 1
        tags = {"mlflow.parentRunId": self.parent_run_id, "bisector.role": "trial", "bisector.attempt": str(attempt),
                **tags}
        shown = self.view.trial_start(name, attempt)
        run = self.client.create_run(self._experiment_id(), run_name=shown.pop("mlflow.runName"),
                                     tags={**tags, **shown})
        self._runs[name] = run.info.run_id
        self.view.trial_run(name, run.info.run_id)
        self._pending[name] = []
        self.curves[name] = []
        self._log(run.info.run_id, params=_params(params))

    def log_recipe(self, name: str, text: str) -> None:
        self.client.log_text(self._runs[name], text, "recipe.yaml")

    def on_trial_running(self, name: str, info: dict[str, Any]) -> None:
        self._log(self._runs[name], tags=_tags({f"bisector.{k}": v for k, v in info.items()}))

    def on_trial_metrics(self, name: str, records: list[dict[str, Any]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.view.metrics(name, records)
        buf = self._pending[name]
        curve = self.curves[name]
        for rec in records:
            step = int(rec["step"])
            for key, value in rec.items():
                if key != "step" and isinstance(value, (int, float)):
                    v = float(value)
                    buf.append(Metric(key, v if math.isfinite(v) else float("nan"), now, step))
            if self.metric in rec:
                curve.append((step, float(rec[self.metric])))
        if len(buf) >= CHUNK:
            self._log(self._runs[name], metrics=buf)
            self._pending[name] = []

    def on_trial_fault(self, name: str, error: str, will_retry: bool) -> None:
        run_id = self._runs[name]
        self._log(run_id, metrics=self._pending.pop(name, []),
                  tags=_tags({"bisector.infra_fault": error, "bisector.retried": will_retry}))
        self.view.fault(name, run_id, self._attempts.get(name, 1))
        self.client.set_terminated(run_id, status="FAILED")

    def landing(self) -> list[str]:
        """Where to open this campaign in the MLflow UI (printed at its end)."""
        return links.landing(self.display_uri, self._exp_id, self.parent_run_id)

    def run_id(self, name: str) -> str | None:
        return self._runs.get(name)

    def on_trial_reused(self, name: str, rung: Rung) -> None:
        self.curves[name] = self.history(rung.run_id, self.metric) if rung.run_id else []
        if rung.run_id and self.client.get_run(rung.run_id).data.tags.get("mlflow.parentRunId") == self.parent_run_id:
            self.view.trial_run(name, rung.run_id)
            return  # already a child of this campaign (a resumed campaign)
        shown = self.view.trial_end(name, rung, "", reused=True)
        tags = {"mlflow.parentRunId": self.parent_run_id, "bisector.role": "trial", "bisector.key": rung.key,
                "bisector.reused_from": rung.run_id, "bisector.out_dir": rung.out_dir, "bisector.trial": name,
                **{k: getattr(rung, k) for k in RUNG_TAGS}, **shown}
        run = self.client.create_run(self._experiment_id(), run_name=tags.pop("mlflow.runName"), tags=_string(tags))
        self.view.trial_run(name, run.info.run_id)
        self.client.set_terminated(run.info.run_id, status="FINISHED")

    def on_trial_cancelled(self, name: str, rung: Rung) -> None:
        """A trial made moot: its metrics so far, verdict ``cancelled``; KILLED, so no key lookup reuses it and
        MLflow does not list it as failed."""
        run_id = self._runs[name]
        self._log(run_id, metrics=self._pending.pop(name, []),
                  tags=_tags({k: getattr(rung, k) for k in RUNG_TAGS} | {"bisector.note": rung.note}
                             | self.view.trial_end(name, rung, run_id)))
        self.client.set_terminated(run_id, status="KILLED")

    def on_trial_end(self, name: str, rung: Rung, result: dict[str, Any]) -> None:
        run_id = self._runs[name]
        self._log(run_id, metrics=self._pending.pop(name, []) + self.view.markers(name, rung),
                  tags=_tags({k: getattr(rung, k) for k in RUNG_TAGS} | {"bisector.retries": rung.retries}
                             | self.view.trial_end(name, rung, run_id)))
        if result.get("error"):
            self.client.log_text(run_id, result["error"], "error.txt")
        status = "FINISHED" if rung.verdict not in (Kind.ERROR, Kind.LOST) else "FAILED"
        self.client.set_terminated(run_id, status=status)

    def on_campaign_end(self, ladder: Ladder, finished: bool) -> None:
        from .views.html import ladder_html
        from .views.png import curves_png

        for name in list(self._pending):  # trials cancelled before their verdict
            self._log(self._runs[name], metrics=self._pending.pop(name))
            self.client.set_terminated(self._runs[name], status="KILLED")
        run_id = self.parent_run_id
        shown = self.view.finish(ladder)
        png = curves_png(ladder, self.curves, self.metric) if any(self.curves.values()) else None
        hint = links.store_hint(self.display_uri)
        self.client.log_text(run_id, ladder_md(ladder, self.view.names, hint), "ladder.md")
        self.client.log_text(run_id, ladder.dumps(), "ladder.json")
        self.client.log_text(run_id, ladder_html(ladder, png, self.view.names, self.view.urls, hint), "ladder.html")
        if png:
            _log_bytes(self.client, run_id, png, "curves.png")
        totals = ladder.totals()
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in totals.items() if isinstance(v, (int, float))]
        culprits = ",".join(k.name for k in ladder.culprits)
        self._log(run_id, metrics=metrics, tags=_tags({"culprits": culprits, "outcome": ladder.culprit_line()})
                  + _tags(shown, limit=8000))
        self.client.set_terminated(run_id, status="FINISHED" if finished and not ladder.not_finished else "KILLED")

    # -- reading ----------------------------------------------------------------------
    def find_reusable(self, key: str) -> Rung | None:
        """The newest finished trial with this key, as a rung pointing at the run that trained it."""
        runs = self.client.search_runs(
            [self._experiment_id()], f"tags.`bisector.key` = '{key}' AND attributes.status = 'FINISHED'",
            max_results=1, order_by=["attributes.start_time DESC"])
        if not runs:
            return None
        tags = runs[0].data.tags
        values = {k: _parse(tags.get(k)) for k in RUNG_TAGS}
        if values["verdict"] in (None, Kind.ERROR, Kind.LOST, Kind.CANCELLED):
            return None
        origin = tags.get("bisector.reused_from") or runs[0].info.run_id
        return Rung(name="", changed={}, key=key, run_id=origin, reused=True, out_dir=tags.get("bisector.out_dir"),
                    **{k: v for k, v in values.items() if v is not None})

    def eval_histories(self, run_id: str, prefix: str = "val_") -> dict[str, list[tuple[int, float]]]:
        keys = [k for k in self.client.get_run(run_id).data.metrics if k.startswith(prefix)]
        return {k: self.history(run_id, k) for k in keys}

    def find_probe(self, key: str) -> dict[str, Any] | None:
        """The ladder summary of an earlier probe of the same checkpoints, if one finished."""
        runs = self.client.search_runs(
            [self._experiment_id()], f"tags.`bisector.key` = '{key}' AND attributes.status = 'FINISHED'",
            max_results=1, order_by=["attributes.start_time DESC"])
        if not runs:
            return None
        try:
            return json.loads(_load_text(self.client, runs[0].info.run_id, "summary.json"))
        except Exception:  # noqa: BLE001 - an incomplete earlier probe: probe again
            return None

    def log_probe(self, reports: list[dict[str, Any]], summary: dict[str, Any], key: str) -> None:
        """A ``probe`` child run: the full reports as ``probe.json``, the diagnosis as a tag and ``probe.md``."""
        shown = self.view.probe_tags(summary)
        run = self.client.create_run(self._experiment_id(), run_name=shown.pop("mlflow.runName"), tags={
            "mlflow.parentRunId": self.parent_run_id, "bisector.role": "probe", "bisector.key": key, **shown})
        run_id = run.info.run_id
        self.client.log_text(run_id, json.dumps(reports, indent=2, default=str), "probe.json")
        self.client.log_text(run_id, json.dumps(summary, indent=2, default=str), "summary.json")
        self.client.log_text(run_id, probe_md(summary), "probe.md")
        self._log(run_id, params=_params({"checkpoints": [r["checkpoint"] for r in reports],
                                          "batches": reports[0]["batches"] if reports else 0}),
                  tags=_tags({"diagnosis": summary.get("diagnosis"), "aggressor": summary.get("aggressor")}))
        self.client.set_terminated(run_id, status="FINISHED")

    def log_gates(self, name: str, rung: Rung) -> None:
        run_id = self._runs.get(name) or rung.run_id
        gates = rung.gates or {}
        self._log(run_id, tags=_tags({f"gate.{g}": "passed" if v.get("passed") else "failed"
                                      for g, v in gates.items()}))
        self.client.log_text(run_id, json.dumps(gates, indent=2, default=str), "gates.json")

    def history(self, run_id: str, metric: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, metric)]

    def campaign(self, run_id: str):
        try:
            run = self.client.get_run(run_id)
        except Exception as exc:  # noqa: BLE001 - MlflowException for an unknown id
            from .store import redact

            raise ResumeError(f"no campaign run {run_id!r} in {self.display_uri}: {redact(str(exc))}") from None
        if run.data.tags.get("bisector.role") != "campaign":
            raise ResumeError(f"run {run_id} in {self.display_uri} is not a bisector campaign")
        return run

    def recipe_text(self, run_id: str, name: str) -> str:
        return _load_text(self.client, run_id, f"recipes/{name}")

    def campaigns(self, max_results: int = 50) -> list:
        exp = self.client.get_experiment_by_name(self.experiment)
        if exp is None:
            return []
        return self.client.search_runs([exp.experiment_id], "tags.`bisector.role` = 'campaign'",
                                       max_results=max_results, order_by=["attributes.start_time DESC"])

    def ladder(self, run_id: str | None) -> tuple[str, Ladder]:
        if run_id is None:
            runs = self.campaigns(1)
            if not runs:
                raise ResumeError(f"no campaign in experiment {self.experiment!r} at {self.display_uri}")
            run_id = runs[0].info.run_id
        self.campaign(run_id)
        try:
            text = _load_text(self.client, run_id, "ladder.json")
        except Exception:  # noqa: BLE001 - a campaign killed before it wrote its ladder
            raise ResumeError(f"campaign {run_id} has no ladder.json yet (it may still be running)") from None
        return run_id, Ladder.from_json(json.loads(text))


def _load_text(client, run_id: str, path: str) -> str:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        return Path(client.download_artifacts(run_id, path, tmp)).read_text()


def _string(tags: dict[str, Any]) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in tags.items()}


def _log_bytes(client, run_id: str, data: bytes, name: str) -> None:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        client.log_artifact(run_id, str(path))
