"""The followers of the files training frameworks write themselves: Hugging Face's
``trainer_state.json`` (rewritten whole at each checkpoint) and TensorBoard event
files, each fed while it grows, as the framework writes it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from runners.command.follow import follow

# ---------------------------------------------------------------- Hugging Face trainer_state.json


def _state(history: list[dict]) -> str:
    steps = [h["step"] for h in history if isinstance(h, dict)]
    return json.dumps({"global_step": max(steps), "log_history": history, "best_metric": None}, indent=2)


TRAIN = [
    {"loss": 2.5 - i / 10, "grad_norm": 1.0, "learning_rate": 5e-05, "epoch": i / 10, "step": i} for i in range(1, 9)
]


def test_hf_trainer_state_follows_the_newest_checkpoint(tmp_path: Path):
    f = follow("hf_trainer_state", tmp_path)
    assert f.poll() == []
    ck2 = tmp_path / "checkpoint-2"
    ck2.mkdir()
    (ck2 / "trainer_state.json").write_text(_state(TRAIN[:2]))
    assert [r["step"] for r in f.poll()] == [1, 2]
    assert f.poll() == []
    ck4 = tmp_path / "checkpoint-4"
    ck4.mkdir()
    (ck4 / "trainer_state.json").write_text(_state([*TRAIN[:4], {"eval_loss": 2.0, "epoch": 0.4, "step": 4}]))
    assert f.poll() == [
        {"loss": 2.2, "grad_norm": 1.0, "learning_rate": 5e-05, "epoch": 0.3, "step": 3.0},
        {"loss": 2.1, "grad_norm": 1.0, "learning_rate": 5e-05, "epoch": 0.4, "step": 4.0},
        {"eval_loss": 2.0, "epoch": 0.4, "step": 4.0},
    ]
    ck10 = tmp_path / "checkpoint-10"  # numerically newest, not lexically
    ck10.mkdir()
    text = _state([*TRAIN[:6], {"loss": math.nan, "step": 10}])
    (ck10 / "trainer_state.json").write_text(text[: len(text) // 2])  # caught mid-write
    assert f.poll() == []
    (ck10 / "trainer_state.json").write_text(text)
    recs = f.poll()
    assert [r["step"] for r in recs] == [5, 6, 10] and math.isnan(recs[-1]["loss"])


def test_hf_trainer_state_file_rewritten_with_more_history(tmp_path: Path):
    path = tmp_path / "trainer_state.json"
    f = follow("hf_trainer_state", path)
    path.write_text(_state(TRAIN[:3]))
    assert [r["step"] for r in f.poll()] == [1, 2, 3]
    path.write_text(_state([*TRAIN[:5], "junk"]))
    assert [r["step"] for r in f.poll()] == [4, 5]
    assert f.skipped == 1
    path.write_text(_state(TRAIN))
    assert [r["loss"] for r in f.close()] == pytest.approx([2.4 - i / 10 for i in range(5, 8)])


# ---------------------------------------------------------------- TensorBoard


@pytest.fixture(scope="module")
def summary_writer():
    pytest.importorskip("tensorboard")
    return pytest.importorskip("torch.utils.tensorboard").SummaryWriter


def test_tensorboard_follows_scalars_as_they_are_flushed(tmp_path: Path, summary_writer):
    import torch

    logdir = tmp_path / "tb"
    f = follow("tensorboard", logdir)
    assert f.poll() == []  # no directory yet
    w = summary_writer(log_dir=str(logdir))
    for step in range(3):
        w.add_scalar("train/loss", 2.0 - step / 4, step)
        w.add_scalar("train/lr", 0.1, step)
    w.add_scalar("val/loss", 1.75, 2, new_style=True)  # a TF2-style tensor-valued scalar
    w.add_text("notes", "not a scalar", 2)
    w.add_histogram("weights", torch.tensor([0.1, 0.2, 0.3]), 2)
    w.flush()
    assert f.poll() == [
        {"step": 0.0, "train/loss": 2.0, "train/lr": pytest.approx(0.1)},
        {"step": 1.0, "train/loss": 1.75, "train/lr": pytest.approx(0.1)},
        {"step": 2.0, "train/loss": 1.5, "train/lr": pytest.approx(0.1), "val/loss": 1.75},
    ]
    assert f.poll() == []
    w.add_scalar("train/loss", float("nan"), 3)
    w.add_scalars("acc", {"train": 0.5, "val": 0.25}, 3)  # one event file per key, in subdirectories
    w.add_scalar("val/loss", 1.25, 4, new_style=True)
    w.flush()
    recs = f.poll()
    assert [r["step"] for r in recs] == [3, 4]
    assert math.isnan(recs[0].pop("train/loss"))
    assert recs == [{"step": 3.0, "acc_train/acc": 0.5, "acc_val/acc": 0.25}, {"step": 4.0, "val/loss": 1.25}]
    w.close()
    assert f.close() == []
    assert f.skipped == 0


def test_tensorboard_reads_every_scalar_and_waits_for_a_partial_record(tmp_path: Path, summary_writer):
    logdir = tmp_path / "tb"
    w = summary_writer(log_dir=str(logdir), max_queue=100_000, flush_secs=3600)
    for step in range(12_000):  # EventAccumulator would keep a sample of 10,000
        w.add_scalar("train/loss", 1.0 / (step + 1), step)
    w.close()
    (events,) = logdir.iterdir()
    recs = follow("tensorboard", logdir).poll()
    assert len(recs) == 12_000
    assert [r["step"] for r in recs] == list(range(12_000))
    assert recs[-1]["train/loss"] == pytest.approx(1 / 12_000)
    # the same bytes arriving in two pieces, the cut inside a record: nothing lost, nothing twice
    data = events.read_bytes()
    copy = tmp_path / "copy" / events.name
    copy.parent.mkdir()
    copy.write_bytes(data[: len(data) // 2 + 7])
    f = follow("tensorboard", copy.parent)
    first = f.poll()
    append_bytes = data[len(data) // 2 + 7 :]
    with open(copy, "ab") as out:
        out.write(append_bytes)
    assert 0 < len(first) < 12_000
    assert first + f.poll() == recs
