"""Check the failure dynamics of the example training scripts.

Runs each example script as a subprocess (one torch thread each, ``-j`` at a
time) for its good config, its bad config, and the bad config with one knob
reverted to its good value (``revert:KNOB``), over several seeds; parses the
loss each script logs in its own format (stdout progress lines, a JSONL
file, TensorBoard event files); prints a table:

  start   first logged loss
  best    lowest loss after smoothing (trailing mean of 5 logged points), with its step
  last    smoothed loss at the last logged point
  climb   first step after the best where the smoothed loss is back >= 50% of the
          way from best to start ("-" if never)
  nan     first step with a non-finite loss ("-" if none)
  fate    NAN, CLIMB (climbed back >= 50% of the descent by the end) or stable
  det     bisector's ClimbDetector verdict with its climb start / detection step,
          when bisector is importable (the training scripts never import it)
  /good   last loss divided by the good config's last loss for the same seed
  cpu     CPU seconds (user + sys) the subprocess used: one thread, imports included
  wall    seconds the subprocess ran (depends on how busy the machine is)

    python benchmarks/examples.py                          # everything, seeds 0 1 2
    python benchmarks/examples.py argparse_stdout --configs good bad --seeds 0
    python benchmarks/examples.py --list                   # the knobs of each example
    python benchmarks/examples.py argparse_stdout --configs bad+--label-noise=0.0
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parents[1] / "examples"

# ---------------------------------------------------------------------------------------------
# The examples: how to run one config, where its loss is, and its good and bad knob values.
# ---------------------------------------------------------------------------------------------

ARGPARSE_GOOD = {
    "--lr": 3e-3, "--epochs": 10, "--batch-size": 32, "--hidden": [64, 64], "--warmup-steps": 100,
    "--clip": None, "--label-noise": 0.1, "--aux-weight": 0.01, "--aux-kind": "logprob", "--augment": False,
}
ARGPARSE_BAD = {**ARGPARSE_GOOD, "--batch-size": 48, "--hidden": [96, 96], "--augment": True,
                "--aux-weight": 0.1, "--aux-kind": "margin"}


def argparse_cmd(knobs: dict, seed: int, out: Path) -> tuple[list[str], Path]:
    cmd = [sys.executable, str(HERE / "argparse_stdout" / "train.py")]
    for flag, value in knobs.items():
        if value is None or value is False:
            continue
        if value is True:
            cmd.append(flag)
        elif isinstance(value, list):
            cmd += [flag, *map(str, value)]
        else:
            cmd += [flag, str(value)]
    cmd += ["--seed", str(seed), "--save-dir", str(out / "ckpt")]
    return cmd, out / "stdout.txt"


TRAIN_LINE = re.compile(r"Train Epoch: (\d+) \[(\d+)/(\d+) \((\d+)%\)\]\tLoss: (\S+)")


def argparse_points(knobs: dict, out: Path) -> list[tuple[int, float]]:
    """(step, loss) from the progress lines: step = batches done after the printed batch."""
    bs = knobs["--batch-size"]
    pts = []
    for line in (out / "stdout.txt").read_text().splitlines():
        m = TRAIN_LINE.match(line)
        if m:
            epoch, seen, n = int(m[1]), int(m[2]), int(m[3])
            pts.append(((epoch - 1) * (n // bs) + seen // bs + 1, float(m[5])))
    return pts


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def set_dotted(d: dict, key: str, value) -> None:
    *path, last = key.split(".")
    for p in path:
        d = d.setdefault(p, {})
    d[last] = value


def jsonl_cmd(knobs: dict, seed: int, out: Path) -> tuple[list[str], Path]:
    cfg = yaml.safe_load((HERE / "config_file_jsonl" / "cfg_good.yaml").read_text())
    for k, v in knobs.items():
        set_dotted(cfg, k, v)
    set_dotted(cfg, "train.seed", seed)
    (out / "cfg.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    cmd = [sys.executable, str(HERE / "config_file_jsonl" / "train.py"),
           "--config", str(out / "cfg.yaml"), "--out-dir", str(out / "run")]
    return cmd, out / "stdout.txt"


def jsonl_points(knobs: dict, out: Path) -> list[tuple[int, float]]:
    pts = []
    path = out / "run" / "metrics.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if "train_loss" in row:
                pts.append((row["step"], float(row["train_loss"])))
    return pts


def hydra_value(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ",".join(hydra_value(x) for x in v) + "]"
    return str(v)


def hydra_cmd(knobs: dict, seed: int, out: Path) -> tuple[list[str], Path]:
    cmd = [sys.executable, str(HERE / "hydra_tensorboard" / "train.py")]
    cmd += [f"{k}={hydra_value(v)}" for k, v in knobs.items()]
    cmd += [f"seed={seed}", f"out_dir={out / 'tb'}", f"hydra.run.dir={out / 'hydra'}"]
    return cmd, out / "stdout.txt"


def hydra_points(knobs: dict, out: Path) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    if "train/loss" not in acc.Tags().get("scalars", []):
        return []
    return [(e.step, e.value) for e in acc.Scalars("train/loss")]


def load_cfg_knobs(name: str) -> dict:
    return flatten(yaml.safe_load((HERE / "config_file_jsonl" / name).read_text()))


EXAMPLES = {
    "argparse_stdout": dict(cmd=argparse_cmd, points=argparse_points,
                            good=lambda: ARGPARSE_GOOD, bad=lambda: ARGPARSE_BAD),
    "config_file_jsonl": dict(cmd=jsonl_cmd, points=jsonl_points,
                              good=lambda: load_cfg_knobs("cfg_good.yaml"),
                              bad=lambda: load_cfg_knobs("cfg_bad.yaml")),
    "hydra_tensorboard": dict(cmd=hydra_cmd, points=hydra_points,
                              good=lambda: HYDRA_GOOD, bad=lambda: HYDRA_BAD),
}

# Hydra: overrides on top of conf/config.yaml (good = the defaults, written out)
HYDRA_GOOD = {
    "loss.label_smoothing": 0.1, "model.hidden": [64, 64], "data.batch_size": 64, "data.augment": False,
    "optim.warmup_steps": 100,
}
HYDRA_BAD = {
    "loss.label_smoothing": 0.0, "model.hidden": [96, 96], "data.batch_size": 96, "data.augment": True,
    "optim.warmup_steps": 200,
}


def diff(good: dict, bad: dict) -> list[str]:
    keys = list(dict.fromkeys([*good, *bad]))
    return [k for k in keys if good.get(k) != bad.get(k)]


def configs(example: str, wanted: list[str]) -> dict[str, dict]:
    spec = EXAMPLES[example]
    good, bad = spec["good"](), spec["bad"]()
    out = {}
    for w in wanted:
        if w == "good":
            out["good"] = copy.deepcopy(good)
        elif w == "bad":
            out["bad"] = copy.deepcopy(bad)
        elif w == "revert":
            for k in diff(good, bad):
                knobs = copy.deepcopy(bad)
                knobs[k] = copy.deepcopy(good.get(k))
                out[f"revert:{k}"] = knobs
        elif w.startswith("revert:"):
            k = w.split(":", 1)[1]
            knobs = copy.deepcopy(bad)
            knobs[k] = copy.deepcopy(good.get(k))
            out[w] = knobs
        elif "+" in w and w.split("+", 1)[0] in ("good", "bad"):
            base, *sets = w.split("+")
            knobs = copy.deepcopy(good if base == "good" else bad)
            for kv in sets:
                k, v = kv.split("=", 1)
                knobs[k] = yaml.safe_load(v)
            out[w] = knobs
        else:
            raise SystemExit(f"unknown config {w!r}")
    return out


# ---------------------------------------------------------------------------------------------
# Running and judging
# ---------------------------------------------------------------------------------------------

def summarize(pts: list[tuple[int, float]], window: int = 5) -> dict:
    res = dict(points=len(pts), start=None, best=None, best_step=None, last=None, climb_step=None,
               nan_step=None, fate="no-data", last_step=None)
    if not pts:
        return res
    res["start"], res["last_step"] = pts[0][1], pts[-1][0]
    finite = []
    for step, v in pts:
        if not math.isfinite(v):
            res["nan_step"] = step
            break
        finite.append((step, v))
    smooth = []
    for i, (step, _) in enumerate(finite):
        win = [v for _, v in finite[max(0, i - window + 1): i + 1]]
        smooth.append((step, sum(win) / len(win)))
    if smooth:
        b = min(range(len(smooth)), key=lambda i: smooth[i][1])
        res["best_step"], res["best"] = smooth[b]
        res["last"] = smooth[-1][1]
        descent = res["start"] - res["best"]
        for step, v in smooth[b:]:
            if descent > 0 and v >= res["best"] + 0.5 * descent:
                res["climb_step"] = step
                break
    if res["nan_step"] is not None:
        res["fate"] = "NAN"
    elif res["last"] is not None and res["start"] - res["best"] > 0 and \
            res["last"] - res["best"] >= 0.5 * (res["start"] - res["best"]):
        res["fate"] = "CLIMB"
    else:
        res["fate"] = "stable"
    try:
        from bisector.detector import classify
    except Exception:  # the examples work without bisector installed
        res["det"] = None
    else:
        v = classify(pts)
        at = v.climb_start_step if v.kind == "diverged" else v.detected_at_step
        res["det"] = v.kind + (f"@{at}/{v.detected_at_step}" if v.kind == "diverged" else
                               f"@{at}" if at is not None else "")
    return res


def run_one(example: str, config: str, knobs: dict, seed: int, root: Path) -> dict:
    out = root / example / config.replace(":", "_") / f"seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    cmd, log = EXAMPLES[example]["cmd"](knobs, seed, out)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.time()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=out)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own CPU time, not the pool's
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - t0
    res = summarize(EXAMPLES[example]["points"](knobs, out))
    res.update(example=example, config=config, seed=seed, wall=wall, cpu=usage.ru_utime + usage.ru_stime,
               rc=proc.returncode, cmd=cmd)
    return res


def fmt(x, spec=".3f"):
    return "-" if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("examples", nargs="*", default=list(EXAMPLES), help="example folders (default: all)")
    ap.add_argument("--configs", nargs="+", default=["good", "bad", "revert"],
                    help="good, bad, revert (every knob), revert:KNOB, or bad+KNOB=VALUE[+KNOB=VALUE] "
                         "(default: good bad revert)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("-j", "--jobs", type=int, default=2, help="subprocesses at a time (default: 2)")
    ap.add_argument("--workdir", default=None, help="where runs write their logs (default: a temp dir)")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    ap.add_argument("--list", action="store_true", help="print each example's good/bad knobs and exit")
    args = ap.parse_args()

    if args.list:
        for ex in args.examples:
            good, bad = EXAMPLES[ex]["good"](), EXAMPLES[ex]["bad"]()
            print(f"{ex}:")
            for k in diff(good, bad):
                print(f"  {k}: good={good.get(k)!r} bad={bad.get(k)!r}")
        return

    root = Path(args.workdir or tempfile.mkdtemp(prefix="verify-examples-"))
    jobs = [(ex, name, knobs, seed) for ex in args.examples for name, knobs in configs(ex, args.configs).items()
            for seed in args.seeds]
    print(f"{len(jobs)} runs, logs under {root}", flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda j: run_one(*j, root), jobs))

    good_last = {(r["example"], r["seed"]): r["last"] for r in rows if r["config"] == "good"}
    head = (f"{'script':<18} {'config':<28} {'seed':>4} {'start':>7} {'best':>7} {'@step':>6} {'last':>8} "
            f"{'climb':>6} {'nan':>6} {'fate':<7} {'det':<22} {'/good':>6} {'cpu':>5} {'wall':>5}")
    print(head)
    print("-" * len(head))
    for r in rows:
        g = good_last.get((r["example"], r["seed"]))
        ratio = r["last"] / g if (g and r["last"] is not None and r["fate"] == "stable") else None
        rc = "" if r["rc"] == 0 else f" rc={r['rc']}"
        print(f"{r['example']:<18} {r['config']:<28} {r['seed']:>4} {fmt(r['start'])} {fmt(r['best']):>7} "
              f"{fmt(r['best_step'], 'd'):>6} {fmt(r['last'], '.3f'):>8} {fmt(r['climb_step'], 'd'):>6} "
              f"{fmt(r['nan_step'], 'd'):>6} {r['fate']:<7} {r.get('det') or '-':<22} {fmt(ratio, '.2f'):>6} "
              f"{r['cpu']:5.1f} {r['wall']:5.1f}{rc}")
    print()
    by = {}
    for r in rows:
        by.setdefault((r["example"], r["config"]), []).append(r)
    for (ex, cfg), rs in by.items():
        fails = sum(r["fate"] != "stable" for r in rs)
        print(f"{ex:<18} {cfg:<28} fails {fails}/{len(rs)}  ({', '.join(sorted({r['fate'] for r in rs}))})")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
