"""``bisector fingerprint`` on the files frameworks write: TensorBoard, Hugging Face's Trainer, Lightning.

A user's finished run is often only a TensorBoard log directory, a Trainer
output directory or Lightning's ``lightning_logs/``. The command runner already
follows them live; fingerprint reads them with the same followers, so a finished run is judged on the very
points a live trial would have been. The slow case trains the Hydra example
(``examples/hydra_tensorboard``) for real and fingerprints its log directory.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bisector.fingerprint import fingerprint
from bisector.metrics_log import read

ROOT = Path(__file__).resolve().parents[1]


def curve(n: int, climb_at: int | None, seed: int = 0) -> list[float]:
    """2.5 -> 0.5 over a few hundred steps, 2% noise; from ``climb_at`` on, back up at 0.004 a step."""
    rng = random.Random(seed)
    out = []
    for t in range(1, n + 1):
        v = 0.5 + 2.0 * math.exp(-t / 120) + (0.004 * (t - climb_at) if climb_at and t > climb_at else 0.0)
        out.append(v * math.exp(0.02 * rng.gauss(0, 1)))
    return out


def write_tensorboard(path: Path, values: list[float], every: int = 10, start: int = 1) -> None:
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(log_dir=str(path))
    for step in range(start, len(values) + 1):
        if step % every == 0:
            w.add_scalar("train/loss", values[step - 1], step)
            w.add_scalar("train/lr", 1e-3, step)
        if step % 100 == 0:
            w.add_scalar("val/loss", values[step - 1] * 1.1, step)
    w.close()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bisector", "fingerprint", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


@pytest.mark.parametrize(("climb_at", "kind"), [(None, "stable"), (700, "diverged")])
def test_a_tensorboard_log_directory_is_judged_on_train_loss(tmp_path, climb_at, kind):
    values = curve(1500, climb_at)
    write_tensorboard(tmp_path / "run", values)
    log = read(str(tmp_path / "run"))
    assert log.default_metric() == "train/loss"  # beside val/loss: the training one
    pts = log.get("train/loss")
    assert [s for s, _ in pts] == list(range(10, 1501, 10))
    assert all(abs(v - values[s - 1]) < 1e-5 * values[s - 1] for s, v in pts)  # (float32 in the file)
    assert fingerprint(log).verdict == kind
    csv = tmp_path / "same.csv"
    csv.write_text("step,train_loss\n" + "".join(f"{s},{v!r}\n" for s, v in pts))
    assert fingerprint(read(str(csv))).verdict == kind  # the same points as a CSV: the same verdict
    event = next((tmp_path / "run").glob("*tfevents*"))
    assert read(str(event)).get("train/loss") == pts  # one event file, named directly


def test_a_resumed_tensorboard_run_reads_the_later_file_where_they_overlap(tmp_path):
    """A run resumed from step 600 writes a second event file from step 610 on; where the two overlap (610-800)
    the resumed run's points are the run."""
    first, resumed = curve(800, None, seed=1), [v * 1.5 for v in curve(1500, None, seed=2)]
    write_tensorboard(tmp_path, first)
    write_tensorboard(tmp_path, resumed, start=601)
    pts = dict(read(str(tmp_path)).get("train/loss"))
    assert sorted(pts) == list(range(10, 1501, 10))
    assert pts[500] == pytest.approx(first[499], rel=1e-5)
    assert pts[700] == pytest.approx(resumed[699], rel=1e-5)


def trainer_state(values: list[float], upto: int, every: int = 10) -> dict:
    """What ``transformers.Trainer`` writes: ``log_history`` of train entries every ``logging_steps``, eval entries,
    and, at the end, the run's summary (whose ``train_loss`` is a mean over the whole run)."""
    history = []
    for step in range(every, upto + 1, every):
        history.append({"epoch": step / 500, "grad_norm": 1.0, "learning_rate": 5e-5,
                        "loss": round(values[step - 1], 4), "step": step})
        if step % 200 == 0:
            history.append({"epoch": step / 500, "eval_loss": values[step - 1] * 1.1, "eval_runtime": 1.2,
                            "step": step})
    if upto == len(values):
        history.append({"epoch": upto / 500, "step": upto, "total_flos": 1e12, "train_loss": sum(values) / len(values),
                        "train_runtime": 99.0, "train_samples_per_second": 10.0})
    return {"global_step": upto, "epoch": upto / 500, "log_history": history, "max_steps": len(values)}


