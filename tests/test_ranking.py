"""The ranking runner: schema, data, loss wrapper, real short training, probe, and the phase-switch wiring."""

from __future__ import annotations

import pytest
import torch

from bisector import registry
from bisector.probe import probe_checkpoint
from bisector.trial import TrialRequest, run_local
from runners import ranking
from runners.ranking import data as D
from runners.ranking.config import Data, Loss, RankingRecipe
from runners.ranking.loop import train
from runners.ranking.loss import PhaseSwitch, smooth_ap

SMALL = {"runner": "ranking", "data": {"train_rows": 3000, "val_rows": 600},
         "loss": {"warmup_steps": 20, "queue_size": 512}, "train": {"steps": 40, "batch_size": 128,
                                                                    "eval_every": 20, "checkpoint_every": 20}}


def _small(**loss) -> RankingRecipe:
    return RankingRecipe.model_validate({**SMALL, "loss": {**SMALL["loss"], **loss}})


def test_registry_resolves_the_builtin_and_its_hooks():
    runner = registry.resolve("ranking")
    recipe = _small()
    assert registry.phase_switch(runner, recipe) == 21
    assert registry.phase_switch(runner, _small(warmup_steps=0)) is None  # one phase only
    assert registry.phase_switch(registry.resolve("tagger"), object()) is None  # no hook, no switch
    rows = registry.symptoms(runner, "diverged")
    assert rows and "queue" in rows[0][1]
    assert registry.symptoms(runner, "collapsed") == [] and registry.symptoms(registry.resolve("tagger"), "flat") == []


def test_schema_refuses_a_rising_temperature_and_unknown_keys():
    with pytest.raises(ValueError, match="temp_end"):
        RankingRecipe.model_validate({"runner": "ranking", "loss": {"temp_start": 0.1, "temp_end": 0.5}})
    with pytest.raises(ValueError, match="queue_sise"):
        RankingRecipe.model_validate({"runner": "ranking", "loss": {"queue_sise": 3}})


def test_data_is_imbalanced_with_a_rare_class_and_depends_on_its_seed_only():
    spec = Data(train_rows=20000, val_rows=10)
    train_set, _ = D.load(spec)
    share = torch.bincount(train_set.y, minlength=spec.classes + 1).float() / len(train_set)
    assert 0.95 < share[0] < 0.97  # 4% positives
    assert share[-1] < 0.5 * share[1]  # the rare class is a quarter as frequent as the others
    again, _ = D.load(Data(train_rows=20000, val_rows=10, data_seed=spec.data_seed))
    assert torch.equal(again.x, train_set.x)


def test_smooth_ap_ranks_positives_first():
    labels = torch.tensor([1, 0, 0, 0, 1, 0])
    good = torch.zeros(6, 2)
    good[:, 1] = torch.tensor([5.0, -5, -4, -3, 4, -2])
    bad = good.clone()
    bad[:, 1] = -bad[:, 1]
    empty_s, empty_y = torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)
    assert smooth_ap(good, labels, empty_s, empty_y, 0.1)[0] < 0.01
    assert smooth_ap(bad, labels, empty_s, empty_y, 0.1)[0] > 0.6
    # a stale queue full of high-scoring negatives drags the same batch's AP down
    stale = torch.zeros(50, 2)
    stale[:, 1] = 10.0
    assert smooth_ap(good, labels, stale, torch.zeros(50, dtype=torch.long), 0.1)[0] > 0.9


@pytest.mark.parametrize("reset", [True, False])
def test_wrapper_switches_objective_and_resets_the_queue(reset):
    w = PhaseSwitch(Loss(warmup_steps=3, queue_size=10, queue_reset=reset), classes=2, device=torch.device("cpu"))
    scores, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    for step in (1, 2, 3):
        assert set(w.terms(scores, labels, step)) == {"ce"} and w.weights(step) == {"ce": 1.0}
        w.push(scores, labels, step)
    assert len(w.q_labels) == 10  # full of warmup-era scores at the switch (FIFO, size 10)
    assert set(w.terms(scores, labels, 4)) == {"ce", "rank"} and w.weights(4) == {"ce": 0.1, "rank": 1.0}
    assert len(w.q_labels) == (0 if reset else 10)
    assert w.temperature(4) == pytest.approx(0.5) and w.temperature(10_000) == pytest.approx(0.1)


