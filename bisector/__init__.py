"""bisector: find the recipe change that makes a training run diverge."""

__version__ = "0.1.0"

__all__ = ["__version__"]
