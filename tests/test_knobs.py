"""bisector.knobs: diffing validated recipes into knobs, grouping, toggling."""

from __future__ import annotations

import pytest

from bisector.errors import DiffError, RecipeError
from bisector.knobs import Knob, diff, flatten, parse_groups, toggle
from bisector.recipe import load

from .conftest import RECIPES

SEVEN = [
    "data.corpus", "data.tokenizer", "model.hidden_size", "model.phrase_priors",
    "model.crf_reduction", "train.lr", "train.class_weights",
]


@pytest.fixture(scope="module")
def good():
    return load(RECIPES / "good.yaml")


@pytest.fixture(scope="module")
def bad():
    return load(RECIPES / "bad.yaml")


def test_reference_pair_has_exactly_seven_knobs(good, bad):
    knobs = diff(good, bad)
    assert [k.name for k in knobs] == SEVEN
    assert all(len(k.paths) == 1 for k in knobs)
    by = {k.name: k for k in knobs}
    assert by["data.corpus"].good == ("v1",) and by["data.corpus"].bad == ("v2",)
    assert by["model.hidden_size"].good == (64,) and by["model.hidden_size"].bad == (96,)
    assert by["train.lr"].changes() == {"train.lr": {"good": 3e-3, "bad": 2.5e-3}}


def test_absent_key_equals_its_default(recipe_dir):
    a = load(recipe_dir("a.yaml", "runner: tagger\nmodel:\n  hidden_size: 32\n"))
    b = load(recipe_dir("b.yaml", "runner: tagger\nmodel:\n  hidden_size: 48\n  dropout: 0.1\n"))
    assert [k.name for k in diff(a, b)] == ["model.hidden_size"]


def test_seed_is_not_a_knob(recipe_dir):
    a = load(recipe_dir("a.yaml", "runner: tagger\nseed: 1\ntrain:\n  lr: 0.01\n"))
    b = load(recipe_dir("b.yaml", "runner: tagger\nseed: 2\ntrain:\n  lr: 0.02\n"))
    assert [k.name for k in diff(a, b)] == ["train.lr"]


def test_seed_only_difference_is_nothing_to_bisect(recipe_dir):
    a = load(recipe_dir("a.yaml", "runner: tagger\nseed: 1\n"))
    b = load(recipe_dir("b.yaml", "runner: tagger\nseed: 2\n"))
    with pytest.raises(DiffError, match="nothing to bisect"):
        diff(a, b)


def test_dict_valued_setting_is_one_knob(recipe_dir):
    a = load(recipe_dir("a.yaml", "runner: tagger\ntrain:\n  class_weights: {B-unit: 2.0}\n"))
    b = load(recipe_dir("b.yaml", "runner: tagger\ntrain:\n  class_weights: {B-unit: 3.0, I-unit: 2.0}\n"))
    (knob,) = diff(a, b)
    assert knob.paths == ("train.class_weights",)
    assert knob.good == ({"B-unit": 2.0},)
    assert knob.bad == ({"B-unit": 3.0, "I-unit": 2.0},)


def test_atomic_tokenizer_is_one_knob(recipe_dir):
    a = load(recipe_dir("a.yaml", "runner: tagger\n"))
    b = load(recipe_dir("b.yaml", "runner: tagger\ndata:\n  tokenizer: {scheme: hash, vocab_size: 512}\n"))
    (knob,) = diff(a, b)
    assert knob.paths == ("data.tokenizer",)
    assert knob.good == ({"scheme": "word", "vocab_size": 2000, "lowercase": True},)
    assert knob.bad == ({"scheme": "hash", "vocab_size": 512, "lowercase": True},)


def test_flatten_descends_sections_but_not_atomic_models(good):
    flat = flatten(good.model)
    assert flat["data.tokenizer"] == {"scheme": "word", "vocab_size": 2000, "lowercase": True}
    assert "data.tokenizer.scheme" not in flat
    assert flat["model.hidden_size"] == 64
    assert "model" not in flat and "runner" in flat


