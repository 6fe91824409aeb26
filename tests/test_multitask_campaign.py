"""The multitask story end to end: real local Ray, real sqlite MLflow, real training.

Default suite: the small pair (3 knobs, 400 steps). Slow: the full recipe pair
(6 knobs, 800 steps), ``bisector run recipes/multitask/good.yaml bad.yaml``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ._stores import sqlite_store

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp: Path, good: Path, bad: Path) -> tuple[dict, str]:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "bisector", "run", str(good), str(bad), "--json", "--tracking-uri",
         sqlite_store(tmp / "mlflow.db"), "--workdir", str(tmp / "work"), "--experiment", "multitask"],
        capture_output=True, text=True, cwd=tmp, env=env, timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), proc.stderr


def _check(out: dict, stderr: str, knobs: int) -> None:
    assert [c["path"] for c in out["culprits"]] == ["loss.normaliser"]
    by_name = {r["name"]: r for r in out["ladder"]}
    assert by_name["good"]["verdict"] == "stable"
    bad = by_name["bad"]
    assert bad["verdict"] == "stagnant" and bad["stagnant_task"] == "loss_countdown"
    assert bad["steps_run"] == bad["horizon"]  # judged at the end of the run
    assert bad["tasks"]["loss_countdown"] < 0.05 and bad["tasks"]["loss_pointer"] > 0.10
    assert by_name["revert loss.normaliser"]["verdict"] == "stable"
    assert by_name["revert loss.countdown_reduction"]["verdict"] == "stagnant"
    assert len(out["ladder"][0]["changed"]) == knobs or len(by_name["good"]["changed"]) == knobs
    probe = out["probe"]
    assert probe["starved"] == "loss_countdown" and "loss_countdown is starved" in probe["diagnosis"]
    assert all(ck["scope"] == "trunk" for ck in probe["checkpoints"])
    repair = by_name["repair loss_countdown"]
    assert repair["changed"] == {"loss.normaliser": {"good": "grad_balance", "bad": "running_mean"}}
    assert repair["verdict"] == "stable" and all(g["passed"] for g in repair["gates"].values())
    assert "is starved" in stderr and "Repair: repair loss_countdown" in stderr  # the ladder (folded by rich)


def test_small_pair_names_the_normaliser(tmp_path):
    good, bad = ROOT / "tests/recipes/multitask_good.yaml", ROOT / "tests/recipes/multitask_bad.yaml"
    out, stderr = _run(tmp_path, good, bad)
    _check(out, stderr, 3)
    again, stderr = _run(tmp_path, good, bad)  # every trial and the probe found by key: the task verdicts come back
    assert all(r["reused"] for r in again["ladder"])
    _check(again, stderr, 3)
    first = {r["name"]: r["tasks"] for r in out["ladder"]}
    assert {r["name"]: r["tasks"] for r in again["ladder"]} == first


@pytest.mark.slow
def test_reference_pair_names_the_normaliser(tmp_path):
    out, stderr = _run(tmp_path, ROOT / "recipes/multitask/good.yaml", ROOT / "recipes/multitask/bad.yaml")
    _check(out, stderr, 6)
