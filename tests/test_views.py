"""The MLflow view of a campaign: markdown tables that render, run names, colours, notes, links, curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bisector import links
from bisector.ladder import Ladder, Rung
from bisector.verdicts import Result
from bisector.views import markdown, mlflow_ui
from bisector.views.html import ladder_html

DATA = Path(__file__).parent / "data" / "ladder_small.json"


@pytest.fixture
def ladder() -> Ladder:
    """A real campaign's ladder (the small tagger pair: two culprits that fail only together, a probe, a repair)."""
    return Ladder.from_json(json.loads(DATA.read_text()))


def _names(ladder: Ladder) -> dict[str, str]:
    return {r.name: mlflow_ui.child_name(i, r.name, mlflow_ui.verdict_word(r)) for i, r in enumerate(ladder.rungs, 1)}


def _check_tables(text: str) -> int:
    """Every table's rows have the header's cell count, and the second row is the separator."""
    found = markdown.tables(text)
    for rows in found:
        width = len(rows[0])
        assert all(len(r) == width for r in rows), [len(r) for r in rows]
        assert all(set(c) <= {"-", ":"} and c for c in rows[1])
    return len(found)


def test_a_pipe_in_a_cell_is_escaped_and_the_table_keeps_its_width():
    lines = markdown.table(["a", "|g| norm"], [["x|y", "1"], ["multi\nline", ""]])
    assert markdown.split_row(lines[0]) == ["a", "\\|g\\| norm"]
    assert [len(markdown.split_row(line)) for line in lines] == [2, 2, 2, 2]
    assert markdown.split_row(lines[3]) == ["multi line", "-"]
    with pytest.raises(ValueError):
        markdown.table(["a"], [["1", "2"]])


def test_unescaped_pipes_are_caught_by_the_table_check():
    with pytest.raises(AssertionError):
        _check_tables("| a | b |\n|---|---|\n| |g| | 2 |\n")


def test_every_markdown_table_renders(ladder):
    names = _names(ladder)
    hint = links.store_hint("sqlite:///mlflow.db")
    assert _check_tables(markdown.ladder_md(ladder, names, hint)) == 2  # the ladder and the probe
    assert _check_tables(markdown.probe_md(ladder.probe)) == 1
    assert "\\|g\\|" in markdown.probe_md(ladder.probe)
    note = mlflow_ui.parent_note(ladder, names, {r.name: f"http://h/#/r/{r.run_id}" for r in ladder.rungs})
    assert _check_tables(note) == 2  # culprits and ladder
    for rung in ladder.rungs:
        _check_tables(mlflow_ui.child_note(rung, "train_ce", "tagger"))


def test_names_say_what_was_bisected_what_was_found_and_each_verdict(ladder):
    assert mlflow_ui.parent_name("tagger", ladder) == "tagger: data.corpus + model.crf_reduction (only together)"
    assert mlflow_ui.parent_name("tagger") == "tagger: bisecting"
    names = _names(ladder)
    assert names["good"] == "01 [stable] good"
    assert names["bad"] == "02 [diverged] bad"
    assert names["revert model.hidden_size"] == "04 [diverged] revert model.hidden_size"
    assert names["repair crf_nll"] == "08 [stable, gates passed] repair crf_nll"
    assert sorted(names.values()) == list(names.values())  # sorting by name gives the ladder order
    assert mlflow_ui.child_name(3, "revert train.lr", "running") == "03 revert train.lr"
    assert mlflow_ui.child_name(3, "revert train.lr", attempt=2) == "03 revert train.lr (attempt 2)"


def test_found_for_other_answers(ladder):
    either = Ladder("g", "b", "auto", culprits=ladder.culprits, groups=[["a"], ["b"]],
                    structure="either alone breaks training", result=Result.CULPRITS)
    assert mlflow_ui.found(either) == "a, b (either alone)"
    assert mlflow_ui.found(Ladder("g", "b", "auto", result=Result.BAD_DOES_NOT_FAIL)) == "no culprit: bad does not fail"
    unsure = Ladder("g", "b", "auto", culprits=ladder.culprits[:1], result=Result.NOT_CONFIDENT)
    assert mlflow_ui.found(unsure) == "not confident, best guess data.corpus"
    assert mlflow_ui.found(Ladder("g", "b", "auto", not_finished="budget")) == "not finished"


def test_colours_follow_the_verdict_with_distinct_shades(ladder):
    colours = mlflow_ui.colours(ladder)
    fixes = [colours[r.name] for r in ladder.rungs if mlflow_ui.family(r) == "fixed"]
    assert len(fixes) == 4 and len(set(fixes)) == 4 and set(fixes) <= set(mlflow_ui.FIXED)
    assert colours["revert model.hidden_size"] in mlflow_ui.FAILED
    assert colours["good"] == mlflow_ui.GOOD and colours["bad"] == mlflow_ui.BAD
    assert colours["repair crf_nll"] == mlflow_ui.REPAIR
    families = {mlflow_ui.FAILED, mlflow_ui.FIXED, mlflow_ui.DEGRADED, mlflow_ui.UNTESTED}
    assert all(not (set(a) & set(b)) for a in families for b in families if a is not b)
    degraded = Rung("revert x", {"x": {"good": 1, "bad": 2}}, "degraded", role="revert")
    assert mlflow_ui.family(degraded) == "degraded"
    failed_repair = Rung("repair t", {}, "stable", role="repair", gates={"min_val": {"passed": False}})
    assert mlflow_ui.family(failed_repair) == "failed"
    assert mlflow_ui.family(Rung("revert y", {}, "error", role="revert")) == "untested"


