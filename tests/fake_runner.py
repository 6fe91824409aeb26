"""A minimal second runner for tests: ``runner: tests.fake_runner`` in a recipe.

Its recipe is a strict model with a free-form ``runner`` name, so recipes of
this runner differ from tagger recipes in which runner they name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict

NAME = "fake"
VERSION = "1"
primary_metric = "loss"


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    runner: str
    seed: int = 0
    steps: int = 5
    late_task: bool = False
    """Two task losses as well: ``loss_early`` falls from the start, ``loss_late`` only after step 300."""


def task_metrics(recipe: Recipe) -> list[str]:
    return ["loss_early", "loss_late"] if recipe.late_task else []


def train(recipe: Recipe, out_dir: Path | None = None, device: str | None = None,
          threads: int | None = None) -> Iterator[dict[str, float]]:
    for step in range(1, recipe.steps + 1):
        rec = {"step": step, "loss": 1.0 / step}
        if recipe.late_task:
            rec |= {"loss_early": 1.0 / step, "loss_late": 1.0 if step < 300 else 0.5}
        yield rec
