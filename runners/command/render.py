"""How a recipe's ``config`` reaches the user's script: argument lists, a config file, placeholders.

Everything here is pure (no process is started), so what a trial will run can
be shown and tested exactly. A command starting with plain ``python`` or
``python3`` runs under the interpreter bisector runs under (``{python}``
anywhere else), the environment that has the user's torch; an absolute path
picks another interpreter. Commands are argument lists from start to end:
a value is one ``argv`` item however many spaces it holds, and nothing is ever
handed to a shell.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import CommandRecipe, PassConfig

ARGS = "{args}"


def leaves(mapping: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key, value)`` for every leaf of a nested mapping (a non-empty dict is descended into)."""
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from leaves(value, path + ".")
        else:
            yield path, value


def scalar(value: Any) -> str:
    """A value as the text a script's parser reads back: YAML's spelling for booleans and null,
    ``repr`` precision for floats."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _hydra_value(value: Any) -> str:
    """A value in Hydra's override grammar: lists as ``[a,b]``, strings quoted when they would
    otherwise parse as something else."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_hydra_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        plain = value and all(c.isalnum() or c in "_-./:" for c in value) and value.lower() not in (
            "true", "false", "null", "none", "nan", "inf")
        return value if plain and not _numeric(value) else json.dumps(value)
    return scalar(value)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def flag_args(config: dict[str, Any], pc: PassConfig) -> list[str]:
    out: list[str] = []
    for key, value in leaves(config):
        name = pc.prefix + (key.replace("_", "-") if pc.underscores == "dash" else key)
        if value is None:
            continue
        if isinstance(value, bool) and pc.bools == "store_true":
            if value:
                out.append(name)
            continue
        if isinstance(value, (list, tuple)):
            items = [scalar(v) for v in value]
            if pc.lists == "repeat":
                for item in items:
                    out += [f"{name}={item}"] if pc.equals else [name, item]
                continue
            if pc.lists == "comma" or pc.equals:
                out += [f"{name}={','.join(items)}"] if pc.equals else [name, ",".join(items)]
                continue
            out += [name, *items]
            continue
        if isinstance(value, dict):  # an empty mapping: nothing to pass
            continue
        out += [f"{name}={scalar(value)}"] if pc.equals else [name, scalar(value)]
    return out


def hydra_args(config: dict[str, Any], pc: PassConfig) -> list[str]:
    out = []
    for key, value in leaves(config):
        if pc.add == "always":
            lead = "++"
        else:
            lead = "+" if key in pc.add_keys or any(key.startswith(k + ".") for k in pc.add_keys) else ""
        if value is None and lead == "+":
            continue  # a key to add with no value: leave it out
        out.append(f"{lead}{key}={_hydra_value(value)}")
    return out


@dataclass
class Invocation:
    """What one trial runs: the argument list, the environment additions, a config file to write."""

    argv: list[str]
    cwd: str
    env: dict[str, str] = field(default_factory=dict)
    config_file: str | None = None
    config_text: str | None = None


def config_text(config: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(config, indent=2) + "\n"
    import yaml

    return yaml.safe_dump(config, sort_keys=False)


def substitute(text: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` for the known placeholders only (other braces, e.g. in a regex, stay)."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def invocation(recipe: CommandRecipe, out_dir: Path, base_dir: Path, trial: str = "trial",
               device: str | None = None, threads: int | None = None) -> Invocation:
    """The exact process a trial starts, with every placeholder resolved."""
    pc = recipe.pass_config
    cwd = (base_dir / recipe.cwd).resolve()
    cfg_file = out_dir / f"trial_config.{'json' if pc.format == 'json' else 'yaml'}"
    values = {"python": sys.executable, "out_dir": str(out_dir), "seed": str(recipe.seed), "device": device or "cpu",
              "threads": str(threads or 1), "config_file": str(cfg_file), "trial": trial, "cwd": str(cwd)}
    if pc.style == "flags":
        args = flag_args(recipe.config, pc)
    elif pc.style == "hydra":
        args = hydra_args(recipe.config, pc)
    else:
        args = []
    args = [substitute(a, values) for a in args]  # a config value may say "{out_dir}/ckpt" too
    argv: list[str] = []
    command = list(recipe.command)
    if command[0] in ("python", "python3"):  # the interpreter bisector (and Ray's workers) run under
        command[0] = sys.executable
    for item in command:
        if item == ARGS:
            argv += args
        else:
            argv.append(substitute(item, values))
    if pc.position == "end" and ARGS not in recipe.command:
        argv += args
    env = {k: substitute(v, values) for k, v in recipe.env.items()}
    env.setdefault("BISECTOR_OUT_DIR", str(out_dir))
    env.setdefault("BISECTOR_SEED", str(recipe.seed))
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, str(threads))
    inv = Invocation(argv, str(cwd), env)
    if pc.style == "file":
        inv.config_file, inv.config_text = str(cfg_file), substitute(config_text(recipe.config, pc.format), values)
        if pc.env_var:
            env[pc.env_var] = str(cfg_file)
    return inv


def resolve_path(template: str, inv: Invocation, out_dir: Path) -> Path:
    """A metrics or checkpoint path template, relative to the script's working directory."""
    path = Path(substitute(template, {"out_dir": str(out_dir), "cwd": inv.cwd}))
    return path if path.is_absolute() else Path(inv.cwd) / path
