"""Runner lookup: the ``runner:`` key of a recipe names a runner module.

A runner module exposes ``NAME``, ``VERSION``, ``Recipe`` (a strict Pydantic
model), ``primary_metric`` and ``train(recipe, out_dir, device, threads)``, a
generator of per-step metric records (see ``runners/README.md``). Built-in
names map to our reference runners; any other value containing a dot is
imported as a module path, so a user's own runner needs no change here.
"""

from __future__ import annotations

import importlib
from types import ModuleType

BUILTIN = {"tagger": "runners.tagger"}
REQUIRED = ("NAME", "VERSION", "Recipe", "primary_metric", "train")


def known() -> list[str]:
    return sorted(BUILTIN)


def resolve(name: str) -> ModuleType:
    """The runner module for ``name``; raises LookupError with the known names."""
    target = BUILTIN.get(name) or (name if "." in name.strip(".") and not name.startswith(".") else None)
    if target is None:
        raise LookupError(f"unknown runner {name!r}; expected one of {known()} or an importable module path")
    try:
        module = importlib.import_module(target)
    except Exception as exc:  # noqa: BLE001 - any import failure of user code is bad input
        raise LookupError(f"runner {name!r} cannot be imported: {type(exc).__name__}: {exc}") from None
    declared = set(getattr(module, "__all__", ()))  # declared names may load lazily (train imports torch)
    missing = [attr for attr in REQUIRED if attr not in declared and not hasattr(module, attr)]
    if missing:
        raise LookupError(f"runner module {target!r} lacks {missing}")
    return module
