"""A real campaign on an unmodified user script through `runner: command`: real Ray, MLflow, subprocesses.

examples/argparse_stdout/train.py prints pytorch-examples-style progress lines and knows nothing of
bisector; its bad recipe fails from real dynamics (an unbounded confidence bonus, weighted 10x,
outweighs cross-entropy on the noisy rows and the training loss climbs back), verified over 3 seeds
(examples/argparse_stdout/README.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from ._stores import sqlite_store

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "argparse_stdout"


def _env() -> dict[str, str]:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    return env


def _left_behind(marker: str) -> list[str]:
    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if marker in cmd and p.info["status"] != psutil.STATUS_ZOMBIE and p.pid != os.getpid():
            out.append(f"{p.pid}: {cmd[:200]}")
    return out


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cmdcampaign")
    proc = subprocess.run(
        [sys.executable, "-m", "bisector", "run", str(EX / "good.yaml"), str(EX / "bad.yaml"), "--json",
         "--tracking-uri", sqlite_store(tmp / "mlflow.db"), "--workdir", str(tmp / "work")],
        capture_output=True, text=True, cwd=tmp, env=_env(), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), tmp


def test_names_the_culprits_of_a_users_script(campaign):
    out, _ = campaign
    assert sorted(c["path"] for c in out["culprits"]) == ["config.aux_kind", "config.aux_weight"]
    by_name = {r["name"]: r for r in out["ladder"]}
    assert by_name["good"]["verdict"] == "stable" and by_name["bad"]["verdict"] == "diverged"
    assert by_name["revert config.augment"]["changed"] == {"config.augment": {"good": "(absent)", "bad": True}}


def test_diverging_trials_are_stopped_early(campaign):
    out, _ = campaign
    for rung in out["ladder"]:
        if rung["verdict"] == "diverged":
            assert rung["climb_start_step"] < rung["detected_at_step"] == rung["steps_run"] < 64000 * 0.8
        else:
            assert rung["steps_run"] > 60000
    assert out["totals"]["steps_saved"] > 0


def test_each_trial_ran_the_script_with_its_own_flags(campaign):
    out, tmp = campaign
    runs = {r["name"]: r["out_dir"] for r in out["ladder"]}
    argv = json.loads((Path(runs["revert config.aux_kind"]) / "command.json").read_text())["argv"]
    assert argv[argv.index("--aux-kind") + 1] == "logprob" and argv[argv.index("--aux-weight") + 1] == "0.1"
    assert "--augment" in argv and "--batch-size" in argv
    good = json.loads((Path(runs["good"]) / "command.json").read_text())["argv"]
    assert "--augment" not in good  # absent in good: the store_true flag is left out
    assert list((Path(runs["good"]) / "ckpt").glob("epoch_*.pt"))  # {out_dir} reached the script


def test_no_training_process_is_left_behind(campaign):
    _, tmp = campaign  # this campaign's trials only (--save-dir is under its workdir): the slow suite runs
    assert _left_behind(str((tmp / "work").resolve())) == []  # the same train.py beside this one in CI
