"""One campaign submitted as a Ray Job to a real local head, logging to a real ``mlflow server`` (sqlite
backend, proxied artifacts): the cluster path and the server path checked on the same run (one campaign
instead of two keeps the slow suite short). The store is checked over REST only.

The head runs as ``ray start --head --block`` in its own session and is ended by id (SIGTERM to that
process, which drains and stops its children, then SIGKILL to what is left of its session), never with
``ray stop``: that kills every Ray process of the machine by name, other people's clusters included.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest

from ._servers import (
    BIN,
    BISECTION,
    CULPRITS,
    REPO,
    SLOTS,
    base_env,
    end_session,
    free_port,
    http_get,
    http_json,
    is_aftermath,
    pids_using,
    trial_of,
    wait_for,
)
from ._stores import sqlite_store

pytestmark = pytest.mark.slow

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
ENTRYPOINT = "bisector"  # the console script, found through PATH (the venv's bin leads it in the head's env)


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rayjob")
    temp_dir = tempfile.mkdtemp(prefix="rj-", dir="/tmp")  # short: socket paths must stay under 107 characters
    gcs, dash, client_port, agent = free_port(), free_port(), free_port(), free_port()
    env = base_env(RAY_AUTH_MODE="disabled", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
                   PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [str(BIN / "ray"), "start", "--head", "--block", "--num-cpus", "2", "--port", str(gcs),
           "--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
           "--ray-client-server-port", str(client_port), "--dashboard-agent-listen-port", str(agent),
           "--disable-usage-stats", "--temp-dir", temp_dir]
    with open(tmp / "head.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{dash}"
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("RAY_AUTH_MODE", "disabled")
            mp.delenv("RAY_ADDRESS", raising=False)
            from ray.job_submission import JobSubmissionClient

            wait_for(lambda: http_get(f"{url}/api/version", timeout=5)[0] == 200, 60, "the Ray dashboard", proc=proc)
            client = wait_for(lambda: JobSubmissionClient(url), 30, "the job submission API", proc=proc)
            yield {"client": client, "url": url, "tmp": tmp, "temp_dir": temp_dir, "proc": proc}
    finally:
        # SIGTERM to `ray start --block` alone: it drains the node through the GCS and ends its processes (~2 s);
        # a signal to the whole group would kill the GCS first and leave it waiting 30 s for it.
        proc.terminate()
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            pass
        end_session(proc, grace=5)  # then whatever of its session is left
        deadline = time.monotonic() + 20
        while pids_using(temp_dir) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = pids_using(temp_dir)  # ours by construction: the temp dir is unique to this head
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"head processes outlived their session's end: {left}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("srv")
    port = free_port()
    env = base_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    with open(tmp / "server.log", "w") as log:
        proc = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", sqlite_store(tmp / "srv.db"), "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_get(f"{base}/health", timeout=5)[0] == 200, 60, "mlflow server /health", proc=proc)
        yield base, tmp
    finally:
        end_session(proc)  # SIGTERM to its group, then SIGKILL to whatever of its session is left


@pytest.fixture(scope="module")
def job(head, server):
    """The small pair as a Ray Job on the head, logging to the server; stdout (``--json``) goes to a file so the
    job's log holds the progress lines alone."""
    client, tmp = head["client"], head["tmp"]
    base, _ = server
    out = tmp / "job.out"
    entrypoint = (f"{ENTRYPOINT} run tests/recipes/small_good.yaml tests/recipes/small_bad.yaml --json "
                  f"--tracking-uri {base} --workdir {tmp}/wd {' '.join(SLOTS)} > {out}")
    job_id = client.submit_job(entrypoint=entrypoint, runtime_env={
        "working_dir": str(REPO),
        "excludes": [".venv", ".git", "mlruns", "mlartifacts", ".bisector", "*.db", "__pycache__"],
        "env_vars": {"MLFLOW_DISABLE_TELEMETRY": "true"},
    })
    try:
        status = wait_for(lambda: (s := str(client.get_job_status(job_id)).rsplit(".", 1)[-1]) in TERMINAL and s,
                          420, f"job {job_id} to finish", interval=2)
    except AssertionError:
        client.stop_job(job_id)
        raise
    logs = client.get_job_logs(job_id)
    (tmp / "job.log").write_text(logs)  # kept with pytest's temp dirs, for a look after a failure
    assert status == "SUCCEEDED", f"job {job_id} {status}:\n{logs[-5000:]}"
    return {"id": job_id, "logs": logs, "info": client.get_job_info(job_id), "stdout": out.read_text()}


@pytest.fixture(scope="module")
def campaign(job):
    """The result object: the job's stdout (see test_json_stdout_is_one_object)."""
    return json.loads(job["stdout"])


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


def test_json_stdout_is_one_object(job):
    """Nothing but the result on stdout, with MLflow's own "View run" lines and the progress elsewhere."""
    out = json.loads(job["stdout"])
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
        shown = rf"\d\d \[{rung['verdict']}(, gates (passed|failed))?\] {re.escape(rung['name'])}"
        assert re.fullmatch(shown, child["info"]["run_name"]), child["info"]["run_name"]
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


def test_what_the_ui_shows(server, runs, job):
    """Names, notes, colours and rendering tables of a real tagger campaign (the rules: test_views.py)."""
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
    assert f"MLflow: {base}/#/experiments/" in job["logs"]


def test_job_logs_are_plain_progress(job):
    logs = job["logs"]
    assert "good: started" in logs
    assert "Culprits: data.corpus" in logs
    assert "model.crf_reduction" in logs
    assert "\x1b[" not in logs, [line for line in logs.splitlines() if "\x1b[" in line][:5]
    assert "Traceback" not in logs


def test_mlflow_store_of_the_job(job, server):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=server[0])
    exp = client.get_experiment_by_name("bisector")
    assert exp is not None
    parents = client.search_runs([exp.experiment_id], "tags.`bisector.role` = 'campaign'")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["culprits"] == ",".join(CULPRITS)
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    names = [trial_of(c.data.tags) for c in children]
    assert BISECTION <= set(names) and len(names) == len(set(names)), names  # the five bisection trials
    assert all(is_aftermath(n) for n in set(names) - BISECTION), names
    for child in children:
        assert child.info.status == "FINISHED"
        if trial_of(child.data.tags) in BISECTION:
            assert child.data.tags["verdict"] in {"stable", "diverged"}


def test_driver_joined_the_jobs_cluster(head, job):
    """The job's driver registered with this head, and the trials ran as tasks of that driver on this head."""
    from ray.util.state import list_nodes, list_tasks

    info = job["info"]
    assert info.driver_info is not None, "no driver registered with the head: bisector started its own Ray"
    nodes = list_nodes(address=head["url"])
    assert len(nodes) == 1 and nodes[0].is_head_node
    head_node = nodes[0].node_id
    assert info.driver_node_id == head_node
    driver_job = info.driver_info.id

    def trial_tasks():
        tasks = list_tasks(address=head["url"], filters=[("job_id", "=", driver_job)], limit=1000)
        return [t for t in tasks if t.type == "NORMAL_TASK" and t.state == "FINISHED"]

    tasks = wait_for(lambda: len(t := trial_tasks()) >= len(BISECTION) and t, 30, "the trial tasks' events")
    assert {t.node_id for t in tasks} == {head_node}

