"""`runner: command` recipes: validation, knobs inside `config`, argument lists, the two-command-line form."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from bisector import cmdline
from bisector import knobs as K
from bisector.errors import DiffError, InputError, RecipeError
from bisector.recipe import load
from runners.command.config import CommandRecipe, PassConfig
from runners.command.render import flag_args, hydra_args, invocation

BASE = """\
runner: command
command: [python, train.py, --seed, "{seed}"]
metrics: {source: stdout, watch: loss}
"""


def test_recipe_structure_is_strict_with_field_paths(recipe_dir):
    path = recipe_dir("r.yaml", BASE + "metrics_: {}\npass_config: {style: flag}\ntimeout_s: -1\n")
    with pytest.raises(RecipeError) as info:
        load(path)
    text = str(info.value)
    assert "metrics_: unknown key; did you mean 'metrics'?" in text
    assert "pass_config.style" in text and "timeout_s" in text  # every problem at once


def test_a_shell_string_command_is_refused(recipe_dir):
    path = recipe_dir("r.yaml", "runner: command\ncommand: python train.py --lr 0.1\n")
    with pytest.raises(RecipeError, match="an argument list, not a shell string"):
        load(path)


def test_file_sources_need_a_path_and_regex_needs_groups(recipe_dir):
    path = recipe_dir("r.yaml", "runner: command\ncommand: [python, t.py]\nmetrics: {source: jsonl}\n")
    with pytest.raises(RecipeError, match="set metrics.path"):
        load(path)
    path = recipe_dir("r2.yaml", "runner: command\ncommand: [python, t.py]\nmetrics: {regex: 'loss ([0-9.]+)'}\n")
    with pytest.raises(RecipeError, match="named groups"):
        load(path)


def test_cwd_is_relative_to_the_recipe_file(recipe_dir, tmp_path, monkeypatch):
    (tmp_path / "proj").mkdir()
    path = recipe_dir("proj/r.yaml", BASE + "cwd: .\n")
    monkeypatch.chdir(tmp_path)
    assert load(path).model.cwd == "proj"


def test_knobs_are_the_config_leaves_including_one_sided_keys(recipe_dir):
    good = recipe_dir("good.yaml", BASE + "config: {lr: 0.0003, clip: 1.0, optim: {name: adam, betas: [0.9, 0.99]}}\n")
    bad = recipe_dir("bad.yaml", BASE + "config: {lr: 0.001, optim: {name: adam, betas: [0.9, 0.95]}, amp: true}\n")
    knobs = {k.name: k for k in K.diff(load(good), load(bad))}
    assert set(knobs) == {"config.lr", "config.clip", "config.optim.betas", "config.amp"}
    assert knobs["config.clip"].bad == (K.ABSENT,) and knobs["config.amp"].good == (K.ABSENT,)
    reverted = K.toggle(load(bad), [knobs["config.clip"], knobs["config.amp"]], "good")
    assert reverted.config == {"lr": 0.001, "optim": {"name": "adam", "betas": [0.9, 0.95]}, "clip": 1.0}


def test_a_knob_whose_type_differs_is_reported(recipe_dir):
    good = recipe_dir("good.yaml", BASE + "config: {lr: 0.0003}\n")
    bad = recipe_dir("bad.yaml", BASE + "config: {lr: 1e-3}\n")  # YAML 1.1 reads 1e-3 as a string
    with pytest.raises(DiffError) as info:
        K.diff(load(good), load(bad))
    msg = str(info.value)
    assert "config.lr is a number" in msg and "a string" in msg and "1.0e-3" in msg


def test_pydantic_schema_validates_config(recipe_dir, tmp_path):
    (tmp_path / "myschema.py").write_text(
        "from pydantic import BaseModel, ConfigDict\n"
        "class Cfg(BaseModel):\n    model_config = ConfigDict(extra='forbid')\n    lr: float\n    layers: int = 2\n")
    path = recipe_dir("r.yaml", BASE + "schema: 'myschema:Cfg'\nconfig: {lr: fast, layer: 3}\n")
    with pytest.raises(RecipeError) as info:
        load(path)
    assert "config.lr" in str(info.value) and "config.layer" in str(info.value)


def test_json_schema_validates_config(recipe_dir, tmp_path):
    (tmp_path / "schema.json").write_text('{"type": "object", "properties": {"lr": {"type": "number"}}}')
    with pytest.raises(RecipeError, match="config.lr"):
        load(recipe_dir("r.yaml", BASE + "schema: schema.json\nconfig: {lr: fast}\n"))
    assert load(recipe_dir("ok.yaml", BASE + "schema: schema.json\nconfig: {lr: 0.1}\n")).model.config == {"lr": 0.1}


CONFIG = {"lr": 0.001, "batch_size": 32, "amp": True, "compile": False, "clip": None,
          "layers": [64, 64], "optim": {"name": "adam", "beta2": 0.95}, "tag": "a b"}


def _argparse() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", "--batch_size", type=int)
    p.add_argument("--amp", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--clip", type=float, default=None)
    p.add_argument("--layers", type=int, nargs="+")
    p.add_argument("--optim.name")
    p.add_argument("--optim.beta2", type=float)
    p.add_argument("--tag")
    return p


@pytest.mark.parametrize("equals", [False, True])
def test_flags_are_read_back_by_argparse(equals):
    pc = PassConfig(equals=equals, lists="comma" if equals else "nargs")
    args = flag_args(CONFIG, pc)
    assert "--compile" not in args and "--clip" not in args  # false store_true and None are omitted
    if equals:
        assert "--lr=0.001" in args and "--layers=64,64" in args
        return
    ns = vars(_argparse().parse_args(args))
    assert ns == {"lr": 0.001, "batch_size": 32, "amp": True, "compile": False, "clip": None, "layers": [64, 64],
                  "optim.name": "adam", "optim.beta2": 0.95, "tag": "a b"}


def test_bools_as_values_and_dashes():
    args = flag_args({"use_amp": False, "batch_size": 8}, PassConfig(bools="value", underscores="dash"))
    assert args == ["--use-amp", "false", "--batch-size", "8"]


def test_hydra_overrides_add_keys_and_quote():
    cfg = {"optim": {"lr": 0.1}, "model": {"name": "gpt-2"}, "extra": {"w": 2}, "tags": ["a", "b"], "s": "1e-3"}
    assert hydra_args(cfg, PassConfig(style="hydra", add_keys=("extra",))) == [
        "optim.lr=0.1", "model.name=gpt-2", "+extra.w=2", "tags=[a,b]", 's="1e-3"']
    assert hydra_args({"a": 1}, PassConfig(style="hydra", add="always")) == ["++a=1"]


def test_invocation_resolves_placeholders_and_writes_no_shell(tmp_path):
    r = CommandRecipe.model_validate({
        "command": ["python", "train.py", "--out", "{out_dir}", "{args}", "--seed={seed}"],
        "config": {"lr": 0.1}, "pass_config": {"style": "flags", "position": "placeholder"},
        "env": {"LOGDIR": "{out_dir}/tb"}, "seed": 3})
    inv = invocation(r, tmp_path / "t", tmp_path, threads=2)
    assert inv.argv == [sys.executable, "train.py", "--out", str(tmp_path / "t"), "--lr", "0.1", "--seed=3"]
    assert inv.env["LOGDIR"] == f"{tmp_path}/t/tb" and inv.env["OMP_NUM_THREADS"] == "2"
    r = CommandRecipe.model_validate({"command": ["python", "t.py", "--config", "{config_file}"],
                                      "config": {"a": {"b": 1}},
                                      "pass_config": {"style": "file", "format": "json", "env_var": "CFG"}})
    inv = invocation(r, tmp_path / "t", tmp_path)
    assert inv.argv[-1] == inv.config_file == inv.env["CFG"] and inv.config_file.endswith("trial_config.json")
    assert '"b": 1' in inv.config_text


def test_two_command_lines_become_two_recipes(tmp_path):
    good, bad, shown = cmdline.recipes("python train.py --lr 3e-4 --clip 1.0 --layers 64 64 --amp",
                                       "python train.py --lr=1e-3 --layers 64 64", tmp_path / "rec")
    assert "Written by bisector from the command line" in shown
    knobs = {k.name: k for k in K.diff(load(good), load(bad))}
    assert set(knobs) == {"config.lr", "config.clip", "config.amp"}
    assert knobs["config.lr"].good == (0.0003,) and knobs["config.lr"].bad == (0.001,)
    assert knobs["config.clip"].bad == (K.ABSENT,) and knobs["config.amp"].good == (True,)
    assert load(good).model.config["layers"] == [64, 64]


def test_two_command_lines_hydra_and_errors(tmp_path):
    _, bad, _ = cmdline.recipes("python app.py optim.lr=0.1", "python app.py optim.lr=0.5 +extra=1", tmp_path)
    m = load(bad).model
    assert m.pass_config.style == "hydra" and m.config == {"optim": {"lr": 0.5}, "extra": 1}
    with pytest.raises(InputError, match="must run the same program"):
        cmdline.recipes("python a.py --lr 1", "python b.py --lr 2", tmp_path)
    with pytest.raises(InputError, match="given twice"):
        cmdline.recipes("python a.py --lr 1 --lr 2", "python a.py --lr 2", tmp_path)
    with pytest.raises(InputError, match="cannot split"):
        cmdline.recipes("python a.py --name 'x", "python a.py", tmp_path)


def test_identity_changes_when_the_script_changes(recipe_dir, tmp_path, monkeypatch):
    import runners.command as C

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("print('v1')\n")
    r = load(recipe_dir("r.yaml", BASE + "files: [train.py]\n")).model
    first = C.identity(r)
    (tmp_path / "train.py").write_text("print('v2')\n")
    assert C.identity(r) != first and set(first) == {"train.py"}
    assert Path(r.cwd) == Path(".")
