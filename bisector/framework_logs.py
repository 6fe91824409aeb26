"""Logs that frameworks and scripts write for themselves, read for ``bisector fingerprint`` (``metrics_log.read``
dispatches here): TensorBoard event files, a Hugging Face ``trainer_state.json``, Lightning's newest
``metrics.csv``, and a script's stdout saved to a file. The framework files are found and read by the command
runner's own followers, and stdout by its ``LineParser`` and ``StepAxis``: a finished run is read as a live
trial's was, with one reader for each format.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from .errors import MetricsLogError
from .metrics_log import EXPECTED, MetricsLog, _Builder, _read_csv, _step, _text


def read_directory(p: Path, source: str) -> MetricsLog:
    """A directory a framework logs into: a Hugging Face output directory (its ``trainer_state.json`` or the
    highest-numbered ``checkpoint-N/``'s, whichever is further along: the whole ``log_history``), else every
    TensorBoard event file below it, else the newest ``metrics.csv`` below it (Lightning's CSVLogger). The
    Trainer's directory often holds TensorBoard files too (``runs/``); its state has the same points under the
    names its users know (``loss``, ``eval_loss``)."""
    states = [p / "trainer_state.json", *p.glob("checkpoint-*/trainer_state.json")]
    if any(f.is_file() for f in states):
        return read_records("HfTrainerStateFollower", p, source, "an empty or unreadable log_history")
    if any("tfevents" in f for _, _, files in os.walk(p) for f in files):
        return read_records("TensorBoardFollower", p, source, "no scalars in its event files")
    from runners.command.follow_files import newest_file

    found = newest_file(p, "metrics.csv")  # Lightning's CSVLogger: the newest lightning_logs/version_N/
    if found is not None:
        name = str(p / found.relative_to(p))
        return _read_csv(_text(found, name), name)
    raise MetricsLogError(f"{source}: a directory with no TensorBoard event files (*tfevents*), trainer_state.json "
                          f"or metrics.csv below it ({EXPECTED})")


# keys of the Trainer's end-of-training summary (one entry, at the last step): ``train_loss`` there is the mean
# over the whole run, not a curve, and would be the default metric
_SUMMARY = "train_runtime"


def read_records(kind: str, path: Path, source: str, empty: str) -> MetricsLog:
    """The records (``{"step": s, name: value}``) of a framework's files, read once by the command runner's own
    follower ``kind`` (``runners/command/follow_frameworks.py``: one reader for a live run and a finished one), in
    step order, later ones winning at a repeated step."""
    from runners.command import follow_frameworks

    records = getattr(follow_frameworks, kind)(path).close()
    b = _Builder(source)
    rows = [r for r in records if "step" in r and _SUMMARY not in r]
    for i, rec in enumerate(sorted(rows, key=lambda r: r["step"]), 1):
        b.row(_step(rec["step"], source, i, "record"), [(k, float(v)) for k, v in rec.items() if k != "step"], i)
    return b.done(empty)


def read_text_log(text: str, source: str, regex: str | None, scale: float = 1.0) -> MetricsLog:
    """A script's stdout saved to a file, parsed line by line as the command runner parses it live
    (``LineParser``: ``key: value`` / ``key=value`` pairs, or ``regex``'s named groups). The step is a ``step``
    key or group, or ``epoch`` and ``batch`` groups (with ``per_epoch``, the batches in an epoch, on the
    line: mnist's ``Train Epoch: 1 [640/8000 (8%)]``); a line with metrics but no step (an eval line
    printed after a training step) belongs to the last step. Lines before any step are skipped: with no
    step on any line there is no axis to judge on, and the error says how to give one."""
    from runners.command.follow import LineParser, StepAxis

    try:
        parser = LineParser(regex)
    except ValueError as exc:
        raise MetricsLogError(f"{source}: --regex: {exc}") from None
    groups = set(parser.regex.groupindex) if parser.regex is not None else set()
    paced = {"epoch", "batch"} <= groups
    if paced and "per_epoch" not in groups:
        raise MetricsLogError(f"{source}: --regex has `epoch` and `batch` groups but no `per_epoch` group (the "
                              "batches, or samples, in an epoch) to count steps across epochs")
    if not (math.isfinite(scale) and scale > 0):
        raise MetricsLogError(f"{source}: --scale must be a finite number > 0, got {scale!r}")
    keys = {"epoch_key": "epoch", "batch_key": "batch", "per_epoch_key": "per_epoch"} if paced else {}
    axis = StepAxis(**keys, scale=scale)
    b, seen = _Builder(source), {}
    for line, raw in enumerate(text.split("\n"), 1):
        rec = parser.parse(raw)
        if not rec:
            continue
        seen.update(dict.fromkeys(rec))
        own = "step" in rec or (paced and "epoch" in rec and "batch" in rec)
        if not own and axis.last is None:
            continue  # (metrics before any step: no place on the axis)
        if own and set(rec) <= axis.axis_keys:
            axis({**rec, "": 0.0})  # a step alone on its line: the lines after it belong to it
            continue
        out = axis(rec)
        if out is not None:
            step = out.pop("step")
            items = [(k, v) for k, v in out.items() if k not in axis.axis_keys]
            if not own:  # an eval or summary line adds what its step lacks; it never overwrites the step's own
                items = [(k, v) for k, v in items if not ((pts := b.series.get(k)) and pts[-1][0] == step)]
            b.row(step, items, line)
    if not b.rows:
        what = f"no line holds a step (keys seen: {', '.join(list(seen)[:12])})" if seen else "no line holds a metric"
        raise MetricsLogError(f"{source}: {what}; give a `step: N` or `step=N` pair, or --regex with a (?P<step>...) "
                              "group, or (?P<epoch>...), (?P<batch>...) and (?P<per_epoch>...) groups")
    return b.done("no metrics")
