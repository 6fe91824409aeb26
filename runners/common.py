"""What every reference runner's training loop does the same way: the seeded batch order and the
metrics log. Kept here, beside the runners, because runners never import ``bisector``; each
runner's ``loop.py`` still reads top to bottom, with only these two chores named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch


def batch_indices(n: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Row indices, ``batch_size`` at a time, for ever: a fresh permutation from a generator seeded
    with ``seed`` whenever fewer than a batch remain (so a recipe's batches are the same every run,
    whatever else draws random numbers)."""
    gen = torch.Generator().manual_seed(seed)
    order, cursor = torch.randperm(n, generator=gen), 0
    while True:
        if cursor + batch_size > len(order):
            order, cursor = torch.randperm(n, generator=gen), 0
        yield order[cursor : cursor + batch_size]
        cursor += batch_size


class MetricsLog:
    """``out_dir/metrics.jsonl``, one record per line, flushed every ``flush_every`` records (the
    contract's log of what ``train`` yields); does nothing when there is no ``out_dir``."""

    def __init__(self, out_dir: Path | None, flush_every: int = 50):
        self._file = None
        self._n, self._flush_every = 0, flush_every
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            self._file = open(out_dir / "metrics.jsonl", "w")

    def write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(record) + "\n")
        self._n += 1
        if self._n % self._flush_every == 0:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