def test_real_short_training_switches_phase_and_checkpoints_the_queue(tmp_path):
    recipe = _small(queue_reset=False)
    recs = list(train(recipe, out_dir=tmp_path, threads=1))
    assert [r["step"] for r in recs] == list(range(1, 41))
    assert all(r["phase"] == 0.0 and "rank" not in r for r in recs[:20])
    assert all(r["phase"] == 1.0 and 0.0 <= r["rank"] <= 1.0 for r in recs[20:])
    assert recs[20]["temperature"] == pytest.approx(0.5)
    assert recs[19]["val_map"] > recs[19]["val_ap.4"] >= 0.0 and "val_ap.1" in recs[39]
    assert recs[39]["ce"] < recs[0]["ce"]  # it learns
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 40
    state = torch.load(tmp_path / "checkpoints/step_000020.pt", weights_only=True)
    assert state["queue"]["q_scores"].shape == (512, 5) and state["step"] == 20
    report = probe_checkpoint(ranking, recipe, tmp_path / "checkpoints/step_000040.pt", batches=2)
    assert set(report.terms["all"]) == {"ce", "rank"} and report.primary == "rank"
    assert report.reductions["rank"][2].startswith("positive rows")


def test_reset_empties_the_queue_at_the_switch_in_training():
    kept = {r["step"]: r["queue"] for r in train(_small(queue_reset=False), threads=1)}
    reset = {r["step"]: r["queue"] for r in train(_small(queue_reset=True), threads=1)}
    assert kept[20] == reset[20] == 512
    assert kept[21] == 512 and reset[21] == 128  # emptied, then this batch pushed


@pytest.mark.parametrize(("report", "kind"), [(True, "stable"), (False, "diverged")])
def test_trial_restarts_the_detector_at_the_runners_phase_switch(report, kind):
    """The second objective starts at 3x the warmup's start: a climb unless judged from the switch."""
    req = TrialRequest("t", "tests.phase_runner", {"runner": "tests.phase_runner", "report_switch": report},
                       early_stop=False)
    result, records = run_local(req)
    assert len(records) == 900 and result["kind"] == kind
    if kind == "stable":
        assert result["start_value"] > 2.5  # the reference is the second phase's own start


def test_early_probe_is_taken_after_the_phase_switch():
    from types import SimpleNamespace

    from bisector.explain import targets

    bad = SimpleNamespace(out_dir="x", climb_start_step=520, name="bad")
    ckpts = {s: f"step_{s}.pt" for s in range(50, 901, 50)}
    before = [t.step for t in targets(bad, [], {}, lambda _d: ckpts)[0]]
    after = [t.step for t in targets(bad, [], {}, lambda _d: ckpts, since=301)[0]]
    assert before == [50, 500] and after == [350, 500]  # early in the ranking phase, not in its warmup
    assert [t.step for t in targets(bad, [], {}, lambda _d: ckpts, since=501)[0]] == [500]


def test_task_metrics_are_one_ap_loss_per_class_logged_from_step_one():
    recipe = _small()
    assert registry.task_metrics(ranking, recipe) == ["ap_loss.1", "ap_loss.2", "ap_loss.3", "ap_loss.4"]
    recs = list(train(recipe, threads=1))
    logged = [r["step"] for r in recs if "ap_loss.4" in r]
    assert logged == [1, 10, 20, 30, 40]  # step 1 is the untrained reference
    assert recs[19]["ap_loss.2"] == pytest.approx(1.0 - recs[19]["val_ap.2"])
    assert recs[39]["ap_loss.1"] < recs[0]["ap_loss.1"]  # class 1 learns


# A class that never improves (benchmarks/ranking.py --modes, 3/3 seeds): with 64-row batches a class with
# 10 training rows (rare_share 0.03) is an anchor in ~3% of steps and its AP stays at chance while the
# other classes improve >90%; the same recipe with the rare class at 67 rows (rare_share 0.25) learns it.
RARE = {"runner": "ranking", "loss": {"queue_size": 64}, "train": {"steps": 450, "batch_size": 64}}


