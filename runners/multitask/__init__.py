"""Reference runner: a multi-task model whose per-timestep task starves (see ``loop.py``).

Only the schema is imported eagerly (validating and diffing recipes must not
pay torch's import); ``train`` and ``probe`` load on first use.
"""

from .config import TASKS, MultitaskRecipe

NAME = "multitask"
VERSION = "1"
Recipe = MultitaskRecipe
PRIMARY = primary_metric = "train_loss"
"""The watched metric: the sum of the task losses, each averaged over its elements."""


def horizon(recipe: MultitaskRecipe) -> int:
    return recipe.train.steps


def task_metrics(recipe: MultitaskRecipe) -> list[str]:
    """One loss per task: the trial judges them together for a task that stagnates while the others learn."""
    return [f"loss_{t}" for t in TASKS]


def __getattr__(name: str):
    import importlib

    if name == "train":
        return importlib.import_module(".loop", __name__).train
    if name == "probe":
        return importlib.import_module(".probe", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["NAME", "PRIMARY", "VERSION", "Recipe", "MultitaskRecipe", "horizon", "primary_metric", "probe",
           "task_metrics", "train"]
