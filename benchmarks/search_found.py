"""The best guess before proof: when halving has found the answer, and what a budget stop names.

    python benchmarks/search_found.py [--reps 20] [--seed 81]     (or: python benchmarks/search.py --found)

It measures what halving finds before it proves anything: after each trial the posterior's most probable
answer (``Search.guess``, what a budget stop names); "found at" is the trial count (both endpoints included) from
which that guess is the truth and stays so to the end (noiseless, one slot), beside the goal ceil(log2 N)+2 (one
culprit), GBS+2 (independent culprits) or the information bound (AND structures, where GBS does not apply); and
each campaign stopped by a budget of exactly that goal (``--max-trials``): how often its best guess is exactly
right, with the confidence it stated (noiseless and at flip 0.1). Developed on seeds 1-4; held out: seed 81.
The oracle, placements and tables are ``search.py``'s.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time

from search import NS, STRUCTURES, S, hypotheses, make, table, truth

from bisector.verdicts import Result

GUESS_BUCKETS = [(0.0, 0.1), (0.1, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.01)]
"""A best guess at a budget stop states far less than an answer does: finer bins at the low end."""


def gbs(n: int, d: int) -> int:
    """Hwang's generalized binary splitting, worst case with d known, counting the run of the whole diff."""
    if n <= 2 * d - 2:
        return n
    alpha = int(math.floor(math.log2((n - d + 1) / d)))
    p = (n - d + 1 - 2 ** alpha * d) // 2 ** alpha
    return (alpha + 2) * d + p - 1


def goal(n: int, st: str, sizes: list[int]) -> tuple[int, str]:
    """The trials the search is measured against: ceil(log2 N)+2 for one culprit, GBS+2 for independent ones,
    the information bound for AND structures (GBS assumes any culprit alone fails)."""
    if st == "single":
        return math.ceil(math.log2(n)) + 2, "log"
    if all(s == 1 for s in sizes):
        return gbs(n, len(sizes)) + 2, "GBS"
    return math.ceil(math.log2(hypotheses(n, sizes))) + 2, "info"


def _key(groups) -> list[tuple[str, ...]]:
    return sorted(tuple(sorted(g)) for g in groups)


def found_run(strategy: str, n: int, sizes: list[int], rng: random.Random) -> tuple[int | None, int]:
    """Noiseless, one slot: the trial from which the best guess is the truth to the end (None: never); trials run."""
    groups = truth(rng, n, sizes)
    hits: list[bool] = []
    run = S.drive(make(strategy, S.knobs(n), 1), S.Oracle(groups), 1, max_trials=20 * n + 50,
                  after=lambda s: hits.append(_key(s.guess()) == _key(groups)))
    t = len(hits)
    while t and hits[t - 1]:
        t -= 1
    return (t + 1 if t < len(hits) else None), run.trials


def budget_run(strategy: str, n: int, sizes: list[int], budget: int, flip: float, rng: random.Random):
    """Stopped by ``--max-trials budget`` (one slot): (best guess exactly right, stated confidence, finished)."""
    groups = truth(rng, n, sizes)
    run = S.drive(make(strategy, S.knobs(n), 1), S.Oracle(groups, flip, rng), 1, max_trials=budget)
    res = run.result
    return (_key([k.name for k in g] for g in res.groups) == _key(groups), res.confidence or 0.0,
            res.result is not Result.NOT_FINISHED)


def found_tables(reps: int, seed: int) -> None:
    strategies = ["auto", "split"]
    print("## Found at: trials (both endpoints included) after which the best guess is the truth and stays so "
          "(noiseless, 1 slot): mean/worst, beside the goal and the trials the campaign ran (mean/worst)\n")
    lines, budget = [], {}
    for n in NS:
        for st, sizes in STRUCTURES.items():
            g, kind = goal(n, st, sizes)
            cells = [str(n), st, f"{g} ({kind})"]
            for strat in strategies:
                rng = random.Random(f"{seed}-found-{n}-{st}-{strat}")
                got = [found_run(strat, n, sizes, rng) for _ in range(reps)]
                at = [a for a, _ in got if a is not None]
                never = f", never {reps - len(at)}" if len(at) < reps else ""
                within = sum(a <= g for a in at) / reps
                cells += [f"{statistics.mean(at):.1f}/{max(at)}{never} ({within:.0%} within goal)" if at else "never",
                          f"{statistics.mean(t for _, t in got):.1f}/{max(t for _, t in got)}"]
                for flip in (0.0, 0.1):  # noiseless: the same placements as "found at"
                    rng = random.Random(f"{seed}-found-{n}-{st}-{strat}" if not flip else
                                        f"{seed}-budget-{n}-{st}-{strat}-{flip}")
                    budget[n, st, strat, flip] = [budget_run(strat, n, sizes, g, flip, rng) for _ in range(reps)]
            lines.append(cells)
    table(["N", "structure", "goal"] + [f"{s}: {w}" for s in strategies for w in ("found at", "trials")], lines)

    print("## Stopped by a budget of exactly the goal (--max-trials, 1 slot): best guess exactly right / mean "
          "stated confidence / finished within the budget\n")
    lines = []
    for n in NS:
        for st, sizes in STRUCTURES.items():
            cells = [str(n), st, str(goal(n, st, sizes)[0])]
            for strat in strategies:
                for flip in (0.0, 0.1):
                    r = budget[n, st, strat, flip]
                    cells.append(f"{statistics.mean(x[0] for x in r):.0%} / {statistics.mean(x[1] for x in r):.0%}"
                                 f" / {statistics.mean(x[2] for x in r):.0%}")
            lines.append(cells)
    table(["N", "structure", "budget"] + [f"{s}, flip {f:g}" for s in strategies for f in (0.0, 0.1)], lines)

    print("## Calibration of the best guess at that budget (every N and structure): right of those stating each "
          "confidence\n")
    lines = []
    for strat in strategies:
        for flip in (0.0, 0.1):
            for only in ("single", None):
                r = [x for (n, st, s, f), v in budget.items() if s == strat and f == flip and only in (None, st)
                     for x in v]
                cells = [f"`{strat}`", f"{flip:g}", only or "every structure"]
                for lo, hi in GUESS_BUCKETS:
                    b = [x for x in r if lo <= x[1] < hi]
                    cells.append(f"{sum(x[0] for x in b) / len(b):.0%} of {len(b)}" if b else "-")
                cells.append(f"{statistics.mean(x[0] for x in r):.1%} at {statistics.mean(x[1] for x in r):.1%}")
                lines.append(cells)
    table(["strategy", "flip", "cells"] + [f"stated {lo:.0%}-{hi:.0%}" if hi <= 1 else f"stated >= {lo:.0%}"
                                           for lo, hi in GUESS_BUCKETS] + ["right at stated (mean)"], lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=81)
    args = ap.parse_args()
    t0 = time.time()
    print(f"# Best guess before proof, simulated oracle ({args.reps} random placements per cell, seed {args.seed})\n")
    found_tables(args.reps, args.seed)
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
