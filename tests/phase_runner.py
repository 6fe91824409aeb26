"""A computed-curve runner with a phase switch, for the trial's wiring: ``runner: tests.phase_runner``.

Cross-entropy-like warmup from 1.0 down to 0.3, then a second objective on
another scale: it starts at 3.0 and descends to 1.0. Judged against the
warmup's start the second phase looks like a climb back; judged from the
switch (the runner reports it) it is a healthy descent.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict

NAME = "phase"
VERSION = "1"
primary_metric = "loss"


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    runner: str
    seed: int = 0
    switch: int = 300
    steps: int = 900
    report_switch: bool = True


def phase_switch(recipe: Recipe) -> int | None:
    return recipe.switch if recipe.report_switch else None


def train(recipe: Recipe, out_dir: Path | None = None, device: str | None = None,
          threads: int | None = None) -> Iterator[dict[str, float]]:
    for step in range(1, recipe.steps + 1):
        wiggle = 0.01 * math.sin(step * 1.7 + recipe.seed)
        if step < recipe.switch:
            value = 0.3 + 0.7 * math.exp(-step / 60)
        else:
            value = 1.0 + 2.0 * math.exp(-(step - recipe.switch) / 80)
        yield {"step": step, "loss": value * (1 + wiggle)}