@pytest.mark.parametrize(("rare_share", "kind"), [(0.03, "stagnant"), (0.25, "stable")])
def test_trial_judges_a_class_that_never_improves_stagnant_and_names_it(rare_share, kind):
    recipe = {**RARE, "data": {"rare_share": rare_share}}
    result, _ = run_local(TrialRequest("t", "ranking", recipe, threads=1, early_stop=False))
    assert result["kind"] == kind
    assert result["tasks"]["ap_loss.1"] > 0.5 and result["tasks"]["ap_loss.3"] > 0.5
    if kind == "stagnant":
        assert result["stagnant_task"] == "ap_loss.4" and result["tasks"]["ap_loss.4"] < 0.05
        assert "ap_loss.4 improved only" in result["note"]
    else:
        assert "stagnant_task" not in result and result["tasks"]["ap_loss.4"] > 0.5


# A run that never descends (benchmarks/ranking.py --only-modes --match "cold start", 3/3 seeds at 900
# steps): smooth-AP from scratch (no warmup, no CE) with SGD at T 2, far above the untrained scores' spread:
# the loss sits at 1 - the positives' share and val_map stays at its untrained level; Adam learns.
COLD = {"runner": "ranking", "data": {"train_rows": 3000, "val_rows": 600},
        "loss": {"warmup_steps": 0, "ce_weight": 0.0, "temp_start": 2.0, "temp_end": 2.0},
        "train": {"steps": 300, "batch_size": 128, "eval_every": 100, "checkpoint_every": 100}}


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_trial_judges_a_cold_start_at_a_high_temperature_flat_with_sgd_only(optimizer):
    recipe = {**COLD, "train": {**COLD["train"], "optimizer": optimizer}}
    result, records = run_local(TrialRequest("t", "ranking", recipe, threads=1, early_stop=False))
    final_map = [r["val_map"] for r in records if "val_map" in r][-1]
    if optimizer == "sgd":  # the verdict is honest: the model did not learn either
        assert result["kind"] == "flat" and final_map < 0.1
        assert result["last_value"] > 0.95 * result["start_value"]
    else:
        assert result["kind"] != "flat" and final_map > 0.5 and result["last_value"] < 0.5 * result["start_value"]


# Swings with no downward trend (benchmarks/ranking.py --only-modes --match "T 0.01", seeds 0-11): after the CE
# warmup the scores spread over several units; with T 0.01 throughout, lr 1e-2 and 128-row batches the ranking
# loss swings around where the switch left it (oscillating in 11 of 12 seeds, 0-10); the same temperature at
# good's lr 2e-3 and batch 256 is stable (11 of 12, seeds 0-6 and 8-11). At good's batch 256, lr 1e-2 alone was
# marginal on a second machine (1 of 3 seeds). Good's recipe is the schema's defaults; the evaluation cadence
# does not change training (no dropout, no randomness).
OSC = {"runner": "ranking", "loss": {"temp_start": 0.01, "temp_end": 0.01},
       "train": {"eval_every": 300, "checkpoint_every": 300}}


@pytest.mark.slow  # 900 steps x 3 seeds each (~15 s): shorter horizons do not swing (600 steps: 1 of 3 seeds)
@pytest.mark.parametrize(("lr", "batch_size"), [(0.01, 128), (0.002, 256)])
def test_trial_judges_a_temperature_far_below_the_score_scale_at_a_high_lr_oscillating(lr, batch_size):
    """Two seeds of three at least: the swing is a regime, not a trajectory, and a trajectory at T 0.01 is
    decided by floating-point detail (another CPU gave other verdicts for the same seeds of the old recipe)."""
    kinds, finals = [], []
    for seed in (0, 1, 2):
        recipe = {**OSC, "seed": seed, "train": {**OSC["train"], "lr": lr, "batch_size": batch_size}}
        result, records = run_local(TrialRequest("t", "ranking", recipe, threads=1, early_stop=False))
        kinds.append(result["kind"] if result["climb_start_step"] is None or result["kind"] != "oscillating"
                     else "oscillating with a climb start")
        finals.append([r["val_map"] for r in records if "val_map" in r][-1])
    if lr == 0.01:
        assert kinds.count("oscillating") >= 2, kinds
    else:  # it learns: final val_map 0.842, 0.908, 0.964 on seeds 0-2 here (0.84-0.96 over seeds 0-11)
        assert sum(k == "stable" and f > 0.8 for k, f in zip(kinds, finals, strict=True)) >= 2, (kinds, finals)
