"""Two command lines are enough: turn ``--good "python train.py --lr 3e-4 --clip 1.0"`` and
``--bad "python train.py --lr 1e-3"`` into two ``runner: command`` recipes.

The part before the first flag (or Hydra override) is the command, and must be
the same on both sides; every ``--flag`` after it becomes a knob under
``config`` (a flag present on one side only is a knob too, absent on the
other). Values are typed the way argparse users expect: ``3e-4`` is a number
(YAML would read it as a string), ``true``/``false`` booleans, a bare flag
``true`` (a ``store_true`` switch), several values a list. ``key=value``
arguments (Hydra overrides) become knobs passed back in Hydra's grammar. The
lines are split like a POSIX shell would (``shlex``) but never run by one.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError
from .knobs import looks_numeric

_OVERRIDE = re.compile(r"^(\+{0,2})([A-Za-z_][\w.\-/@]*)=(.*)$", re.S)


def typed(text: str) -> Any:
    """A flag's value as a number, boolean or null where it reads as one, else the text."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
        return value
    except ValueError:
        pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.lower() in ("null", "none"):
        return None
    return text


def _is_flag(token: str) -> bool:
    return token.startswith("--") and len(token) > 2 and not looks_numeric(token)


def _set(config: dict, key: str, value: Any, line: str) -> None:
    node = config
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise InputError(f"{line}: {key} is given both as a value and as a section")
    if leaf in node:
        raise InputError(f"{line}: {key} is given twice")
    node[leaf] = value


def parse(line: str, label: str) -> tuple[list[str], dict[str, Any], str]:
    """``(command, config, style)`` for one command line; style is ``flags`` or ``hydra``."""
    try:
        tokens = shlex.split(line)
    except ValueError as exc:
        raise InputError(f"{label}: cannot split the command line {line!r}: {exc}") from None
    if not tokens:
        raise InputError(f"{label}: empty command line")
    start = next((i for i, t in enumerate(tokens) if i and (_is_flag(t) or _OVERRIDE.match(t))), len(tokens))
    command, rest = tokens[:start], tokens[start:]
    config: dict[str, Any] = {}
    style = "hydra" if rest and not rest[0].startswith("-") else "flags"
    i = 0
    while i < len(rest):
        tok = rest[i]
        if style == "hydra":
            m = _OVERRIDE.match(tok)
            if not m:
                raise InputError(f"{label}: {tok!r} is not a Hydra override (key=value); the command line mixes "
                                 "overrides with other arguments")
            _set(config, m.group(2), typed(m.group(3)), label)
            i += 1
            continue
        if not _is_flag(tok):
            raise InputError(f"{label}: {tok!r} follows the flags but is not a --flag or its value; only "
                             "--long flags become knobs (put positional arguments before the first flag)")
        name, eq, value = tok[2:].partition("=")
        if eq:
            _set(config, name, typed(value), label)
            i += 1
            continue
        values = []
        i += 1
        while i < len(rest) and not _is_flag(rest[i]):
            values.append(typed(rest[i]))
            i += 1
        _set(config, name, True if not values else values[0] if len(values) == 1 else values, label)
    return command, config, style


def recipes(good_line: str, bad_line: str, out_dir: str | Path, metric: str = "loss", regex: str | None = None,
            source: str = "stdout", path: str | None = None, seed: int = 0) -> tuple[Path, Path, str]:
    """Write ``good.yaml`` and ``bad.yaml`` for two command lines into ``out_dir``: their paths and the
    YAML text shown to the user."""
    gcmd, gcfg, gstyle = parse(good_line, "--good")
    bcmd, bcfg, bstyle = parse(bad_line, "--bad")
    if gcmd != bcmd:
        raise InputError(f"--good runs {shlex.join(gcmd)!r} but --bad runs {shlex.join(bcmd)!r}: the two command "
                         "lines must run the same program and differ only in their flags")
    if gcfg and bcfg and gstyle != bstyle:
        raise InputError("--good passes flags and --bad Hydra overrides (or the reverse): use one style on both")
    style = bstyle if bcfg else gstyle
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cwd = Path.cwd().resolve()
    texts = []
    paths = []
    for name, cfg in (("good", gcfg), ("bad", bcfg)):
        data: dict[str, Any] = {"runner": "command", "seed": seed, "command": bcmd,
                                "cwd": _rel(cwd, out.resolve()), "config": cfg,
                                "pass_config": {"style": style} if style == "hydra" else {"style": "flags"},
                                "metrics": {"source": source, "watch": metric}}
        scripts = [t for t in bcmd[1:] if t.endswith(".py") and Path(t).is_file()]
        if scripts:  # an edited script is trained again instead of reusing old verdicts
            data["files"] = scripts
        if regex:
            data["metrics"]["regex"] = regex
        if path:
            data["metrics"]["path"] = path
        src = bad_line if name == "bad" else good_line
        text = (f"# bisector run {out / 'good.yaml'} {out / 'bad.yaml'}\n# Written by bisector from the command "
                f"line: {src}\n" + yaml.safe_dump(data, sort_keys=False))
        target = out / f"{name}.yaml"
        target.write_text(text)
        paths.append(target)
        texts.append(text)
    return paths[0], paths[1], "\n".join(texts)


def _rel(target: Path, base: Path) -> str:
    import os

    try:
        return os.path.relpath(target, base)
    except ValueError:
        return str(target)
