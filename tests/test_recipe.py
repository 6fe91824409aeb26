"""bisector.recipe.load: valid recipes load, every bad input is one RecipeError."""

from __future__ import annotations

import pytest

from bisector.errors import InputError, RecipeError
from bisector.recipe import load
from runners import tagger

from .conftest import RECIPES


def test_good_recipe_loads():
    r = load(RECIPES / "good.yaml")
    assert r.runner is tagger
    assert r.runner_name == "tagger"
    assert r.path == str(RECIPES / "good.yaml")
    assert r.model.data.corpus == "v1"
    assert r.model.data.tokenizer.scheme == "word"
    assert r.model.model.hidden_size == 64
    assert r.model.train.lr == pytest.approx(3e-3)
    assert r.model.train.class_weights is None


def test_absent_keys_take_defaults(recipe_dir):
    r = load(recipe_dir("min.yaml", "runner: tagger\n"))
    assert r.model.model.dropout == pytest.approx(0.1)
    assert r.model.train.steps == 1500
    assert r.model.seed == 0


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(RecipeError) as info:
        load(path)
    assert info.value.path == str(path)
    assert info.value.problems == ["no such file"]
    assert str(path) in str(info.value)
    assert isinstance(info.value, InputError) and info.value.exit_code == 2


def test_directory_is_not_a_recipe(tmp_path):
    with pytest.raises(RecipeError) as info:
        load(tmp_path)
    assert info.value.problems == ["not a regular file"]


def test_invalid_yaml_reports_line_and_column(recipe_dir):
    path = recipe_dir("broken.yaml", """\
        runner: tagger
        model:
          hidden_size: 64
            dropout: 0.1
        """)
    with pytest.raises(RecipeError) as info:
        load(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:")
    assert "invalid YAML at line 4, column 12" in msg
    assert len(info.value.problems) == 1


def test_non_utf8_file(recipe_dir):
    path = recipe_dir.path / "binary.yaml"
    path.write_bytes(b"runner: tagger\n\xff\xfe\x00garbage")
    with pytest.raises(RecipeError) as info:
        load(path)
    assert "not a text file" in str(info.value)


@pytest.mark.parametrize(
    ("body", "got"),
    [("- runner: tagger\n- seed: 1\n", "list"), ("just a string\n", "str")],
)
def test_top_level_must_be_a_mapping(recipe_dir, body, got):
    path = recipe_dir("list.yaml", body)
    with pytest.raises(RecipeError) as info:
        load(path)
    assert info.value.problems == [f"expected a mapping of recipe sections, got {got}"]


def test_missing_runner(recipe_dir):
    path = recipe_dir("norunner.yaml", "seed: 1\nmodel:\n  hidden_size: 8\n")
    with pytest.raises(RecipeError) as info:
        load(path)
    (problem,) = info.value.problems
    assert problem.startswith("runner: required")
    assert "'tagger'" in problem


def test_unknown_runner_name(recipe_dir):
    path = recipe_dir("unknown.yaml", "runner: tagr\n")
    with pytest.raises(RecipeError) as info:
        load(path)
    (problem,) = info.value.problems
    assert problem.startswith("runner: unknown runner 'tagr'")
    assert "'command'" in problem and "'tagger'" in problem and "'ranking'" in problem  # the built-in names
    assert "at least one dot" in problem and "`mypkg.tagr`" in problem  # says how a module path must look


def test_unimportable_runner_module(recipe_dir):
    path = recipe_dir("unimportable.yaml", "runner: tests.no_such_runner\n")
    with pytest.raises(RecipeError) as info:
        load(path)
    assert "cannot be imported" in info.value.problems[0]
    assert info.value.problems[0].startswith("runner:")


def test_module_that_is_not_a_runner(recipe_dir):
    path = recipe_dir("notrunner.yaml", "runner: os.path\n")
    with pytest.raises(RecipeError) as info:
        load(path)
    assert "lacks ['NAME', 'VERSION', 'Recipe', 'primary_metric', 'train']" in info.value.problems[0]


def test_relative_runner_name_is_a_recipe_error(recipe_dir):
    path = recipe_dir("relative.yaml", "runner: .tagger\n")
    with pytest.raises(RecipeError) as info:
        load(path)
    assert info.value.problems[0].startswith("runner: unknown runner '.tagger'")


def test_empty_file(recipe_dir):
    with pytest.raises(RecipeError) as info:
        load(recipe_dir("empty.yaml", ""))
    assert info.value.problems == ["empty file: expected a recipe mapping starting with `runner:`"]


def test_duplicate_key_is_an_error(recipe_dir):
    path = recipe_dir("dup.yaml", "runner: tagger\nmodel:\n  hidden_size: 64\n  hidden_size: 96\n")
    with pytest.raises(RecipeError) as info:
        load(path)
    assert info.value.problems == ["invalid YAML: duplicate key 'hidden_size' at line 4, column 3"]


def test_custom_runner_by_module_path(recipe_dir):
    from tests import fake_runner

    r = load(recipe_dir("fake.yaml", "runner: tests.fake_runner\nsteps: 3\n"))
    assert r.runner is fake_runner
    assert r.runner_name == "fake"
    assert r.model.steps == 3


def test_schema_violations_reported_all_at_once(recipe_dir):
    path = recipe_dir("bad.yaml", """\
        runner: tagger
        model:
          hiden_size: 96
          crf_reduction: mean
        train:
          lr: -0.001
        """)
    with pytest.raises(RecipeError) as info:
        load(path)
    err = info.value
    msg = str(err)
    assert len(err.problems) == 3
    assert msg.startswith(f"{path}: 3 problems")
    assert "model.hiden_size: unknown key; did you mean 'model.hidden_size'?" in msg
    assert "train.lr:" in msg and "greater than 0" in msg
    assert "model.crf_reduction:" in msg and "(got 'mean')" in msg
    # each problem on its own line, each naming its own path
    paths = sorted(p.split(":", 1)[0] for p in err.problems)
    assert paths == ["model.crf_reduction", "model.hiden_size", "train.lr"]


def test_nested_unknown_key_gets_a_suggestion_at_its_level(recipe_dir):
    path = recipe_dir("tok.yaml", "runner: tagger\ndata:\n  tokenizer:\n    vocab: 100\n")
    with pytest.raises(RecipeError) as info:
        load(path)
    (problem,) = info.value.problems
    assert problem.startswith("data.tokenizer.vocab: unknown key; did you mean 'data.tokenizer.vocab_size'?")


def test_unknown_key_without_close_match_lists_options(recipe_dir):
    path = recipe_dir("zzz.yaml", "runner: tagger\ntrain:\n  zzzzzz: 1\n")
    with pytest.raises(RecipeError) as info:
        load(path)
    (problem,) = info.value.problems
    assert "did you mean" not in problem
    assert problem.startswith("train.zzzzzz: unknown key (expected one of [")
    assert "'class_weights'" in problem


def test_unknown_class_weights_tag(recipe_dir):
    path = recipe_dir("cw.yaml", "runner: tagger\ntrain:\n  class_weights: {B-unit: 2.0, B-street: 3.0}\n")
    with pytest.raises(RecipeError) as info:
        load(path)
    (problem,) = info.value.problems
    assert problem.startswith("train.class_weights:")
    assert "unknown tags ['B-street']" in problem


def test_non_positive_class_weight(recipe_dir):
    path = recipe_dir("cw0.yaml", "runner: tagger\ntrain:\n  class_weights: {B-unit: 0}\n")
    with pytest.raises(RecipeError) as info:
        load(path)
    (problem,) = info.value.problems
    assert problem.startswith("train.class_weights.B-unit:")
