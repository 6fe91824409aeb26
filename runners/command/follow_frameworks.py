"""Followers for the files training frameworks write themselves: Hugging Face's
``trainer_state.json`` (rewritten whole at each checkpoint) and TensorBoard event
files (read with TensorBoard's own loader). Same contract as ``follow_files.py``:
``poll()`` returns what completed since the last call, ``close()`` drains the rest,
and a file caught mid-rewrite is read again next poll, never repeated or lost.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .follow_files import Record, numeric_items, to_float


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
                state = json.loads(path.read_text(encoding="utf-8-sig"))
            except (OSError, ValueError, RecursionError):  # absent, or caught mid-write: next poll reads it again
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
