"""A campaign logged to a real ``mlflow server`` (sqlite backend, proxied artifacts), checked over REST only."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from ._servers import (
    BAD,
    BIN,
    BISECTION,
    CULPRITS,
    GOOD,
    base_env,
    bisector_cmd,
    end_session,
    free_port,
    http_get,
    http_json,
    is_aftermath,
    trial_of,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("srv")
    port = free_port()
    env = base_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    with open(tmp / "server.log", "w") as log:
        proc = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{tmp}/srv.db", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_get(f"{base}/health", timeout=5)[0] == 200, 60, "mlflow server /health", proc=proc)
        yield base, tmp
    finally:
        end_session(proc)  # SIGTERM to its group, then SIGKILL to whatever of its session is left


@pytest.fixture(scope="module")
def campaign_proc(server):
    base, tmp = server
    proc = subprocess.run(
        bisector_cmd("run", str(GOOD), str(BAD), "--json", "--tracking-uri", base, "--workdir", str(tmp / "wd")),
        capture_output=True, text=True, cwd=tmp, env=base_env(), timeout=480, start_new_session=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def campaign(campaign_proc):
    """The result object: the last stdout line (see test_json_stdout_is_one_object for the lines before it)."""
    lines = campaign_proc.stdout.strip().splitlines()
    assert lines, campaign_proc.stderr[-3000:]
    return json.loads(lines[-1])


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in run["data"].get("tags", [])}


@pytest.fixture(scope="module")
def runs(server, campaign):
    base, _ = server
    exp = http_json(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=bisector")["experiment"]
    found = http_json(f"{base}/api/2.0/mlflow/runs/search",
                      {"experiment_ids": [exp["experiment_id"]], "max_results": 1000}).get("runs", [])
    parents = [r for r in found if _tags(r).get("bisector.role") == "campaign"]
    assert len(parents) == 1, [_tags(r).get("bisector.role") for r in found]
    parent = parents[0]
    children = [r for r in found if _tags(r).get("mlflow.parentRunId") == parent["info"]["run_id"]]
    return parent, children


def _artifacts(base: str, run_id: str, path: str | None = None) -> dict[str, bool]:
    query = {"run_id": run_id} | ({"path": path} if path else {})
    files = http_json(f"{base}/api/2.0/mlflow/artifacts/list?{urllib.parse.urlencode(query)}").get("files", [])
    return {f["path"]: f.get("is_dir", False) for f in files}


def test_json_stdout_is_one_object(campaign_proc):
    out = json.loads(campaign_proc.stdout)
    assert isinstance(out, dict) and out["culprits"]


def test_campaign_names_the_culprits(campaign, server):
    base, _ = server
    assert sorted(c["path"] for c in campaign["culprits"]) == CULPRITS
    assert campaign["tracking_uri"] == base
    names = [r["name"] for r in campaign["ladder"]]
    assert BISECTION <= set(names) and len(names) == len(set(names))
    assert all(is_aftermath(n) for n in set(names) - BISECTION), names


def test_parent_run(runs, campaign):
    parent, _ = runs
    tags = _tags(parent)
    assert parent["info"]["run_id"] == campaign["parent_run_id"]
    assert parent["info"]["status"] == "FINISHED"
    assert tags["culprits"] == ",".join(CULPRITS)


def test_child_runs(runs, campaign):
    _, children = runs
    by_name = {trial_of(_tags(c)): c for c in children}
    assert len(by_name) == len(children)
    assert BISECTION <= set(by_name), sorted(by_name)  # the five bisection trials
    assert all(is_aftermath(n) for n in set(by_name) - BISECTION), sorted(by_name)
    rungs = {r["run_id"]: r for r in campaign["ladder"]}
    trials = [c for c in children if _tags(c).get("bisector.role") == "trial"]
    assert {c["info"]["run_id"] for c in trials} == set(rungs)
    for child in trials:
        tags = _tags(child)
        rung = rungs[child["info"]["run_id"]]
        assert trial_of(tags) == rung["name"]
        assert f" {rung['name']}: {rung['verdict']}" in child["info"]["run_name"], child["info"]["run_name"]
        assert tags["verdict"] in {"stable", "diverged"}
        assert tags["verdict"] == rung["verdict"]
        assert tags["bisector.key"] == rung["key"]
        assert child["info"]["status"] == "FINISHED"


def test_parent_artifacts(server, runs):
    base, _ = server
    parent, _ = runs
    listed = _artifacts(base, parent["info"]["run_id"])
    assert {"ladder.md", "ladder.json", "ladder.html", "curves.png", "recipes"} <= set(listed), listed
    assert listed["recipes"] is True
    assert set(_artifacts(base, parent["info"]["run_id"], "recipes")) == {"recipes/good.yaml", "recipes/bad.yaml"}


def test_child_artifacts_and_metric_history(server, runs, campaign):
    base, _ = server
    _, children = runs
    steps = {r["run_id"]: r["steps_run"] for r in campaign["ladder"]}
    for child in (c for c in children if _tags(c).get("bisector.role") == "trial"):
        run_id = child["info"]["run_id"]
        assert "recipe.yaml" in _artifacts(base, run_id)
        points, token = [], None
        for _ in range(100):
            query = {"run_id": run_id, "metric_key": "train_ce"} | ({"page_token": token} if token else {})
            page = http_json(f"{base}/api/2.0/mlflow/metrics/get-history?{urllib.parse.urlencode(query)}")
            points += page.get("metrics", [])
            token = page.get("next_page_token")
            if not token:
                break
        assert steps[run_id] > 0
        assert len(points) == steps[run_id], (child["info"]["run_name"], len(points), steps[run_id])
        assert len({p["step"] for p in points}) == steps[run_id]


def test_ladder_html_through_the_artifact_proxy(server, runs):
    base, tmp = server
    parent, _ = runs
    query = urllib.parse.urlencode({"path": "ladder.html", "run_uuid": parent["info"]["run_id"]})
    status, body = http_get(f"{base}/get-artifact?{query}")
    assert status == 200, body[:500]
    html = body.decode()
    assert "<table" in html
    assert "data:image/png;base64" in html
    # the server stored the artifacts itself (proxied), under its working directory
    assert list(Path(tmp, "mlartifacts").rglob("ladder.html"))


def test_what_the_ui_shows(server, runs, campaign_proc):
    """Names, notes, colours and rendering tables of a real tagger campaign (the rules: test_mlflow_ui.py)."""
    from bisector.views import markdown, mlflow_ui

    base, _ = server
    parent, children = runs
    assert parent["info"]["run_name"] == "tagger: data.corpus + model.crf_reduction (only together)"
    note = _tags(parent)["mlflow.note.content"]
    assert note.startswith("## Culprits: data.corpus + model.crf_reduction (only together)")
    assert note.index("### Ladder") < note.index("### Diagnosis") < note.index("### Repair")
    by_trial = {trial_of(_tags(c)): c for c in children}
    colour = {name: _tags(c)["mlflow.runColor"] for name, c in by_trial.items()}
    assert colour["good"] == mlflow_ui.GOOD and colour["bad"] == mlflow_ui.BAD
    assert colour["revert model.hidden_size"] in mlflow_ui.FAILED
    assert colour["revert data.corpus"] in mlflow_ui.FIXED and colour["revert model.crf_reduction"] in mlflow_ui.FIXED
    assert colour["repair crf_nll"] == mlflow_ui.REPAIR
    assert "(diverged at " in _tags(by_trial["bad"])["val_measured_at_step"]  # its val_macro_f1 is from before
    assert "val_measured_at_step" not in _tags(by_trial["good"])
    probe = by_trial["probe"]
    assert probe["info"]["run_name"] == "probe: crf_nll is the aggressor"
    assert not probe["data"].get("metrics")  # no per-step series beside the trials' curves
    for name, path in (("probe", "probe.md"), (None, "ladder.md")):
        run_id = by_trial[name]["info"]["run_id"] if name else parent["info"]["run_id"]
        status, body = http_get(f"{base}/get-artifact?{urllib.parse.urlencode({'path': path, 'run_uuid': run_id})}")
        assert status == 200
        found = markdown.tables(body.decode())
        assert found and all(len({len(row) for row in t}) == 1 for t in found), path
    assert f"MLflow: {base}/#/experiments/" in campaign_proc.stderr
