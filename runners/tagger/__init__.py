"""Reference runner: a BiLSTM-CRF address tagger (see ``train.py``)."""

from . import probe
from .config import TaggerRecipe
from .train import PRIMARY, train

NAME = "tagger"
VERSION = "1"
Recipe = TaggerRecipe
primary_metric = PRIMARY


def horizon(recipe: TaggerRecipe) -> int:
    """Steps a trial of this recipe trains when nothing stops it."""
    return recipe.train.steps


__all__ = ["NAME", "PRIMARY", "VERSION", "Recipe", "TaggerRecipe", "horizon", "primary_metric", "probe", "train"]
