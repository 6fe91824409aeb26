"""Reference runner: a BiLSTM-CRF address tagger (see ``loop.py``).

Only the recipe schema is imported eagerly: validating and diffing recipes
must not pay torch's import, so ``train`` and ``probe`` load on first use.
"""

from .config import TaggerRecipe

NAME = "tagger"
VERSION = "1"
Recipe = TaggerRecipe
PRIMARY = primary_metric = "train_ce"
"""The watched metric: unweighted token cross-entropy of the emissions."""


def horizon(recipe: TaggerRecipe) -> int:
    """Steps a trial of this recipe trains when nothing stops it."""
    return recipe.train.steps


def __getattr__(name: str):
    import importlib

    if name == "train":
        return importlib.import_module(".loop", __name__).train
    if name == "probe":
        return importlib.import_module(".probe", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["NAME", "PRIMARY", "VERSION", "Recipe", "TaggerRecipe", "horizon", "primary_metric", "probe", "train"]
