"""The command runner's metric following: stdout lines, growing/rewritten metrics files, step axis, merging.

Every follower is fed by writing its file in pieces between polls, as a
training script would, including half-written lines, late headers and whole-file
rewrites; two tests race a real writer process against the reader.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runners.command.follow import LineParser, Merger, StepAxis, follow

REPO = Path(__file__).resolve().parent.parent

MNIST = r"Train Epoch: (?P<epoch>\d+) \[(?P<batch>\d+)/(?P<total>\d+) \(\d+%\)\]\s+Loss: (?P<loss>\S+)"


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


# ---------------------------------------------------------------- LineParser


def test_regex_parses_pytorch_examples_mnist_lines():
    parser = LineParser(MNIST)
    assert parser.parse("Train Epoch: 1 [640/60000 (1%)]\tLoss: 2.301234\n") == {
        "epoch": 1.0,
        "batch": 640.0,
        "total": 60000.0,
        "loss": 2.301234,
    }
    assert parser.parse("Train Epoch: 3 [0/60000 (0%)]\tLoss: nan") == {
        "epoch": 3.0,
        "batch": 0.0,
        "total": 60000.0,
        "loss": pytest.approx(math.nan, nan_ok=True),
    }
    assert parser.parse("Test set: Average loss: 0.0520, Accuracy: 9839/10000 (98%)") is None


def test_regex_skips_groups_that_are_absent_or_not_numbers():
    parser = LineParser(r"(?P<phase>train|eval) loss (?P<loss>\S+)(?: acc (?P<acc>[\d.]+%))?")
    assert parser.parse("step 5: eval loss 1.25 acc 91.5%") == {"loss": 1.25, "acc": 91.5}
    assert parser.parse("train loss 0.5") == {"loss": 0.5}
    assert parser.parse("train loss oops") is None  # matched, but no number in it


def test_regex_without_named_groups_or_invalid_is_a_clear_error():
    with pytest.raises(ValueError, match="no named groups"):
        LineParser(r"loss: (\S+)")
    with pytest.raises(ValueError, match="does not compile"):
        LineParser(r"loss: (?P<loss>\S+")


def test_pairs_guild_style_anywhere_in_the_line():
    parser = LineParser()
    assert parser.parse("epoch 3 | step=120 loss: 2.31 lr=1e-3 acc: 91.2%") == {
        "step": 120.0,
        "loss": 2.31,
        "lr": 0.001,
        "acc": 91.2,
    }
    assert parser.parse("Loss: 2.30") == {"loss": 2.30}  # keys are lower-cased
    assert parser.parse("batch: 1/100 loss=-0.5") == {"batch": 1.0, "batch_total": 100.0, "loss": -0.5}
    assert parser.parse("Test set: Average loss: 0.0520, Accuracy: 9839/10000 (98%)") == {
        "average_loss": 0.052,
        "accuracy": 9839.0,
        "accuracy_total": 10000.0,
    }
    assert parser.parse("Train Loss: 0.5 | Val Loss: 0.6 | INFO lr: 0.1") == {
        "train_loss": 0.5,
        "val_loss": 0.6,
        "lr": 0.1,
    }
    assert parser.parse("Starting training with 4 GPUs") is None
    assert parser.parse("") is None


def test_pairs_hugging_face_dict_lines_with_nan():
    parser = LineParser()
    line = "{'loss': 2.31, 'grad_norm': 1.2, 'learning_rate': 5e-05, 'epoch': 0.1}"
    assert parser.parse(line) == {"loss": 2.31, "grad_norm": 1.2, "learning_rate": 5e-05, "epoch": 0.1}
    rec = parser.parse("{'loss': nan, 'grad_norm': inf, 'learning_rate': '5e-05', 'epoch': -inf, 'x': True}")
    assert math.isnan(rec.pop("loss"))
    assert rec == {"grad_norm": math.inf, "learning_rate": 5e-05, "epoch": -math.inf}
    assert parser.parse('{"eval_loss": NaN, "eval_runtime": 1.5}')["eval_runtime"] == 1.5


def test_pairs_ignore_urls_units_colon_chains_and_take_the_last_progress_segment():
    parser = LineParser()
    assert parser.parse("Logging to http://localhost:6006/?run=a&step=3 done, loss=3") == {"loss": 3.0}
    assert parser.parse("2024-01-01 12:00:00 | INFO | __main__:train:42 - loss: 2.3") == {"loss": 2.3}
    assert parser.parse("INFO:__main__:loss: 2.3") == {"loss": 2.3}
    assert parser.parse("memory: 10.2GiB  tps: 1,234  mfu: 3.5%  version: 3.5.1") == {"tps": 1234.0, "mfu": 3.5}
    bar = "10%|#  | 10/100 [00:01, loss=2.5]\r20%|## | 20/100 [00:02, loss=2.4]\r"
    assert parser.parse(bar) == {"loss": 2.4}
    assert parser.parse("\x1b[32mtrain_loss\x1b[0m=\x1b[1m0.25\x1b[0m") == {"train_loss": 0.25}


# ---------------------------------------------------------------- jsonl


def test_jsonl_hands_out_complete_lines_as_they_are_written(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    f = follow("jsonl", path)
    assert f.poll() == []  # the script has not created it yet
    append(path, '{"step": 1, "loss": 2.5}\n{"step": 2, "lo')
    assert f.poll() == [{"step": 1.0, "loss": 2.5}]
    assert f.poll() == []
    append(path, 'ss": 2.4}\n{"step": 3, "loss": 2.3}\n')
    assert f.poll() == [{"step": 2.0, "loss": 2.4}, {"step": 3.0, "loss": 2.3}]
    append(path, '{"step": 4, "loss": 2.2}')  # the process dies before its newline
    assert f.poll() == []
    assert f.close() == [{"step": 4.0, "loss": 2.2}]
    assert f.skipped == 0


def test_jsonl_keeps_numbers_and_skips_the_rest(tmp_path: Path):
    path = tmp_path / "m.jsonl"
    path.write_text(
        '{"step": 1, "loss": "2.5", "lr": 1e-3, "ok": true, "note": "warmup", "n": null, "d": {"a": 1}, "l": [1]}\n'
        '{"step": 2, "loss": NaN, "gn": Infinity, "neg": -Infinity}\n'
        "not json at all\n"
        "[1, 2]\n"
        "\n"
        '{"step": 3, "loss": 2.0\n'
        '{"step": 4, "loss": 1.9}\n'
    )
    f = follow("jsonl", path)
    recs = f.poll()
    assert recs[0] == {"step": 1.0, "loss": 2.5, "lr": 0.001}
    assert math.isnan(recs[1]["loss"]) and recs[1]["gn"] == math.inf and recs[1]["neg"] == -math.inf
    assert recs[2:] == [{"step": 4.0, "loss": 1.9}]
    assert f.skipped == 3  # the text line, the list, the unterminated object


def test_jsonl_survives_truncation_and_replacement(tmp_path: Path):
    path = tmp_path / "m.jsonl"
    lines = [json.dumps({"step": i, "loss": 3.0 - i / 10}) + "\n" for i in range(1, 7)]
    path.write_text("".join(lines[:3]))
    f = follow("jsonl", path)
    assert [r["step"] for r in f.poll()] == [1, 2, 3]
    # replaced by rename with the same history plus more (an atomic rewrite): only the new lines
    tmp = tmp_path / "m.tmp"
    tmp.write_text("".join(lines[:5]))
    os.replace(tmp, path)
    assert [r["step"] for r in f.poll()] == [4, 5]
    # truncated in place and caught half-rewritten: nothing until it is past what was read
    path.write_text("".join(lines[:2]))
    assert f.poll() == []
    path.write_text("".join(lines))
    assert [r["step"] for r in f.poll()] == [6]
    # rewritten in place to the same size with other content from the first byte: read whole again
    path.write_text("".join(lines).replace('"step": 1,', '"step": 9,'))
    assert f.poll() == []  # six lines, six already handed out
    path.unlink()
    assert f.poll() == []


def _race(tmp_path: Path, writer: str, kind: str, target: str) -> tuple[list[dict], object]:
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(writer))
    f = follow(kind, tmp_path / target)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)])
    got, deadline = [], time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        got += f.poll()  # as fast as it can: the more polls land mid-write, the better the test
    proc.kill()
    proc.wait()
    assert proc.returncode == 0
    return got + f.close(), f


def test_jsonl_race_with_a_writer_process(tmp_path: Path):
    writer = """
        import json, sys
        with open(sys.argv[1] + "/m.jsonl", "w") as f:
            for i in range(1, 401):
                line = json.dumps({"step": i, "loss": 1.0 / i})
                cut = i % len(line)
                f.write(line[:cut]); f.flush()
                f.write(line[cut:] + ("\\n" if i < 400 else "")); f.flush()
    """
    got, f = _race(tmp_path, writer, "jsonl", "m.jsonl")
    assert got == [{"step": float(i), "loss": 1.0 / i} for i in range(1, 401)]
    assert f.skipped == 0


# ---------------------------------------------------------------- csv / Lightning


def test_csv_header_arrives_late_and_train_eval_rows_interleave(tmp_path: Path):
    path = tmp_path / "log.csv"
    path.touch()
    f = follow("csv", path)
    assert f.poll() == []
    append(path, "step,phase,loss,ev")
    assert f.poll() == []  # the header is not complete yet
    append(path, "al_loss\r\n1,train,2.5,\r\n2,train,nan,\r\n2,eval,,2.7\r\n3,tr")
    assert f.poll() == [
        {"step": 1.0, "loss": 2.5},
        {"step": 2.0, "loss": pytest.approx(math.nan, nan_ok=True)},
        {"step": 2.0, "eval_loss": 2.7},
    ]
    append(path, "ain,inf,\r\nstep,phase,loss,eval_loss\r\n4,train,2.0,")
    assert f.poll() == [{"step": 3.0, "loss": math.inf}]  # a repeated header row carries no number
    assert f.close() == [{"step": 4.0, "loss": 2.0}]


def test_csv_rewrite_that_only_changes_the_first_bytes_is_noticed(tmp_path: Path):
    path = tmp_path / "log.csv"
    path.write_text("loss\n" + "2.5\n" * 30)
    f = follow("csv", path)
    assert f.poll() == [{"loss": 2.5}] * 30
    # rewritten in place with a header 4 bytes longer: the rows shift by exactly one row, so the bytes
    # just before the old offset look unchanged; only the file's first bytes show it is another file
    path.write_text("val_loss\n" + "2.5\n" * 30 + "1.5\n")
    assert f.poll() == [{"val_loss": 1.5}]


def test_lightning_csv_rewritten_with_a_new_column(tmp_path: Path):
    logs = tmp_path / "lightning_logs"
    f = follow("lightning_csv", tmp_path)
    assert f.poll() == []
    (logs / "version_0").mkdir(parents=True)
    metrics = logs / "version_0" / "metrics.csv"
    metrics.write_text("epoch,step,train_loss\n0,49,2.5\n0,99,2.25\n")
    assert f.poll() == [
        {"epoch": 0.0, "step": 49.0, "train_loss": 2.5},
        {"epoch": 0.0, "step": 99.0, "train_loss": 2.25},
    ]
    # validation logs a new key: CSVLogger rewrites the whole file with a wider header
    metrics.write_text("epoch,step,train_loss,val_loss\n0,49,2.5,\n0,99,2.25,\n0,99,,2.4\n1,149,2.0,\n")
    assert f.poll() == [
        {"epoch": 0.0, "step": 99.0, "val_loss": 2.4},
        {"epoch": 1.0, "step": 149.0, "train_loss": 2.0},
    ]
    # caught half-written by the next rewrite: nothing, then only what is new
    metrics.write_text("epoch,step,train_loss,val_loss\n0,49,2.5,\n0,9")
    assert f.poll() == []
    metrics.write_text("epoch,step,train_loss,val_loss\n0,49,2.5,\n0,99,2.25,\n0,99,,2.4\n1,149,2.0,\n1,199,1.5,\n")
    assert f.poll() == [{"epoch": 1.0, "step": 199.0, "train_loss": 1.5}]
    # a later version directory (a new logger version) is followed from its start
    (logs / "version_1").mkdir()
    (logs / "version_1" / "metrics.csv").write_text("epoch,step,train_loss\n2,249,1.25\n")
    os.utime(metrics, ns=(1, 1))
    assert f.poll() == [{"epoch": 2.0, "step": 249.0, "train_loss": 1.25}]


def test_lightning_csv_race_with_a_rewriting_writer_process(tmp_path: Path):
    writer = """
        import sys
        path = sys.argv[1] + "/metrics.csv"
        rows, cols = [], ["epoch", "step", "train_loss"]
        for i in range(1, 201):
            rows.append({"epoch": i // 50, "step": i, "train_loss": 1.0 / i})
            if i % 40 == 0:
                if "val_loss" not in cols:
                    cols.append("val_loss")
                rows.append({"epoch": i // 50, "step": i, "val_loss": 2.0 / i})
            text = ",".join(cols) + "\\n" + "".join(",".join(str(r.get(c, "")) for c in cols) + "\\n" for r in rows)
            with open(path, "w") as f:  # rewritten whole, in two writes, like a logger flush
                f.write(text[: len(text) // 2]); f.flush()
                f.write(text[len(text) // 2 :])
    """
    got, f = _race(tmp_path, writer, "lightning_csv", ".")
    want = []
    for i in range(1, 201):
        want.append({"epoch": float(i // 50), "step": float(i), "train_loss": 1.0 / i})
        if i % 40 == 0:
            want.append({"epoch": float(i // 50), "step": float(i), "val_loss": 2.0 / i})
    assert got == want
    assert f.skipped == 0


def test_csv_rewritten_between_the_check_and_the_read_is_read_whole(tmp_path: Path, monkeypatch):
    # CI caught this once in the race above: the file passed the "only appended" check, the writer
    # then rewrote it with a wider header, and the bytes past the old offset (mid-row of the new
    # file) were handed out as rows. Here the rewrite lands there every time.
    from runners.command import follow_files

    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train_loss\n" + "".join(f"0,{i},{1 / i}\n" for i in range(1, 40)))
    f = follow("csv", path)
    assert len(f.poll()) == 39
    wider = "epoch,step,train_loss,val_loss\n" + "".join(f"0,{i},{1 / i},\n" for i in range(1, 41)) + "0,40,,0.05\n"
    check, pending = follow_files._Lines._unchanged, [wider]

    def rewritten_right_after_the_check(self, *args):
        ok = check(self, *args)
        if pending:
            path.write_text(pending.pop())
        return ok

    monkeypatch.setattr(follow_files._Lines, "_unchanged", rewritten_right_after_the_check)
    assert f.poll() == [{"epoch": 0, "step": 40, "train_loss": 0.025}, {"epoch": 0, "step": 40, "val_loss": 0.05}]
    assert f.skipped == 0


# ---------------------------------------------------------------- StepAxis and Merger


def test_step_axis_from_a_step_key_with_scale():
    axis = StepAxis(step_key="iter", scale=0.5)
    assert axis({"iter": 10.0, "loss": 1.0}) == {"loss": 1.0, "step": 5}
    assert axis({"iter": 11.0, "loss": 1.0, "step": 99.0}) == {"loss": 1.0, "step": 6}  # round half even of 5.5
    assert axis({"iter": 12.0}) is None  # no metric: dropped
    assert axis({"iter": math.nan, "loss": 1.0}) is None
    assert axis.dropped == 2
    assert axis({"val_loss": 0.5}) == {"val_loss": 0.5, "step": 6}  # no axis after one was seen: the last step
    assert StepAxis()({"step": 7.0, "loss": 1.0}) == {"step": 7, "loss": 1.0}


@pytest.mark.parametrize("first_epoch", [0, 1])
def test_step_axis_from_epoch_and_batch(first_epoch: int):
    parser = LineParser(MNIST)
    axis = StepAxis(epoch_key="epoch", batch_key="batch", per_epoch_key="total", scale=1 / 64)
    lines = [(0, 0), (0, 640), (0, 59_520), (1, 0), (1, 640), (2, 1280)]
    steps = [
        axis(parser.parse(f"Train Epoch: {first_epoch + e} [{b}/60000 (0%)]\tLoss: 1.0"))["step"] for e, b in lines
    ]
    assert steps == [0, 10, 930, 938, 948, 1895]  # 60000/64 = 937.5: round half to even
    fixed = StepAxis(epoch_key="epoch", batch_key="batch", per_epoch=100)
    assert [fixed({"epoch": e, "batch": b, "loss": 1.0})["step"] for e, b in [(5, 1), (5, 99), (6, 1)]] == [1, 99, 101]


def test_step_axis_counts_records_without_an_axis():
    axis = StepAxis(every=10)
    assert [axis({"loss": x})["step"] for x in (3.0, 2.0, 1.0)] == [10, 20, 30]
    with pytest.raises(ValueError, match="per_epoch"):
        StepAxis(epoch_key="epoch", batch_key="batch")
    with pytest.raises(ValueError, match="together"):
        StepAxis(epoch_key="epoch")
    with pytest.raises(ValueError, match="every"):
        StepAxis(every=0)


def test_merger_folds_a_step_and_releases_it_when_a_later_step_arrives():
    m = Merger()
    assert m.add({"step": 1, "loss": 2.0}) == []
    assert m.add({"step": 1, "val_loss": 2.5, "loss": 1.9}) == []
    assert m.add({"step": 3, "loss": 1.5}) == [{"step": 1, "loss": 1.9, "val_loss": 2.5}]
    assert m.add({"step": 2, "loss": 9.0}) == []  # behind the step being merged
    assert m.flush() == [{"step": 3, "loss": 1.5}]
    assert m.flush() == []
    assert m.dropped == 1


def test_merger_drops_a_resumed_run_until_it_passes_the_last_step():
    m = Merger()
    out = []
    for step in [1, 2, 3, 4, 5, 3, 4, 5, 5, 6, 7]:  # crashed after 5, resumed from the checkpoint at 2
        out += m.add({"step": step, "loss": float(step)})
    out += m.flush()
    assert [r["step"] for r in out] == [1, 2, 3, 4, 5, 6, 7]
    assert m.dropped == 2  # the second 3 and 4; the re-logged 5s merge into the pending 5
    assert m.last == 7


def test_stdout_pipeline_end_to_end():
    parser, axis, merger = LineParser(), StepAxis(), Merger()
    lines = [
        "loading data from /data/x.bin",
        "step: 1 loss: 2.5",
        "step: 2 loss: 2.25",
        "eval_loss: 2.75",
        "step: 3 loss: nan",
    ]
    out = []
    for line in lines:
        rec = parser.parse(line)
        if rec is not None and (rec := axis(rec)) is not None:
            out += merger.add(rec)
    out += merger.flush()
    assert out[:2] == [{"step": 1, "loss": 2.5}, {"step": 2, "loss": 2.25, "eval_loss": 2.75}]
    assert out[2]["step"] == 3 and math.isnan(out[2]["loss"])


def test_unknown_kind_and_lazy_imports():
    with pytest.raises(ValueError, match="lightning_csv"):
        follow("wandb", "x")
    code = (
        "import sys, runners.command.follow as f; f.follow('tensorboard', '.'); "
        "heavy = {m for m in sys.modules if m.split('.')[0] in ('tensorboard', 'bisector', 'torch')}; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
