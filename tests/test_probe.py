"""The probe's numbers where the answer is known analytically, the diagnosis rules and the repair gates."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from bisector import explain
from bisector.cli import app
from bisector.probe import ProbeReport, probe_model


class Two(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.left = nn.Linear(4, 3)
        self.right = nn.Linear(3, 1)

    def forward(self, x):
        return self.right(torch.tanh(self.left(x)))


def batches(n=4, rows=16):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(rows, 4, generator=g) for _ in range(n)]


def test_opposite_terms_have_cosine_minus_one_and_cancelled_share():
    def terms(model, x):
        loss = (model(x) ** 2).mean()
        return {"a": loss, "b": -loss}

    r = probe_model(Two(), batches(), terms, {"a": 1.0, "b": 0.5}, "a")
    pair = r.pair("a", "b")
    assert pair.cosine == pytest.approx(-1.0, abs=1e-12) and pair.conflict
    assert pair.magnitude_similarity == pytest.approx(1.0, abs=1e-12)
    t = r.terms["all"]
    # g = 1*g_a + 0.5*(-g_a) = 0.5 g_a: a carries 200% of the update, b is cancelling it (-100%)
    assert t["a"].projection_share == pytest.approx(2.0, abs=1e-9)
    assert t["b"].projection_share == pytest.approx(-1.0, abs=1e-9)
    assert t["a"].norm_median == pytest.approx(t["b"].norm_median, rel=1e-12)
    assert t["b"].weighted_share == pytest.approx(1 / 3, rel=1e-9)


def test_sum_reduction_scales_the_gradient_by_exactly_n():
    rows = 16

    def terms(model, x):
        per_row = model(x).squeeze(1) ** 2
        return {"mean": per_row.mean(), "sum": per_row.sum()}

    r = probe_model(Two(), batches(rows=rows), terms, {"mean": 1.0, "sum": 1.0}, "mean")
    t = r.terms["all"]
    assert t["sum"].ratio_to_primary == pytest.approx(rows, rel=1e-12)  # N, not sqrt(N)
    assert t["sum"].norm_min == pytest.approx(rows * t["mean"].norm_min, rel=1e-12)
    assert r.pair("mean", "sum").cosine == pytest.approx(1.0, abs=1e-12)
    assert t["mean"].projection_share + t["sum"].projection_share == pytest.approx(1.0)
    assert t["sum"].projection_share == pytest.approx(rows / (rows + 1), rel=1e-9)


def test_per_module_scopes_show_where_a_term_acts():
    def terms(model, x):
        h = torch.tanh(model.left(x))
        return {"full": (model.right(h) ** 2).mean(), "left_only": (h ** 2).mean()}

    r = probe_model(Two(), batches(), terms, {"full": 1.0, "left_only": 1.0}, "full")
    assert set(r.terms) == {"all", "left", "right"}
    assert r.terms["right"]["left_only"].norm_max == 0.0
    assert r.terms["left"]["left_only"].norm_min > 0
    assert r.pair("full", "left_only", "right").cosine == 0.0


def test_eval_mode_and_float64_accumulation_are_deterministic():
    def terms(model, x):
        assert not model.training
        return {"a": (model(x) ** 2).mean(), "b": model(x).abs().mean()}

    one = probe_model(Two(), batches(), terms, {"a": 1.0, "b": 1.0}, "a").to_json()
    two = probe_model(Two(), batches(), terms, {"a": 1.0, "b": 1.0}, "a").to_json()
    assert one == two
    assert ProbeReport.from_json(json.loads(json.dumps(one))).to_json() == one


def _report(step: int, cos: float, ratio: float, proj: float, label: str) -> ProbeReport:
    from bisector.probe import PairStats, TermStats

    r = ProbeReport("ce", {"ce": 1.0, "crf_nll": 0.05}, 8, label=label, step=step)
    w_ce, w_crf = 1.0, ratio
    r.terms = {"all": {
        "ce": TermStats(1.0, 1.0, 1.0, 1.0, 1.0, w_ce, w_ce / (w_ce + w_crf), 1 - proj),
        "crf_nll": TermStats(20 * ratio, 20 * ratio, 20 * ratio, 20 * ratio, 0.05, w_crf, w_crf / (w_ce + w_crf),
                             proj)}}
    r.pairs = {"all": [PairStats("ce", "crf_nll", cos, cos < 0, 0.5)]}
    return r


def test_diagnosis_blames_a_conflicting_dominant_term():
    reports = {
        "bad, early (step 50)": _report(50, +0.6, 11.0, 0.95, "bad, early (step 50)"),
        "bad, before the climb (step 100)": _report(100, -0.6, 1.7, 1.08, "bad, before the climb (step 100)"),
        "revert model.crf_reduction, stable (step 100)": _report(100, +0.66, 0.1, 0.06, "x"),
    }
    who = {"revert model.crf_reduction, stable (step 100)": "stable revert of model.crf_reduction"}
    d = explain.diagnose(reports, 128, {"crf_nll": "model.crf_loss_weight"}, who)
    assert d.aggressor == "crf_nll" and d.repair_knob == "model.crf_loss_weight"
    assert "opposes it (cos -0.60)" in d.text
    assert "stable revert of model.crf_reduction at the same step they agree (cos +0.66" in d.text
    assert "before the climb at 128" in d.text


def test_diagnosis_does_not_blame_on_magnitude_alone():
    reports = {"bad, before the climb (step 100)": _report(100, +0.4, 30.0, 0.97, "bad, before the climb")}
    d = explain.diagnose(reports, 128, {"crf_nll": "model.crf_loss_weight"})
    assert d.aggressor is None and d.repair_knob is None
    assert "magnitude alone blames no term" in d.text


def test_repair_gates():
    curve = [(t, 2.0 * 0.99 ** t + 0.01) for t in range(1, 600)]
    evals = {"val_macro_f1": [(100, 0.5), (200, 0.95), (300, 0.97)],
             "val_f1.B-road": [(100, 0.4), (200, 0.9), (300, 0.92)],
             "val_f1.I-road": [(100, 0.4), (200, 0.9), (300, 0.3)]}
    g = explain.gates(curve, evals, "val_macro_f1", "val_f1.", min_val=0.9)
    assert g["no_climb"]["passed"] and g["min_val"]["passed"] and g["min_val"]["value"] == 0.97
    assert not g["no_class_collapse"]["passed"] and g["no_class_collapse"]["value"] == ["I-road"]
    climbing = curve + [(600 + t, 0.02 + 0.01 * t) for t in range(100)]
    assert not explain.gates(climbing, evals, "val_macro_f1", "val_f1.", 0.99)["no_climb"]["passed"]
    assert not explain.gates(curve, evals, "val_macro_f1", "val_f1.", 0.99)["min_val"]["passed"]


@pytest.fixture(scope="module")
def tagger_checkpoint(tmp_path_factory):
    import yaml

    from runners.tagger import TaggerRecipe, train

    tmp = tmp_path_factory.mktemp("probe")
    raw = {"runner": "tagger", "data": {"corpus": "v2", "train_rows": 400, "val_rows": 50},
           "model": {"crf_reduction": "sum"}, "train": {"steps": 20, "eval_every": 10, "checkpoint_every": 10}}
    recipe = tmp / "r.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    for _ in train(TaggerRecipe.model_validate(raw), out_dir=tmp / "out", threads=1):
        pass
    return recipe, tmp / "out/checkpoints/step_000020.pt"


def test_probe_command_on_a_tagger_checkpoint(tagger_checkpoint):
    recipe, ckpt = tagger_checkpoint
    res = CliRunner().invoke(app, ["probe", str(ckpt), "--recipe", str(recipe), "--batches", "3", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["step"] == 20 and out["batches"] == 3 and out["primary"] == "ce"
    terms = out["terms"]["all"]
    assert set(terms) == {"ce", "crf_nll"}
    assert sum(t["weighted_share"] for t in terms.values()) == pytest.approx(1.0)
    assert sum(t["projection_share"] for t in terms.values()) == pytest.approx(1.0)
    assert {"embedding", "encoder", "emission", "crf"} <= set(out["terms"])
    assert "summed over 32 sequences" in out["note"] and "not its square root" in out["note"]


def test_probe_command_bad_input(tagger_checkpoint, tmp_path):
    recipe, _ = tagger_checkpoint
    res = CliRunner().invoke(app, ["probe", str(tmp_path / "nope.pt"), "--recipe", str(recipe)])
    assert res.exit_code == 2 and "no such checkpoint file" in res.stderr
