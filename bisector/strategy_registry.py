"""Strategies by name: the ``--strategy`` registry (Ray Tune's searcher registry, in small).

Kept apart from ``strategy.py`` (the Protocol and the shared ``Search``) so that
module never imports the strategies built on it; each is imported only when
made.
"""

from __future__ import annotations

import importlib

from .knobs import Knob
from .strategy import Search

REGISTRY = {
    "oat": "bisector.oat:OneAtATime",
    "split": "bisector.splitting:GroupSplit",
    "dd": "bisector.dd:DeltaDebug",
    "auto": "bisector.auto:Auto",
}
ALIASES = {"one-at-a-time": "oat"}


def names() -> list[str]:
    return list(REGISTRY)


def make(name: str, knobs: list[Knob], slots: int = 1, **voting) -> Search:
    """A strategy by its registry name (``oat``, ``split``, ``dd``, ``auto``); ``voting``: repeats, noise, target."""
    key = ALIASES.get(name, name)
    if key not in REGISTRY:
        raise LookupError(f"unknown strategy {name!r}; expected one of {names()}")
    module, cls = REGISTRY[key].split(":")
    return getattr(importlib.import_module(module), cls)(knobs, slots, **voting)
