"""Read a metrics log a run already wrote, for ``bisector fingerprint``.

People have logs before they have recipes: a JSONL or CSV file from their own
training script, the files their framework wrote or its saved stdout
(``framework_logs.py``), or an MLflow run. All become one ``MetricsLog`` of
per-metric ``(step, value)`` series, sorted by step with one value per step.
nan and inf are kept as floats because a nan is what the detector looks for.

A CSV interleaves train and eval rows with blank cells, so a blank cell means
"no value at this step" and rows with the same step merge. Steps that go back
to a step already seen mean the run resumed from a checkpoint: the earlier
segment's values from that step on are dropped, so the later rows win. Every
bad input is one ``MetricsLogError`` naming the file (and line where there is one).
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import MetricsLogError

Series = list[tuple[int, float]]


@dataclass
class MetricsLog:
    source: str
    series: dict[str, Series]

    def names(self) -> list[str]:
        return sorted(self.series)

    def default_metric(self) -> str:
        for name in ("train_loss", "loss"):
            if name in self.series:
                return name
        lossy = [n for n in self.names() if "loss" in n.lower()]
        if len(lossy) == 1:
            return lossy[0]
        train = [n for n in lossy if re.search(r"(?<![a-z])train(?![a-z])", n.lower())]
        if len(train) == 1:  # TensorBoard's ``train/loss`` beside ``val/loss``
            return train[0]
        if lossy:
            raise MetricsLogError(f"{self.source}: several loss metrics ({', '.join(lossy)}), no `train_loss` or "
                                  "`loss`, and not one alone named train; choose one with --metric")
        if len(self.series) == 1:
            return next(iter(self.series))
        raise MetricsLogError(f"{self.source}: no loss metric to default to; choose one of "
                              f"{', '.join(self.names()) or '(none)'} with --metric")

    def get(self, name: str) -> Series:
        if name in self.series:
            return self.series[name]
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise MetricsLogError(f"{self.source}: no metric {name!r}{hint} (metrics present: "
                              f"{', '.join(self.names()) or '(none)'})")


class _Builder:
    """Series built row by row in O(1) per value (amortized over resumes)."""

    def __init__(self, source: str):
        self.source = source
        self.series: dict[str, Series] = {}
        self.seen: set[int] = set()
        self.last: int | None = None
        self.rows = 0

    def row(self, step: int, items: list[tuple[str, float]], line: int) -> None:
        self.rows += 1
        last, series = self.last, self.series
        if last is not None and step < last:
            if step not in self.seen:
                raise MetricsLogError(
                    f"{self.source}: line {line}: step {step} comes after step {last} and was never logged "
                    "before; steps must increase (going back to a step already logged is read as a resume "
                    "from a checkpoint)")
            if any((pts := series.get(n)) and pts[-1][0] >= step for n, _ in items):
                # a resume: the earlier segment from this step on is superseded
                for pts in series.values():
                    while pts and pts[-1][0] >= step:
                        pts.pop()
                self.last = step
            # else a late row filling metrics that have no value at or after this step: merge it
        else:
            self.seen.add(step)
            self.last = step
        for name, value in items:
            pts = series.get(name)
            if not pts:  # (a resume back to the first step empties a series)
                series[name] = [(step, value)]
            elif pts[-1][0] == step:
                pts[-1] = (step, value)
            else:
                pts.append((step, value))

    def done(self, what: str) -> MetricsLog:
        if not self.rows:
            raise MetricsLogError(f"{self.source}: no data rows ({what})")
        series = {n: pts for n, pts in self.series.items() if pts}
        if not series:
            raise MetricsLogError(f"{self.source}: {self.rows} rows but no numeric metric values besides `step`")
        return MetricsLog(self.source, series)


def _step(raw: object, source: str, line: int, unit: str = "line") -> int:
    value: object = raw
    if isinstance(raw, str):
        try:
            value = float(raw) if raw.strip() else None
        except ValueError:
            value = raw
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value):
        raise MetricsLogError(f"{source}: {unit} {line}: step must be an integer, got {raw!r}")
    return int(value)


def _jsonl_value(raw: object) -> float | None:
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            return None
    return None


def _read_jsonl(text: str, source: str) -> MetricsLog:
    b = _Builder(source)
    for line, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise MetricsLogError(f"{source}: line {line}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise MetricsLogError(f"{source}: line {line}: expected a JSON object per line, got {type(obj).__name__}")
        if "step" not in obj:
            raise MetricsLogError(f"{source}: line {line}: no `step` key (keys seen: {', '.join(obj) or '(none)'})")
        step = _step(obj["step"], source, line)
        items = [(k, v) for k, raw_v in obj.items() if k != "step" and (v := _jsonl_value(raw_v)) is not None]
        b.row(step, items, line)
    return b.done("only blank lines")


def _blank(row: list[str]) -> bool:
    return not row or (len(row) == 1 and not row[0].strip())


def _rows(reader, source: str):
    """The reader's rows; a row csv refuses (a field over its size limit) is bad input, not a traceback."""
    try:
        yield from reader
    except csv.Error as exc:
        raise MetricsLogError(f"{source}: line {reader.line_num}: not a CSV row ({exc})") from None


