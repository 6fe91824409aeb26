"""In-process campaigns on a real local Ray: a killed worker, GPUs on a CPU machine, budgets."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from bisector import campaign
from bisector.errors import ResourceError
from bisector.scheduler import Resources
from bisector.tracker import Callback

from ._stores import sqlite_store

ROOT = Path(__file__).resolve().parents[1]
GOOD, BAD = str(ROOT / "tests/recipes/small_good.yaml"), str(ROOT / "tests/recipes/small_bad.yaml")


@pytest.fixture
def local_ray(request):
    """A local Ray of 2 CPUs and ``num_gpus`` (param) GPUs that this test owns; its workers import ``tests.*``."""
    import ray

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        ray.init(num_cpus=2, num_gpus=getattr(request, "param", 0), include_dashboard=False, log_to_driver=False,
                 _node_ip_address="127.0.0.1", logging_level="ERROR")
        yield
        ray.shutdown()


def opts(tmp_path, **kw) -> campaign.Options:
    return campaign.Options(tracking_uri=sqlite_store(tmp_path / "m.db"), workdir=str(tmp_path / "wd"), **kw)


class KillOnce(Callback):
    """Kills the worker running ``target`` (SIGKILL, like the OOM killer) at its first metrics."""

    def __init__(self, target: str):
        self.target, self.pid, self.killed = target, None, False

    def on_trial_running(self, name, info):
        if name == self.target and not self.killed:
            self.pid = info["pid"]

    def on_trial_metrics(self, name, records):
        if name == self.target and self.pid and not self.killed:
            os.kill(self.pid, signal.SIGKILL)
            self.killed = True


def test_dead_worker_is_retried_not_a_verdict(tmp_path, local_ray):
    from mlflow.tracking import MlflowClient

    killer = KillOnce("bad")
    out = campaign.run(GOOD, BAD, opts(tmp_path, groups=["data.corpus,model.hidden_size,model.crf_reduction"]),
                       [killer])
    assert killer.killed
    rungs = {r.name: r for r in out.ladder.rungs}
    assert rungs["bad"].verdict == "diverged" and rungs["bad"].retries == 1
    assert rungs["good"].verdict == "stable" and rungs["good"].retries == 0
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/m.db")
    exp = client.get_experiment_by_name("bisector")
    attempts = client.search_runs([exp.experiment_id], "tags.`bisector.trial` = 'bad'")
    by_attempt = {r.data.tags["bisector.attempt"]: r for r in attempts}
    assert set(by_attempt) == {"1", "2"}
    assert by_attempt["1"].info.status == "FAILED" and "bisector.infra_fault" in by_attempt["1"].data.tags
    assert "verdict" not in by_attempt["1"].data.tags
    assert by_attempt["2"].info.status == "FINISHED" and by_attempt["2"].data.tags["verdict"] == "diverged"


def test_training_exception_is_verdict_error(tmp_path, local_ray):
    from mlflow.tracking import MlflowClient

    bad = tmp_path / "explodes.yaml"
    # a recipe whose training raises inside the runner: an unknown device string
    bad.write_text(Path(BAD).read_text())
    o = opts(tmp_path, device="no-such-device")
    out = campaign.run(GOOD, str(bad), o)
    assert {r.verdict for r in out.ladder.rungs} == {"error"}
    assert out.ladder.stopped and "not stable" in out.ladder.stopped
    run = MlflowClient(tracking_uri=o.tracking_uri).get_run(out.ladder.rungs[0].run_id)
    assert run.info.status == "FAILED" and run.data.tags["verdict"] == "error"
    assert "Traceback" in Path(MlflowClient(tracking_uri=o.tracking_uri).download_artifacts(
        run.info.run_id, "error.txt", str(tmp_path))).read_text()


@pytest.mark.slow
@pytest.mark.parametrize("local_ray", [2], indirect=True)
def test_fractional_gpus_and_trial_budget(tmp_path, local_ray):
    """Computed curves (``tests.synth_runner``): what is under test is Ray's packing of GPU fractions, the
    budget stop's partial answer and its resume, not training (the tagger pair runs in test_campaign_e2e)."""
    import ray

    assert ray.cluster_resources()["GPU"] == 2
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("runner: tests.synth_runner\na: 1\nb: mean\nc: 0.5\nsteps: 300\n")
    bad.write_text("runner: tests.synth_runner\na: 2\nb: sum\nc: 0.9\nsteps: 300\n")
    o = opts(tmp_path, resources=Resources(cpus_per_trial=0.5, gpus_per_trial=0.5), max_trials=3)
    out = campaign.run(str(good), str(bad), o)
    assert out.exit_code == campaign.EXIT_NOT_FINISHED
    assert out.ladder.not_finished == "budget reached (--max-trials 3)"
    assert "Not finished: budget reached" in out.ladder.culprit_line()
    assert [r.name for r in out.ladder.rungs] == ["good", "bad", "revert a"]
    assert [k.name for k in out.ladder.culprits] == ["a"]  # the best guess so far: a's lone revert fixed bad
    assert "; best guess: a alone breaks training (confidence " in out.ladder.culprit_line()
    assert "not proven)" in out.ladder.culprit_line() and out.to_json()["result"] == "not_finished"
    assert {r.device_kind for r in out.ladder.rungs} == {"GPU"}
    assert all(r.device_seconds == pytest.approx(0.5 * r.wall_s, abs=0.01) for r in out.ladder.rungs)
    # the rest of the campaign, resumed: only the two missing reverts and the answer's votes on the next seeds
    # train (two more for a, one more for b: "only together" needs them to reach 95%)
    rest = campaign.run(None, None, opts(tmp_path, resume=out.parent_run_id, resources=Resources(max_concurrent=2)))
    assert rest.parent_run_id == out.parent_run_id and rest.exit_code == 0
    assert sorted(k.name for k in rest.ladder.culprits) == ["a", "b"]
    assert {r.name for r in rest.ladder.rungs if not r.reused} == {
        "revert b", "revert c", "revert a (seed +1)", "revert b (seed +1)", "revert a (seed +2)"}


def test_max_hours_stops_cleanly_with_a_partial_ladder(tmp_path, local_ray):
    from mlflow.tracking import MlflowClient

    o = opts(tmp_path, max_hours=3 / 3600)  # 3 seconds: both endpoints are cancelled mid-run
    out = campaign.run(GOOD, BAD, o)
    assert out.exit_code == campaign.EXIT_NOT_FINISHED
    assert out.ladder.not_finished == "budget reached (--max-hours 0.000833333)"
    assert out.ladder.rungs == [] and out.wall_s < 30
    client = MlflowClient(tracking_uri=o.tracking_uri)
    assert client.get_run(out.parent_run_id).info.status == "KILLED"
    exp = client.get_experiment_by_name("bisector")
    trials = client.search_runs([exp.experiment_id], "tags.`bisector.role` = 'trial'")
    assert {t.info.status for t in trials} == {"KILLED"} and len(trials) == 2


def test_gpus_asked_on_a_cpu_cluster_is_a_clear_error(tmp_path, local_ray):
    with pytest.raises(ResourceError, match="no GPU"):
        campaign.run(GOOD, BAD, opts(tmp_path, resources=Resources(gpus_per_trial=0.25)))
