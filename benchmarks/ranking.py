"""The ranking runner's failure, seed by seed: every recipe x seed with its verdict.

    python benchmarks/ranking.py [--good G] [--bad B] [--seeds 0,1,2] [--no-reverts] [--modes]
                                 [--only-modes [--match TEXT]]

Trains (in this process, one thread, the trial code a Ray worker runs:
``bisector.trial.run_local``, with the runner's phase switch) the good
recipe, the bad one and each of bad's knobs reverted alone to its good
value, on each seed, and prints one row per recipe x seed: verdict, best
step, climb start, detection step, ``val_map`` at step 1 (``map0``, from the per-class
``ap_loss``), final and peak ``val_map`` and wall
seconds, then the class the trial judged ``stagnant`` (if any) and how much each
class's ``ap_loss`` improved. ``--modes`` also trains the loss library's other failure modes as
overrides of good (see ``MODES``). The claim it checks: bad fails in 3/3
seeds, good is stable in 3/3, and only the culprit's lone revert fixes bad.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bisector import knobs as K  # noqa: E402
from bisector import recipe as R  # noqa: E402
from bisector.trial import TrialRequest, run_local  # noqa: E402

MODES: dict[str, dict[str, dict]] = {
    # the loss library's other symptoms, each an override of good
    # dose-response: how deep a queue (in batches of 256) the good recipe tolerates
    "queue 1024 (4 batches)": {"loss": {"queue_size": 1024}},
    "queue 2048 (8 batches)": {"loss": {"queue_size": 2048}},
    "queue 4096 (16 batches)": {"loss": {"queue_size": 4096}},
    "queue 4096, batch 1024 (4 batches)": {"loss": {"queue_size": 4096}, "train": {"batch_size": 1024}},
    "cold start (no warmup, no CE, T 0.001)": {"loss": {"warmup_steps": 0, "ce_weight": 0.0, "temp_start": 0.001,
                                                        "temp_end": 0.001}},
    # a class that never improves: 10 training rows of class 4 (rare_share 0.03), 64-row batches
    "rare class 10 rows, batch 64, queue 64": {"data": {"rare_share": 0.03}, "loss": {"queue_size": 64},
                                               "train": {"batch_size": 64}},
    "rare class 10 rows (good's batch 256)": {"data": {"rare_share": 0.03}},
    "batch 64, queue 64 (rare class 67 rows)": {"loss": {"queue_size": 64}, "train": {"batch_size": 64}},
    "T too low (no CE, T_end 0.001, lr 1e-2)": {"loss": {"ce_weight": 0.0, "temp_end": 0.001,
                                                         "temp_decay_steps": 50}, "train": {"lr": 0.01}},
    # a run that never descends: smooth-AP from scratch (no warmup, no CE) with plain SGD (momentum 0.9);
    # the sigmoids are linear at T 2 for near-uniform scores, so the gradient is ~1/T; Adam rescales it
    "flat: SGD, cold start, T 2": {"loss": {"warmup_steps": 0, "ce_weight": 0.0, "temp_start": 2.0,
                                            "temp_end": 2.0}, "train": {"optimizer": "sgd"}},
    "SGD, cold start, good's T 0.5->0.1": {"loss": {"warmup_steps": 0, "ce_weight": 0.0},
                                           "train": {"optimizer": "sgd"}},
    "Adam, cold start, T 2": {"loss": {"warmup_steps": 0, "ce_weight": 0.0, "temp_start": 2.0, "temp_end": 2.0}},
    # swings with no downward trend: after the switch, a temperature far below the score scale (the
    # warmup spread the logits over several units), Adam's steps of ~lr in every weight, and 128-row batches
    # (about 5 positive rows each: the few near-tie pairs that carry the gradient change from step to step)
    "oscillating: T 0.01 lr 1e-2 batch 128": {"loss": {"temp_start": 0.01, "temp_end": 0.01},
                                              "train": {"lr": 0.01, "batch_size": 128}},
    "T 0.01 throughout, lr 1e-2 (batch 256)": {"loss": {"temp_start": 0.01, "temp_end": 0.01},
                                               "train": {"lr": 0.01}},
    "T 0.01 throughout (good's lr 2e-3)": {"loss": {"temp_start": 0.01, "temp_end": 0.01}},
    "T 0.01, batch 128 (good's lr 2e-3)": {"loss": {"temp_start": 0.01, "temp_end": 0.01},
                                           "train": {"batch_size": 128}},
    "lr 1e-2 (good's T 0.5->0.1)": {"train": {"lr": 0.01}},
    "T 0.001 throughout": {"loss": {"temp_start": 0.001, "temp_end": 0.001}},
    "T 0.001 throughout, lr 1e-2": {"loss": {"temp_start": 0.001, "temp_end": 0.001}, "train": {"lr": 0.01}},
    "T 0.001 throughout, lr 5e-4": {"loss": {"temp_start": 0.001, "temp_end": 0.001}, "train": {"lr": 5e-4}},
}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base.get(k, {}), v) if isinstance(v, dict) else v
    return out


def trial(name: str, data: dict, seed: int) -> dict:
    req = TrialRequest(name=name, runner="ranking", recipe={**data, "seed": seed}, threads=1, early_stop=False)
    t0 = time.time()
    result, records = run_local(req)
    val = [r["val_map"] for r in records if "val_map" in r]
    first = [1.0 - v for k, v in records[0].items() if k.startswith("ap_loss.")] if records else []
    return {**result, "val_map": val[-1] if val else None, "peak_map": max(val) if val else None,
            "map0": sum(first) / len(first) if first else None,
            "wall": time.time() - t0}


def _tasks(r: dict) -> str:
    """The stagnant class (if any) and each class's ``ap_loss`` improvement over the run."""
    tasks = r.get("tasks") or {}
    per = " ".join(f"{m.split('.')[-1]}:{v:+.0%}" for m, v in tasks.items())
    return f"{r.get('stagnant_task') or '-'} ({per})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--good", default=str(ROOT / "recipes/ranking/good.yaml"))
    ap.add_argument("--bad", default=str(ROOT / "recipes/ranking/bad.yaml"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--no-reverts", action="store_true")
    ap.add_argument("--modes", action="store_true")
    ap.add_argument("--only-modes", action="store_true", help="the modes alone (no endpoints, no reverts)")
    ap.add_argument("--match", default="", help="only the modes whose name contains this text")
    args = ap.parse_args(argv)
    good, bad = R.load(args.good), R.load(args.bad)
    runs = [("good", good.model.model_dump()), ("bad", bad.model.model_dump())]
    if not args.no_reverts and not args.only_modes:
        for knob in K.diff(good, bad):
            runs.append((f"revert {knob.name}", K.toggle(bad, [knob]).model_dump()))
    if args.only_modes:
        runs, args.modes = [], True
    if args.modes:
        runs += [(name, _merge(good.model.model_dump(), over)) for name, over in MODES.items()
                 if args.match in name]
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"{'recipe':38} {'seed':>4} {'verdict':>11} {'best':>5} {'climb':>5} {'det':>5} {'map0':>6} {'map':>6}"
          f" {'peak':>6} {'s':>5}  {'stagnant (ap_loss improvement per class)'}", flush=True)
    tally: dict[str, list[str]] = {}
    for name, data in runs:
        for seed in seeds:
            r = trial(name, data, seed)
            tally.setdefault(name, []).append(r["kind"])
            f = lambda v: "-" if v is None else str(v)  # noqa: E731
            g = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
            print(f"{name:38} {seed:>4} {r['kind']:>11} {f(r['best_step']):>5} {f(r['climb_start_step']):>5} "
                  f"{f(r['detected_at_step']):>5} {g(r['map0']):>6} {g(r['val_map']):>6} {g(r['peak_map']):>6} "
                  f"{r['wall']:>5.1f}  "
                  f"{_tasks(r)}", flush=True)
    print()
    for name, kinds in tally.items():
        fails = sum(k != "stable" for k in kinds)
        print(f"{name:38} fails {fails}/{len(kinds)}: {', '.join(kinds)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
