"""Followers for the files training scripts log metrics to, read while the script writes them.

A streaming detector needs each point as soon as it lands on disk, so a
follower is polled: ``poll()`` returns the records completed since the last
call, ``close()`` drains the rest once the process ended. The writer never
coordinates with us, so a read must tolerate whatever it is caught doing: a
half-written line (it waits for its newline), a JSON file mid-rewrite (read
again next poll), a file truncated, replaced or rewritten whole (Lightning's
CSVLogger rewrites ``metrics.csv`` when a column appears). What was already
handed out is tracked by position (line index) or content (log-history entry),
so a rewrite neither repeats nor loses a point. Bad input is skipped and counted
in ``skipped``: a malformed line must not end the run we are watching.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any

Record = dict[str, float]

_NUMBER = re.compile(r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|(?i:nan|inf|infinity))")


def to_float(value: Any) -> float | None:
    """A JSON/CSV value as a float, or None: numbers and numeric strings (``nan``, ``inf`` too); never bools."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        return float(value) if abs(value) < 2**1023 else None  # float() of a huge JSON int raises
    if isinstance(value, str):
        text = value.strip()
        if len(text) < 64 and _NUMBER.fullmatch(text):
            return float(text)
    return None


def numeric_items(obj: dict) -> Record:
    """The numeric values of a flat mapping (bools, None, strings that are not numbers and nested values skipped)."""
    return {str(key): number for key, value in obj.items() if (number := to_float(value)) is not None}


class _Lines:
    """The lines of a text file, each complete line handed out once, with its index.

    The fast path reads only what was appended since the last call. Before it
    trusts the offset it checks the file is the same one, no shorter, and still
    holds the same first bytes and the same bytes just before the offset; when
    any check fails the file was replaced or rewritten, so it is read whole and
    lines past the count already handed out are new. A rewrite caught
    half-written (fewer lines than handed out) yields nothing until it catches up.
    """

    HEAD, TAIL = 256, 64

    def __init__(self, path: Path):
        self.path = path
        self.count = 0  # complete lines handed out
        self.first: tuple[int, str] | None = None  # (index, text) of the first non-blank line
        self._offset = 0
        self._id: tuple[int, int] | None = None
        self._head = b""
        self._tail = b""
        self._synced = True

    def read(self, final: bool = False) -> list[tuple[int, str]]:
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                if self._unchanged(f, st):
                    f.seek(self._offset)
                    return self._take(f.read(), final, resync=False)
                f.seek(0)
                data = f.read()
                self._id = (st.st_dev, st.st_ino)
                return self._take(data, final, resync=True)
        except OSError:  # gone for a moment (replaced by rename), or unreadable: try again next poll
            return []

    def _unchanged(self, f, st) -> bool:
        if self._id is None:
            self._id = (st.st_dev, st.st_ino)
            return True
        if not self._synced or self._id != (st.st_dev, st.st_ino) or st.st_size < self._offset:
            return False
        if f.read(len(self._head)) != self._head:
            return False
        f.seek(self._offset - len(self._tail))
        return f.read(len(self._tail)) == self._tail

    def _take(self, data: bytes, final: bool, resync: bool) -> list[tuple[int, str]]:
        end = len(data) if final else data.rfind(b"\n") + 1
        chunk = data[:end]
        raw = chunk.split(b"\n")
        if raw and raw[-1] == b"":
            raw.pop()
        lines = [b.decode("utf-8", "replace").rstrip("\r") for b in raw]
        start = 0 if resync else self.count
        if resync:
            if len(lines) < self.count:
                self._synced = False
                return []
            self._synced, self._offset, self._head, self._tail, self.first = True, 0, b"", b"", None
        out = [(start + i, text) for i, text in enumerate(lines)]
        if self.first is None:
            self.first = next(((i, t) for i, t in out if t.strip()), None)
        if len(self._head) < self.HEAD:
            self._head = (self._head + chunk)[: self.HEAD]
        self._tail = (self._tail + chunk)[-self.TAIL :]
        self._offset += len(chunk)
        new = out[self.count - start :]
        self.count = start + len(lines)
        return new


