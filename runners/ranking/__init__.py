"""Reference runner: an MLP scorer trained with a cross-entropy warmup, then a smooth-AP ranking loss.

Only the schema is imported eagerly (validating and diffing recipes must not
pay torch's import); ``train`` and ``probe`` load on first use. The runner
declares its phase switch (the detector restarts its reference there) and the
loss library's symptom -> likely cause -> remedy table (``SYMPTOMS``), which
the diagnosis quotes for the symptom a failing run shows.
"""

from .config import RankingRecipe
from .symptoms import SYMPTOMS

NAME = "ranking"
VERSION = "1"
Recipe = RankingRecipe
PRIMARY = primary_metric = "train_loss"
"""The watched metric: the active phase's objective (cross-entropy, then smooth-AP + ce_weight x CE)."""


def horizon(recipe: RankingRecipe) -> int:
    return recipe.train.steps


def phase_switch(recipe: RankingRecipe) -> int | None:
    """The first step of the ranking phase, or None when the run has a single phase."""
    first = recipe.loss.warmup_steps + 1
    return first if 1 < first <= recipe.train.steps else None


def task_metrics(recipe: RankingRecipe) -> list[str]:
    """One loss per positive class (1 - its validation AP, logged by ``loop.py``): the trial judges them
    together, so a class that never improves while the others learn is ``stagnant``, named."""
    return [f"ap_loss.{c}" for c in range(1, recipe.data.classes + 1)]


def __getattr__(name: str):
    import importlib

    if name == "train":
        return importlib.import_module(".loop", __name__).train
    if name == "probe":
        return importlib.import_module(".probe", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["NAME", "PRIMARY", "SYMPTOMS", "VERSION", "Recipe", "RankingRecipe", "horizon", "phase_switch",
           "primary_metric", "probe", "task_metrics", "train"]
