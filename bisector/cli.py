"""The ``bisector`` command line: parse, call, print. No logic lives here."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .errors import BisectorError, InputError
from .verdicts import Kind

app = typer.Typer(
    help="Find which recipe change makes a training run diverge: diff two recipes into knobs, "
    "run smoke trials on Ray that revert knobs, log the elimination ladder to MLflow.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False)

Groups = Annotated[Optional[list[str]], typer.Option(
    "--group", help="Knobs that move together, as comma-separated dotted paths (repeatable).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")]
Seed = Annotated[Optional[int], typer.Option(help="Seed for every run (default: the bad/only recipe's seed).")]
Device = Annotated[Optional[str], typer.Option(help="Torch device for training (default: cuda if visible, else cpu).")]


def _fail(exc: BisectorError) -> None:
    err.print(f"error: {exc}", markup=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


def _version(value: bool) -> None:
    if value:
        out.print(f"bisector {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Exit codes: 0 culprit(s) found (or command succeeded), 1 finished without a culprit,
    2 bad input (files, recipes, options)."""


TrackingUri = Annotated[Optional[str], typer.Option(
    help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else MLflow's default store).")]
Experiment = Annotated[str, typer.Option(help="MLflow experiment name.")]


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt


@app.command()
def run(
    good: Annotated[Optional[str], typer.Argument(help="Recipe that trains stably.")] = None,
    bad: Annotated[Optional[str], typer.Argument(help="Recipe that diverges.")] = None,
    group: Groups = None,
    seed: Seed = None,
    resume: Annotated[Optional[str], typer.Option(
        help="Finish the campaign of this parent run id (its recipes are read back from MLflow).")] = None,
    address: Annotated[Optional[str], typer.Option(
        help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray started and stopped here).")] = None,
    cpus_per_trial: Annotated[float, typer.Option(help="CPUs reserved per trial.")] = 1.0,
    gpus_per_trial: Annotated[float, typer.Option(help="GPUs reserved per trial (fractions allowed).")] = 0.0,
    max_concurrent: Annotated[Optional[int], typer.Option(help="At most this many trials at once.")] = None,
    retries: Annotated[int, typer.Option(help="Retries of a trial whose worker died (not of training errors).")] = 2,
    max_trials: Annotated[Optional[int], typer.Option(help="Stop after launching this many trials.")] = None,
    max_hours: Annotated[Optional[float], typer.Option(help="Stop after this many hours of wall time.")] = None,
    early_stop: Annotated[bool, typer.Option(help="Stop a trial as soon as its verdict is final.")] = True,
    strategy: Annotated[str, typer.Option(
        help="Search: auto (by knob count and free slots), oat (revert one at a time), split (group splitting), "
        "dd (delta debugging: AND and OR structures).")] = "auto",
    healthy_within: Annotated[float, typer.Option(
        help="A stable trial is a fix only if its best loss is within this share of good's descent of good's best; "
        "otherwise it is 'degraded'.")] = 0.5,
    repeats: Annotated[int, typer.Option(
        help="Runs per knob set on seeds seed, seed+1, ... (a majority). Default 1: one run until a result "
        "contradicts another, then repeats where needed.")] = 1,
    noise: Annotated[float, typer.Option(
        help="Assumed probability that a smoke's verdict flips with the seed; > 0 repeats every knob set until "
        "one outcome leads by two and the answer reaches --confidence-target.")] = 0.0,
    confidence_target: Annotated[float, typer.Option(help="Below this confidence the answer is 'not confident'.")
                                 ] = 0.95,
    full_horizon: Annotated[bool, typer.Option(
        help="Train every stable search trial to its horizon (default: stable for 3x the step where bad failed "
        "is stable).")] = False,
    confirm: Annotated[Optional[bool], typer.Option(
        help="Run the evidence of the answer, and a stop at the endpoints, once more on another seed (default: "
        "on, except --strategy oat).")] = None,
    confirm_all: Annotated[bool, typer.Option(
        help="Run every knob set the answer used once more on another seed: named answers stay right at the "
        "stated confidence when verdicts flip, for about 60% more trials (README: Noise and confidence).")] = False,
    probe: Annotated[bool, typer.Option(help="Probe the pre-climb checkpoint once culprits are named.")] = True,
    probe_batches: Annotated[int, typer.Option(help="Fixed batches per probe.")] = 8,
    repair: Annotated[bool, typer.Option(help="Run the repair the diagnosis implies as a final rung.")] = True,
    min_val: Annotated[Optional[float], typer.Option(
        help="Repair gate: validation metric to reach (default: 90% of good's).")] = None,
    max_climb: Annotated[float, typer.Option(
        help="Repair gate: the smoothed loss may climb back at most this share of its descent.")] = 0.2,
    class_floor: Annotated[float, typer.Option(
        help="Repair gate: no per-class score may end below this share of its peak.")] = 0.5,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = "bisector",
    workdir: Annotated[str, typer.Option(help="Where trials write metrics and checkpoints.")] = ".bisector",
    device: Device = None,
    good_cmd: Annotated[Optional[str], typer.Option(
        "--good", help="Instead of recipe files: the good command line, e.g. \"python train.py --lr 3e-4\".")] = None,
    bad_cmd: Annotated[Optional[str], typer.Option(
        "--bad", help="The bad command line (same program; only its flags or Hydra overrides differ).")] = None,
    metric: Annotated[str, typer.Option(help="With --good/--bad: the logged metric to judge.")] = "loss",
    regex: Annotated[Optional[str], typer.Option(
        help="With --good/--bad: a regex with named groups reading metrics from stdout lines "
        "(default: key: value / key=value pairs).")] = None,
    metrics_path: Annotated[Optional[str], typer.Option(
        help="With --good/--bad: read metrics from this file instead of stdout (JSONL or CSV; {out_dir} allowed).")
    ] = None,
    write_recipes: Annotated[Optional[str], typer.Option(
        help="With --good/--bad: write good.yaml and bad.yaml here (default: WORKDIR/recipes).")] = None,
    as_json: Json = False,
) -> None:
    """Bisect GOOD vs BAD: check both endpoints, revert each knob alone from BAD, name the culprit(s).

    GOOD and BAD are recipe files; or give two command lines with --good and --bad (no YAML needed).

    Exit codes: 0 culprit(s) found, 1 no culprit explains it, 2 bad input, 3 not finished (budget
    reached), 4 bad does not fail, 5 good is not stable, 6 not confident, 130 interrupted."""
    import signal

    from . import campaign
    from .scheduler import Resources
    from .views.terminal import LiveProgress, Progress, print_ladder

    if good_cmd is not None or bad_cmd is not None:
        from . import cmdline

        try:
            if good is not None or bad is not None or good_cmd is None or bad_cmd is None:
                raise InputError("give both --good and --bad command lines, or GOOD and BAD recipe files, not both")
            good, bad, shown = cmdline.recipes(
                good_cmd, bad_cmd, write_recipes or f"{workdir}/recipes", metric, regex,
                "jsonl" if metrics_path and metrics_path.endswith(".jsonl") else "csv" if metrics_path else "stdout",
                metrics_path, seed or 0)
        except BisectorError as exc:
            _fail(exc)
        err.print(f"recipes from the two command lines ({good}, {bad}):\n{shown}", markup=False)
    if resume is None and (good is None or bad is None):
        _fail(InputError("run needs GOOD and BAD recipe paths, --good and --bad command lines, "
                         "or --resume PARENT_RUN_ID"))
    opts = campaign.Options(
        groups=group or [], seed=seed, address=address,
        resources=Resources(cpus_per_trial, gpus_per_trial, max_concurrent),
        tracking_uri=tracking_uri, experiment=experiment, workdir=workdir, device=device,
        retries=retries, max_trials=max_trials, max_hours=max_hours, early_stop=early_stop, resume=resume,
        probe=probe, probe_batches=probe_batches, repair=repair, min_val=min_val, max_climb=max_climb,
        class_floor=class_floor, strategy=strategy, healthy_within=healthy_within, repeats=repeats, noise=noise,
        target=confidence_target, confirm="all" if confirm_all else confirm,
        stable_multiple=None if full_horizon else 3.0,
    )
    signal.signal(signal.SIGTERM, _on_sigterm)
    progress = LiveProgress() if err.is_terminal and not as_json else Progress()
    try:
        # with --json, stdout carries one JSON object: anything a library prints goes to stderr
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            outcome = campaign.run(good, bad, opts, [progress])
    except BisectorError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        err.print("interrupted: running trials cancelled and marked KILLED in MLflow, the campaign marked "
                  "unfinished; finished trials are reused by the next run of the same command", markup=False)
        raise typer.Exit(130) from None
    print_ladder(outcome.ladder, err if as_json else None)
    if as_json:
        print(json.dumps(outcome.to_json(), default=str))
    else:
        out.print(f"MLflow: parent run {outcome.parent_run_id} at {outcome.tracking_uri} "
                  f"({outcome.wall_s:.0f} s)", markup=False)
    for line in outcome.landing:
        (err if as_json else out).print(line, markup=False, soft_wrap=True)
    raise typer.Exit(outcome.exit_code)


@app.command()
def ladder(
    parent_run_id: Annotated[Optional[str], typer.Argument(help="Campaign run id (default: the latest).")] = None,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = "bisector",
    as_json: Json = False,
) -> None:
    """Reprint a campaign's ladder from MLflow."""
    from .tracker import MlflowTracker
    from .views.terminal import print_ladder

    try:
        run_id, lad = MlflowTracker(tracking_uri, experiment).ladder(parent_run_id)
    except BisectorError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(lad.to_json() | {"parent_run_id": run_id}, default=str))
        return
    out.print(f"campaign {run_id}", markup=False)
    print_ladder(lad)


@app.command("ls")
def list_campaigns(
    tracking_uri: TrackingUri = None, experiment: Experiment = "bisector", as_json: Json = False
) -> None:
    """List campaigns, newest first."""
    import datetime

    from .tracker import MlflowTracker

    try:
        runs = MlflowTracker(tracking_uri, experiment).campaigns()
    except BisectorError as exc:
        _fail(exc)
    rows = [{
        "run_id": r.info.run_id,
        "started": datetime.datetime.fromtimestamp(r.info.start_time / 1000).strftime("%Y-%m-%d %H:%M:%S"),
        "status": r.info.status, "good": r.data.params.get("good"), "bad": r.data.params.get("bad"),
        "knobs": r.data.params.get("knob_count"), "culprits": r.data.tags.get("culprits", ""),
    } for r in runs]
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(title=f"{len(rows)} campaigns in experiment {experiment!r}", title_justify="left")
    for col in ("Run id", "Started", "Status", "Good", "Bad", "Knobs", "Culprits"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["run_id"], r["started"], r["status"], r["good"] or "-", r["bad"] or "-", r["knobs"] or "-",
                      r["culprits"] or "-")
    out.print(table)


@app.command()
def diff(good: str, bad: str, group: Groups = None, as_json: Json = False) -> None:
    """List the knobs that differ between two recipes (compared after validation)."""
    from .campaign import plan

    try:
        p = plan(good, bad, group)
    except BisectorError as exc:
        _fail(exc)
    rows = [{"path": k.name, "good": k.good[0] if len(k.paths) == 1 else list(k.good),
             "bad": k.bad[0] if len(k.paths) == 1 else list(k.bad)} for k in p.knobs]
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = Table(title=f"{len(rows)} knobs differ", title_justify="left")
    for col in ("Knob", "Good", "Bad"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["path"], repr(r["good"]), repr(r["bad"]))
    out.print(table)


@app.command()
def smoke(
    recipe: str,
    seed: Seed = None,
    device: Device = None,
    out_dir: Annotated[Optional[str], typer.Option(help="Write metrics.jsonl and checkpoints here.")] = None,
    as_json: Json = False,
) -> None:
    """Train one recipe here, watch its loss, print the curve summary and the verdict."""
    from .trial import smoke as run_smoke

    try:
        result, records = run_smoke(recipe, seed, device, out_dir)
    except BisectorError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(result, default=str))
    else:
        metric = result["metric"]
        values = [r[metric] for r in records if metric in r]
        fmt = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
        out.print(
            f"{recipe}: {result['steps_run']}{' of ' + str(result['horizon']) if result.get('horizon') else ''} "
            f"steps in {result['wall_s']:.1f} s; "
            f"{metric} start {fmt(result['start_value'])}, best {fmt(result['best_value'])} at step "
            f"{result['best_step']}, last {fmt(values[-1] if values else None)}", markup=False)
        climb = f", climb from step {result['climb_start_step']}, detected at step {result['detected_at_step']}" \
            if result.get("climb_start_step") is not None else ""
        out.print(f"verdict: {result['kind']}{climb}", markup=False)
        if result.get("error"):
            out.print(result["error"], markup=False)
        elif result.get("note"):  # e.g. which task stagnated, and by how much
            out.print(result["note"], markup=False)
    raise typer.Exit(0 if result["kind"] not in (Kind.ERROR, Kind.UNRESOLVED) else 1)


@app.command()
def fingerprint(
    path: Annotated[str, typer.Argument(
        help="A metrics log: JSONL, CSV with a step column, a TensorBoard event file or log directory, a Hugging "
        "Face trainer_state.json or output directory, a Lightning log directory, or mlflow:RUN_ID.")],
    metric: Annotated[Optional[list[str]], typer.Option(
        help="Metric to judge (repeatable; several losses also get the multi-task check). "
        "Default: train_loss, else loss, else the only loss-like column (or the only one named train).")] = None,
    phase_switch: Annotated[Optional[int], typer.Option(
        help="Step of a planned loss switch: the detector restarts its reference there.")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI for mlflow:RUN_ID.")] = None,
    regex: Annotated[Optional[str], typer.Option(
        help="Read PATH as a text log (a script's stdout): a regex searched in each line, one named group per "
        "metric and `step` for the step (or `epoch`, `batch` and `per_epoch`). Without it a .log/.txt/.out file "
        "is read as `key: value` / `key=value` pairs with a `step`.")] = None,
    scale: Annotated[float, typer.Option(
        help="A text log's step axis in optimizer steps per unit: steps per epoch for a fractional epoch as "
        "`step`, 1/batch size for a count of samples. The detector's time constants are in steps.")] = 1.0,
    as_json: Json = False,
) -> None:
    """Judge a metrics log: stable, diverged, nan, flat, oscillating, stagnant or collapsed.

    Exit code 0 for stable, 1 for any failure verdict, 2 for bad input."""
    from .fingerprint import fingerprint as judge
    from .metrics_log import read

    try:
        log = read(path, tracking_uri, regex, scale)
        result = judge(log, metric, phase_switch)
    except BisectorError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(result.to_json(), default=str))
    else:
        chosen = "" if metric else " (default)"
        out.print(f"{result.source or path}: {result.metric}{chosen} -> {result.verdict}", markup=False)
        out.print(result.evidence, markup=False)
        if result.climb_start_step is not None or result.detected_at_step is not None:
            out.print(f"climb start: step {result.climb_start_step}; detected at: step {result.detected_at_step}",
                      markup=False)
        for m in result.metrics if len(result.metrics) > 1 else []:
            extra = "" if m.improvement is None else \
                f", improved {m.improvement:.1%}, relative training rate {m.training_rate:.2f}"
            out.print(f"  {m.metric} ({m.direction}): {m.verdict.kind}{extra}", markup=False)
    raise typer.Exit(0 if result.verdict == Kind.STABLE else 1)


@app.command()
def probe(
    checkpoint: Annotated[str, typer.Argument(help="A checkpoint written by a runner (torch.load, weights only).")],
    recipe: Annotated[str, typer.Option("--recipe", help="The recipe the checkpoint was trained with.")],
    batches: Annotated[int, typer.Option(help="Fixed probe batches.")] = 8,
    device: Device = None,
    as_json: Json = False,
) -> None:
    """Per-loss-term gradients on a checkpoint: norms, weighted and projection shares, cosine conflicts."""
    from pathlib import Path

    from .errors import InputError
    from .ladder import Ladder
    from .probe import probe_checkpoint, reduction_note
    from .recipe import load
    from .views.terminal import probe_table

    try:
        r = load(recipe)
        if not Path(checkpoint).is_file():
            raise InputError(f"{checkpoint}: no such checkpoint file")
        from .registry import probe_contract

        if probe_contract(r.runner, r.model) is None:
            raise InputError(f"{recipe}: runner {r.runner_name!r} offers no probe contract (see runners/README.md)")
        try:
            report = probe_checkpoint(r.runner, r.model, checkpoint, batches, device, Path(checkpoint).name)
        except (RuntimeError, KeyError, OSError, ValueError) as exc:
            raise InputError(f"{checkpoint}: cannot be probed with {recipe}: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:300]}") from None
    except BisectorError as exc:
        _fail(exc)
    note = reduction_note(report)
    if as_json:
        print(json.dumps(report.to_json() | {"note": note}, default=str))
        return
    summary = report.summary()
    out.print(probe_table(Ladder("", "", "", probe={"checkpoints": [summary]})))
    for scope, pairs in summary["modules"].items():
        cos = ", ".join(f"{p['a']}/{p['b']} {p['cosine']:+.2f}" for p in pairs)
        out.print(f"  {scope}: cos {cos}", markup=False)
    if note:
        out.print(f"Note: {note}", markup=False)
    out.print(f"{report.batches} batches in {report.seconds:.2f} s", markup=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
