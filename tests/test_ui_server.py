"""What a person sees in the MLflow UI, checked over a real ``mlflow server``'s REST API.

A small campaign with the computed-curve runner (``tests/synth_runner.py``: a
real local Ray, a real server with a sqlite store, curves computed rather
than trained, so the campaign itself takes seconds) logs to the server; the checks read only
what the UI reads: run names, notes, colours, metrics, artifacts and the
experiment's tags. The same checks on a real tagger campaign are in
``test_ray_job_server.py`` (slow).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.parse

import pytest
import yaml

from bisector.views import mlflow_ui

from ._servers import BIN, REPO, base_env, bisector_cmd, end_session, free_port, http_get, http_json, wait_for
from ._stores import sqlite_store

pytestmark = pytest.mark.slow  # a server and Ray start: 32 s at load 3, 79 s at load 8 on a 2-core machine

GOOD = {"runner": "tests.synth_runner", "a": 1, "b": "mean", "c": 0.5, "steps": 200}
BAD = {"runner": "tests.synth_runner", "a": 2, "b": "sum", "c": 0.9, "steps": 200}


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return base_env(PYTHONPATH=path, RAY_AUTH_MODE="disabled", **extra)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A real server, then one campaign logged to it; yields (base URL, campaign JSON, stderr)."""
    tmp = tmp_path_factory.mktemp("ui")
    port = free_port()
    with open(tmp / "server.log", "w") as log:
        server = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", sqlite_store(tmp / "srv.db"), "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            cwd=tmp, env=_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for name, body in (("good.yaml", GOOD), ("bad.yaml", BAD)):
            (tmp / name).write_text(yaml.safe_dump(body))
        wait_for(lambda: http_get(f"{base}/health", timeout=5)[0] == 200, 90, "mlflow server", proc=server)
        proc = subprocess.run(
            bisector_cmd("run", str(tmp / "good.yaml"), str(tmp / "bad.yaml"), "--json", "--tracking-uri", base,
                         "--workdir", str(tmp / "wd"), "--max-concurrent", "2"),
            capture_output=True, text=True, cwd=tmp, env=_env(), timeout=300, start_new_session=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        yield base, json.loads(proc.stdout), proc.stderr
    finally:
        end_session(server)


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in run["data"].get("tags", [])}


@pytest.fixture(scope="module")
def runs(served):
    base, out, _ = served
    exp = http_json(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=bisector")["experiment"]
    found = http_json(f"{base}/api/2.0/mlflow/runs/search",
                      {"experiment_ids": [exp["experiment_id"]], "max_results": 1000})["runs"]
    parent = next(r for r in found if r["info"]["run_id"] == out["parent_run_id"])
    children = [r for r in found if _tags(r).get("mlflow.parentRunId") == out["parent_run_id"]]
    return exp, parent, children


def test_parent_name_and_note_give_the_answer(runs, served):
    _, parent, _ = runs
    assert parent["info"]["run_name"] == "synth: a + b (only together)"
    note = _tags(parent)["mlflow.note.content"]
    assert note.startswith("## Culprits: a + b (only together)")
    assert note.index("### Ladder") < note.index("Cost:")
    assert _tags(parent)["mlflow.runColor"] == mlflow_ui.PARENT


def test_children_are_numbered_in_ladder_order_with_their_verdict(runs, served):
    _, _, children = runs
    _, out, _ = served
    by_trial = {_tags(c)["bisector.trial"]: c for c in children if _tags(c).get("bisector.role") == "trial"}
    assert set(by_trial) == {r["name"] for r in out["ladder"]}
    for i, rung in enumerate(out["ladder"], 1):
        assert by_trial[rung["name"]]["info"]["run_name"] == f"{i:02d} [{rung['verdict']}] {rung['name']}"
        note = _tags(by_trial[rung["name"]])["mlflow.note.content"]
        assert note.startswith(f"**{rung['name']}: {rung['verdict']}**") and "What happened:" in note


def test_colours_follow_the_verdict(runs, served):
    _, _, children = runs
    _, out, _ = served
    colour = {_tags(c)["bisector.trial"]: _tags(c)["mlflow.runColor"] for c in children}
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colour.values()), colour
    assert colour["good"] == mlflow_ui.GOOD and colour["bad"] == mlflow_ui.BAD
    for rung in out["ladder"]:
        if rung["name"] in ("good", "bad"):
            continue
        palette = mlflow_ui.FAILED if rung["verdict"] == "diverged" else mlflow_ui.FIXED
        assert colour[rung["name"]] in palette, (rung["name"], rung["verdict"], colour[rung["name"]])
    fixes = [colour[r["name"]] for r in out["ladder"] if r["verdict"] == "stable" and r["role"] != "endpoint"]
    assert len(fixes) == len(set(fixes)) >= 2  # shades of one hue: curves stay apart


def test_markers_in_charts_and_no_series_on_the_parent(runs, served):
    base, out, _ = served
    _, parent, children = runs

    def history(run_id: str, key: str) -> list[dict]:
        q = urllib.parse.urlencode({"run_id": run_id, "metric_key": key})
        return http_json(f"{base}/api/2.0/mlflow/metrics/get-history?{q}").get("metrics", [])

    for m in parent["data"].get("metrics", []):
        assert len(history(parent["info"]["run_id"], m["key"])) == 1, m["key"]
    failed = [r for r in out["ladder"] if r["verdict"] == "diverged"]
    assert failed
    for rung in failed:
        start = history(rung["run_id"], "climb_start_step")
        det = history(rung["run_id"], "detected_at_step")
        assert [(p["step"], p["value"]) for p in start] == [(rung["climb_start_step"], rung["climb_start_step"])]
        assert [(p["step"], p["value"]) for p in det] == [(rung["detected_at_step"], rung["detected_at_step"])]
        marks = history(rung["run_id"], "loss.climb")
        assert sorted(p["step"] for p in marks) == [rung["climb_start_step"], rung["detected_at_step"]]
    stable = next(r for r in out["ladder"] if r["verdict"] == "stable")
    assert history(stable["run_id"], "climb_start_step") == []


def test_artifacts_link_each_rung_and_commands_name_the_server(runs, served):
    base, out, stderr = served
    exp, parent, _ = runs
    q = urllib.parse.urlencode({"path": "ladder.html", "run_uuid": parent["info"]["run_id"]})
    status, body = http_get(f"{base}/get-artifact?{q}")
    assert status == 200
    page = body.decode()
    for rung in out["ladder"]:
        assert f"{base}/#/experiments/{exp['experiment_id']}/runs/{rung['run_id']}?workflowType=machine_learning" \
            in page
        assert rung["reproduce"].startswith(f"MLFLOW_TRACKING_URI={base} mlflow artifacts download")
    listed = http_json(f"{base}/api/2.0/mlflow/artifacts/list?run_id={parent['info']['run_id']}")["files"]
    assert {"ladder.md", "ladder.json", "ladder.html", "curves.png"} <= {f["path"] for f in listed}
    landing = f"MLflow: {base}/#/experiments/{exp['experiment_id']}/runs/{out['parent_run_id']}" \
              "?workflowType=machine_learning"
    assert landing in stderr
    assert {t["key"]: t["value"] for t in exp.get("tags", [])}["mlflow.experimentKind"] == "custom_model_development"
