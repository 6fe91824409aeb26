"""Diff two validated recipes into knobs, and build recipes with knobs toggled.

Recipes are compared after validation, so an absent key equals its default.
A knob is a leaf of the recipe's model tree: a nested model is descended into
unless it declares ``atomic_knob = True`` (e.g. a tokenizer whose scheme and
vocabulary move together); anything else (a dict of class weights, a list) is
one value and one knob, except in the mapping fields a recipe model names in
``knob_maps`` (a command recipe's free-form ``config:``), which are descended
into key by key, so a user's own config needs no schema to be bisected. There a
key present on one side only is a knob too, with ``ABSENT`` on the other side
(toggling to ``ABSENT`` deletes the key).
Knobs that must move together can be grouped and then toggle as one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import DiffError, RecipeError
from .recipe import Recipe, _describe


class _Absent:
    """A key one recipe does not have (shown as ``(absent)``; toggling to it deletes the key)."""

    _it = None

    def __new__(cls):
        cls._it = cls._it or super().__new__(cls)
        return cls._it

    def __repr__(self) -> str:
        return "(absent)"

    __str__ = __repr__

    def __reduce__(self):
        return (_Absent, ())


ABSENT = _Absent()


@dataclass(frozen=True)
class Knob:
    """One toggle: one or more dotted paths with their good and bad values."""

    paths: tuple[str, ...]
    good: tuple[Any, ...]
    bad: tuple[Any, ...]

    @property
    def name(self) -> str:
        return "+".join(self.paths)

    def changes(self) -> dict[str, dict[str, Any]]:
        return {p: {"good": g, "bad": b} for p, g, b in zip(self.paths, self.good, self.bad, strict=True)}


def _flatten_map(mapping: dict, prefix: str, out: dict[str, Any]) -> None:
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            _flatten_map(value, path + ".", out)
        else:
            out[path] = value


def flatten(model: BaseModel, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> plain (JSON-able) value for every leaf of a recipe."""
    out: dict[str, Any] = {}
    maps = getattr(type(model), "knob_maps", ())
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = f"{prefix}{name}"
        if name in maps and isinstance(value, dict):
            _flatten_map(value, path + ".", out)
        elif isinstance(value, BaseModel) and not getattr(value, "atomic_knob", False):
            out.update(flatten(value, path + "."))
        elif isinstance(value, BaseModel):
            out[path] = value.model_dump(mode="json")
        else:
            out[path] = value
    return out


def _kind(value: Any) -> str | None:
    """The YAML kind of a value, for the type check of a knob (None and absent match anything)."""
    if value is None or value is ABSENT:
        return None
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a mapping" if isinstance(value, dict) else type(value).__name__


def _type_problem(path: str, good: Recipe, g: Any, bad: Recipe, b: Any) -> str | None:
    kg, kb = _kind(g), _kind(b)
    if kg is None or kb is None or kg == kb:
        return None
    hint = ""
    for side in (g, b):
        if isinstance(side, str) and looks_numeric(side):
            hint = (f"; YAML reads {side!r} as a string (a float needs a dot, e.g. "
                    f"{side.replace('e', '.0e', 1) if 'e' in side.lower() and '.' not in side else side}), "
                    "write it as a number in both recipes")
    return (f"{path} is {kg} in {good.path} ({g!r}) but {kb} in {bad.path} ({b!r}): a knob must have one type "
            f"on both sides{hint}")


def looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


IGNORED = ("seed",)
"""Not knobs: a campaign runs every trial with one seed (``--seed``)."""


def diff(good: Recipe, bad: Recipe, groups: list[list[str]] | None = None) -> list[Knob]:
    """Knobs that differ between ``good`` and ``bad``, grouped as asked."""
    if good.runner_name != bad.runner_name:
        raise DiffError(
            f"{good.path} uses runner {good.runner_name!r} but {bad.path} uses {bad.runner_name!r}: "
            "a campaign compares two recipes of the same runner"
        )
    g, b = flatten(good.model), flatten(bad.model)
    for p in b:
        g.setdefault(p, ABSENT)
    for p in g:
        b.setdefault(p, ABSENT)
    for group in groups or []:
        unknown = [p for p in group if p not in g]
        if unknown:
            raise DiffError(f"--group names unknown paths {unknown}; recipe paths are {sorted(g)}")
    problems = [m for p in g if (m := _type_problem(p, good, g[p], bad, b[p]))]
    if problems:
        raise DiffError("the recipes cannot be bisected: " + "; ".join(problems))
    differing = [p for p in g if g[p] != b[p] and p not in IGNORED]
    if not differing:
        raise DiffError(f"{good.path} and {bad.path} are the same recipe after validation: nothing to bisect")
    knobs, used = [], set()
    for group in groups or []:
        members = tuple(p for p in group if p in differing and p not in used)
        if members:
            used.update(members)
            knobs.append(Knob(members, tuple(g[p] for p in members), tuple(b[p] for p in members)))
    for p in differing:
        if p not in used:
            knobs.append(Knob((p,), (g[p],), (b[p],)))
    return knobs


def parse_groups(specs: list[str] | None) -> list[list[str]]:
    return [[p.strip() for p in spec.split(",") if p.strip()] for spec in specs or []]


def toggle(base: Recipe, knobs: list[Knob], to: str = "good") -> BaseModel:
    """``base`` with each knob set to its ``to`` side; raises RecipeError if invalid."""
    data = base.model.model_dump()
    for knob in knobs:
        for path, value in zip(knob.paths, getattr(knob, to), strict=True):
            node = data
            *parents, leaf = path.split(".")
            for part in parents:
                node = node.setdefault(part, {}) if value is not ABSENT else node.get(part, {})
            if value is ABSENT:
                node.pop(leaf, None)
            else:
                node[leaf] = value
    try:
        return type(base.model).model_validate(data)
    except ValidationError as exc:
        label = f"{base.path} with {', '.join(k.name for k in knobs)} set to {to}"
        raise RecipeError(label, [_describe(e, type(base.model)) for e in exc.errors()]) from None
