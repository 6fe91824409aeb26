"""The fewest trials that *prove* one culprit among N knobs when any monotone failure structure is possible.

    python benchmarks/search_floor.py 3 4      # N = 3: 6 trials, N = 4: 6 trials (both endpoints included)

A hypothesis is an antichain of knob sets (the minimal failing sets); a
trial of a set fails when it holds one of them. The search below finds the
shallowest adaptive plan of non-endpoint trials that isolates every
single-culprit hypothesis (the other hypotheses may take longer). It backs
the README's claim that ceil(log2 N) + 2 trials cannot prove an answer:
the floor is ceil(log2 N) + 4 for N >= 3. Exhaustive: N = 5 already has
7,579 hypotheses and takes long.
"""

from __future__ import annotations

import functools
import itertools
import sys


def floor(n: int, max_depth: int = 8) -> int | None:
    knobs = range(n)
    subsets = [frozenset(c) for r in range(n + 1) for c in itertools.combinations(knobs, r)]
    nonempty = [s for s in subsets if s]
    hyps: list[tuple[frozenset[int], ...]] = []

    def grow(i: int, chosen: list[frozenset[int]]) -> None:
        if i == len(nonempty):
            if chosen:
                hyps.append(tuple(chosen))
            return
        grow(i + 1, chosen)
        if all(not (c <= nonempty[i] or nonempty[i] <= c) for c in chosen):
            grow(i + 1, [*chosen, nonempty[i]])

    grow(0, [])
    tests = [s for s in subsets if s and len(s) < n]
    singles = {i for i, h in enumerate(hyps) if len(h) == 1 and len(h[0]) == 1}

    @functools.lru_cache(None)
    def isolates(state: frozenset[int], depth: int) -> bool:
        if len(state) == 1 or not state & singles:
            return True
        if depth == 0:
            return False
        for t in tests:
            fail = frozenset(i for i in state if any(g <= t for g in hyps[i]))
            if fail and fail != state and isolates(fail, depth - 1) and isolates(state - fail, depth - 1):
                return True
        return False

    everything = frozenset(range(len(hyps)))
    return next((d + 2 for d in range(1, max_depth) if isolates(everything, d)), None)


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["3", "4"]:
        n = int(arg)
        print(f"N = {n}: {floor(n)} trials at least (ceil(log2 N) + 2 = {(n - 1).bit_length() + 2})")