class JsonlFollower:
    """One JSON object per line (``metrics.jsonl``): each object's numeric values are a record."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.skipped = 0  # malformed or non-object lines
        self._lines = _Lines(self.path)
        self._closed = False

    def poll(self) -> list[Record]:
        return [] if self._closed else self._records(self._lines.read())

    def close(self) -> list[Record]:
        out = [] if self._closed else self._records(self._lines.read(final=True))
        self._closed = True
        return out

    def _records(self, lines: list[tuple[int, str]]) -> list[Record]:
        out = []
        for _, text in lines:
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except ValueError:
                obj = None
            if not isinstance(obj, dict):
                self.skipped += 1
                continue
            rec = numeric_items(obj)
            if rec:
                out.append(rec)
        return out


class CsvFollower:
    """A CSV file with a header row; each row's numeric cells are a record (blank cells are no value).

    With ``find`` and a directory ``path`` it follows the most recently modified
    file of that name below the directory (Lightning's
    ``lightning_logs/version_N/metrics.csv``), switching if a newer one appears.
    The header is re-read whenever the file is rewritten, so columns that appear
    later (Lightning rewrites the file with a wider header) are picked up.
    """

    def __init__(self, path: str | Path, find: str | None = None):
        self.path = Path(path)
        self.find = find
        self.skipped = 0  # rows csv could not parse
        self._lines: _Lines | None = None
        self._header: tuple[str, list[str]] | None = None
        self._closed = False

    def _current(self) -> _Lines | None:
        target = self.path
        if self.find and self.path.is_dir():
            found = newest_file(self.path, self.find)
            if found is None:
                return None
            target = found
        if self._lines is None or self._lines.path != target:
            self._lines = _Lines(target)
        return self._lines

    def poll(self, final: bool = False) -> list[Record]:
        lines = None if self._closed else self._current()
        if lines is None:
            return []
        new = lines.read(final)
        if lines.first is None:
            return []
        header_at, header_text = lines.first
        if self._header is None or self._header[0] != header_text:
            self._header = (header_text, [h.strip() for h in _cells(header_text) or []])
        names = self._header[1]
        out = []
        for index, text in new:
            if index <= header_at or not text.strip():
                continue
            cells = _cells(text)
            if cells is None:
                self.skipped += 1
                continue
            pairs = zip(names, cells, strict=False)  # a short row leaves the rest blank; extra cells have no name
            rec = {name: v for name, cell in pairs if name and (v := to_float(cell)) is not None}
            if rec:
                out.append(rec)
        return out

    def close(self) -> list[Record]:
        out = self.poll(final=True)
        self._closed = True
        return out


def _cells(line: str) -> list[str] | None:
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return None


def newest_file(root: Path, name: str) -> Path | None:
    """The most recently modified file called ``name`` below ``root`` (ties: the greater path), or None."""
    best: tuple[int, str] | None = None
    for dirpath, _, files in os.walk(root):
        if name in files:
            path = os.path.join(dirpath, name)
            try:
                key = (os.stat(path).st_mtime_ns, path)
            except OSError:
                continue
            best = max(best, key) if best else key
    return Path(best[1]) if best else None


class HfTrainerStateFollower:
    """Hugging Face ``trainer_state.json``: new ``log_history`` entries, each a record.

    The Trainer rewrites the file whole at every checkpoint (``checkpoint-N/``)
    and at the end (``output_dir/trainer_state.json``). ``path`` may be that
    file or the output directory; of a directory it reads the highest-numbered
    checkpoint and the top-level file and keeps the state with the most
    progress (``global_step``). An entry is emitted once, identified by its
    whole content, so a resumed run whose history repeats old entries does not
    repeat them. A file caught mid-write fails to parse and is read again on
    the next poll.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.skipped = 0  # log_history entries that are not objects
        self._seen: set[str] = set()
        self._stamps: dict[Path, tuple[int, int, int]] = {}

    def _candidates(self) -> list[Path]:
        if not self.path.is_dir():
            return [self.path]
        try:
            names = os.listdir(self.path)
        except OSError:
            names = []
        steps = [(int(n[11:]), n) for n in names if re.fullmatch(r"checkpoint-\d+", n)]
        newest = [self.path / max(steps)[1] / "trainer_state.json"] if steps else []
        return [self.path / "trainer_state.json", *newest]

    def poll(self) -> list[Record]:
        best: tuple[float, list] | None = None
        for path in self._candidates():
            try:
                st = path.stat()
                stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
                if self._stamps.get(path) == stamp:
                    continue
                state = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):  # absent, or caught mid-write: next poll reads it again
                continue
            self._stamps[path] = stamp
            history = state.get("log_history") if isinstance(state, dict) else None
            if isinstance(history, list):
                progress = to_float(state.get("global_step")) or 0.0
                if best is None or progress >= best[0]:
                    best = (progress, history)
        out = []
        for entry in best[1] if best else []:
            if not isinstance(entry, dict):
                self.skipped += 1
                continue
            ident = json.dumps(entry, sort_keys=True, default=str)
            if ident in self._seen:
                continue
            self._seen.add(ident)
            rec = numeric_items(entry)
            if rec:
                out.append(rec)
        return out

    def close(self) -> list[Record]:
        return self.poll()