def _read_csv(text: str, source: str) -> MetricsLog:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next((r for r in _rows(reader, source) if not _blank(r)), None)
    if header is None:
        raise MetricsLogError(f"{source}: no data rows (empty file)")
    names = [h.strip() for h in header]
    lowered = [n.lower() for n in names]
    if "step" not in lowered:
        raise MetricsLogError(f"{source}: no `step` column (columns seen: {', '.join(map(repr, names))})")
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if dupes:
        raise MetricsLogError(f"{source}: column {dupes[0]!r} appears more than once in the header")
    at = lowered.index("step")
    columns = [(i, n) for i, n in enumerate(names) if i != at and n]
    width = len(names)
    b = _Builder(source)
    for row in _rows(reader, source):
        if _blank(row):
            continue
        line = reader.line_num
        if len(row) > width:
            raise MetricsLogError(f"{source}: line {line}: {len(row)} fields but the header has {width}")
        if len(row) < width:
            row = row + [""] * (width - len(row))
        cell = row[at]
        if not cell.strip():
            raise MetricsLogError(f"{source}: line {line}: blank `step` cell")
        step = _step(cell, source, line)
        items = []
        for i, name in columns:
            cell = row[i]
            if not cell or cell.isspace():
                continue
            try:
                items.append((name, float(cell)))
            except ValueError:
                raise MetricsLogError(f"{source}: line {line}, column {name!r}: {cell!r} is not a number "
                                      "(a blank cell means no value at this step)") from None
        b.row(step, items, line)
    return b.done("only a header")


def _read_mlflow(run_id: str, tracking_uri: str | None) -> MetricsLog:
    source = f"mlflow:{run_id}"
    if not run_id.strip():
        raise MetricsLogError(f"{source}: no run id after `mlflow:`")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = tracking_uri or mlflow.get_tracking_uri()
    try:
        client = MlflowClient(tracking_uri=uri)
        run = client.get_run(run_id)
        histories = {key: client.get_metric_history(run_id, key) for key in run.data.metrics}
    except MlflowException as exc:
        raise MetricsLogError(f"{source}: cannot read the run from tracking URI {uri}: {exc.message}") from None
    series = {}
    for key, history in histories.items():
        by_step = {}  # later timestamps win at a repeated step
        for m in sorted(history, key=lambda m: (m.step, m.timestamp)):
            by_step[int(m.step)] = float(m.value)
        if by_step:
            series[key] = list(by_step.items())
    if not series:
        raise MetricsLogError(f"{source}: the run has no logged metrics (tracking URI {uri})")
    return MetricsLog(source, series)


EXPECTED = ("expected a JSONL or CSV metrics log, a TensorBoard event file or log directory, a Hugging Face "
            "trainer_state.json or output directory, a Lightning log directory (metrics.csv), or mlflow:RUN_ID")


TEXT_LOGS = (".log", ".txt", ".out", ".err")


def read(source: str, tracking_uri: str | None = None, regex: str | None = None, scale: float = 1.0) -> MetricsLog:
    """The log at ``source``; ``regex`` (named groups, one per metric) reads it as a text log (stdout), whose
    step axis ``scale`` converts to optimizer steps (a fractional epoch times the steps in one; samples over
    the batch size)."""
    source = str(source)
    p = Path(source)
    if (regex is not None or scale != 1.0) and (source.startswith("mlflow:") or p.is_dir() or "tfevents" in p.name):
        raise MetricsLogError(f"{source}: --regex and --scale read a text log (a script's saved stdout), not an "
                              "MLflow run, a directory or an event file, whose steps are their own")
    if source.startswith("mlflow:"):
        return _read_mlflow(source[len("mlflow:"):], tracking_uri)
    from .framework_logs import read_directory, read_records, read_text_log

    if p.is_dir():
        return read_directory(p, source)
    if not p.is_file():
        raise MetricsLogError(f"{source}: {'no such file' if not p.exists() else 'not a regular file'} ({EXPECTED})")
    if "tfevents" in p.name:
        return read_records("TensorBoardFollower", p, source, "no scalars in the event file")
    as_text = regex is not None or p.suffix.lower() in TEXT_LOGS
    text = _text(p, source, lenient=as_text)
    stripped = text.lstrip()
    if not stripped:
        raise MetricsLogError(f"{source}: no data rows (empty file)")
    if as_text and (regex is not None or not _table(stripped)):
        try:
            return read_text_log(text, source, regex, scale)
        except MetricsLogError:
            cells = _header(stripped)
            if regex is not None or len(cells) < 2 or any(ch.isdigit() for c in cells for ch in c):
                raise
            return _read_csv(text, source)  # a header row: a table after all (its error: no `step` column, say)
    if scale != 1.0:
        raise MetricsLogError(f"{source}: --scale reads a text log's step axis; this file is not read as one (a "
                              "CSV, JSONL or trainer_state.json), and its steps are its own")
    if p.suffix.lower() == ".json" and '"log_history"' in text:
        return read_records("HfTrainerStateFollower", p, source, "an empty or unreadable log_history")
    if p.suffix.lower() in (".jsonl", ".ndjson") or stripped[0] == "{":
        return _read_jsonl(text, source)
    return _read_csv(text, source)


def _table(text: str) -> bool:
    """Whether a ``.txt``/``.log`` file is a JSONL or CSV log after all (a first line that is an object, or a
    header with a ``step`` column): read as a table, as before text logs were read."""
    first = text.split("\n", 1)[0]
    if first.startswith("{"):  # (a printed config or Python dict is no JSONL row)
        try:
            return "step" in json.loads(first)
        except (ValueError, TypeError, RecursionError):
            return False
    return "step" in {c.strip().lower() for c in _header(first)}


def _text(p: Path, source: str, lenient: bool = False) -> str:
    """The file's text; ``lenient`` (a text log: one stray byte in a terminal's output) replaces what is not UTF-8."""
    try:
        return p.read_text(encoding="utf-8-sig", errors="replace" if lenient else "strict")
    except UnicodeDecodeError:
        raise MetricsLogError(f"{source}: not a text file ({EXPECTED})") from None


def _header(text: str) -> list[str]:
    try:
        return next(csv.reader([text.split("\n", 1)[0]]), [])
    except csv.Error:
        return []
