"""``runner: command``: bisect the user's own training script, no Python written.

The recipe names the command (an argument list), the ``config`` mapping of
knobs and how it reaches the script (flags, Hydra overrides or a config file),
and where the metrics appear (stdout lines, JSONL/CSV, TensorBoard, Hugging
Face ``trainer_state.json``, Lightning ``metrics.csv``). See ``config.py`` for
the schema, ``render.py`` for the exact argument lists, ``follow.py`` for the
log readers and ``loop.py`` for the process.

Beyond the runner contract this module offers the orchestrator's optional
hooks: ``prepare`` (paths relative to the recipe file), ``check`` (the user's
own config schema), ``watched`` (the metric named in the recipe), ``identity``
(hashes of the files the user names) and ``probe_contract``/``checkpoints``.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from .config import CommandRecipe

NAME = "command"
VERSION = "1"
Recipe = CommandRecipe
primary_metric = "loss"


def watched(recipe: CommandRecipe) -> str:
    return recipe.metrics.rename.get(recipe.metrics.watch, recipe.metrics.watch)


def horizon(recipe: CommandRecipe) -> int | None:
    return recipe.steps


def prepare(data: dict[str, Any], path: str) -> dict[str, Any]:
    """Make ``cwd`` relative to where bisector runs instead of to the recipe file, so trials find
    the script from any directory (and, in a Ray Job, from the job's copy of the working dir)."""
    if not isinstance(data.get("cwd", "."), str):
        return data
    base = Path(path).resolve().parent
    target = (base / data.get("cwd", ".")).resolve()
    try:
        rel = os.path.relpath(target, Path.cwd())
    except ValueError:  # another drive (Windows)
        rel = str(target)
    return {**data, "cwd": rel if not rel.startswith("../../..") else str(target)}


def check(recipe: CommandRecipe, path: str) -> list[str]:
    """Problems with ``config`` under the user's schema, each with its field path (empty when none)."""
    spec = recipe.schema_
    if not spec:
        return []
    if spec.endswith(".json"):
        return _json_schema(recipe, spec, path)
    return _pydantic_schema(recipe, spec)


def _json_schema(recipe: CommandRecipe, spec: str, path: str) -> list[str]:
    import json

    import jsonschema

    file = (Path(recipe.cwd) / spec) if not Path(spec).is_absolute() else Path(spec)
    try:
        schema = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        return [f"schema: cannot read the JSON Schema {str(file)!r}: {exc}"]
    validator = jsonschema.Draft202012Validator(schema)
    return [f"config.{'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}"
            for e in sorted(validator.iter_errors(recipe.config), key=lambda e: list(e.absolute_path))]


def _pydantic_schema(recipe: CommandRecipe, spec: str) -> list[str]:
    import importlib
    import sys

    from pydantic import BaseModel, ValidationError

    module_name, _, attr = spec.partition(":")
    if not attr:
        return [f"schema: {spec!r} should be 'package.module:Model' or a path to a .json JSON Schema"]
    sys.path.insert(0, str(Path(recipe.cwd).resolve()))
    try:
        model = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # noqa: BLE001 - the user's module failing to import is bad input
        return [f"schema: cannot import {spec!r}: {type(exc).__name__}: {exc}"]
    finally:
        sys.path.pop(0)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return [f"schema: {spec!r} is not a Pydantic model"]
    try:
        model.model_validate(recipe.config)
    except ValidationError as exc:
        return [f"config.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return []


def identity(recipe: CommandRecipe) -> dict[str, str]:
    """sha256 of each file the recipe names (relative to its ``cwd``): part of a trial's key, so an
    edited script is trained again instead of reusing old verdicts."""
    out = {}
    for name in recipe.files:
        p = Path(recipe.cwd) / name
        try:
            out[name] = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        except OSError:
            out[name] = "missing"
    return out


def checkpoints(recipe: CommandRecipe, out_dir: str | None) -> dict[int, str]:
    """Step -> checkpoint path, from the probe spec's ``{step}`` pattern."""
    if recipe.probe is None or not out_dir:
        return {}
    template = recipe.probe.checkpoints.replace("{out_dir}", str(out_dir))
    full = template if Path(template).is_absolute() else str(Path(recipe.cwd).resolve() / template)
    import glob

    pattern = re.compile(re.escape(full).replace(re.escape("{step}"), r"(\d+)") + "$")
    found = {}
    for p in glob.glob(glob.escape(full).replace(glob.escape("{step}"), "*")):
        m = pattern.match(p)
        if m:
            found[int(m.group(1))] = p
    return dict(sorted(found.items()))


class _ConfigProbe:
    """The user's probe module, handed the recipe's ``config`` mapping as its ``recipe``."""

    def __init__(self, module: Any):
        self._m = module
        for name in ("PRIMARY_TERM", "WEIGHT_KNOBS", "VAL_METRIC", "PER_CLASS_PREFIX"):
            if hasattr(module, name):
                value = getattr(module, name)
                if name == "WEIGHT_KNOBS":  # knobs of a command recipe live under config.
                    value = {t: k if k.startswith("config.") else f"config.{k}" for t, k in value.items()}
                setattr(self, name, value)

    def load_model(self, recipe, checkpoint, device=None):
        return self._m.load_model(recipe.config, checkpoint, device)

    def probe_batches(self, recipe, n, batch_size=None, device=None):
        return self._m.probe_batches(recipe.config, n, batch_size=batch_size, device=device)

    def terms(self, model, batch, recipe):
        return self._m.terms(model, batch, recipe.config)

    def term_weights(self, recipe):
        return self._m.term_weights(recipe.config)

    def term_reductions(self, recipe, batch):
        fn = getattr(self._m, "term_reductions", None)
        return fn(recipe.config, batch) if fn else {}


def probe_contract(recipe: CommandRecipe) -> _ConfigProbe | None:
    if recipe.probe is None:
        return None
    import importlib
    import sys

    sys.path.insert(0, str(Path(recipe.cwd).resolve()))
    try:
        return _ConfigProbe(importlib.import_module(recipe.probe.module))
    finally:
        sys.path.pop(0)


def train(recipe: CommandRecipe, out_dir=None, device=None, threads=None, base_dir=None):
    from .loop import train as _train

    return _train(recipe, out_dir, device, threads, base_dir)


__all__ = ["NAME", "VERSION", "CommandRecipe", "Recipe", "check", "checkpoints", "horizon", "identity", "prepare",
           "primary_metric", "probe_contract", "train", "watched"]