def test_parent_note_opens_with_the_answer_and_fits_a_tag(ladder):
    note = mlflow_ui.parent_note(ladder, _names(ladder))
    first = note.splitlines()[0]
    assert first.startswith("## Culprits: data.corpus + model.crf_reduction (only together)")
    assert "confidence" in first
    order = [note.index(h) for h in ("### Ladder", "### Diagnosis", "### Repair", "Cost:")]
    assert order == sorted(order)
    many = Ladder.from_json(json.loads(DATA.read_text()))
    many.rungs = [Rung(f"revert knob.{i}", {f"knob.{i}": {"good": "x" * 60, "bad": "y" * 60}}, "diverged",
                       role="revert") for i in range(200)]
    big = mlflow_ui.parent_note(many, {})
    assert len(big) <= mlflow_ui.NOTE_LIMIT and big.startswith("## Culprits") and "more rungs in `ladder.md`" in big
    _check_tables(big)


def test_child_note_warns_that_an_early_val_score_is_not_the_end(ladder):
    bad = next(r for r in ladder.rungs if r.name == "bad")
    note = mlflow_ui.child_note(bad, "train_ce", "tagger: x", (150, {"val_macro_f1": 1.0, "val_f1.B-road": 1.0}))
    assert note.startswith("**bad: diverged**")
    assert "last measured at step 150, before the climb started at step 212" in note
    assert "do not describe a good model" in note and "val_f1.B-road" not in note
    good = next(r for r in ladder.rungs if r.name == "good")
    assert "last measured" not in mlflow_ui.child_note(good, "train_ce", "t", (450, {"val_macro_f1": 1.0}))
    revert = next(r for r in ladder.rungs if r.name == "revert data.corpus")
    assert "data.corpus: 'v2' -> 'v1'" in mlflow_ui.child_note(revert, "train_ce", "t")
    revert.reused = True
    assert f"finished earlier as run `{revert.run_id}`" in mlflow_ui.child_note(revert, "train_ce", "t")


def test_links_and_reproduce_commands():
    assert links.ui_base("http://127.0.0.1:5000/") == "http://127.0.0.1:5000"
    assert links.ui_base("sqlite:////tmp/x.db") is None
    url = links.run_url("http://h:1", "7", "abc")
    assert url == "http://h:1/#/experiments/7/runs/abc?workflowType=machine_learning"
    trials = links.trials_url("http://h:1", "7", "abc")
    assert "compareRunsMode=CHART" in trials and "orderByKey=tags.%60mlflow.runName%60" in trials
    assert "searchFilter=tags.mlflow.parentRunId%20%3D%20%27abc%27" in trials
    local = links.reproduce("sqlite:////home/me/mlflow.db", "r1")
    assert "/home/me" not in local and local.startswith("MLFLOW_TRACKING_URI=$MLFLOW_TRACKING_URI ")
    assert "sqlite:////home/me/mlflow.db" in links.store_hint("sqlite:////home/me/mlflow.db")
    assert links.reproduce("http://srv:5000", "r1").startswith("MLFLOW_TRACKING_URI=http://srv:5000 ")
    assert links.store_hint("http://srv:5000") is None
    assert links.landing("sqlite:///mlflow.db", "1", "p")[0].startswith("MLflow: mlflow ui --backend-store-uri")


def test_ladder_html_is_complete_and_links_each_rung(ladder):
    names = _names(ladder)
    urls = {r.name: links.run_url("http://h:1", "1", r.run_id) for r in ladder.rungs}
    page = ladder_html(ladder, b"\x89PNG fake", names, urls, "set it")
    for part in ("Culprits: data.corpus + model.crf_reduction", "Structure:", "Gradient probe", "|g| median",
                 "Diagnosis:", "Repair", "no_climb", "Cost", "data:image/png;base64,", "Reproduce a rung", "set it",
                 "02 [diverged] bad"):
        assert part in page, part
    for rung in ladder.rungs:
        assert f"runs/{rung.run_id}?workflowType=machine_learning" in page
    plain = ladder_html(ladder, None, names, {}, None)
    assert all(f"<code>{r.run_id}</code>" in plain for r in ladder.rungs)


def test_curves_png_zooms_on_the_failures(ladder):
    from bisector.views.png import culprit_rungs, curves_png, zoom_window

    curves = {r.name: [(s, 2.7 * (0.99 ** s) + (0.01 * (s - 200) if r.verdict == "diverged" and s > 200 else 0))
                       for s in range(1, r.steps_run + 1)] for r in ladder.rungs}
    lo, hi = zoom_window(ladder, curves)
    assert lo < 195 and 323 < hi < 450
    assert culprit_rungs(ladder) == {"bad", "revert data.corpus", "revert model.crf_reduction",
                                     "revert data.corpus (seed +1)", "revert model.crf_reduction (seed +1)"}
    png = curves_png(ladder, curves, "train_ce")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
