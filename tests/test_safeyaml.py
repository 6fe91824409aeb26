"""Hostile recipe files fail fast with a clear message: aliases, depth, size, non-finite numbers."""

from __future__ import annotations

import time

import pytest

from bisector import safeyaml
from bisector.errors import RecipeError
from bisector.recipe import load


def alias_bomb(levels: int) -> str:
    """A few hundred bytes that expand to 9**levels values."""
    lines = ["runner: tagger", "a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def _problem(recipe_dir, body: str) -> str:
    path = recipe_dir("r.yaml", body)
    with pytest.raises(RecipeError) as info:
        load(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:")
    return msg


def test_alias_bomb_is_refused_in_milliseconds(recipe_dir):
    assert len(alias_bomb(9)) < 600
    t0 = time.perf_counter()
    msg = _problem(recipe_dir, alias_bomb(9))
    assert time.perf_counter() - t0 < 1.0
    assert f"more than {safeyaml.MAX_VALUES} values with every alias expanded" in msg
    assert "line 6" in msg  # where the expansion crossed the bound


def test_aliases_are_counted_once_at_their_size(monkeypatch):
    safeyaml.check(alias_bomb(3))  # 9**3 = 729 values: fine
    text = "a: &x [1, 2]\nb: *x\nc: *x\n"  # root, a, [1, 2] (3), b, 3, c, 3 = 13 values
    safeyaml.check(text)
    monkeypatch.setattr(safeyaml, "MAX_VALUES", 12)
    with pytest.raises(safeyaml.Unsafe, match="line 3, column 4"):
        safeyaml.check(text)


def test_shared_alias_nodes_are_walked_once_for_duplicate_keys():
    text = alias_bomb(4).replace("runner: tagger", "runner: tagger\nk: 1\nk: 2")
    t0 = time.perf_counter()
    assert safeyaml.duplicate_key(text) == "duplicate key 'k' at line 3, column 1"
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("body", ["a: &a [1, *a]\n", "a: &a {b: *a}\n"])
def test_recursive_alias(recipe_dir, body):
    assert "recursive alias" in _problem(recipe_dir, body)


@pytest.mark.parametrize("body", [
    "[" * 10_000 + "]" * 10_000,  # flow style: a RecursionError in the composer before
    "".join("  " * i + f"k{i}:\n" for i in range(150)) + "  " * 150 + "v: 1\n",  # block style
])
def test_deep_nesting_is_refused(recipe_dir, body):
    t0 = time.perf_counter()
    msg = _problem(recipe_dir, body)
    assert f"nested more than {safeyaml.MAX_DEPTH} levels deep at line" in msg
    assert time.perf_counter() - t0 < 2.0


def test_oversized_file_is_refused_without_reading_it_all(recipe_dir):
    msg = _problem(recipe_dir, "runner: tagger\n#" + "x" * (safeyaml.MAX_BYTES + 10) + "\n")
    assert f"larger than {safeyaml.MAX_BYTES} bytes" in msg


@pytest.mark.parametrize(("body", "paths"), [
    ("runner: tagger\ntrain:\n  lr: 1e400\n", ["train.lr"]),  # YAML text the schema turns into infinity
    ("runner: tagger\ntrain:\n  lr: .inf\n  class_weights: {B-road: .nan}\nmodel:\n  dropout: -.inf\n",
     ["train.lr", "train.class_weights.B-road", "model.dropout"]),
    ("runner: tests.synth_runner\nconfig:\n  opt: {betas: [0.9, .inf]}\n", ["config.opt.betas.1"]),
    ("runner: tests.synth_runner\nc: 1e999\n", ["c"]),
])
def test_non_finite_numbers_are_refused_with_their_path(recipe_dir, body, paths):
    msg = _problem(recipe_dir, body)
    for path in paths:
        assert f"{path}: expected a finite number" in msg
    assert msg.count("expected a finite number") == len(paths)  # one problem per field, not two


def test_python_tags_are_not_constructed(recipe_dir, tmp_path):
    marker = tmp_path / "pwned"
    msg = _problem(recipe_dir, f"runner: tagger\nx: !!python/object/apply:os.system ['touch {marker}']\n")
    assert "invalid YAML at line 2" in msg and not marker.exists()


def test_real_recipes_pass(recipe_dir):
    from .conftest import RECIPES

    for name in ("good.yaml", "bad.yaml"):
        safeyaml.check((RECIPES / name).read_text())
        load(RECIPES / name)
