"""The multitask runner's failure mechanism and its repairs, over seeds.

    python benchmarks/multitask.py [--seeds 0,1,2] [--variants all|pair] [--recipes GOOD,BAD] [--only TEXT]

Trains each recipe variant on each seed through the trial itself
(``bisector.trial.run_local``: the same per-task judging a campaign uses) and
prints, per variant and seed, every task's relative improvement (1 - level at
the end / level at the start) and the verdict. Variants: ``good`` and ``bad``
(the recipe pair), ``bad`` with one knob changed (each lone revert, and the
candidate repairs: no normaliser, uncertainty weighting, running mean x
sqrt(elements), a summed countdown, gradient balancing).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bisector import knobs as K  # noqa: E402
from bisector.recipe import load  # noqa: E402
from bisector.trial import TrialRequest, run_local  # noqa: E402


def variants(good, bad, which: str) -> dict[str, dict]:
    """Name -> recipe dict (without seed)."""
    out = {"good": good.model.model_dump(mode="json"), "bad": bad.model.model_dump(mode="json")}
    if which == "pair":
        return out
    for knob in K.diff(good, bad):
        out[f"bad, revert {knob.name}"] = K.toggle(bad, [knob], "good").model_dump(mode="json")
    for label, changes in [
        ("bad, normaliser none", {"normaliser": "none"}),
        ("bad, normaliser uncertainty", {"normaliser": "uncertainty"}),
        ("bad, normaliser running_mean_sqrt_elements", {"normaliser": "running_mean_sqrt_elements"}),
        ("bad, normaliser none + countdown sum", {"normaliser": "none", "countdown_reduction": "sum"}),
        ("bad, normaliser grad_balance", {"normaliser": "grad_balance"}),
    ]:
        d = bad.model.model_dump(mode="json")
        d["loss"] = {**d["loss"], **changes}
        out[label] = d
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--variants", choices=["all", "pair"], default="all")
    ap.add_argument("--recipes", default="recipes/multitask/good.yaml,recipes/multitask/bad.yaml",
                    help="GOOD,BAD recipe paths")
    ap.add_argument("--only", default=None, help="run only variants whose name contains this")
    args = ap.parse_args()
    good_path, bad_path = args.recipes.split(",")
    good, bad = load(good_path), load(bad_path)
    seeds = [int(s) for s in args.seeds.split(",")]
    print("| variant | seed | " + " | ".join(["pointer", "type", "flag", "countdown"]) + " | verdict | s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, recipe in variants(good, bad, args.variants).items():
        if args.only and args.only not in name:
            continue
        for seed in seeds:
            t0 = time.time()
            req = TrialRequest(name, "multitask", {**recipe, "seed": seed}, threads=1)
            res, _ = run_local(req)
            tasks = res.get("tasks") or {}
            cells = [f"{tasks.get(f'loss_{t}', float('nan')):+.1%}" for t in ("pointer", "type", "flag", "countdown")]
            verdict = res["kind"] + (f" ({res['stagnant_task']})" if res.get("stagnant_task") else "")
            print(f"| {name} | {seed} | " + " | ".join(cells) + f" | {verdict} | {time.time() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
