"""Bad input on the command line: exit code 2, one message naming the file and
field, no traceback, and nothing written to MLflow or the work directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bisector import __version__, campaign
from bisector.cli import app

from .conftest import RECIPES, REPO

BISECTOR = Path(sys.executable).parent / "bisector"
GOOD, BAD = str(RECIPES / "good.yaml"), str(RECIPES / "bad.yaml")


class _NoScheduler:
    """Stands in for RayScheduler: bad input must never get this far."""

    def __init__(self, *a, **k):
        raise AssertionError("a campaign with bad input reached the scheduler")


@pytest.fixture
def cli(monkeypatch, tmp_path):
    monkeypatch.setattr(campaign, "RayScheduler", _NoScheduler)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


def _extra(command: str, tmp_path: Path) -> list[str]:
    if command == "run":
        return ["--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "--workdir", str(tmp_path / "wd")]
    return []


def _check_bad_input(result, command: str, tmp_path: Path) -> str:
    """Exit 2 with one `error:` message on stderr; no traceback; no trace left."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error: ")
    assert result.stdout == ""
    if command == "run":
        assert not (tmp_path / "mlflow.db").exists()
        assert not (tmp_path / "wd").exists()
        assert not (tmp_path / "mlruns").exists()
    return result.stderr


COMMANDS = ["run", "diff"]


@pytest.mark.parametrize("command", COMMANDS)
def test_missing_file(cli, tmp_path, command):
    missing = str(tmp_path / "nope.yaml")
    msg = _check_bad_input(cli(command, GOOD, missing, *_extra(command, tmp_path)), command, tmp_path)
    assert f"{missing}: no such file" in msg


@pytest.mark.parametrize("command", COMMANDS)
def test_invalid_yaml(cli, recipe_dir, tmp_path, command):
    broken = recipe_dir("broken.yaml", "runner: tagger\nmodel:\n  hidden_size: 64\n    dropout: 0.1\n")
    msg = _check_bad_input(cli(command, str(broken), BAD, *_extra(command, tmp_path)), command, tmp_path)
    assert f"{broken}: invalid YAML at line 4, column 12" in msg


@pytest.mark.parametrize("command", COMMANDS)
def test_schema_violations_all_at_once(cli, recipe_dir, tmp_path, command):
    bad = recipe_dir("bad.yaml", """\
        runner: tagger
        model:
          hiden_size: 96
          crf_reduction: mean
        train:
          lr: -0.001
          class_weights: {B-street: 2.0}
        """)
    msg = _check_bad_input(cli(command, GOOD, str(bad), *_extra(command, tmp_path)), command, tmp_path)
    assert f"{bad}: 4 problems" in msg
    assert "model.hiden_size: unknown key; did you mean 'model.hidden_size'?" in msg
    for path in ("model.crf_reduction:", "train.lr:", "train.class_weights:"):
        assert path in msg


@pytest.mark.parametrize("command", COMMANDS)
def test_good_is_validated_too(cli, recipe_dir, tmp_path, command):
    good = recipe_dir("good.yaml", "runner: tagger\ntrain:\n  steps: 0\n")
    msg = _check_bad_input(cli(command, str(good), BAD, *_extra(command, tmp_path)), command, tmp_path)
    assert f"{good}: train.steps:" in msg


@pytest.mark.parametrize("command", COMMANDS)
def test_different_runners(cli, recipe_dir, tmp_path, command):
    fake = recipe_dir("fake.yaml", "runner: tests.fake_runner\n")
    msg = _check_bad_input(cli(command, GOOD, str(fake), *_extra(command, tmp_path)), command, tmp_path)
    assert f"{GOOD} uses runner 'tagger' but {fake} uses 'fake'" in msg


@pytest.mark.parametrize("command", COMMANDS)
def test_identical_recipes(cli, recipe_dir, tmp_path, command):
    same = recipe_dir("same.yaml", (RECIPES / "good.yaml").read_text().replace("seed: 0", "seed: 7"))
    msg = _check_bad_input(cli(command, GOOD, str(same), *_extra(command, tmp_path)), command, tmp_path)
    assert "nothing to bisect" in msg
    assert str(same) in msg


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_group_path(cli, tmp_path, command):
    result = cli(command, GOOD, BAD, "--group", "data.corpus,model.hiden_size", *_extra(command, tmp_path))
    msg = _check_bad_input(result, command, tmp_path)
    assert "--group names unknown paths ['model.hiden_size']" in msg


def test_smoke_missing_file(cli, tmp_path):
    missing = str(tmp_path / "nope.yaml")
    result = cli("smoke", missing)
    msg = _check_bad_input(result, "smoke", tmp_path)
    assert f"{missing}: no such file" in msg


def test_diff_json_lists_the_knobs(cli):
    result = cli("diff", GOOD, BAD, "--json", "--group", "data.corpus,model.crf_reduction")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["path"] for r in rows] == [
        "data.corpus+model.crf_reduction", "data.tokenizer", "model.hidden_size", "model.phrase_priors",
        "train.lr", "train.class_weights",
    ]
    assert rows[0] == {"path": "data.corpus+model.crf_reduction", "good": ["v1", "token_mean"],
                       "bad": ["v2", "sum"]}
    assert rows[-1] == {"path": "train.class_weights", "good": None, "bad": {"B-unit": 2.0, "I-unit": 2.0}}


# --- as users see it: the installed console script in a subprocess -----------------


def _bisector(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "COLUMNS": "200"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([str(BISECTOR), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_version(tmp_path):
    proc = _bisector("--version", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"bisector {__version__}"


def test_help_lists_commands(tmp_path):
    proc = _bisector("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for command in ("run", "diff", "smoke"):
        assert f" {command} " in proc.stdout


def test_no_args_shows_help(cli):
    result = cli()
    assert result.exit_code in (0, 2)
    assert "Usage" in result.output and "diff" in result.output


def test_run_missing_file_subprocess(tmp_path):
    missing = tmp_path / "nope.yaml"
    proc = _bisector("run", GOOD, str(missing), "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {missing}: no such file"
    assert proc.stdout == ""
    assert not (tmp_path / "mlflow.db").exists()
    assert not (tmp_path / ".bisector").exists()


def test_diff_schema_violations_subprocess(recipe_dir, tmp_path):
    bad = recipe_dir("bad.yaml", "runner: tagger\nmodel:\n  hiden_size: 96\ntrain:\n  lr: -1\n")
    proc = _bisector("diff", GOOD, str(bad), cwd=REPO)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == f"error: {bad}: 2 problems"
    assert lines[1].strip().startswith("model.hiden_size: unknown key; did you mean 'model.hidden_size'?")
    assert lines[2].strip().startswith("train.lr: Input should be greater than 0")


def test_run_schema_violation_subprocess_leaves_no_trace(recipe_dir, tmp_path):
    bad = recipe_dir("bad.yaml", "runner: tagger\nmodel:\n  crf_reduction: mean\n")
    proc = _bisector("run", GOOD, str(bad), "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"{bad}: model.crf_reduction: Input should be" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]
