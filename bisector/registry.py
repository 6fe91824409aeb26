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
from typing import Any

BUILTIN = {"tagger": "runners.tagger", "command": "runners.command", "multitask": "runners.multitask",
           "ranking": "runners.ranking"}
REQUIRED = ("NAME", "VERSION", "Recipe", "primary_metric", "train")


def known() -> list[str]:
    return sorted(BUILTIN)


def resolve(name: str) -> ModuleType:
    """The runner module for ``name``; raises LookupError with the known names."""
    target = BUILTIN.get(name) or (name if "." in name.strip(".") and not name.startswith(".") else None)
    if target is None:
        raise LookupError(
            f"unknown runner {name!r}; expected one of {known()} (use `runner: command` to run your own "
            "training script with no Python written) or the dotted path of an importable module, e.g. "
            f"`mypkg.{name}` (a module path needs at least one dot, and the module must be importable on "
            "every Ray worker: installed, or on PYTHONPATH)")
    try:
        module = importlib.import_module(target)
    except Exception as exc:  # noqa: BLE001 - any import failure of user code is bad input
        raise LookupError(f"runner {name!r} cannot be imported: {type(exc).__name__}: {exc}") from None
    declared = set(getattr(module, "__all__", ()))  # declared names may load lazily (train imports torch)
    missing = [attr for attr in REQUIRED if attr not in declared and not hasattr(module, attr)]
    if missing:
        raise LookupError(f"runner module {target!r} lacks {missing}")
    return module


# -- optional hooks (runners/README.md): each falls back to the plain contract -------------------


def watched(runner: ModuleType, recipe: Any) -> str:
    """The metric the detector judges: the recipe's own choice where the runner lets it choose."""
    hook = getattr(runner, "watched", None)
    return hook(recipe) if hook else runner.primary_metric


def identity(runner: ModuleType, recipe: Any) -> dict[str, Any]:
    """What else a trial's key must include (e.g. hashes of the user's script)."""
    hook = getattr(runner, "identity", None)
    return hook(recipe) if hook else {}


def probe_contract(runner: ModuleType, recipe: Any) -> Any:
    """The probe contract for this recipe, or None."""
    hook = getattr(runner, "probe_contract", None)
    return hook(recipe) if hook else getattr(runner, "probe", None)


def checkpoints(runner: ModuleType, recipe: Any, out_dir: str | None) -> dict[int, str] | None:
    """Step -> checkpoint path where the runner says where its checkpoints are; None: the default layout."""
    hook = getattr(runner, "checkpoints", None)
    return hook(recipe, out_dir) if hook else None


def task_metrics(runner: ModuleType, recipe: Any) -> list[str]:
    """One loss metric per task of a multi-task runner (judged together for a starved task); [] for one task."""
    hook = getattr(runner, "task_metrics", None)
    return list(hook(recipe)) if hook else []


def phase_switch(runner: ModuleType, recipe: Any) -> int | None:
    """The step where the recipe switches objectives (the detector restarts its reference there), or None."""
    hook = getattr(runner, "phase_switch", None)
    return hook(recipe) if hook else None


def symptoms(runner: ModuleType, kind: str) -> list[tuple[str, str, str]]:
    """The runner's own (symptom, likely cause, remedy) rows for a verdict kind (``SYMPTOMS``), or none."""
    return list((getattr(runner, "SYMPTOMS", None) or {}).get(str(kind), []))
