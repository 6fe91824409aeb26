"""Shared fixtures: a directory to write small YAML recipes into."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes" / "tagger"


class RecipeDir:
    """``write(name, body)`` writes a recipe file and returns its path.

    ``body`` is YAML text (dedented) or a dict (dumped as YAML).
    """

    def __init__(self, path: Path):
        self.path = path

    def write(self, name: str, body: str | dict[str, Any]) -> Path:
        text = yaml.safe_dump(body, sort_keys=False) if isinstance(body, dict) else textwrap.dedent(body)
        target = self.path / name
        target.write_text(text)
        return target

    def __call__(self, name: str, body: str | dict[str, Any]) -> Path:
        return self.write(name, body)


@pytest.fixture
def recipe_dir(tmp_path: Path) -> RecipeDir:
    return RecipeDir(tmp_path)


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes into the checkout: MLflow's sqlite stores put artifacts in ./mlruns by default."""
    monkeypatch.chdir(tmp_path)
