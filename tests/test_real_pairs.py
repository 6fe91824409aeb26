"""Real campaigns on the tagger's search pairs (``recipes/tagger/pairs/``): real Ray, real sqlite MLflow, real training.

Each pair is a structure the search must get right from training dynamics alone (README "Real campaigns on
the tagger"): two independent failures (the summed CRF loss with corpus v2, a learning rate 100x too high),
one culprit among 12 knobs, and a bad recipe that does not fail. The reference pair ("only together") is
``make demo`` and ``test_campaign_e2e.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bisector.verdicts import FAILURES, Kind

from ._servers import SLOTS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "recipes/tagger/pairs"


def _campaign(tmp: Path, bad: str) -> tuple[int, dict]:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "bisector", "run", str(PAIRS / "base.yaml"), str(PAIRS / bad), "--json",
         "--no-probe", "--tracking-uri", f"sqlite:///{tmp}/mlflow.db", "--workdir", str(tmp / "work"), *SLOTS],
        capture_output=True, text=True, cwd=tmp, env=env, timeout=1500,
    )
    assert proc.stdout.strip(), proc.stderr[-3000:]
    return proc.returncode, json.loads(proc.stdout)


def test_an_or_pair_names_both_knobs(tmp_path):
    code, out = _campaign(tmp_path, "or.yaml")
    assert code == 0, out
    assert out["result"] == "culprits" and out["structure"] == "either alone breaks training"
    assert sorted(c["path"] for c in out["culprits"]) == ["model.crf_reduction", "train.lr"]
    assert out["confidence"] >= 0.95
    by_name = {r["name"]: r for r in out["ladder"]}
    assert by_name["good"]["verdict"] == "stable"
    assert Kind(by_name["bad"]["verdict"]) in FAILURES  # both at once may never descend (flat)


def test_one_culprit_among_twelve_knobs(tmp_path):
    code, out = _campaign(tmp_path, "single.yaml")
    assert code == 0, out
    assert out["result"] == "culprits" and out["structure"] == "single"
    assert [c["path"] for c in out["culprits"]] == ["model.crf_reduction"]
    # fewer trials than one revert per knob plus the endpoints (oat: 14)
    assert len(out["ladder"]) < 14


def test_a_bad_recipe_that_does_not_fail_is_said_so(tmp_path):
    code, out = _campaign(tmp_path, "nofail.yaml")
    assert code == 4, out
    assert out["result"] == "bad_does_not_fail" and not out["culprits"]
