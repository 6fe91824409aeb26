"""``bisector run`` submitted as a Ray Job to a real local head (loopback only).

The head runs as ``ray start --head --block`` in its own session and is ended by id (SIGTERM to that
process, which drains and stops its children, then SIGKILL to what is left of its session), never with
``ray stop``: that kills every Ray process of the machine by name, other people's clusters included.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from ._servers import (
    BIN,
    BISECTION,
    CULPRITS,
    REPO,
    base_env,
    end_session,
    free_port,
    http_get,
    is_aftermath,
    trial_of,
    wait_for,
)

pytestmark = pytest.mark.slow

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
ENTRYPOINT = "bisector"  # the console script, found through PATH (the venv's bin leads it in the head's env)


def _pids_using(path: str) -> list[int]:
    """Live processes whose command line mentions ``path`` (the head's own unique temp dir)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if path in cmd and state != "Z":
            pids.append(int(entry))
    return pids


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
        while _pids_using(temp_dir) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _pids_using(temp_dir)  # ours by construction: the temp dir is unique to this head
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"head processes outlived their session's end: {left}"


@pytest.fixture(scope="module")
def job(head):
    client, tmp = head["client"], head["tmp"]
    entrypoint = (f"{ENTRYPOINT} run tests/recipes/small_good.yaml tests/recipes/small_bad.yaml "
                  f"--tracking-uri sqlite:///{tmp}/job.db --workdir {tmp}/wd --experiment job")
    job_id = client.submit_job(entrypoint=entrypoint, runtime_env={
        "working_dir": str(REPO),
        "excludes": [".venv", ".git", "mlruns", "mlartifacts", ".bisector", "*.db", "__pycache__"],
        "env_vars": {"MLFLOW_DISABLE_TELEMETRY": "true"},
    })
    try:
        status = wait_for(lambda: (s := str(client.get_job_status(job_id)).rsplit(".", 1)[-1]) in TERMINAL and s,
                          300, f"job {job_id} to finish", interval=2)
    except AssertionError:
        client.stop_job(job_id)
        raise
    logs = client.get_job_logs(job_id)
    (tmp / "job.log").write_text(logs)  # kept with pytest's temp dirs, for a look after a failure
    assert status == "SUCCEEDED", f"job {job_id} {status}:\n{logs[-5000:]}"
    return {"id": job_id, "logs": logs, "info": client.get_job_info(job_id), "uri": f"sqlite:///{tmp}/job.db"}


def test_job_logs_are_plain_progress(job):
    logs = job["logs"]
    assert "good: started" in logs
    assert "Culprits: data.corpus" in logs
    assert "model.crf_reduction" in logs
    assert "\x1b[" not in logs, [line for line in logs.splitlines() if "\x1b[" in line][:5]
    assert "Traceback" not in logs


def test_mlflow_store_of_the_job(job):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=job["uri"])
    exp = client.get_experiment_by_name("job")
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

