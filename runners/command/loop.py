"""A trial of the user's own script: start it, follow its metrics live, stop it, say how it ended.

``train`` has the runner contract's shape (a generator of per-step records),
so the orchestrator treats a user's script exactly like a Python runner: it
closes the generator to stop early, and the ``finally`` here ends the whole
process group. How the process ended follows ``git bisect run``: exit 0 means
"judge the curve", an ``untestable`` code (125) raises ``Untestable`` (never a
verdict), anything else raises ``ScriptFailed`` with the stderr tail; the
orchestrator turns that into a failure of the recipe when the curve was already
climbing, exploding or non-finite, and into ``error`` otherwise.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import follow as F
from .config import CommandRecipe
from .process import Process
from .render import invocation, leaves, resolve_path


class Untestable(RuntimeError):
    """The script said this trial cannot be tested (exit 125 by default): never a verdict."""

    untestable = True

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        self.exit_code = exit_code


class ScriptFailed(RuntimeError):
    """The script exited with a failure code (or timed out); ``failure_if_diverging`` says whether a
    curve that was already failing makes this a failure of the recipe rather than an error."""

    def __init__(self, message: str, exit_code: int | None, failure_if_diverging: bool = True):
        super().__init__(message)
        self.exit_code = exit_code
        self.failure_if_diverging = failure_if_diverging


def _config_value(recipe: CommandRecipe, spec: float | str | None) -> float:
    if spec is None:
        return 1.0
    if isinstance(spec, (int, float)):
        return float(spec)
    path = spec[len("config."):] if spec.startswith("config.") else spec
    value = dict(leaves(recipe.config)).get(path)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"metrics.progress names {spec!r}, which is not a number in config (got {value!r})")
    return float(value)


def progress_scale(recipe: CommandRecipe) -> float:
    """Samples or tokens per step, for a progress axis that compares rungs of different batch sizes."""
    p = recipe.metrics.progress
    if p.unit == "steps":
        return 1.0
    scale = _config_value(recipe, p.batch_size)
    return scale * (_config_value(recipe, p.seq_len) if p.unit == "tokens" else 1.0)


def step_axis(recipe: CommandRecipe) -> F.StepAxis:
    s = recipe.metrics.step
    return F.StepAxis(step_key=s.key, epoch_key=s.epoch, batch_key=s.batch, per_epoch=s.per_epoch,
                      per_epoch_key=s.per_epoch_key, every=s.every, scale=progress_scale(recipe))


def _numeric(rec: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in rec.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}


def describe(recipe: CommandRecipe, out_dir: Path, base_dir: Path | None = None) -> dict[str, Any]:
    """What a trial of this recipe runs (argv, cwd, env additions), for people and for ``smoke``."""
    inv = invocation(recipe, out_dir, base_dir or Path.cwd())
    return {"argv": inv.argv, "cwd": inv.cwd, "env": inv.env, "config_file": inv.config_file}


def train(recipe: CommandRecipe, out_dir: Path | None = None, device: str | None = None,
          threads: int | None = None, base_dir: str | Path | None = None) -> Iterator[dict[str, float]]:
    import tempfile

    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="bisector-trial-"))
    out.mkdir(parents=True, exist_ok=True)
    inv = invocation(recipe, out.resolve(), Path(base_dir or Path.cwd()), out.name, device, threads)
    if inv.config_file:
        Path(inv.config_file).write_text(inv.config_text or "")
    (out / "command.json").write_text(json.dumps({"argv": inv.argv, "cwd": inv.cwd, "env": inv.env}, indent=2))
    m = recipe.metrics
    parser = F.LineParser(m.regex) if m.source in ("stdout", "stderr") else None
    follower = F.follow(m.source, resolve_path(m.path, inv, out.resolve())) if m.path else None
    axis, merger = step_axis(recipe), F.Merger()
    ours = out / "metrics.jsonl"
    log = None if follower is not None and resolve_path(m.path, inv, out.resolve()) == ours.resolve() \
        else open(ours, "w")
    deadline = time.monotonic() + recipe.timeout_s if recipe.timeout_s else math.inf
    proc = Process(inv, recipe.grace_s)

    def records(raw: list[dict[str, Any]]) -> list[dict[str, float]]:
        done = []
        for rec in raw:
            rec = {m.rename.get(k, k): v for k, v in rec.items()}
            rec = axis(rec)
            if rec is None:
                continue
            for full in merger.add(rec):
                values = _numeric(full)
                if values:
                    done.append({"step": int(full["step"]), **values})
        return done

    try:
        while True:
            lines = proc.read(m.poll_s)
            raw = [r for src, line in lines if parser and src == m.source and (r := parser.parse(line))]
            if follower is not None:
                raw += follower.poll()
            finished = proc.poll() is not None and proc.drained
            if finished and follower is not None:
                raw += follower.close()
            out_recs = records(raw)
            if finished:
                out_recs += [{"step": int(r["step"]), **_numeric(r)} for r in merger.flush() if _numeric(r)]
            for rec in out_recs:
                if log is not None:
                    log.write(json.dumps(rec) + "\n")
                    log.flush()
                yield rec
            if finished:
                break
            if time.monotonic() > deadline:
                raise ScriptFailed(f"timed out after {recipe.timeout_s:g} s (recipe timeout_s); stderr tail:\n"
                                   f"{proc.tail()}", None, recipe.exit_codes.crash_after_divergence_is_failure)
        rc = proc.poll()
        codes = recipe.exit_codes
        if rc in codes.ok:
            return
        tail = proc.tail() or proc.tail("stdout")
        if rc in codes.untestable:
            raise Untestable(f"the script exited {rc} (untestable: this trial cannot be tested); stderr tail:\n"
                             f"{tail}", rc)
        raise ScriptFailed(f"the script exited {rc}; stderr tail:\n{tail}", rc,
                           codes.crash_after_divergence_is_failure)
    finally:
        proc.stop()
        if log is not None:
            log.close()
