"""The multitask runner: records, per-task stagnant judging in the trial, the starved-task probe and diagnosis.

Real short training runs (a few seconds each on one thread); the campaign
end to end on the small pair is at the bottom, the 3-seed evidence in
``benchmarks/multitask.py`` and the full pair in ``test_multitask_slow.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bisector import registry, starved
from bisector.explain import STAGNATING, ProbeTarget, targets
from bisector.ladder import Rung
from bisector.probe import probe_checkpoint
from bisector.tasks import TaskJudge
from bisector.trial import TrialRequest, run_local

ROOT = Path(__file__).resolve().parents[1]
GOOD, BAD = ROOT / "tests/recipes/multitask_good.yaml", ROOT / "tests/recipes/multitask_bad.yaml"
TASKS = ["loss_pointer", "loss_type", "loss_flag", "loss_countdown"]


def _recipe(path: Path, **train) -> dict:
    data = yaml.safe_load(path.read_text())
    data["train"] = {**data["train"], **train}
    return data


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The small pair trained once each, through the trial (as a campaign's worker runs it)."""
    out = {}
    for name, path in (("good", GOOD), ("bad", BAD)):
        d = tmp_path_factory.mktemp(name)
        res, recs = run_local(TrialRequest(name, "multitask", _recipe(path), str(d), threads=1))
        out[name] = (res, recs, d)
    return out


def test_records_carry_every_task_loss(runs):
    res, recs, d = runs["good"]
    assert len(recs) == res["steps_run"] == 400
    for rec in recs:
        assert set(TASKS) | {"step", "train_loss", "total", "grad_norm"} <= set(rec)
        assert rec["train_loss"] == pytest.approx(sum(rec[t] for t in TASKS))
    assert {"val_loss_countdown", "val_type_acc", "val_flag_acc"} <= set(recs[99])
    lines = (d / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 400
    assert sorted(p.name for p in (d / "checkpoints").glob("*.pt"))[0] == "step_000050.pt"


def test_bad_stagnates_on_countdown_in_the_trial(runs):
    res, _, _ = runs["bad"]
    assert res["kind"] == "stagnant" and res["stagnant_task"] == "loss_countdown"
    assert res["detected_at_step"] == res["steps_run"] == 400  # judged at the end: nothing stopped it early
    assert res["tasks"]["loss_countdown"] < 0.05
    assert all(res["tasks"][t] >= 0.10 for t in TASKS if t != "loss_countdown")
    assert "loss_countdown improved only" in res["note"]


def test_good_learns_every_task(runs):
    res, _, _ = runs["good"]
    assert res["kind"] == "stable" and "stagnant_task" not in res
    assert all(v >= 0.10 for v in res["tasks"].values()), res["tasks"]


def test_task_judge_needs_others_to_learn():
    """The fingerprint's rule, fed as a trial feeds it: one flat task among learning ones, then none learning."""
    judge = TaskJudge(["a", "b", "c"])
    for s in range(1, 301):
        judge.update({"step": s, "a": 1.0 + 0.001 * (s % 3), "b": 2.0 * 0.995 ** s, "c": 1.0 / (1 + s / 50)})
    out = judge.judge()
    assert out["stagnant_task"] == "a" and out["tasks"]["b"] > 0.5
    flat = TaskJudge(["a", "b"])
    for s in range(1, 301):
        flat.update({"step": s, "a": 1.0, "b": 1.0})
    assert "stagnant_task" not in flat.judge()
    assert TaskJudge(["only"]).judge() == {}


def test_runner_declares_its_tasks():
    runner = registry.resolve("multitask")
    recipe = runner.Recipe.model_validate(yaml.safe_load(BAD.read_text()))
    assert registry.task_metrics(runner, recipe) == TASKS
    assert registry.task_metrics(registry.resolve("tagger"), None) == []


def test_probe_names_the_starved_task_on_the_trunk(runs):
    res, _, d = runs["bad"]
    runner = registry.resolve("multitask")
    recipe = runner.Recipe.model_validate(_recipe(BAD))
    bad = Rung("bad", {}, "stagnant", detected_at_step=400, out_dir=str(d), stagnant_task="loss_countdown")
    found, why = targets(bad, [], {})
    assert why is None and found[-1].label == f"bad, {STAGNATING} (step 400)"
    report = probe_checkpoint(runner, recipe, found[-1].checkpoint, batches=4, label=found[-1].label)
    assert report.scope == "trunk"
    trunk = report.terms["trunk"]
    assert trunk["loss_countdown"].ratio_to_primary < 0.5  # starved against the pointer's 2 outputs
    assert report.reductions["loss_countdown"] == ("mean", 32 * 105, "timesteps")
    diag = starved.diagnose({found[-1].label: report}, "loss_countdown", runner.probe.REPAIRS)
    assert diag.starved == "loss_countdown" and "is starved" in diag.text and "sqrt(" in diag.text
    assert diag.repair == {"loss.normaliser": "grad_balance"}
    assert report.summary()["scope"] == "trunk" and set(report.summary()["terms"]) == set(TASKS)


def test_repair_knob_and_gates():
    knob = starved.repair_knob({"loss.normaliser": "grad_balance"}, {"loss.normaliser": "running_mean"})
    assert knob.paths == ("loss.normaliser",) and knob.good == ("grad_balance",) and knob.bad == ("running_mean",)
    assert starved.repair_knob({"loss.normaliser": "x"}, {"loss.normaliser": "x"}) is None
    bad = {"loss_pointer": 0.9, "loss_countdown": 0.01}
    ok = starved.gates({"loss_pointer": 0.85, "loss_countdown": 0.2}, bad, "loss_countdown")
    assert all(g["passed"] for g in ok.values())
    starve_other = starved.gates({"loss_pointer": 0.5, "loss_countdown": 0.2}, bad, "loss_countdown")
    assert not starve_other["others_hold"]["passed"] and starve_other["others_hold"]["value"] == ["loss_pointer"]
    assert not starved.gates({"loss_pointer": 0.9, "loss_countdown": 0.03}, bad, "loss_countdown")[
        "starved_improves"]["passed"]


def test_targets_still_probe_before_a_climb():
    bad = Rung("bad", {}, "diverged", climb_start_step=120, detected_at_step=200, out_dir="x")
    found, _ = targets(bad, [], {}, lambda _d: {50: "a", 100: "b", 150: "c"})
    assert [t.label for t in found] == ["bad, early (step 50)", "bad, before the climb (step 100)"]
    assert isinstance(found[0], ProbeTarget)
