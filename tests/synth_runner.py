"""A runner whose loss curves are computed, not trained: a campaign on a real Ray in seconds.

``runner: tests.synth_runner`` in a recipe. The curve descends, plateaus and,
when ``a == 2`` and ``b == "sum"`` (each alone is harmless, like the tagger's
corpus and CRF reduction), climbs back past its start, so a campaign between
``a: 1, b: mean`` and ``a: 2, b: sum, c: ...`` names ``a`` and ``b``.
``step_sleep`` makes trials last long enough to be killed mid-run; ``config``
is a free-form mapping, like the ones a command runner passes on.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

NAME = "synth"
VERSION = "1"
primary_metric = "loss"


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    runner: str
    seed: int = 0
    a: int = 1
    b: str = "mean"
    c: float = 0.5
    steps: PositiveInt = 300
    step_sleep: float = Field(0.0, ge=0.0)
    config: dict[str, Any] = {}


def horizon(recipe: Recipe) -> int:
    return recipe.steps


def train(recipe: Recipe, out_dir: Path | None = None, device: str | None = None,
          threads: int | None = None) -> Iterator[dict[str, float]]:
    rng = random.Random(recipe.seed)
    diverges = recipe.a == 2 and recipe.b == "sum"
    log = None
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        log = open(Path(out_dir) / "metrics.jsonl", "w")  # noqa: SIM115 - closed below
    try:
        for step in range(1, recipe.steps + 1):
            loss = 0.2 + 2.0 * math.exp(-step / 25)
            if diverges and step > 100:
                loss += 0.03 * (step - 100)
            rec = {"step": step, "loss": loss * (1 + 0.02 * rng.gauss(0, 1))}
            if log:
                log.write(json.dumps(rec) + "\n")
            if recipe.step_sleep:
                time.sleep(recipe.step_sleep)
            yield rec
    finally:
        if log:
            log.close()