@pytest.mark.parametrize(("climb_at", "kind"), [(None, "stable"), (700, "diverged")])
def test_a_hugging_face_output_directory_is_judged_on_its_loss_history(tmp_path, climb_at, kind):
    values = curve(1500, climb_at)
    (tmp_path / "checkpoint-1000").mkdir()
    (tmp_path / "checkpoint-1000" / "trainer_state.json").write_text(json.dumps(trainer_state(values, 1000)))
    (tmp_path / "trainer_state.json").write_text(json.dumps(trainer_state(values, 1500)))
    log = read(str(tmp_path))
    assert "train_loss" not in log.series  # the end summary's mean is no curve (it would be the default metric)
    assert log.default_metric() == "loss"
    assert [s for s, _ in log.get("loss")] == list(range(10, 1501, 10))
    assert log.get("eval_loss")[0][0] == 200
    assert fingerprint(log).verdict == kind
    assert fingerprint(read(str(tmp_path / "trainer_state.json"))).verdict == kind  # the file named directly


def test_a_directory_with_no_framework_files_is_bad_input(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here\n")
    r = cli(str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert str(tmp_path) in r.stderr and "TensorBoard" in r.stderr and "trainer_state.json" in r.stderr
    assert "Traceback" not in r.stderr
    (tmp_path / "events.out.tfevents.1.host").write_bytes(b"\x00garbage, not a record")
    r = cli(str(tmp_path))
    assert r.returncode == 2 and "no scalars" in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.slow
def test_the_hydra_example_s_log_directory_is_stable_when_good_and_nan_when_bad(tmp_path):
    """The example trains for real (2,000 steps, ~15 s each); its bad recipe's loss turns nan near step 1,000."""
    app = ROOT / "examples" / "hydra_tensorboard"
    bad = ["loss.label_smoothing=0.0", "model.hidden=[96,96]", "data.batch_size=96", "data.augment=true",
           "optim.warmup_steps=200"]
    for name, overrides, code, kind in (("good", [], 0, "stable"), ("bad", bad, 1, "nan")):
        out = tmp_path / name
        subprocess.run([sys.executable, "train.py", "seed=0", f"out_dir={out}", f"hydra.run.dir={out}/hydra",
                        *overrides], cwd=app, check=True, capture_output=True, timeout=600)
        r = cli(str(out), "--json")
        assert r.returncode == code, r.stderr
        result = json.loads(r.stdout)
        assert (result["verdict"], result["metric"]) == (kind, "train/loss")


def test_a_lightning_log_directory_is_read_from_its_newest_metrics_csv(tmp_path):
    """Lightning's CSVLogger: ``lightning_logs/version_N/metrics.csv``, train and val rows interleaved with blank
    cells; the newest version is the run (an older one below it is an earlier run)."""
    import os

    old, new = tmp_path / "version_0" / "metrics.csv", tmp_path / "version_1" / "metrics.csv"
    for path, climb_at in ((old, None), (new, 700)):
        path.parent.mkdir()
        values = curve(1500, climb_at)
        rows = ["epoch,step,train_loss,val_loss"]
        for s in range(10, 1501, 10):
            rows.append(f"{s // 500},{s - 1},{values[s - 1]!r},")
            if s % 100 == 0:
                rows.append(f"{s // 500},{s - 1},,{values[s - 1] * 1.1!r}")
        path.write_text("\n".join(rows) + "\n")
    os.utime(old, ns=(1_000_000_000, 1_000_000_000))
    log = read(str(tmp_path))
    assert log.source.endswith("version_1/metrics.csv") and log.default_metric() == "train_loss"
    assert fingerprint(log).verdict == "diverged"
    r = cli(str(tmp_path))
    assert r.returncode == 1 and r.stdout.startswith(f"{tmp_path}/version_1/metrics.csv: train_loss"), r.stdout
    os.utime(new, ns=(500_000_000, 500_000_000))
    assert fingerprint(read(str(tmp_path))).verdict == "stable"


def test_several_losses_none_named_train_alone_ask_for_a_metric(tmp_path):
    from bisector.errors import MetricsLogError

    path = tmp_path / "log.csv"
    path.write_text("step,val_loss,test_loss\n1,2.0,2.1\n2,1.9,2.0\n")
    with pytest.raises(MetricsLogError, match=r"several loss metrics \(test_loss, val_loss\).*--metric"):
        read(str(path)).default_metric()
    path.write_text("step,train_loss_a,train_loss_b,val_loss\n1,2.0,2.1,2.2\n2,1.9,2.0,2.1\n")
    with pytest.raises(MetricsLogError, match="not one alone named train"):
        read(str(path)).default_metric()


# -- text logs: a script's stdout saved to a file -------------------------------------------------------------


@pytest.mark.parametrize(("climb_at", "kind"), [(None, "stable"), (700, "diverged")])
def test_a_saved_stdout_log_of_key_value_pairs_is_judged_as_its_csv_is(tmp_path, climb_at, kind):
    """``step=N loss=...`` lines among other output, an eval line after every 100th step (no step of its own: it
    belongs to the step before), and a crash-resume that prints steps 410-500 again (the later lines win)."""
    values = curve(1500, climb_at)
    lines = ["Loading data... done", "model: 1.2M params"]
    for s in [*range(10, 501, 10), *range(410, 1501, 10)]:
        lines.append(f"\x1b[32mINFO\x1b[0m step={s} loss={values[s - 1]:.6f} lr=0.001 | 12.3 it/s")
        if s % 100 == 0:
            lines.append(f"eval: val_loss: {values[s - 1] * 1.1:.6f}")
    (tmp_path / "train.log").write_text("\n".join(lines) + "\n")
    log = read(str(tmp_path / "train.log"))
    pts = log.get("loss")
    assert [s for s, _ in pts] == list(range(10, 1501, 10))
    assert log.get("val_loss")[0] == (100, pytest.approx(values[99] * 1.1, abs=1e-6))
    csv = tmp_path / "same.csv"
    csv.write_text("step,loss\n" + "".join(f"{s},{v!r}\n" for s, v in pts))
    assert fingerprint(log).verdict == fingerprint(read(str(csv))).verdict == kind


def test_a_csv_or_jsonl_log_saved_as_txt_is_still_read_as_one(tmp_path):
    (tmp_path / "a.txt").write_text("step,loss\n1,2.0\n2,1.9\n")
    (tmp_path / "b.log").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.9}\n')
    for name in ("a.txt", "b.log"):
        assert read(str(tmp_path / name)).get("loss") == [(1, 2.0), (2, 1.9)]


def test_a_nanogpt_style_log_is_read_with_a_regex(tmp_path):
    values = curve(1500, 700)
    text = "".join(f"iter {s}: loss {values[s - 1]:.4f}, time 41.20ms, mfu 3.21%\n" for s in range(0, 1501, 10) if s)
    (tmp_path / "out.txt").write_text(text)
    r = cli(str(tmp_path / "out.txt"), "--regex", r"iter (?P<step>\d+): loss (?P<loss>\S+),", "--json")
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["verdict"] == "diverged"
    r = cli(str(tmp_path / "out.txt"))  # no `key: value` pair on its lines: say how to read them
    assert r.returncode == 2 and "no line holds a metric" in r.stderr and "(?P<step>" in r.stderr, r.stderr
    r = cli(str(tmp_path / "out.txt"), "--regex", r"loss (?P<loss>\S+),")  # metrics, but no step
    assert r.returncode == 2 and "no line holds a step (keys seen: loss)" in r.stderr, r.stderr
    r = cli(str(tmp_path / "out.txt"), "--regex", r"loss (\S+")
    assert r.returncode == 2 and "--regex" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = cli(str(tmp_path / "out.txt"), "--regex", r"iter (?P<epoch>\d+): loss (?P<loss>\S+), time (?P<batch>\S+)ms")
    assert r.returncode == 2 and "per_epoch" in r.stderr, r.stderr


def test_a_log_that_counts_in_epochs_is_put_on_steps_with_scale(tmp_path):
    """Hugging Face's Trainer prints ``{'loss': ..., 'epoch': 0.02}`` with no step: the fractional epoch times the
    steps in an epoch (500 here) is the step, which the detector's time constants are in."""
    values = curve(1500, 700)
    text = "".join(f"{{'loss': {values[s - 1]:.4f}, 'grad_norm': 1.3, 'learning_rate': 5e-05, 'epoch': {s / 500}}}\n"
                   for s in range(10, 1501, 10))
    (tmp_path / "hf.out").write_text(text)
    regex = r"'loss': (?P<loss>[^,]+),.*'epoch': (?P<step>[\d.]+)"
    log = read(str(tmp_path / "hf.out"), regex=regex, scale=500)
    assert [s for s, _ in log.get("loss")] == list(range(10, 1501, 10))
    assert fingerprint(log).verdict == "diverged"
    r = cli(str(tmp_path / "hf.out"), "--regex", regex, "--scale", "0")
    assert r.returncode == 2 and "--scale must be a finite number > 0" in r.stderr, r.stderr
    (tmp_path / "log.csv").write_text("step,loss\n1,2.0\n2,1.9\n")
    for args in ([str(tmp_path), "--regex", regex], [str(tmp_path / "log.csv"), "--scale", "500"]):
        r = cli(*args)  # (a directory's or a table's steps are their own: a text-log flag there is a mistake)
        assert r.returncode == 2 and "text log" in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.slow
def test_the_argparse_example_s_stdout_is_stable_when_good_and_diverged_when_bad(tmp_path):
    """The mnist-style example trains for real (~4 s each) and prints ``Train Epoch: 1 [640/8000 (8%)]  Loss: ...``:
    the step is counted in samples from the epoch and the count in brackets, and ``--scale`` 1/batch size
    makes it optimizer steps (the good run's 8 epochs of 250 batches end at step 1990)."""
    app = ROOT / "examples" / "argparse_stdout"
    regex = r"Train Epoch: (?P<epoch>\d+) \[(?P<batch>\d+)/(?P<per_epoch>\d+).*Loss: (?P<loss>\S+)"
    bad = ["--batch-size", "48", "--hidden", "96", "96", "--augment", "--aux-weight", "0.1", "--aux-kind", "margin"]
    for name, flags, code, kind, batch in (("good", [], 0, "stable", 32), ("bad", bad, 1, "diverged", 48)):
        out = subprocess.run([sys.executable, "train.py", "--seed", "0", "--epochs", "8", "--save-dir",
                              str(tmp_path / name), *flags], cwd=app, check=True, capture_output=True, text=True,
                             timeout=600).stdout
        (tmp_path / f"{name}.log").write_text(out)
        r = cli(str(tmp_path / f"{name}.log"), "--regex", regex, "--scale", str(1 / batch), "--json")
        assert r.returncode == code, r.stderr
        result = json.loads(r.stdout)
        assert result["verdict"] == kind
        if name == "good":
            assert result["best_step"] <= 1990 and "step 1990" in result["evidence"]


# -- what a review found (each failed before its fix) --------------------------------------------------------


def test_text_logs_as_people_print_them(tmp_path):
    """A step alone on its line owns the lines after it; an epoch summary's `loss` never overwrites the step's
    own; a printed config dict on the first line is no JSONL row; a stray non-UTF-8 byte is not fatal; a first
    line longer than csv's field limit is no CSV header."""
    lines = ["{'lr': 0.001, 'batch_size': 32}", "x" * 200_000, "caf\xe9 stdout junk"]
    for s in range(1, 151):
        lines += [f"step: {s}", f"loss: {2.0 - s / 100}"]
        if s % 50 == 0:
            lines.append(f"epoch {s // 50} done, loss: 9.0, val_loss: 1.5")
    (tmp_path / "run.log").write_bytes("\n".join(lines).encode("latin-1"))
    log = read(str(tmp_path / "run.log"))
    assert log.get("loss") == [(s, pytest.approx(2.0 - s / 100)) for s in range(1, 151)]
    assert log.get("val_loss") == [(50, 1.5), (100, 1.5), (150, 1.5)]


def test_a_csv_saved_as_log_without_a_step_column_keeps_the_csv_error(tmp_path):
    (tmp_path / "m.log").write_text("epoch,global_step,loss\n0,1,2.0\n0,2,1.9\n")
    r = cli(str(tmp_path / "m.log"))
    assert r.returncode == 2 and "no `step` column" in r.stderr and "global_step" in r.stderr, r.stderr


def test_train_is_a_name_part_not_a_substring(tmp_path):
    (tmp_path / "c.csv").write_text("step,constraint_loss,task_loss\n1,0.1,2.0\n2,0.1,1.9\n")
    with pytest.raises(Exception, match="several loss metrics"):
        read(str(tmp_path / "c.csv")).default_metric()


def test_a_trainer_state_with_a_byte_order_mark_is_read(tmp_path):
    state = json.dumps(trainer_state(curve(300, None), 300))
    (tmp_path / "trainer_state.json").write_text("\ufeff" + state, encoding="utf-8")
    assert len(read(str(tmp_path / "trainer_state.json")).get("loss")) == 30

