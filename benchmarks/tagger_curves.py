"""Real per-step loss curves of the reference tagger, trained once and cached.

    python benchmarks/tagger_curves.py [--only NAME ...] [--steps N]   # trains, rewrites the cache

The detector benchmark and a test need real curves, and training them costs
minutes (13-20 s per 1000 steps on one thread), so they are trained here once
and kept in ``benchmarks/data/tagger_curves.json.gz`` (``train_ce`` per step,
4 significant digits). Each curve is the good recipe with a few overrides, so
the cache says exactly which run made it:

* ``good``: the good recipe (healthy).
* ``bad``: the bad recipe (a fast climb, ~130 steps in).
* ``sum``: good + corpus v2 (10% orphan I-road rows) + CRF ``sum`` reduction,
  2000 steps: the slow climb back to ~7x its start described in FACTS.
* ``late``: good + corpus v2 with 35% orphan rows + ``per_sequence`` reduction
  + CRF weight 0.2: a late, slow climb that ends near the 1200-step horizon.
* ``late-10pct``, ``late-no-orphans``, ``v2-token-mean``, ``v1-sum``: controls
  (healthy): the late recipe with v2's default 10% orphan rows or none, and
  each of the ``sum`` recipe's two changes alone.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks/data/tagger_curves.json.gz"

V2 = {"data": {"corpus": "v2"}}
PS02 = {"model": {"crf_reduction": "per_sequence", "crf_loss_weight": 0.2}}
RUNS: dict[str, tuple[str, dict, int, tuple[int, ...]]] = {
    # name: (base recipe, overrides, steps, seeds)
    "good": ("good", {}, 1200, (0, 1, 2)),
    "bad": ("bad", {}, 1200, (0, 1, 2)),
    "sum": ("good", {**V2, "model": {"crf_reduction": "sum"}}, 2000, (0, 1, 2)),
    "late": ("good", {"data": {"corpus": "v2", "orphan_rows": 0.35}, **PS02}, 1500, (0, 1, 2)),
    "late-10pct": ("good", {**V2, **PS02}, 1500, (0, 1, 2)),
    "late-no-orphans": ("good", {"data": {"corpus": "v2", "orphan_rows": 0.0},
                                 "model": {"crf_reduction": "per_sequence", "crf_loss_weight": 0.2}}, 1500, (0,)),
    "v2-token-mean": ("good", V2, 1200, (0,)),
    "v1-sum": ("good", {"model": {"crf_reduction": "sum"}}, 1200, (0,)),
}
HEALTHY = frozenset({"good", "late-10pct", "late-no-orphans", "v2-token-mean", "v1-sum"})


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base.get(k, {}), v) if isinstance(v, dict) else v
    return out


def recipe(name: str, seed: int, steps: int | None = None) -> dict:
    import yaml

    base, over, horizon, _ = RUNS[name]
    raw = yaml.safe_load((ROOT / f"recipes/tagger/{base}.yaml").read_text())
    return _merge(raw, {**over, "seed": seed, "train": {"steps": steps or horizon}})


def load(path: Path = CACHE) -> dict[str, dict]:
    """``{"NAME seed S": {"name", "seed", "recipe", "healthy", "train_ce": [per step, from step 1]}}``."""
    with gzip.open(path, "rt") as f:
        return json.load(f)


def train_curve(name: str, seed: int, steps: int | None = None) -> list[float]:
    from runners.tagger import TaggerRecipe, train

    rec = TaggerRecipe.model_validate(recipe(name, seed, steps))
    return [float(f"{r['train_ce']:.4g}") for r in train(rec, threads=1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=sorted(RUNS), help="train only these (others kept)")
    ap.add_argument("--steps", type=int, help="override every run's step count")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    curves = load() if CACHE.exists() else {}
    for name in args.only or list(RUNS):
        for seed in RUNS[name][3]:
            t0 = time.time()
            values = train_curve(name, seed, args.steps)
            curves[f"{name} seed {seed}"] = {"name": name, "seed": seed, "recipe": recipe(name, seed, args.steps),
                                             "healthy": name in HEALTHY, "train_ce": values}
            print(f"{name} seed {seed}: {len(values)} steps in {time.time() - t0:.0f} s; "
                  f"min {min(values):.3g} at {values.index(min(values)) + 1}, last {values[-1]:.3g}", flush=True)
            CACHE.parent.mkdir(parents=True, exist_ok=True)
            blob = json.dumps(curves, separators=(",", ":"), sort_keys=True).encode()
            CACHE.write_bytes(gzip.compress(blob, compresslevel=9, mtime=0))  # byte-stable for git
    print(f"{CACHE}: {CACHE.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
