"""bisector.metrics_log.read: JSONL, CSV and MLflow logs become sorted series; bad input is one MetricsLogError."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bisector.errors import InputError, MetricsLogError
from bisector.metrics_log import MetricsLog, read

from ._stores import sqlite_store


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return str(path)


def error(source: str, **kw) -> str:
    with pytest.raises(MetricsLogError) as info:
        read(source, **kw)
    assert isinstance(info.value, InputError) and info.value.exit_code == 2
    return str(info.value)


def steps(series: list[tuple[int, float]]) -> list[int]:
    return [s for s, _ in series]


# --- JSONL --------------------------------------------------------------------------------------------------------

def test_jsonl_basic(tmp_path):
    path = write(tmp_path, "log.jsonl", """
        {"step": 1, "loss": 2.5, "lr": 0.001, "phase": "train", "note": null, "flag": true, "hist": [1, 2]}

        {"step": 2, "loss": 2.25, "lr": 0.001}
        {"step": 3.0, "loss": 2, "acc": "0.5"}
    """)
    log = read(path)
    assert log.source == path
    assert log.names() == ["acc", "loss", "lr"]
    assert log.get("loss") == [(1, 2.5), (2, 2.25), (3, 2.0)]
    assert log.get("lr") == [(1, 0.001), (2, 0.001)]
    assert log.get("acc") == [(3, 0.5)]
    assert all(type(s) is int for s in steps(log.get("loss")))


def test_jsonl_nan_and_inf_reach_the_series(tmp_path):
    path = write(tmp_path, "log.jsonl", """
        {"step": 1, "loss": "nan", "a": NaN}
        {"step": 2, "loss": "inf", "a": Infinity}
        {"step": 3, "loss": "-inf", "a": -Infinity}
    """)
    log = read(path)
    for name in ("loss", "a"):
        (_, v1), (_, v2), (_, v3) = log.get(name)
        assert math.isnan(v1) and v2 == math.inf and v3 == -math.inf


def test_jsonl_detected_by_content(tmp_path):
    log = read(write(tmp_path, "run.log", '\n  {"step": 5, "loss": 1.5}\n'))
    assert log.get("loss") == [(5, 1.5)]


def test_jsonl_extension_wins_over_content(tmp_path):
    msg = error(write(tmp_path, "log.ndjson", "step,loss\n1,2\n"))
    assert "line 1: invalid JSON" in msg


def test_jsonl_invalid_line(tmp_path):
    path = write(tmp_path, "log.jsonl", '{"step": 1, "loss": 1}\n{"step": 2, "loss": \n')
    msg = error(path)
    assert msg.startswith(path) and "line 2: invalid JSON" in msg


def test_jsonl_missing_step_lists_keys(tmp_path):
    path = write(tmp_path, "log.jsonl", '{"iter": 1, "loss": 1}\n')
    msg = error(path)
    assert path in msg and "line 1: no `step` key" in msg and "iter, loss" in msg


@pytest.mark.parametrize("step", ["1.5", "true", '"ten"', "null"])
def test_jsonl_non_integer_step(tmp_path, step):
    msg = error(write(tmp_path, "log.jsonl", f'{{"step": 0, "loss": 1}}\n{{"step": {step}, "loss": 1}}\n'))
    assert "line 2: step must be an integer" in msg


# --- CSV ----------------------------------------------------------------------------------------------------------

def interleaved_csv(tmp_path: Path) -> str:
    lines = ["step,wall_seconds,train_loss,lr,val_loss,val_macro_f1"]
    for s in range(1, 301):
        lines.append(f"{s},{s * 0.1:.1f},{1 / s:.6f},0.001,,")
        if s % 100 == 0:
            lines.append(f"{s},,,,{s / 1000},0.{s // 100}")
    return write(tmp_path, "log.csv", "\n".join(lines) + "\n")


def test_csv_interleaved_train_and_eval_rows(tmp_path):
    log = read(interleaved_csv(tmp_path))
    assert log.names() == ["lr", "train_loss", "val_loss", "val_macro_f1", "wall_seconds"]
    assert log.get("val_loss") == [(100, 0.1), (200, 0.2), (300, 0.3)]
    assert log.get("val_macro_f1") == [(100, 0.1), (200, 0.2), (300, 0.3)]
    train = log.get("train_loss")
    assert steps(train) == list(range(1, 301))
    assert train[99] == (100, pytest.approx(0.01))  # the eval row at step 100 merged, did not blank it


def test_csv_nan_inf_strings(tmp_path):
    log = read(write(tmp_path, "log.csv", "step,loss\n1,nan\n2,NaN\n3,inf\n4,-inf\n5,Infinity\n6, 0.5 \n"))
    values = [v for _, v in log.get("loss")]
    assert math.isnan(values[0]) and math.isnan(values[1])
    assert values[2:] == [math.inf, -math.inf, math.inf, 0.5]


def test_csv_float_step_and_short_rows(tmp_path):
    log = read(write(tmp_path, "log.csv", "step,loss,acc\n100.0,1.5,0.2\n200,1.25\n"))
    assert log.get("loss") == [(100, 1.5), (200, 1.25)]
    assert log.get("acc") == [(100, 0.2)]


def test_csv_non_integer_step(tmp_path):
    msg = error(write(tmp_path, "log.csv", "step,loss\n1,2\n1.5,2\n"))
    assert "line 3: step must be an integer, got '1.5'" in msg


def test_csv_bad_cell_names_line_and_column(tmp_path):
    path = write(tmp_path, "log.csv", "step,train_loss,lr\n1,2.0,0.1\n2,oops,0.1\n")
    msg = error(path)
    assert msg.startswith(path) and "line 3, column 'train_loss'" in msg and "'oops'" in msg


def test_csv_too_many_fields(tmp_path):
    msg = error(write(tmp_path, "log.csv", "step,loss,lr\n1,2,3\n2,2,3,4,5\n"))
    assert "line 3: 5 fields but the header has 3" in msg


def test_csv_missing_step_lists_columns(tmp_path):
    path = write(tmp_path, "log.csv", "iteration,train_loss\n1,2\n")
    msg = error(path)
    assert path in msg and "no `step` column" in msg and "'iteration', 'train_loss'" in msg


def test_csv_blank_metric_cells_only(tmp_path):
    assert "no numeric metric values" in error(write(tmp_path, "log.csv", "step,loss\n1,\n2,\n"))


# --- resume and ordering ------------------------------------------------------------------------------------------

def test_crash_resume_later_rows_win(tmp_path):
    rows = [f"{s},1.0,{'1.0' if s % 100 == 0 else ''}" for s in range(1, 501)]
    rows += [f"{s},2.0,{'2.0' if s % 100 == 0 else ''}" for s in range(401, 901)]
    log = read(write(tmp_path, "log.csv", "step,train_loss,val_loss\n" + "\n".join(rows) + "\n"))
    train = log.get("train_loss")
    assert steps(train) == list(range(1, 901))
    assert dict(train)[450] == 2.0 and dict(train)[400] == 1.0 and dict(train)[500] == 2.0
    assert log.get("val_loss") == [(s, 1.0 if s <= 400 else 2.0) for s in range(100, 901, 100)]


def test_crash_resume_drops_the_abandoned_tail(tmp_path):
    """A resumed segment that stops before the old one ended leaves none of the old values after its start."""
    lines = [json.dumps({"step": s, "loss": 1.0}) for s in range(1, 11)] + ['{"step": 10, "val": 5.0}']
    lines += [json.dumps({"step": s, "loss": 2.0}) for s in range(6, 9)]
    log = read(write(tmp_path, "log.jsonl", "\n".join(lines)))
    assert log.get("loss") == [(s, 1.0) for s in range(1, 6)] + [(6, 2.0), (7, 2.0), (8, 2.0)]
    assert "val" not in log.names()


@pytest.mark.parametrize("name, text", [
    ("log.csv", "step,loss\n0,1.0\n1,0.9\n0,1.0\n1,0.8\n"),
    ("log.jsonl", "".join(json.dumps({"step": s, "loss": v}) + "\n"
                          for s, v in [(0, 1.0), (1, 0.9), (0, 1.0), (1, 0.8)])),
])
def test_a_resume_back_to_the_first_step_keeps_the_new_run(tmp_path, name, text):
    """A log going back to its first step (a second run appended) empties the series first; it read an empty list."""
    assert read(write(tmp_path, name, text)).get("loss") == [(0, 1.0), (1, 0.8)]


def test_same_step_twice_later_value_wins(tmp_path):
    log = read(write(tmp_path, "log.csv", "step,loss\n1,1.0\n2,5.0\n2,3.0\n3,2.0\n"))
    assert log.get("loss") == [(1, 1.0), (2, 3.0), (3, 2.0)]


def test_late_eval_row_merges_without_dropping_train(tmp_path):
    text = "step,train_loss,val_loss\n99,1.0,\n100,0.9,\n101,0.8,\n100,,0.7\n102,0.6,\n"
    log = read(write(tmp_path, "log.csv", text))
    assert steps(log.get("train_loss")) == [99, 100, 101, 102]
    assert log.get("val_loss") == [(100, 0.7)]


@pytest.mark.parametrize("name,text,line", [
    ("log.csv", "step,loss\n1,1\n2,1\n3,1\n10,1\n7,1\n", 6),
    ("log.jsonl", "\n".join(json.dumps({"step": s, "loss": 1}) for s in (1, 2, 3, 10, 7)), 5),
])
def test_steps_going_back_to_an_unseen_step(tmp_path, name, text, line):
    path = write(tmp_path, name, text)
    msg = error(path)
    assert msg.startswith(path) and f"line {line}: step 7 comes after step 10" in msg


# --- files --------------------------------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.csv")
    msg = error(path)
    assert msg.startswith(path) and "no such file" in msg


def test_a_directory_without_framework_files_is_not_a_log(tmp_path):
    msg = error(str(tmp_path))
    assert "no TensorBoard event files" in msg and "trainer_state.json" in msg and "metrics.csv" in msg


@pytest.mark.parametrize("name,text", [
    ("log.csv", ""), ("log.csv", "\n  \n\n"), ("log.csv", "step,loss\n"), ("log.csv", "step,loss\n\n\n"),
    ("log.jsonl", ""), ("log.jsonl", "\n\n"),
])
def test_no_data_rows(tmp_path, name, text):
    path = write(tmp_path, name, text)
    msg = error(path)
    assert msg.startswith(path) and "no data rows" in msg


def test_reading_a_file_does_not_import_mlflow(tmp_path):
    path = write(tmp_path, "log.csv", "step,loss\n1,2\n")
    code = f"import sys; from bisector.metrics_log import read; read({path!r}); assert 'mlflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


# --- MetricsLog ---------------------------------------------------------------------------------------------------

def mlog(*names: str) -> MetricsLog:
    return MetricsLog("run.csv", {n: [(1, 1.0)] for n in names})


@pytest.mark.parametrize("names,expected", [
    (("val_loss", "loss", "train_loss", "lr"), "train_loss"),
    (("val_loss", "loss", "lr"), "loss"),
    (("val_loss", "acc", "lr"), "val_loss"),
    (("Eval_Loss", "acc"), "Eval_Loss"),
    (("accuracy",), "accuracy"),
])
def test_default_metric(names, expected):
    assert mlog(*names).default_metric() == expected


def test_default_metric_ambiguous_losses():
    with pytest.raises(MetricsLogError) as info:
        mlog("val_loss", "aux_loss", "acc").default_metric()
    msg = str(info.value)
    assert "run.csv" in msg and "aux_loss, val_loss" in msg and "--metric" in msg


def test_default_metric_no_loss_and_several_metrics():
    with pytest.raises(MetricsLogError) as info:
        mlog("acc", "lr").default_metric()
    assert "acc, lr" in str(info.value) and "--metric" in str(info.value)


def test_get_unknown_metric(tmp_path):
    path = write(tmp_path, "log.csv", "step,train_loss,val_loss\n1,2,3\n")
    with pytest.raises(MetricsLogError) as info:
        read(path).get("val_los")
    msg = str(info.value)
    assert msg.startswith(path) and "'val_los'" in msg and "train_loss, val_loss" in msg and "'val_loss'?" in msg


# --- MLflow -------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mlflow_run(tmp_path_factory):
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    uri = sqlite_store(tmp_path_factory.mktemp("mlflow") / "m.db")
    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(client.create_experiment("fingerprint"))
    run_id = run.info.run_id
    metrics = [Metric("train_loss", 1.0 / s, 1000 + s, s) for s in (3, 1, 2)]
    metrics += [Metric("train_loss", float("nan"), 2000, 4), Metric("val_loss", 0.5, 1000, 2)]
    metrics += [Metric("val_loss", 0.4, 3000, 4), Metric("val_loss", 0.9, 1000, 4)]  # resumed: later time wins
    client.log_batch(run_id, metrics=metrics)
    return uri, run_id


def test_mlflow_run(mlflow_run):
    uri, run_id = mlflow_run
    log = read(f"mlflow:{run_id}", tracking_uri=uri)
    assert log.source == f"mlflow:{run_id}"
    assert log.names() == ["train_loss", "val_loss"]
    train = log.get("train_loss")
    assert train[:3] == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert train[3][0] == 4 and math.isnan(train[3][1])
    assert log.get("val_loss") == [(2, 0.5), (4, 0.4)]


def test_mlflow_missing_run(mlflow_run):
    uri, _ = mlflow_run
    msg = error("mlflow:0123456789abcdef", tracking_uri=uri)
    assert msg.startswith("mlflow:0123456789abcdef") and uri in msg
