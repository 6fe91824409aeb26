"""Options, addresses, stores and orphaned campaigns, checked without starting Ray."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace

import pytest

from bisector import campaign, orphans, preflight, store, trial
from bisector.errors import ClusterError, OptionError, StoreError
from bisector.scheduler import Resources


def _opts(tmp_path, **kw) -> campaign.Options:
    return campaign.Options(tracking_uri=f"sqlite:///{tmp_path}/m.db", workdir=str(tmp_path / "wd"), **kw)


@pytest.mark.parametrize(("uri", "shown"), [
    ("http://alice:s3cret@127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("https://alice:p@ss@mlflow.example.com/prefix", "https://mlflow.example.com/prefix"),  # '@' in a password
    ("postgresql://bob:hunter2@db:5432/mlflow", "postgresql://db:5432/mlflow"),
    ("https://host/api?token=abc&x=1", "https://host/api?token=***&x=1"),
    ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
    ("MLFLOW_TRACKING_URI=http://u:pw@h:1 mlflow artifacts download", "MLFLOW_TRACKING_URI=http://h:1 mlflow "
     "artifacts download"),
])
def test_redact_strips_credentials(uri, shown):
    assert store.redact(uri) == shown


def test_every_bad_option_is_reported_at_once(tmp_path):
    opts = _opts(tmp_path, resources=Resources(-1, float("nan"), -3), max_trials=-3, max_hours=float("inf"),
                 retries=-1, seed=-1, probe_batches=0, min_val=float("nan"), max_climb=2.0, class_floor=-0.5,
                 experiment=" ", groups=["", "a.b,a.b"])
    problems = preflight.option_problems(opts)
    flags = ["--cpus-per-trial -1", "--gpus-per-trial nan", "--max-concurrent -3", "--max-trials -3",
             "--max-hours inf", "--retries -1", "--seed -1", "--probe-batches 0", "--min-val nan",
             "--max-climb 2.0", "--class-floor -0.5", "--experiment is empty", "--group '' names no knob",
             "'a.b' is named more than once"]
    for flag in flags:
        assert any(flag in p for p in problems), (flag, problems)
    assert len(problems) == len(flags)
    with pytest.raises(OptionError, match="--cpus-per-trial -1"):
        preflight.check(opts)


@pytest.mark.parametrize(("cpus", "gpus", "message"), [
    (0, 0, "must reserve some CPUs or GPUs"),
    (1, 1.5, "above 1 Ray reserves whole GPUs only"),
    (0.00001, 0, "steps of 0.0001"),
    (10_000, 0, "this machine has"),
])
def test_resources_ray_would_refuse(tmp_path, cpus, gpus, message):
    with pytest.raises(OptionError, match=message):
        preflight.check(_opts(tmp_path, resources=Resources(cpus, gpus)))


def test_good_options_pass_and_create_nothing(tmp_path):
    preflight.check(_opts(tmp_path, resources=Resources(0.5, 0.25, 2), max_trials=3, max_hours=0.5, seed=7,
                          groups=["data.corpus,model.crf_reduction"]))
    assert list(tmp_path.iterdir()) == []


def test_workdir_under_a_file_or_unwritable(tmp_path):
    (tmp_path / "f").write_text("x")
    assert "which is a file" in preflight.workdir_problem(str(tmp_path / "f" / "wd"))
    assert "is not a directory" in preflight.workdir_problem(str(tmp_path / "f"))
    assert "cannot write in /proc" in preflight.workdir_problem("/proc/bisector-wd")
    assert preflight.workdir_problem(str(tmp_path / "new" / "deeper")) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(("address", "message"), [
    ("127.0.0.1:{port}", "nothing answers at 127.0.0.1:{port} (connection refused"),
    ("ray://127.0.0.1:{port}", "nothing answers at 127.0.0.1:{port}"),
    ("http://127.0.0.1:8265", "http:// is the dashboard's address"),
    ("127.0.0.1", "is not an address"),
    ("127.0.0.1:99999", "is not an address"),
    ("no-such-host.invalid:6379", "not found"),
    (" ", "is empty"),
])
def test_ray_address_checked_fast(address, message):
    port = _closed_port()
    with pytest.raises(ClusterError, match=message.format(port=port).replace("(", r"\(")):
        preflight.ray_address(address.format(port=port))


def test_ray_address_local_and_listening(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert preflight.ray_address(None) is None and preflight.ray_address("local") is None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        address = f"127.0.0.1:{s.getsockname()[1]}"
        assert preflight.ray_address(address) == address
        monkeypatch.setenv("RAY_ADDRESS", address)
        assert preflight.ray_address(None) == address


@pytest.mark.parametrize(("uri", "message"), [
    ("http://alice:s3cret@127.0.0.1:{port}", "store http://127.0.0.1:{port} cannot be used: nothing answers"),
    ("file:///proc/x", "filesystem store"),
    ("sqlite:///{tmp}", "is a directory"),
    ("sqlite:///{tmp}/missing/m.db", "does not exist"),
    ("sqlite:///{tmp}/text.db", "is not a sqlite database"),
    ("bogus://x", "unsupported URI"),
    ("", "--tracking-uri is empty"),
])
def test_unusable_store_fails_fast_without_credentials(tmp_path, uri, message):
    (tmp_path / "text.db").write_text("not a database")
    port = _closed_port()
    uri, message = uri.format(tmp=tmp_path, port=port), message.format(port=port)
    with pytest.raises(StoreError) as info:
        store.open_client(uri, "bisector")
    assert message in str(info.value)
    assert "s3cret" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text.db"]


def test_deleted_experiment_is_named(tmp_path):
    uri, client = store.open_client(f"sqlite:///{tmp_path}/m.db", "gone")
    client.delete_experiment(client.create_experiment("gone"))
    with pytest.raises(StoreError, match="experiment 'gone' .* is deleted; restore it"):
        store.open_client(uri, "gone")


def test_orphans_are_told_apart_from_live_drivers():
    me = json.loads(orphans.identity())
    assert not orphans.gone(orphans.identity())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert orphans.gone(json.dumps(me | {"pid": child.pid}))  # exited
    assert orphans.gone(json.dumps(me | {"started": me["started"] - 60}))  # pid reused by another process
    assert not orphans.gone(json.dumps(me | {"pid": child.pid, "host": "elsewhere"}))  # cannot tell: left alone
    assert not orphans.gone(None)  # a campaign from before the tag
    assert os.getpid() == me["pid"]


def test_orphaned_campaign_is_closed_by_the_next(tmp_path):
    from bisector.tracker import MlflowTracker

    uri = f"sqlite:///{tmp_path}/m.db"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    t1 = MlflowTracker(uri)
    client = t1.client
    exp = t1._experiment_id()
    driver = json.dumps(json.loads(orphans.identity()) | {"pid": dead.pid})
    orphan = client.create_run(exp, tags={"bisector.role": "campaign", orphans.TAG: driver}).info.run_id
    trial = client.create_run(exp, tags={"mlflow.parentRunId": orphan, "bisector.role": "trial"}).info.run_id
    alive = client.create_run(exp, tags={"bisector.role": "campaign", orphans.TAG: orphans.identity()}).info.run_id
    t2 = MlflowTracker(uri)
    t2.on_campaign_start({"name": "next", "params": {}, "tags": {}})
    assert client.get_run(orphan).info.status == "KILLED"
    assert client.get_run(orphan).data.tags["bisector.closed_by"] == t2.parent_run_id
    assert client.get_run(trial).info.status == "KILLED"
    assert client.get_run(alive).info.status == "RUNNING"  # a campaign running now is not an orphan


def test_smoke_options(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OptionError, match=r"--seed -1: .*; --out-dir .*/f/out: it would be under .*/f, which is a"):
        trial.smoke("unused.yaml", -1, out_dir=str(tmp_path / "f" / "out"))


def test_run_with_bad_options_records_nothing(tmp_path):
    from .conftest import RECIPES

    good, bad = str(RECIPES / "good.yaml"), str(RECIPES / "bad.yaml")
    for opts in (_opts(tmp_path, resources=Resources(-1, 0)), replace(_opts(tmp_path), experiment=""),
                 _opts(tmp_path, address=f"127.0.0.1:{_closed_port()}")):
        with pytest.raises((OptionError, ClusterError)):
            campaign.run(good, bad, opts)
    assert list(tmp_path.iterdir()) == []
