"""Who logs: campaign callbacks, and the MLflow ladder.

``Callback`` has a no-op hook per campaign event; ``MlflowTracker`` writes one
parent run per campaign and one child run per trial. The driver is the only
writer (MLflow's sqlite store contends under several writers), and metrics
are written with ``log_batch`` in chunks because per-step ``log_metric``
costs seconds per trial.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from .ladder import Ladder, Rung

CHUNK = 1000


class Callback:
    def on_campaign_start(self, info: dict[str, Any]) -> None: ...

    def on_trial_start(self, name: str, params: dict[str, Any], tags: dict[str, str]) -> None: ...

    def on_trial_metrics(self, name: str, records: list[dict[str, Any]]) -> None: ...

    def on_trial_end(self, name: str, rung: Rung, result: dict[str, Any]) -> None: ...

    def on_campaign_end(self, ladder: Ladder, finished: bool) -> None: ...


def _params(params: dict[str, Any]) -> list:
    from mlflow.entities import Param

    return [Param(k, json.dumps(v) if not isinstance(v, str) else v) for k, v in params.items()]


class MlflowTracker(Callback):
    def __init__(self, tracking_uri: str | None = None, experiment: str = "bisector"):
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        import mlflow
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri or mlflow.get_tracking_uri()
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self.experiment = experiment
        self.parent_run_id: str | None = None
        self._exp_id: str | None = None
        self._runs: dict[str, str] = {}
        self._pending: dict[str, list] = {}

    def _log(self, run_id: str, *, metrics=(), params=(), tags=()) -> None:
        metrics, params, tags = list(metrics), list(params), list(tags)
        for i in range(0, max(len(metrics), len(params), len(tags), 1), CHUNK):
            self.client.log_batch(run_id, metrics=metrics[i : i + CHUNK], params=params[i : i + 100],
                                  tags=tags[i : i + 100])

    def on_campaign_start(self, info: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        exp = self.client.get_experiment_by_name(self.experiment)
        self._exp_id = exp.experiment_id if exp else self.client.create_experiment(self.experiment)
        run = self.client.create_run(self._exp_id, run_name=info.get("name"), tags={"bisector.role": "campaign"})
        self.parent_run_id = run.info.run_id
        self._log(self.parent_run_id, params=_params(info["params"]),
                  tags=[RunTag(k, str(v)) for k, v in info.get("tags", {}).items()])

    def on_trial_start(self, name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        tags = {"mlflow.parentRunId": self.parent_run_id, "bisector.role": "trial", **tags}
        run = self.client.create_run(self._exp_id, run_name=name, tags=tags)
        self._runs[name] = run.info.run_id
        self._pending[name] = []
        self._log(run.info.run_id, params=_params(params))

    def on_trial_metrics(self, name: str, records: list[dict[str, Any]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        buf = self._pending[name]
        for rec in records:
            step = int(rec["step"])
            for key, value in rec.items():
                if key != "step" and isinstance(value, (int, float)):
                    v = float(value)
                    buf.append(Metric(key, v if math.isfinite(v) else float("nan"), now, step))
        if len(buf) >= CHUNK:
            self._log(self._runs[name], metrics=buf)
            self._pending[name] = []

    def run_id(self, name: str) -> str | None:
        return self._runs.get(name)

    def on_trial_end(self, name: str, rung: Rung, result: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        run_id = self._runs[name]
        self._log(run_id, metrics=self._pending.pop(name, []))
        tags = {"verdict": rung.verdict, "best_step": rung.best_step, "best_value": rung.best_value,
                "climb_start_step": rung.climb_start_step, "detected_at_step": rung.detected_at_step,
                "steps_run": rung.steps_run, "wall_s": rung.wall_s}
        self._log(run_id, tags=[RunTag(k, "" if v is None else str(v)) for k, v in tags.items()])
        if result.get("error"):
            self.client.log_text(run_id, result["error"], "error.txt")
        status = "FAILED" if rung.verdict == "error" else "FINISHED"
        self.client.set_terminated(run_id, status=status)

    def on_campaign_end(self, ladder: Ladder, finished: bool) -> None:
        from mlflow.entities import RunTag

        for name in list(self._pending):  # trials cancelled before their verdict
            self._log(self._runs[name], metrics=self._pending.pop(name))
            self.client.set_terminated(self._runs[name], status="KILLED")
        run_id = self.parent_run_id
        self.client.log_text(run_id, ladder.markdown(), "ladder.md")
        self.client.log_text(run_id, ladder.dumps(), "ladder.json")
        culprits = ",".join(k.name for k in ladder.culprits)
        self._log(run_id, tags=[RunTag("culprits", culprits), RunTag("outcome", ladder.culprit_line()[:5000])])
        self.client.set_terminated(run_id, status="FINISHED" if finished else "KILLED")
