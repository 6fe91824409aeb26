"""SIGTERM to the campaign driver mid-campaign, then the same command again, then --resume.

Real local Ray, real sqlite MLflow, real training (the small recipe pair; one trial at a time until the kill).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from ._servers import (
    BAD,
    BISECTION,
    CULPRITS,
    GOOD,
    SLOTS,
    base_env,
    bisector_cmd,
    end_session,
    is_aftermath,
    trial_of,
    wait_for,
)
from ._stores import sqlite_store

pytestmark = pytest.mark.slow

TRIALS = len(BISECTION)


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _runs(client, role: str) -> list:
    exp = client.get_experiment_by_name("bisector")
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], f"tags.`bisector.role` = '{role}'", max_results=1000)


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """Start a campaign, SIGTERM its driver once 2 trials finished and a third is running."""
    tmp = tmp_path_factory.mktemp("kill")
    uri = sqlite_store(tmp / "mlflow.db")
    cmd = bisector_cmd("run", str(GOOD), str(BAD), "--json", "--tracking-uri", uri, "--workdir", str(tmp / "wd"),
                       "--max-concurrent", "1")
    log = tmp / "driver1.err"
    with open(log, "w") as err, open(tmp / "driver1.out", "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=tmp, env=base_env(), start_new_session=True)
        try:
            # Touch the store only once the driver created it and its parent run (no racing its migrations).
            wait_for(lambda: ": started" in log.read_text(), 120, "the first trial to start", proc=proc)
            client = _client(uri)

            def ready():
                trials = _runs(client, "trial")
                finished = [r for r in trials if r.info.status == "FINISHED"]
                running = [r for r in trials if r.info.status == "RUNNING"]
                return len(finished) >= 2 and len(running) >= 1

            wait_for(ready, 180, "2 finished trials and a running one", proc=proc)
            t_kill = time.monotonic()
            proc.send_signal(signal.SIGTERM)  # the driver only, not its group
            try:
                code = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                code = None
            exit_s = time.monotonic() - t_kill
        finally:
            end_session(proc)  # the driver's Ray (if anything of it is left) goes with its session
    return {"tmp": tmp, "uri": uri, "cmd": cmd, "code": code, "exit_s": exit_s, "stderr": log.read_text(),
            "stdout": (tmp / "driver1.out").read_text()}


@pytest.fixture(scope="module")
def state_after_kill(killed):
    client = _client(killed["uri"])
    parents = _runs(client, "campaign")
    trials = _runs(client, "trial")
    return parents, trials


@pytest.fixture(scope="module")
def rerun(killed, state_after_kill):
    """The same command again, after the kill, with both slots (the slot count is not part of a trial's key)."""
    i = killed["cmd"].index("--max-concurrent")
    cmd = killed["cmd"][:i] + [*SLOTS] + killed["cmd"][i + 2:]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=killed["tmp"], env=base_env(),
                          timeout=420, start_new_session=True)
    return proc


@pytest.fixture(scope="module")
def resumed(killed, state_after_kill, rerun):
    """--resume of the killed campaign, after the re-run made every trial reusable."""
    parents, _ = state_after_kill
    proc = subprocess.run(
        bisector_cmd("run", "--resume", parents[0].info.run_id, "--json", "--tracking-uri", killed["uri"],
                     "--workdir", str(killed["tmp"] / "wd"), *SLOTS),
        capture_output=True, text=True, cwd=killed["tmp"], env=base_env(), timeout=300, start_new_session=True)
    return proc


def test_sigterm_is_a_clean_interrupt(killed, state_after_kill, resumed):
    assert killed["code"] == 130, (killed["code"], killed["stderr"][-3000:])
    assert killed["exit_s"] < 20
    assert "interrupted" in killed["stderr"]
    parents, trials = state_after_kill
    assert parents[0].info.status == "KILLED"
    statuses = sorted(r.info.status for r in trials)
    assert "RUNNING" not in statuses, statuses
    assert statuses.count("KILLED") == 1, statuses  # the trial that was running
    # and the resumed campaign leaves nothing RUNNING either
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    client = _client(killed["uri"])
    statuses = [r.info.status for r in _runs(client, "trial") + _runs(client, "campaign")]
    assert "RUNNING" not in statuses, statuses


