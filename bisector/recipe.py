"""Load a YAML recipe and validate it with its runner's Pydantic model.

Every problem in a file is collected and reported at once, each with its
dotted field path, and an unknown key gets a "did you mean" from the fields
that exist at that level.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from . import registry
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


def validate(data: Any, runner: ModuleType, path: str) -> BaseModel:
    try:
        return runner.Recipe.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(path, [_describe(e, runner.Recipe) for e in exc.errors()]) from None


def _duplicate_key(text: str) -> str | None:
    """'duplicate key ... at line L, column C' for the first key given twice in
    one mapping (YAML lets the last silently win); composes nodes, constructs nothing."""
    stack = [yaml.compose(text, Loader=yaml.SafeLoader)]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value in seen:
                    m = key.start_mark
                    return f"duplicate key {key.value!r} at line {m.line + 1}, column {m.column + 1}"
                seen.add(getattr(key, "value", None) if isinstance(key, yaml.ScalarNode) else id(key))
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return None


def read_text(path: str | Path) -> str:
    p = Path(path)
    if not p.is_file():
        raise RecipeError(str(path), "no such file" if not p.exists() else "not a regular file")
    try:
        return p.read_text()
    except UnicodeDecodeError:
        raise RecipeError(str(path), "not a text file (expected UTF-8 YAML)") from None


def read_yaml(path: str | Path, text: str | None = None) -> dict:
    """The mapping in a recipe file (or in ``text``, reported as ``path``)."""
    text = read_text(path) if text is None else text
    try:
        data = yaml.safe_load(text)
        duplicate = _duplicate_key(text)
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
