"""Slow end-to-end tests of `runner: command`: the other config styles, the two-command-line form, the probe
for a script, and a driver SIGKILLed mid-trial (no training process may outlive it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ._servers import base_env, bisector_cmd, wait_for
from ._stores import sqlite_store
from .test_command_campaign import _left_behind

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(tmp: Path, *args: str, cwd: Path | None = None, timeout: float = 900) -> tuple[dict, str]:
    proc = subprocess.run(
        bisector_cmd("run", *args, "--json", "--tracking-uri", sqlite_store(tmp / "mlflow.db"), "--workdir",
                     str(tmp / "work")),
        capture_output=True, text=True, cwd=cwd or tmp, env=base_env(RAY_AUTH_MODE="disabled"), timeout=timeout)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    return json.loads(proc.stdout), proc.stderr


def test_config_file_and_jsonl_with_the_scripts_probe(tmp_path):
    ex = EXAMPLES / "config_file_jsonl"
    out, _ = _run(tmp_path, str(ex / "good.yaml"), str(ex / "bad.yaml"))
    assert [c["path"] for c in out["culprits"]] == ["config.optim.lr"]
    by_name = {r["name"]: r for r in out["ladder"]}
    assert by_name["bad"]["steps_run"] < 3000  # followed live from the JSONL and stopped early
    labels = [ck["label"] for ck in out["probe"]["checkpoints"]]
    assert any("before the climb" in label for label in labels), out["probe"]
    assert any(label.startswith("revert config.optim.lr, stable") for label in labels)
    assert _left_behind(str(tmp_path / "work")) == []


def test_hydra_overrides_and_tensorboard(tmp_path):
    ex = EXAMPLES / "hydra_tensorboard"
    out, _ = _run(tmp_path, str(ex / "good.yaml"), str(ex / "bad.yaml"))
    assert out["culprits"], out["stopped"]
    by_name = {r["name"]: r for r in out["ladder"]}
    assert by_name["good"]["verdict"] == "stable" and by_name["bad"]["verdict"] in ("diverged", "nan")
    assert by_name["bad"]["steps_run"] < (by_name["bad"]["horizon"] or 10**9)
    assert _left_behind(str(tmp_path / "work")) == []


def test_two_command_lines_are_enough(tmp_path):
    ex = EXAMPLES / "argparse_stdout"
    common = f"python {ex / 'train.py'} --epochs 8 --save-dir {{out_dir}}/ckpt --aux-kind margin"
    out, err = _run(tmp_path, "--good", f"{common} --aux-weight 0.01 --batch-size 32",
                    "--bad", f"{common} --aux-weight 0.1 --batch-size 48 --augment",
                    "--regex", r"Loss: (?P<loss>\S+)", "--write-recipes", str(tmp_path / "rec"))
    assert (tmp_path / "rec" / "good.yaml").is_file() and "Written by bisector from the command line" in err
    assert [c["path"] for c in out["culprits"]] == ["config.aux-weight"]
    assert not list(ex.glob("checkpoints")) and not list(ex.glob("mlruns"))
    assert _left_behind(str(tmp_path / "work")) == []


def test_a_sigkilled_driver_leaves_no_training_process(tmp_path):
    ex = EXAMPLES / "argparse_stdout"
    log = tmp_path / "driver.err"
    cmd = bisector_cmd("run", str(ex / "good.yaml"), str(ex / "bad.yaml"), "--tracking-uri",
                       sqlite_store(tmp_path / "mlflow.db"), "--workdir", str(tmp_path / "work"))
    with open(log, "w") as err:
        driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path,
                                  env=base_env(RAY_AUTH_MODE="disabled"), start_new_session=True)
    marker = str(tmp_path / "work")
    try:
        wait_for(lambda: len(_left_behind(marker)) >= 2, 180, "two training processes", interval=0.5, proc=driver)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 60
        while _left_behind(marker) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _left_behind(marker) == []
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
