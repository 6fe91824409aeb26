"""Load a YAML recipe and validate it with its runner's Pydantic model.

Every problem in a file is collected and reported at once, each with its
dotted field path, and an unknown key gets a "did you mean" from the fields
that exist at that level. Hostile files fail fast with a clear message:
reading is bounded (``safeyaml``), and a non-finite number anywhere in a
recipe (``.inf``, ``.nan``, or ``1e400``, which YAML reads as text and the
schema may turn into infinity) is rejected for every runner, free-form
mappings included, since no training knob means infinity.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from . import registry, safeyaml
from .errors import RecipeError


@dataclass(frozen=True)
class Recipe:
    path: str
    runner: ModuleType
    model: BaseModel

    @property
    def runner_name(self) -> str:
        return self.runner.NAME


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the sub-model at ``loc`` (empty when not a model)."""
    for part in loc:
        field = model.model_fields.get(str(part)) if isinstance(model, type) else None
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def _describe(err: dict, model: type[BaseModel]) -> str:
    loc = tuple(err["loc"])
    path = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        options = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), options, n=1)
        hint = f"; did you mean {'.'.join(map(str, loc[:-1] + (close[0],)))!r}?" if close else ""
        return f"{path}: unknown key{hint} (expected one of {options})"
    got = err.get("input")
    shown = "" if isinstance(got, dict) or got is None and err["type"] == "missing" else f" (got {got!r})"
    return f"{path}: {err['msg']}{shown}"


def non_finite(data: Any, prefix: str = "") -> list[str]:
    """One problem per infinite or NaN float in ``data`` (nested dicts and lists), with its dotted path."""
    if isinstance(data, float) and not math.isfinite(data):
        return [f"{prefix or '(top level)'}: expected a finite number (got {data!r})"]
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, (list, tuple)):
        items = enumerate(data)
    else:
        return []
    return [p for k, v in items for p in non_finite(v, f"{prefix}.{k}" if prefix else str(k))]


def validate(data: Any, runner: ModuleType, path: str) -> BaseModel:
    problems = non_finite(data)
    flagged = {p.split(": ", 1)[0] for p in problems}  # one problem per field: ours says more than the schema's
    try:
        model = runner.Recipe.model_validate(data)
    except ValidationError as exc:
        described = (_describe(e, runner.Recipe) for e in exc.errors())
        raise RecipeError(path, problems + [d for d in described if d.split(": ", 1)[0] not in flagged]) from None
    problems += [p for p in non_finite(model.model_dump()) if p.split(": ", 1)[0] not in flagged]  # '1e400' text
    if problems:
        raise RecipeError(path, problems)
    return model


def read_text(path: str | Path) -> str:
    p = Path(path)
    if not p.is_file():
        raise RecipeError(str(path), "no such file" if not p.exists() else "not a regular file")
    try:
        with p.open("rb") as f:
            raw = f.read(safeyaml.MAX_BYTES + 1)
    except OSError as exc:
        raise RecipeError(str(path), f"cannot be read: {exc.strerror or exc}") from None
    if len(raw) > safeyaml.MAX_BYTES:
        raise RecipeError(str(path), f"larger than {safeyaml.MAX_BYTES} bytes: not a recipe")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RecipeError(str(path), "not a text file (expected UTF-8 YAML)") from None


def read_yaml(path: str | Path, text: str | None = None) -> dict:
    """The mapping in a recipe file (or in ``text``, reported as ``path``)."""
    text = read_text(path) if text is None else text
    try:
        safeyaml.check(text)
        data = yaml.safe_load(text)
        duplicate = safeyaml.duplicate_key(text)
    except safeyaml.Unsafe as exc:
        raise RecipeError(str(path), f"refused: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(str(path), f"invalid YAML{where}: {problem}") from None
    if duplicate:
        raise RecipeError(str(path), f"invalid YAML: {duplicate}")
    if data is None:
        raise RecipeError(str(path), "empty file: expected a recipe mapping starting with `runner:`")
    if not isinstance(data, dict):
        raise RecipeError(str(path), f"expected a mapping of recipe sections, got {type(data).__name__}")
    return data


def runner_of(data: dict, path: str) -> ModuleType:
    name = data.get("runner")
    if not isinstance(name, str):
        raise RecipeError(path, f"runner: required, a runner name such as {registry.known()} (got {name!r})")
    try:
        return registry.resolve(name)
    except LookupError as exc:
        raise RecipeError(path, f"runner: {exc}") from None


def load(path: str | Path, text: str | None = None) -> Recipe:
    data = read_yaml(path, text)
    runner = runner_of(data, str(path))
    if hasattr(runner, "prepare"):  # e.g. paths relative to the recipe file
        data = runner.prepare(data, str(path))
    model = validate(data, runner, str(path))
    problems = runner.check(model, str(path)) if hasattr(runner, "check") else []
    if problems:
        raise RecipeError(str(path), problems)
    return Recipe(str(path), runner, model)
