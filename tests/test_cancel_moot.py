"""Cancelling a moot trial on a real local Ray: the worker ends, the answer stands, the run is never reused."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bisector import campaign
from bisector.scheduler import Resources
from bisector.tracker import Callback

from ._stores import sqlite_store

ROOT = Path(__file__).resolve().parents[1]
GOOD, BAD = str(ROOT / "tests/recipes/single_good.yaml"), str(ROOT / "tests/recipes/single_bad.yaml")


@pytest.fixture
def local_ray():
    import ray

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
             logging_level="ERROR")
    yield
    ray.shutdown()


class Pids(Callback):
    def __init__(self):
        self.pids, self.cancelled = {}, []

    def on_trial_running(self, name, info):
        self.pids[name] = info["pid"]

    def on_trial_cancelled(self, name, rung):
        self.cancelled.append(name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_a_moot_sibling_is_cancelled_its_worker_ends_and_it_is_never_reused(tmp_path, local_ray):
    from mlflow.tracking import MlflowClient

    def opts(**kw):
        return campaign.Options(tracking_uri=sqlite_store(tmp_path / "m.db"), workdir=str(tmp_path / "wd"),
                                strategy="split", confirm=False, probe=False,
                                resources=Resources(max_concurrent=2), **kw)

    watch = Pids()
    out = campaign.run(GOOD, BAD, opts(), [watch])
    ladder = out.ladder
    assert out.exit_code == 0 and [k.name for k in ladder.culprits] == ["model.crf_reduction"]
    assert ladder.structure == "single"
    cancelled = [r for r in ladder.rungs if r.verdict == "cancelled"]
    assert cancelled and [r.name for r in cancelled] == watch.cancelled
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/m.db")
    for rung in cancelled:
        assert "model.crf_reduction" in rung.changed  # a part without the culprit: its pass was not needed
        by = rung.note.removeprefix("cancelled: made moot by ")
        assert next(r for r in ladder.rungs if r.name == by).verdict == "diverged" and rung.steps_run < 900
        pid = watch.pids[rung.name]
        deadline = time.time() + 15
        while _alive(pid) and time.time() < deadline:
            time.sleep(0.2)
        assert not _alive(pid), f"the cancelled trial's worker {pid} is still running"
        run = client.get_run(rung.run_id)
        assert run.info.status == "KILLED" and run.data.tags["verdict"] == "cancelled"  # not FAILED or FINISHED

    again = campaign.run(GOOD, BAD, opts())  # every finished trial is reused; the cancelled one is not needed
    assert [k.name for k in again.ladder.culprits] == ["model.crf_reduction"]
    assert again.ladder.totals()["trials_run"] == 0
    assert not {r.name for r in cancelled} & {r.name for r in again.ladder.rungs}
