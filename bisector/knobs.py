"""Diff two validated recipes into knobs, and build recipes with knobs toggled.

Recipes are compared after validation, so an absent key equals its default.
A knob is a leaf of the recipe's model tree: a nested model is descended into
unless it declares ``atomic_knob = True`` (e.g. a tokenizer whose scheme and
vocabulary move together); anything else (a dict of class weights, a list) is
one value and one knob.
Knobs that must move together can be grouped and then toggle as one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import DiffError, RecipeError
from .recipe import Recipe, _describe


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


def flatten(model: BaseModel, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> plain (JSON-able) value for every leaf of a recipe."""
    out: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = f"{prefix}{name}"
        if isinstance(value, BaseModel) and not getattr(value, "atomic_knob", False):
            out.update(flatten(value, path + "."))
        elif isinstance(value, BaseModel):
            out[path] = value.model_dump(mode="json")
        else:
            out[path] = value
    return out


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
    for group in groups or []:
        unknown = [p for p in group if p not in g]
        if unknown:
            raise DiffError(f"--group names unknown paths {unknown}; recipe paths are {sorted(g)}")
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
                node = node[part]
            node[leaf] = value
    try:
        return type(base.model).model_validate(data)
    except ValidationError as exc:
        label = f"{base.path} with {', '.join(k.name for k in knobs)} set to {to}"
        raise RecipeError(label, [_describe(e, type(base.model)) for e in exc.errors()]) from None