def test_group_toggles_as_one_knob(good, bad):
    knobs = diff(good, bad, parse_groups(["data.corpus, model.crf_reduction"]))
    names = [k.name for k in knobs]
    assert names[0] == "data.corpus+model.crf_reduction"
    assert len(knobs) == 6
    assert sorted(names[1:]) == sorted(set(SEVEN) - {"data.corpus", "model.crf_reduction"})
    grouped = knobs[0]
    assert grouped.paths == ("data.corpus", "model.crf_reduction")
    assert grouped.good == ("v1", "token_mean")
    assert grouped.bad == ("v2", "sum")
    assert grouped.changes() == {
        "data.corpus": {"good": "v1", "bad": "v2"},
        "model.crf_reduction": {"good": "token_mean", "bad": "sum"},
    }


def test_parse_groups_strips_and_drops_empty_parts():
    assert parse_groups([" a.b , c.d,", "e.f"]) == [["a.b", "c.d"], ["e.f"]]
    assert parse_groups(None) == []


def test_unknown_group_path(good, bad):
    with pytest.raises(DiffError) as info:
        diff(good, bad, parse_groups(["data.corpus,model.hiden_size"]))
    assert "['model.hiden_size']" in str(info.value)
    assert "--group" in str(info.value)


def test_identical_recipes(good):
    with pytest.raises(DiffError, match="nothing to bisect") as info:
        diff(good, good)
    assert str(RECIPES / "good.yaml") in str(info.value)


def test_identical_after_validation(recipe_dir):
    a = load(recipe_dir("a.yaml", "runner: tagger\n"))
    b = load(recipe_dir("b.yaml", "runner: tagger\nmodel:\n  hidden_size: 64\ntrain:\n  lr: 0.003\n"))
    with pytest.raises(DiffError, match="same recipe after validation"):
        diff(a, b)


def test_different_runners(good, recipe_dir):
    other = load(recipe_dir("fake.yaml", "runner: tests.fake_runner\n"))
    with pytest.raises(DiffError) as info:
        diff(good, other)
    msg = str(info.value)
    assert "runner 'tagger'" in msg and "'fake'" in msg
    assert str(other.path) in msg


def test_toggle_applies_good_values(good, bad):
    knobs = diff(good, bad)
    by = {k.name: k for k in knobs}
    one = toggle(bad, [by["model.crf_reduction"], by["data.tokenizer"]], "good")
    assert one.model.crf_reduction == "token_mean"
    assert one.data.tokenizer.scheme == "word" and one.data.tokenizer.vocab_size == 2000
    # everything else stays bad
    assert one.data.corpus == "v2" and one.model.hidden_size == 96
    assert one.train.class_weights == {"B-unit": 2.0, "I-unit": 2.0}
    # the base recipe is untouched
    assert bad.model.model.crf_reduction == "sum"


def test_toggle_all_knobs_gives_the_good_recipe(good, bad):
    assert toggle(bad, diff(good, bad), "good") == good.model
    assert toggle(good, diff(good, bad), "bad") == bad.model


def test_toggle_invalid_recipe_raises_recipe_error(bad):
    knob = Knob(("model.crf_reduction", "train.lr"), ("mean", -1.0), ("sum", 2.5e-3))
    with pytest.raises(RecipeError) as info:
        toggle(bad, [knob], "good")
    err = info.value
    assert len(err.problems) == 2
    assert "model.crf_reduction+train.lr set to good" in err.path
    assert sorted(p.split(":", 1)[0] for p in err.problems) == ["model.crf_reduction", "train.lr"]


def test_campaign_records_an_invalid_toggle_and_skips_it(tmp_path):
    """Reverting the encoder alone gives a transformer with 90 units (4 heads need a multiple of 4):
    the trial is recorded as invalid and never launched."""
    from bisector import campaign

    good = tmp_path / "good.yaml"
    bad = tmp_path / "bad.yaml"
    good.write_text("runner: tagger\nmodel:\n  encoder: transformer\n  hidden_size: 64\n")
    bad.write_text("runner: tagger\nmodel:\n  encoder: lstm\n  hidden_size: 90\n")
    p = campaign.plan(str(good), str(bad))
    c = campaign._Campaign(p, campaign.Options(strategy="oat"), tracker=None, hooks=[])
    spec = next(s for s in c.strategy.reverts if s.name == "revert model.encoder")
    assert c.start(spec, sched=None) == "invalid"
    (rung,) = c.ladder.rungs
    assert rung.verdict == "invalid" and "divisible by 4" in rung.note
    assert c.launched == 0 and not c.strategy.result().culprits