class TensorBoardFollower:
    """Every scalar in the TensorBoard event files under a log directory (or one event file).

    Read with tensorboard's incremental record reader, which hands out the
    events appended since the last call (a record still being written waits);
    nothing is sampled, unlike ``EventAccumulator`` (10,000 points per tag). It
    is ``LegacyEventFileLoader``: ``EventFileLoader``'s compat layers only turn
    ``simple_value`` into a tensor, which we read directly, at several times the
    cost. A scalar is a ``simple_value`` (``torch.utils.tensorboard``, TF1) or a
    one-element numeric tensor of a tag first written with scalar metadata (TF2,
    ``new_style=True``); histograms, images, text and hparams are skipped.

    A record holds one step: ``{"step": step, tag: value, ...}``; consecutive
    events at the same step are merged. The key is the tag for a file directly
    in ``path`` and ``<subdir>/<tag>`` for a file below it (``add_scalars`` and
    Keras write one run per subdirectory). Each poll interleaves the files by
    step, keeping each file's own order.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.skipped = 0  # event files or records that could not be read
        self._files: dict[Path, dict[str, Any]] = {}

    def _discover(self) -> None:
        if self.path.is_file():
            paths = [self.path]
        else:
            paths = [Path(d) / f for d, _, files in os.walk(self.path) for f in files if "tfevents" in f]
        for path in sorted(paths):
            try:
                st = path.stat()
            except OSError:
                continue
            state = self._files.get(path)
            if state is None or state["id"] != st.st_ino or st.st_size < state["size"]:
                self._open(path, st)
            else:
                state["size"] = st.st_size

    def _open(self, path: Path, st: os.stat_result) -> None:
        from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

        rel = path.parent.relative_to(self.path).as_posix() if path != self.path else "."
        try:
            loader = LegacyEventFileLoader(str(path))
        except Exception:  # an unreadable file must not end the run
            self.skipped += 1
            return
        prefix = "" if rel == "." else rel + "/"
        self._files[path] = {"id": st.st_ino, "size": st.st_size, "loader": loader, "prefix": prefix, "tags": {}}

    def poll(self) -> list[Record]:
        import heapq

        self._discover()
        streams = [self._read(state) for _, state in sorted(self._files.items())]
        out: list[Record] = []
        for step, key, value in heapq.merge(*streams, key=lambda item: item[0]):
            if out and out[-1]["step"] == step:
                out[-1][key] = value
            else:
                out.append({"step": step, key: value})
        return out

    def close(self) -> list[Record]:
        return self.poll()

    def _read(self, state: dict[str, Any]) -> list[tuple[float, str, float]]:
        out = []
        try:
            for event in state["loader"].Load():
                if event.WhichOneof("what") != "summary":
                    continue
                for value in event.summary.value:
                    number = _scalar(value, state["tags"])
                    if number is not None:
                        out.append((float(event.step), state["prefix"] + value.tag, number))
        except Exception:  # a corrupt record: keep what was read, try again next poll
            self.skipped += 1
        return out


def _scalar(value: Any, tags: dict[str, bool]) -> float | None:
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if kind != "tensor":
        return None
    if value.tag not in tags:
        meta = value.metadata
        plugin = meta.plugin_data.plugin_name
        # DATA_CLASS_SCALAR is 1; a tensor with no metadata at all is taken as a scalar only if it has no dims
        tags[value.tag] = (
            plugin == "scalars"
            or meta.data_class == 1
            or (not plugin and not meta.data_class and not value.tensor.tensor_shape.dim)
        )
    if not tags[value.tag]:
        return None
    from tensorboard.util import tensor_util

    try:
        array = tensor_util.make_ndarray(value.tensor)
    except (TypeError, ValueError):
        return None
    if array.size != 1 or array.dtype.kind not in "fiu":
        return None
    return float(array.reshape(-1)[0])
