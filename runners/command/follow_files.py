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
    The checks are made again after the read, so a rewrite that lands between the
    check and the read is caught too.
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
                if self._unchanged(f):
                    f.seek(self._offset)
                    data = f.read()
                    # the writer may have rewritten the file between the check and the read: the bytes
                    # past the offset would then be the middle of another file's lines. Checked again
                    # after the read, a rewrite shows in the head or in the bytes before the offset.
                    if self._unchanged(f):
                        return self._take(data, final, resync=False)
                f.seek(0)
                data = f.read()
                st = os.fstat(f.fileno())
                self._id = (st.st_dev, st.st_ino)
                return self._take(data, final, resync=True)
        except OSError:  # gone for a moment (replaced by rename), or unreadable: try again next poll
            return []

    def _unchanged(self, f) -> bool:
        st = os.fstat(f.fileno())
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