def test_sigterm_ends_the_driver_promptly(killed):
    assert killed["code"] is not None, "the driver did not exit within 20 s of SIGTERM"
    assert killed["code"] != 0
    assert killed["stdout"] == ""  # no result JSON for an interrupted campaign
    assert "Traceback" not in killed["stderr"], killed["stderr"][-3000:]


def test_finished_trials_survive_the_kill(state_after_kill):
    parents, trials = state_after_kill
    assert len(parents) == 1
    for r in trials:
        assert r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
    finished = [r for r in trials if r.info.status == "FINISHED"]
    assert 2 <= len(finished) < TRIALS, [r.info.status for r in trials]
    assert len(trials) == len(finished) + 1  # max-concurrent 1: exactly one trial was running
    for r in finished:
        assert r.data.tags.get("bisector.key")
        assert r.data.tags.get("verdict") in {"stable", "diverged"}


def _bisection(ladder: list[dict]) -> list[dict]:
    rungs = [r for r in ladder if r["name"] in BISECTION]
    assert sorted(r["name"] for r in rungs) == sorted(BISECTION)
    assert all(is_aftermath(r["name"]) for r in ladder if r["name"] not in BISECTION), [r["name"] for r in ladder]
    return rungs


def test_rerun_reuses_every_finished_trial(state_after_kill, rerun):
    _, trials = state_after_kill
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    out = json.loads(rerun.stdout)
    assert sorted(c["path"] for c in out["culprits"]) == CULPRITS
    rungs = _bisection(out["ladder"])
    by_key = {r["key"]: r for r in rungs}
    finished = [r for r in trials if r.info.status == "FINISHED"]
    for run in finished:
        rung = by_key.get(run.data.tags["bisector.key"])
        assert rung is not None, f"finished trial {run.info.run_name} missing from the ladder"
        assert rung["name"] == trial_of(run.data.tags)
        assert rung["reused"] is True, rung
        assert rung["run_id"] == run.info.run_id
        assert rung["verdict"] == run.data.tags["verdict"]
    assert sum(not r["reused"] for r in rungs) == TRIALS - len(finished)  # nothing finished is trained again
    assert out["totals"]["trials_run"] == sum(not r["reused"] for r in out["ladder"])
    assert out["totals"]["trials_reused"] == sum(r["reused"] for r in out["ladder"])
    (unfinished,) = [r for r in trials if r.info.status != "FINISHED"]
    assert by_key[unfinished.data.tags["bisector.key"]]["reused"] is False  # the interrupted trial is trained again
    assert out["parent_run_id"] != unfinished.data.tags["mlflow.parentRunId"]


def test_resume_of_the_killed_campaign_reuses_everything(killed, state_after_kill, rerun, resumed):
    parents, _ = state_after_kill
    parent_id = parents[0].info.run_id
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    out = json.loads(resumed.stdout)
    assert out["parent_run_id"] == parent_id
    assert sorted(c["path"] for c in out["culprits"]) == CULPRITS
    _bisection(out["ladder"])
    assert all(r["reused"] for r in out["ladder"]), [(r["name"], r["reused"]) for r in out["ladder"]]
    assert out["totals"]["trials_run"] == 0
    client = _client(killed["uri"])
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["culprits"] == ",".join(CULPRITS)
    # every rung now has a FINISHED child under the resumed parent carrying its key
    children = [r for r in _runs(client, "trial") if r.data.tags.get("mlflow.parentRunId") == parent_id]
    finished_keys = {r.data.tags["bisector.key"] for r in children if r.info.status == "FINISHED"}
    assert {r["key"] for r in out["ladder"]} <= finished_keys

