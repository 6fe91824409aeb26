"""Follow a user's training script's metrics live, as the script logs them.

The command runner cannot change how a user's script logs, so it meets the
script where it writes: its stdout/stderr lines (``LineParser``) or a metrics
file it keeps growing or rewriting (``follow(kind, path)``, readers in
``follow_files.py``). Every source yields plain records of numbers in arrival
order; ``StepAxis`` gives each record a global integer step (scripts count in
steps, in epoch+batch, in samples, or not at all) and ``Merger`` folds records
of one step (train and eval rows, one TensorBoard tag per event) into one and
keeps steps strictly increasing, so the streaming detector downstream sees one
point per step, as soon as the step is complete.

Stdlib only: this runs next to the user's script, and ``tensorboard`` is
imported only when event files are followed. Nothing read is ever evaluated.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Protocol

from .follow_files import CsvFollower, JsonlFollower, Record, to_float
from .follow_frameworks import HfTrainerStateFollower, TensorBoardFollower

__all__ = ["KINDS", "Follower", "LineParser", "Merger", "Record", "StepAxis", "follow"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_URL = re.compile(r"(?<![\w+.-])[A-Za-z][\w+.-]{0,30}://\S*")  # bounded scheme: linear on a long word
_THOUSANDS = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?"
_VALUE = _THOUSANDS + r"|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|(?i:nan|inf(?:inity)?)"
_PAIR = re.compile(
    r"(?<![\w.'\"/-])"  # starts a word: not inside a word, path, number or quoted string
    r"(?:(?P<qual>[A-Za-z]+) (?=['\"]?[A-Za-z_]))?"  # one qualifying word: "Train Loss: 0.5" -> train_loss
    r"(?P<q>['\"]?)(?P<key>[A-Za-z_][\w./-]*?)(?P=q)(?P<sep>\s*[:=]\s*)"
    r"(?P<vq>['\"]?)(?P<value>[-+]?(?:" + _VALUE + r"))%?(?:/(?P<total>\d+))?(?P=vq)"
    r"(?![\w%]|\.\d)"  # the whole token is the number: "10.2GiB", "3.5.1" are not values
)


def _number(text: str) -> float | None:
    text = text.strip().strip("'\"").removesuffix("%")
    if re.fullmatch(r"[-+]?" + _THOUSANDS, text):
        text = text.replace(",", "")
    return to_float(text)


def _clean(line: str) -> str:
    """The text a terminal would show last: colour codes removed, the last ``\\r``-separated segment (tqdm)."""
    line = _ANSI.sub("", line).rstrip("\r\n")
    segments = [s for s in line.split("\r") if s.strip()]
    return segments[-1] if segments else ""


class LineParser:
    """One stdout/stderr line -> a record of numbers, or None when the line holds none.

    With ``regex`` (searched anywhere in the line): each named group whose text
    is a number becomes a key named as the group (``%``, quotes and thousands
    commas tolerated); groups that did not take part or hold no number are
    skipped; no match, or a match with no number, is None.

    Without: every ``key: value`` / ``key=value`` pair in the line (Guild
    style; keys may be quoted, so Hugging Face's ``{'loss': 2.31, ...}`` lines
    parse). Keys are lower-cased. A key preceded by one word and a space takes
    that word as a qualifier (``Train Loss: 0.5`` -> ``train_loss``, ``Test
    set: Average loss: 0.05`` -> ``average_loss``), unless the word is an
    all-caps log level (``INFO loss: 1`` -> ``loss``). Values: numbers, ``nan``
    and ``inf`` (kept: a nan is what the detector looks for), ``91.2%`` ->
    91.2, ``1,234`` -> 1234, and ``batch: 1/100`` -> ``batch=1, batch_total=100``.
    A value with a unit glued on (``10.2GiB``) is not a number. Text after the
    last ``\\r`` (progress bars) and without colour codes is parsed; URLs are
    ignored, and so is ``name:12`` right after a colon (``module:func:12``).
    Space-separated ``epoch 3`` is not a pair: use a regex for such lines.
    """

    def __init__(self, regex: str | None = None):
        self.regex = None
        if regex is not None:
            try:
                self.regex = re.compile(regex)
            except re.error as exc:
                raise ValueError(f"metric regex {regex!r} does not compile: {exc}") from None
            if not self.regex.groupindex:
                raise ValueError(
                    f"metric regex {regex!r} has no named groups: name each metric, e.g. r'Loss: (?P<loss>\\S+)'"
                )

    def parse(self, line: str) -> Record | None:
        text = _clean(line)
        rec: Record = {}
        if self.regex is not None:
            m = self.regex.search(text)
            for name, group in (m.groupdict() if m else {}).items():
                value = None if group is None else _number(group)
                if value is not None:
                    rec[name] = value
            return rec or None
        text = _URL.sub(" ", text)
        for m in _PAIR.finditer(text):
            if text[m.start() - 1 : m.start()] == ":" and not m.group("sep")[-1].isspace():
                continue  # "module:func:12", "host:8080": a colon chain, not a metric
            key = m.group("key").lower()
            qual = m.group("qual")
            if qual and not (qual.isupper() and len(qual) > 1):
                key = f"{qual.lower()}_{key}"
            value = _number(m.group("value"))
            if value is None:
                continue
            rec[key] = value
            if m.group("total") is not None:
                rec[key + "_total"] = float(m.group("total"))
        return rec or None


class Follower(Protocol):
    """A metrics file followed while its writer runs."""

    skipped: int  # lines, rows or entries that could not be read (malformed); they never raise

    def poll(self) -> list[Record]:
        """Records that became complete since the last poll, in file order; [] while the file does not exist."""
        ...

    def close(self) -> list[Record]:
        """The final drain once the writer ended: the rest, including a last line without its newline."""
        ...


KINDS = ("jsonl", "csv", "tensorboard", "hf_trainer_state", "lightning_csv")


def follow(kind: str, path: str | Path) -> Follower:
    """A follower for the metrics ``kind`` writes at ``path`` (a file, or for some kinds a directory).

    - ``jsonl``: one JSON object per line.
    - ``csv``: a CSV file with a header row.
    - ``tensorboard``: a log directory (event files below it, appearing any time) or one event file.
    - ``hf_trainer_state``: ``trainer_state.json``, or the Trainer's output dir (``checkpoint-*/``).
    - ``lightning_csv``: ``metrics.csv``, or a dir searched for the newest ``metrics.csv``.
    """
    if kind == "jsonl":
        return JsonlFollower(path)
    if kind == "csv":
        return CsvFollower(path)
    if kind == "lightning_csv":
        return CsvFollower(path, find="metrics.csv")
    if kind == "tensorboard":
        return TensorBoardFollower(path)
    if kind == "hf_trainer_state":
        return HfTrainerStateFollower(path)
    raise ValueError(f"unknown metrics kind {kind!r}: one of {', '.join(KINDS)}")


class StepAxis:
    """Gives every record a global integer ``step``, as records arrive.

    The raw step of a record is, in order of preference:

    1. its ``step_key`` value;
    2. with ``epoch_key`` and ``batch_key`` both in the record:
       ``(epoch - first epoch seen) * per_epoch + batch``, where per_epoch is
       the record's ``per_epoch_key`` value (e.g. the 8000 of ``[640/8000]``;
       the last one seen when a record lacks it) or the fixed ``per_epoch``;
       counting from the first epoch seen makes 0- and 1-based epochs alike;
    3. with no axis in the record, after some record had one: the last step
       (an eval line printed after a training step belongs to that step);
    4. with no axis ever seen: the record's index among such records
       (1, 2, 3, ...) times ``every``.

    Cases 1, 2 and 4 then give ``step = round(raw * scale)`` (``scale``
    converts a progress unit, e.g. ``1/batch_size`` for a count of samples);
    case 3 reuses the last step as it was given. The record returned is a copy
    with ``step`` set (and
    ``step_key`` removed when it is another name). A record with no key besides
    the axis keys carries no metric: it is dropped (None) and counted in
    ``dropped``, as is a record whose axis is not a finite number.
    """

    def __init__(
        self,
        step_key: str = "step",
        epoch_key: str | None = None,
        batch_key: str | None = None,
        per_epoch: float | None = None,
        per_epoch_key: str | None = None,
        every: int = 1,
        scale: float = 1.0,
    ):
        if (epoch_key is None) != (batch_key is None):
            raise ValueError("epoch_key and batch_key go together")
        if epoch_key is not None and per_epoch is None and per_epoch_key is None:
            raise ValueError("epoch_key needs per_epoch (batches per epoch) or per_epoch_key")
        if per_epoch is not None and not per_epoch > 0:
            raise ValueError(f"per_epoch must be > 0, got {per_epoch!r}")
        if not (isinstance(every, int) and every >= 1):
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
        self.step_key, self.epoch_key, self.batch_key = step_key, epoch_key, batch_key
        self.per_epoch_key, self.every, self.scale = per_epoch_key, every, scale
        self.axis_keys = {k for k in (step_key, epoch_key, batch_key, per_epoch_key) if k}
        self.dropped = 0
        self.last: int | None = None  # the last step given from an axis
        self._per = per_epoch
        self._first_epoch: float | None = None
        self._count = 0

    def __call__(self, rec: Record) -> Record | None:
        if not any(k not in self.axis_keys for k in rec):
            self.dropped += 1
            return None
        raw = self._raw(rec)
        if raw is not None:
            if not math.isfinite(raw * self.scale):
                self.dropped += 1
                return None
            step = self.last = round(raw * self.scale)
        elif self.last is not None:
            step = self.last
        else:
            self._count += 1
            step = round(self._count * self.every * self.scale)
        out = {k: v for k, v in rec.items() if k != self.step_key}
        out["step"] = step
        return out

    def _raw(self, rec: Record) -> float | None:
        if self.step_key in rec:
            return rec[self.step_key]
        if self.epoch_key in rec and self.batch_key in rec:
            per = rec.get(self.per_epoch_key) if self.per_epoch_key else None
            if per is not None and math.isfinite(per) and per > 0:
                self._per = per
            if self._per is None:
                return None
            epoch = rec[self.epoch_key]
            if self._first_epoch is None and math.isfinite(epoch):
                self._first_epoch = epoch
            return (epoch - (self._first_epoch or 0.0)) * self._per + rec[self.batch_key]
        return None


class Merger:
    """Records in arrival order -> one record per step, steps strictly increasing.

    Records of the same step merge (later values win per key). A step is
    released when a record with a greater step arrives, or at ``flush()``. A
    record whose step is lower than the one being merged, or not above the last
    released step (a crash-resume that logs steps again), is dropped until the
    log passes them, and counted in ``dropped``.
    """

    def __init__(self, key: str = "step"):
        self.key = key
        self.dropped = 0
        self.last: int | None = None  # the last step released
        self._pending: Record | None = None

    def add(self, rec: Record) -> list[Record]:
        """The records that ``rec`` completes (at most one)."""
        step = rec[self.key]
        pending = self._pending
        if pending is not None and step == pending[self.key]:
            pending.update(rec)
            return []
        if (pending is not None and step < pending[self.key]) or (self.last is not None and step <= self.last):
            self.dropped += 1
            return []
        out = self.flush()
        self._pending = dict(rec)
        return out

    def flush(self) -> list[Record]:
        """The step being merged, released (the source ended)."""
        if self._pending is None:
            return []
        out, self._pending = self._pending, None
        self.last = out[self.key]
        return [out]
