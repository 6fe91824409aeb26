"""`bisector fingerprint` on logs written the way other tools write them."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bisector.cli import app
from bisector.detector import ClimbDetector, classify
from bisector.metrics_log import read

from ._stores import sqlite_store


def climb_curve(n: int = 900, climb_at: int = 500, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    out = []
    for t in range(1, n + 1):
        base = 0.8 + 1.9 * math.exp(-t / 60) if t < climb_at else 0.8 + 1.7 * min(1, (t - climb_at) / 200)
        out.append(base * (1 + 0.03 * rng.gauss(0, 1)))
    return out


def healthy_curve(n: int = 900, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [(0.3 + 2.4 * math.exp(-t / 150)) * (1 + 0.04 * rng.gauss(0, 1)) for t in range(1, n + 1)]


def write_csv(path: Path, train: list[float], val: dict[int, tuple[float, float]] | None = None) -> Path:
    """Training-script style: train rows with blank eval cells, eval rows interleaved."""
    lines = ["step,wall_seconds,train_loss,lr,val_loss,val_macro_f1"]
    for t, v in enumerate(train, start=1):
        lines.append(f"{t},{0.1 * t:.1f},{v:.5f},0.003,,")
        if val and t in val:
            lines.append(f"{t},{0.1 * t:.1f},,,{val[t][0]:.4f},{val[t][1]:.4f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def invoke(*args: str):
    return CliRunner().invoke(app, ["fingerprint", *args])


def test_csv_diverged_json(tmp_path):
    values = climb_curve()
    path = write_csv(tmp_path / "log.csv", values, {t: (values[t - 1] * 1.1, 0.9) for t in range(100, 901, 100)})
    res = invoke(str(path), "--json")
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"verdict", "metric", "best_step", "best_value", "climb_start_step", "detected_at_step",
                        "evidence"}
    assert out["verdict"] == "diverged" and out["metric"] == "train_loss"
    # the step at which the streaming detector, fed the points in order, calls it
    streamed = classify(enumerate(values, start=1), ClimbDetector())
    assert out["detected_at_step"] == streamed.detected_at_step
    assert 500 <= out["climb_start_step"] < out["detected_at_step"] < 600
    assert "of the way back to the start" in out["evidence"] and "still rising" in out["evidence"]


def test_text_output_names_the_default_metric(tmp_path):
    res = invoke(str(write_csv(tmp_path / "log.csv", healthy_curve())))
    assert res.exit_code == 0, res.output
    assert "train_loss (default) -> stable" in res.stdout


def test_a_stable_run_ending_at_its_best_reads_so_not_a_negative_share(tmp_path):
    # its end sits at or under the best (whose floor is a few noises above the luckiest point): "-0%" or
    # "-1% of the way back" was printed
    out = json.loads(invoke(str(write_csv(tmp_path / "log.csv", healthy_curve(3000))), "--json").stdout)
    assert out["verdict"] == "stable"
    assert "at its best level" in out["evidence"] and "of the way back" not in out["evidence"]


def test_a_log_last_seen_above_its_start_says_so(tmp_path):
    # it came down, then its last row (an overflow's first, written before any nan) is above where it started
    values = healthy_curve()
    values[-1] = 1.2 * values[0]
    res = invoke(str(write_csv(tmp_path / "log.csv", values)), "--json")
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout)
    assert out["verdict"] == "diverged" and out["detected_at_step"] == 900
    assert "above where it started" in out["evidence"] and "not stable" in out["evidence"]


def test_jsonl_and_nan_strings(tmp_path):
    rows = [{"step": t, "loss": v} for t, v in enumerate(healthy_curve(300), start=1)]
    rows[200]["loss"] = "nan"
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    out = json.loads(invoke(str(path), "--json").stdout)
    assert out["verdict"] == "nan" and out["metric"] == "loss" and out["detected_at_step"] == 201


def test_crash_resume_later_rows_win(tmp_path):
    values = healthy_curve(900)
    first = values[:600]
    first[550:] = [float("nan")] * 50  # the crashed run's last rows
    lines = ["step,train_loss"] + [f"{t},{v}" for t, v in enumerate(first, start=1)]
    lines += [f"{t},{values[t - 1]}" for t in range(501, 901)]  # resumed from the step-500 checkpoint
    path = tmp_path / "resumed.csv"
    path.write_text("\n".join(lines) + "\n")
    out = json.loads(invoke(str(path), "--json").stdout)
    assert out["verdict"] == "stable"
    assert read(str(path)).get("train_loss")[550] == (551, pytest.approx(values[550]))


def test_collapsed_validation_metric(tmp_path):
    f1 = [0.3, 0.6, 0.8, 0.9, 0.92, 0.93, 0.7, 0.5, 0.45]
    val = {100 * (i + 1): (1.0, f) for i, f in enumerate(f1)}
    path = write_csv(tmp_path / "log.csv", healthy_curve(900), val)
    out = json.loads(invoke(str(path), "--metric", "val_macro_f1", "--json").stdout)
    assert out["verdict"] == "collapsed" and out["best_step"] == 600
    assert out["climb_start_step"] == 800 and out["detected_at_step"] == 900  # confirmed at the second eval


def test_flat_ranking_loss(tmp_path):
    rng = random.Random(2)
    path = tmp_path / "rank.jsonl"
    path.write_text("\n".join(json.dumps({"step": t, "rank_loss": 0.5 + 0.01 * rng.gauss(0, 1)})
                              for t in range(1000)))
    out = json.loads(invoke(str(path), "--json").stdout)
    assert out["verdict"] == "flat" and out["metric"] == "rank_loss"
    assert "never descended" in out["evidence"]


def test_stagnant_task_in_multitask_run(tmp_path):
    rng = random.Random(3)
    rows = []
    for t in range(1, 2001):
        pointer = (0.6 + 0.4 * math.exp(-t / 300)) * (1 + 0.02 * rng.gauss(0, 1))
        countdown = (0.97 + 0.03 * math.exp(-t / 300)) * (1 + 0.02 * rng.gauss(0, 1))
        rows.append(json.dumps({"step": t, "loss_pointer": pointer, "loss_countdown": countdown}))
    path = tmp_path / "mt.jsonl"
    path.write_text("\n".join(rows))
    res = invoke(str(path), "--metric", "loss_pointer", "--metric", "loss_countdown", "--json")
    out = json.loads(res.stdout)
    assert out["verdict"] == "stagnant" and out["metric"] == "loss_countdown"
    by = {m["metric"]: m for m in out["metrics"]}
    assert by["loss_countdown"]["improvement"] < 0.05 <= 0.10 <= by["loss_pointer"]["improvement"]
    assert by["loss_countdown"]["training_rate"] > 1 > by["loss_pointer"]["training_rate"]
    assert "relative training rate" in out["evidence"]


def test_phase_switch_planned_jump(tmp_path):
    warm = [(0.3 + 0.7 * math.exp(-t / 80)) for t in range(500)]
    main = [(1.0 + 2.0 * math.exp(-t / 100)) for t in range(1000)]
    path = write_csv(tmp_path / "phase.csv", warm + main)
    assert json.loads(invoke(str(path), "--phase-switch", "501", "--json").stdout)["verdict"] == "stable"
    stuck = write_csv(tmp_path / "stuck.csv", warm + [3.0] * 500)
    out = json.loads(invoke(str(stuck), "--phase-switch", "501", "--json").stdout)
    assert out["verdict"] == "diverged" and out["climb_start_step"] == 501


def test_mlflow_run(tmp_path, monkeypatch):
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    uri = sqlite_store(tmp_path / "m.db")
    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(client.create_experiment("fp"))
    metrics = [Metric("train_loss", v, 0, t) for t, v in enumerate(climb_curve(), start=1)]
    for i in range(0, len(metrics), 1000):
        client.log_batch(run.info.run_id, metrics=metrics[i : i + 1000])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    out = json.loads(invoke(f"mlflow:{run.info.run_id}", "--json").stdout)
    assert out["verdict"] == "diverged" and out["metric"] == "train_loss"


@pytest.mark.parametrize(
    ("name", "body", "expected"),
    [
        ("empty.csv", "", "empty"),
        ("nostep.csv", "iter,loss\n1,2.0\n", "step"),
        ("backwards.csv", "step,loss\n1,2.0\n2,1.9\n5,1.8\n4,1.7\n", "line 5"),
        ("wide.csv", "step,loss\n1,2.0\n2,1.9,7\n", "line 3"),
    ],
)
def test_bad_logs_exit_2(tmp_path, name, body, expected):
    path = tmp_path / name
    path.write_text(body)
    res = invoke(str(path))
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith(f"error: {path}") and expected in res.stderr
    assert "Traceback" not in res.output


def test_unknown_metric_lists_the_present_ones(tmp_path):
    path = write_csv(tmp_path / "log.csv", healthy_curve(50))
    res = invoke(str(path), "--metric", "val_acc")
    assert res.exit_code == 2
    assert "no metric 'val_acc'" in res.stderr and "train_loss" in res.stderr and "wall_seconds" in res.stderr


def test_missing_file_exit_2(tmp_path):
    res = invoke(str(tmp_path / "nope.csv"))
    assert res.exit_code == 2 and str(tmp_path / "nope.csv") in res.stderr
