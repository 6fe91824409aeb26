"""Search strategies against a simulated oracle: accuracy, trials and rounds beside the information bound.

    python benchmarks/search.py [--reps 30] [--seed 0] [--full]

No training: an oracle maps the knobs left at their bad value to a verdict,
with a known culprit structure placed at random among N knobs and a flip
probability (each trial's verdict is inverted with that probability, the
endpoints included). A trial takes one time unit and ``slots`` run at once,
so rounds are the wall clock in trial units. Trials count both endpoints.
The bound is ceil(log2 H) + 2, H the number of hypotheses of that structure
(N for one culprit, C(N, 2) for a pair, ...), plus the two endpoints.
An answer is correct when its minimal failing sets equal the truth exactly
(knobs and structure); a "not confident" or stopped answer is not correct,
and is counted apart (it is not a wrong name either).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bisector import simulate as S  # noqa: E402
from bisector.strategy import make  # noqa: E402
from bisector.verdicts import Result  # noqa: E402

NS = [4, 8, 16, 32, 64]
STRUCTURES = {"single": [1], "AND pair": [2], "OR pair": [1, 1], "AND pair + 1": [2, 1], "three": [1, 1, 1]}
STRATEGIES = ["oat", "split", "dd", "auto"]
NOISY = {"auto --noise 0.1": ("auto", {"noise": 0.1})}
SLOTS = [1, 2, 8]
FLIPS = [0.0, 0.05, 0.1]


def hypotheses(n: int, sizes: list[int]) -> int:
    h, left = 1, n
    for s in sizes:
        h *= math.comb(left, s)
        left -= s
    same = [sizes.count(s) for s in set(sizes)]
    return h // math.prod(math.factorial(c) for c in same)


def truth(rng: random.Random, n: int, sizes: list[int]) -> list[frozenset[str]]:
    names = [f"k{i:02d}" for i in rng.sample(range(n), sum(sizes))]
    out, i = [], 0
    for s in sizes:
        out.append(frozenset(names[i:i + s]))
        i += s
    return out


def one(strategy: str, n: int, sizes: list[int], slots: int, flip: float, rng: random.Random, **voting):
    groups = truth(rng, n, sizes)
    run = S.drive(make(strategy, S.knobs(n), slots, **voting), S.Oracle(groups, flip, rng), slots,
                  max_trials=20 * n + 50)
    got = sorted(tuple(sorted(k.name for k in g)) for g in run.result.groups)
    ok = got == sorted(tuple(sorted(g)) for g in groups) and run.result.result is Result.CULPRITS
    abstained = run.result.result is not Result.CULPRITS
    return ok, abstained, run.trials, run.rounds, run.result.confidence


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--full", action="store_true", help="every N x structure x slots row (default: a summary)")
    args = ap.parse_args()
    t0 = time.time()
    rows = {}
    for n in NS:
        for st, sizes in STRUCTURES.items():
            for strat in STRATEGIES:
                for slots in SLOTS:
                    for flip in FLIPS:
                        rng = random.Random(f"{args.seed}-{n}-{st}-{strat}-{slots}-{flip}")
                        rows[n, st, strat, slots, flip] = [one(strat, n, sizes, slots, flip, rng)
                                                           for _ in range(args.reps)]
            for label, (strat, voting) in NOISY.items():
                for flip in FLIPS:
                    rng = random.Random(f"{args.seed}-{n}-{st}-{label}-{flip}")
                    rows[n, st, label, 1, flip] = [one(strat, n, sizes, 1, flip, rng, **voting)
                                                   for _ in range(args.reps)]

    def acc(key):
        r = rows[key]
        return sum(x[0] for x in r) / len(r)

    print(f"# Search strategies, simulated oracle ({args.reps} random placements per cell, seed {args.seed})\n")
    print("## Noiseless: correct, trials mean/worst (1 slot), rounds mean (8 slots), bound\n")
    head = ["N", "structure", "bound"] + [f"{s}: ok, trials, rounds@8" for s in STRATEGIES]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for n in NS:
        for st, sizes in STRUCTURES.items():
            cells = [str(n), st, str(math.ceil(math.log2(hypotheses(n, sizes))) + 2)]
            for strat in STRATEGIES:
                one_slot = rows[n, st, strat, 1, 0.0]
                eight = rows[n, st, strat, 8, 0.0]
                trials = [x[2] for x in one_slot]
                cells.append(f"{acc((n, st, strat, 1, 0.0)):.0%}, {statistics.mean(trials):.1f}/{max(trials)}, "
                             f"{statistics.mean(x[3] for x in eight):.1f}")
            print("| " + " | ".join(cells) + " |")
    print("\n## With noise, over every N and structure, 1 slot: correct / abstained (not confident, no culprit) / "
          "correct when a culprit is named / mean stated confidence when named / trials mean\n")
    head = ["strategy"] + [f"flip {f:g}" for f in FLIPS]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for strat in [*STRATEGIES, *NOISY]:
        cells = [f"`{strat}`"]
        for flip in FLIPS:
            runs = [x for (n, st, s, sl, f), r in rows.items() if s == strat and f == flip and sl == 1 for x in r]
            named = [x for x in runs if not x[1]]
            when = f"{sum(x[0] for x in named) / len(named):.1%}" if named else "-"
            conf = f"{statistics.mean(x[4] or 0 for x in named):.1%}" if named else "-"
            cells.append(f"{sum(x[0] for x in runs) / len(runs):.0%} / {sum(x[1] for x in runs) / len(runs):.0%} / "
                         f"{when} / {conf} / {statistics.mean(x[2] for x in runs):.1f}")
        print("| " + " | ".join(cells) + " |")
    if args.full:
        print("\n## Every cell: correct, trials mean/worst, rounds mean\n")
        print("| N | structure | strategy | slots | flip | correct | trials | rounds |\n|" + "---|" * 8)
        for (n, st, strat, slots, flip), r in rows.items():
            t = [x[2] for x in r]
            print(f"| {n} | {st} | {strat} | {slots} | {flip:g} | {acc((n, st, strat, slots, flip)):.0%} | "
                  f"{statistics.mean(t):.1f}/{max(t)} | {statistics.mean(x[3] for x in r):.1f} |")
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
