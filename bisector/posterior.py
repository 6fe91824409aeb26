"""How likely a search's answer is right, with the flip probability unknown and integrated out.

Why not a product of per-set posteriors at an assumed flip rate: that either
assumes flips are rare (0.1%: at a true flip rate of 10% the quiet default's
named answers were right 85% of the time while it stated 97%) or, at an
assumed 10%, counts every tested set as if one flipped vote there could
change the answer, which is far too pessimistic (a wrong culprit must
explain *every* vote: the lone application, the revert and the halvings) and
made noiseless campaigns pay for repeats they did not need.

Here the answer's probability is computed against its competitors: every
failure structure of up to three culprits (one knob, two only together, two
independent, a pair plus one, three independent), each weighted by a prior
over structures and by the likelihood of every vote under it,
``f^disagreeing (1 - f)^agreeing``, summed over a prior on the flip
probability f (a discretised Beta(1, 8): mean 12%, half its mass at 10% or
more; on development placements it stated 0.1-0.5 points more than it got
right at flip 0.1 where Beta(1, 12) and Beta(1, 20) stated 0.7-1.4 more, for
0.1-0.4 trials more at flip 0; ``--noise P`` fixes f = P instead). So f
is estimated from the campaign's own evidence: a campaign whose votes all
agree weighs small f more, one whose votes disagree weighs large f more, and
its stated confidence drops. Knobs no tested set tells apart are one class (counted
with their multiplicity), which keeps the enumeration to the classes the
trials made (about one per trial). The answer's structure may lie outside
the enumerated ones (four culprits, a triple only together): it is then
added as one more hypothesis with the smallest per-structure prior.
``benchmarks/search.py`` reports the calibration of the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import combinations_with_replacement

import numpy as np

from .verdicts import Outcome

MAX_CLASSES = 80
"""Above this many knob classes the three-culprit structures are left out (an answer of that shape is then
added on its own): their count grows as the cube of the classes."""
STRUCTURES: dict[tuple[int, ...], float] = {(1,): 0.4, (2,): 0.15, (1, 1): 0.15, (1, 2): 0.15, (1, 1, 1): 0.15}
"""Prior over failure structures (sorted group sizes): a single culprit is the common case."""
OTHER = 0.05
"""Prior of any other structure (four culprits, three only together, ...), shared by the structures of its shape:
an answer of such a shape is weighed against the enumerated ones with that small prior, never as a sure thing."""


def beta_grid(a: float = 1.0, b: float = 8.0) -> list[tuple[float, float]]:
    """A Beta(a, b) prior on the flip probability, discretised on a grid from 0.1% to 30%."""
    grid = [0.001, 0.003, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.13, 0.17, 0.22, 0.3]
    edges = [0.0] + [(x + y) / 2 for x, y in zip(grid, grid[1:], strict=False)] + [0.5]
    w = [(grid[i] ** (a - 1)) * ((1 - grid[i]) ** (b - 1)) * (edges[i + 1] - edges[i]) for i in range(len(grid))]
    total = sum(w)
    return [(f, x / total) for f, x in zip(grid, w, strict=True)]


FLIP_PRIOR = beta_grid()
CONFIRM_FLIP = 0.1
"""The flip rate at which an answer must already reach the target for its remaining evidence to go unconfirmed."""


@dataclass
class Posterior:
    confidence: float
    knobs: dict[str, float] = field(default_factory=dict)
    """Per knob of the answer: the probability that it is a culprit."""
    flip: float = 0.0
    """Posterior mean of the flip probability."""
    doubt: dict[frozenset[str], float] = field(default_factory=dict)
    """Per tested set: the posterior mass of the structures that predict another outcome there than the answer
    (where one more vote would raise the confidence most)."""

    def most_doubted(self, can_vote: Callable[[frozenset[str]], bool], floor: float = 1e-4) -> frozenset[str] | None:
        """The set the answer's competitors dispute most that can still get a vote (None: none worth one)."""
        open_ = [(round(d, 9), sorted(b)) for b, d in self.doubt.items() if d > floor and can_vote(b)]  # ties: by
        # name, never by the last bits of a sum (they follow the hash order of the knob names)
        return frozenset(max(open_)[1]) if open_ else None


def _count(n: int, sizes: tuple[int, ...]) -> int:
    """Ways to pick a structure of these group sizes among n knobs (0 when it needs more knobs than there are)."""
    h, left = 1, n
    for s in sizes:
        if left < s:
            return 0
        h *= math.comb(left, s)
        left -= s
    return h // math.prod(math.factorial(sizes.count(s)) for s in set(sizes))


def answer_posterior(names: list[str], votes: dict[frozenset[str], list[Outcome]],
                     groups: Iterable[Iterable[str]], flips: list[tuple[float, float]] | None = None) -> Posterior:
    """The answer ``groups`` (minimal failing sets of knob names) given every vote (bad-side set -> outcomes)."""
    flips = flips or FLIP_PRIOR
    groups = [frozenset(g) for g in groups]
    sets = [b for b, v in votes.items() if Outcome.FAIL in v or Outcome.PASS in v]
    nf = np.array([votes[b].count(Outcome.FAIL) for b in sets], dtype=float)
    npass = np.array([votes[b].count(Outcome.PASS) for b in sets], dtype=float)
    total = float(nf.sum() + npass.sum())
    classes: dict[tuple[bool, ...], list[str]] = {}
    for k in names:
        classes.setdefault(tuple(k in b for b in sets), []).append(k)
    sigs = list(classes)
    cls_of = {k: i for i, sig in enumerate(sigs) for k in classes[sig]}
    M = _pack(np.array(sigs, dtype=bool).reshape(len(sigs), len(sets)))
    n = np.array([len(classes[s]) for s in sigs], dtype=float)
    blocks = _enumerate(M, n, len(names))
    ans_fails = np.array([any(g <= b for g in groups) for b in sets], dtype=bool)
    shape = tuple(sorted(len(g) for g in groups))
    n_all = len(names)
    outside = shape not in STRUCTURES
    ans_logp = math.log((OTHER if outside else STRUCTURES[shape]) / max(1, _count(n_all, shape)))
    if outside:  # the answer and its neighbours, whose structures are not enumerated
        more = [groups] + [h for h in _neighbours(groups, names) if tuple(sorted(map(len, h))) not in STRUCTURES]
        member = np.array([[k in b for b in sets] for k in names], dtype=bool).reshape(len(names), len(sets))
        where = {k: i for i, k in enumerate(names)}
        uniq = list({g for h in more for g in h})
        row = {g: i for i, g in enumerate(uniq)}  # each group fails where all its knobs are at bad; a hypothesis
        gf = _pack(np.array([member[[where[k] for k in g]].all(axis=0) for g in uniq] + [np.zeros(len(sets), bool)],
                            dtype=bool).reshape(len(uniq) + 1, len(sets)))  # where any of its groups does
        most = max(map(len, more))
        idx = np.array([[row[g] for g in h] + [len(uniq)] * (most - len(h)) for h in more])
        cls = [[cls_of[k] for g in h for k in g] for h in more]
        width = max(map(len, cls))
        blocks.append((np.bitwise_or.reduce(gf[idx], axis=1),
                       np.array([math.log(OTHER / max(1, _count(n_all, tuple(sorted(map(len, h)))))) for h in more]),
                       np.array([c + [-1] * (width - len(c)) for c in cls])))
    e = (npass - nf).astype(int)  # a hypothesis that fails on set j disagrees with its pass votes, else its fails
    ds = [_weighted_count(f, e) + nf.sum() for f, *_ in blocks]
    best = min(d.min() for d in ds)
    width = max(p.shape[1] for _, _, p, *_ in blocks)
    kept = [(f[k], w[k], np.pad(p[k], ((0, 0), (0, width - p.shape[1])), constant_values=-1), d[k])
            for (f, w, p, *_), d in zip(blocks, ds, strict=True) for k in [d <= best + 40]]  # the rest weigh < 0.43^40
    fails, logw, picks, disagree = (np.concatenate([x[i] for x in kept]) for i in range(4))  # (f = 30%): nothing
    d_ans = float(ans_fails @ (npass - nf) + nf.sum())
    fs = np.array([f for f, _ in flips])
    lp = np.log(np.array([w for _, w in flips]))
    like = disagree[:, None] * np.log(fs)[None, :] + (total - disagree)[:, None] * np.log1p(-fs)[None, :]
    joint = logw[:, None] + like + lp[None, :]
    top = joint.max()
    w = np.exp(joint - top)
    z = w.sum()
    ans = ans_logp + d_ans * np.log(fs) + (total - d_ans) * np.log1p(-fs) + lp
    confidence = float(np.exp(ans - top).sum() / z)
    post_h, post_f = w.sum(axis=1) / z, w.sum(axis=0) / z
    knobs = {}
    for g in groups:
        for k in g:
            c = cls_of[k]
            knobs[k] = min(1.0, float(post_h @ (picks == c).sum(axis=1) / n[c]))
    big = post_h > 1e-9
    full = np.unpackbits(fails[big].view(np.uint8), axis=1, bitorder="little")[:, :len(sets)].astype(bool)
    doubt = post_h[big] @ (full != ans_fails[None, :])
    return Posterior(min(1.0, confidence), knobs, float(post_f @ fs),
                     {b: float(d) for b, d in zip(sets, doubt, strict=True)})


def best_guess(names: list[str], votes: dict[frozenset[str], list[Outcome]],
               flips: list[tuple[float, float]] | None = None) -> list[frozenset[str]]:
    """The most probable answer given every vote so far, as minimal failing sets (none before a failure was seen).

    What a budget stop names: the one placement of one enumerated structure with the highest posterior (its
    prior per placement times the likelihood of every vote, the flip rate integrated out). Knobs no tested set
    tells apart are equally likely: the first in knob order is named, and the confidence of the answer
    (``answer_posterior``) says how little that choice is worth."""
    sets = [b for b, v in votes.items() if Outcome.FAIL in v or Outcome.PASS in v]
    if not names or not any(Outcome.FAIL in votes[b] for b in sets):
        return []
    flips = flips or FLIP_PRIOR
    nf = np.array([votes[b].count(Outcome.FAIL) for b in sets], dtype=float)
    npass = np.array([votes[b].count(Outcome.PASS) for b in sets], dtype=float)
    classes: dict[tuple[bool, ...], list[str]] = {}
    for k in names:
        classes.setdefault(tuple(k in b for b in sets), []).append(k)
    sigs = list(classes)
    M = _pack(np.array(sigs, dtype=bool).reshape(len(sigs), len(sets)))
    n = np.array([len(classes[s]) for s in sigs], dtype=float)
    fs = np.array([f for f, _ in flips])
    lp = np.log(np.array([w for _, w in flips]))
    best: tuple[float, tuple[int, ...], np.ndarray] | None = None
    for fails, _, picks, shape in _enumerate(M, n, len(names)):
        d = _weighted_count(fails, (npass - nf).astype(int)) + nf.sum()
        like = d[:, None] * np.log(fs)[None, :] + (nf.sum() + npass.sum() - d)[:, None] * np.log1p(-fs)[None, :]
        joint = like + lp[None, :]
        top = joint.max(axis=1, keepdims=True)  # log-sum-exp over the flip grid
        score = top[:, 0] + np.log(np.exp(joint - top).sum(axis=1)) + math.log(STRUCTURES[shape] /
                                                                               _count(len(names), shape))
        i = int(np.argmax(score))  # ties: the first, in class (knob) order
        if best is None or score[i] > best[0] + 1e-9:
            best = (float(score[i]), shape, picks[i])
    if best is None:
        return []
    _, shape, pick = best
    free = {c: list(classes[sigs[c]]) for c in set(int(c) for c in pick if c >= 0)}
    knobs = [free[int(c)].pop(0) for c in pick if c >= 0]
    sizes = {(1,): [1], (2,): [2], (1, 1): [1, 1], (1, 2): [2, 1], (1, 1, 1): [1, 1, 1]}[shape]
    out, at = [], 0
    for s in sizes:
        out.append(frozenset(knobs[at:at + s]))
        at += s
    return out


def confirm_next(names: list[str], votes: dict[frozenset[str], list[Outcome]], groups: list[list[str]],
                 todo: list[frozenset[str]], target: float, first: bool, slots: int = 1) -> list[frozenset[str]]:
    """Which of the answer's unconfirmed evidence sets ``todo`` to run once more on the next seed: those its
    competitors dispute most, one per free slot; after the first, more only while the answer is under ``target`` at
    a flip rate of ``CONFIRM_FLIP`` (the honest posterior would skip more, and name a wrong culprit more often at 10%
    flips: measured in the README, "Which confirmation by default")."""
    if not first and answer_posterior(names, votes, groups, [(CONFIRM_FLIP, 1.0)]).confidence >= target:
        return []
    doubt = answer_posterior(names, votes, groups).doubt
    return sorted(todo, key=lambda b: (-round(doubt.get(b, 0.0), 9), sorted(b)))[:max(1, slots)]


def _pack(rows: np.ndarray) -> np.ndarray:
    """Boolean rows as packed 64-bit words (set j is bit j), so structures are combined with & and |."""
    packed = np.packbits(rows, axis=1, bitorder="little")
    pad = -packed.shape[1] % 8 or (8 if packed.shape[1] == 0 else 0)
    return np.ascontiguousarray(np.pad(packed, ((0, 0), (0, pad)))).view(np.uint64)


def _weighted_count(fails: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Per packed row: the sum of ``e[j]`` over the sets j the row has (bit planes of e, popcounts)."""
    out = np.zeros(len(fails))
    for sign, part in ((1, np.maximum(e, 0)), (-1, np.maximum(-e, 0))):
        for bit in range(int(part.max(initial=0)).bit_length()):
            plane = _pack(((part >> bit) & 1).astype(bool)[None, :])[0]
            out += sign * (1 << bit) * np.bitwise_count(fails & plane[None, :]).sum(axis=1, dtype=np.int64)
    return out


def _neighbours(groups: list[frozenset[str]], names: list[str]) -> list[list[frozenset[str]]]:
    """Structures one edit away from ``groups``: a knob added to a group, removed or replaced, a group dropped, a
    lone knob added. An answer of a shape the prior does not enumerate is weighed against these."""
    out: list[list[frozenset[str]]] = []
    for i, g in enumerate(groups):
        rest = groups[:i] + groups[i + 1:]
        if rest:
            out.append(rest)
        for k in sorted(g):
            if len(g) > 1:
                out.append(rest + [g - {k}])
            out += [rest + [(g - {k}) | {y}] for y in names if y not in g]
        out += [rest + [g | {y}] for y in names if y not in g]
    out += [groups + [frozenset({y})] for y in names if not any(y in g for g in groups)]
    seen, uniq = {frozenset(groups)}, []
    for h in out:
        key = frozenset(h)
        minimal = all(not (a < b) for a in h for b in h)
        if key not in seen and minimal and len(key) == len(h):
            seen.add(key)
            uniq.append(h)
    return uniq


def _enumerate(M: np.ndarray, n: np.ndarray,
               n_all: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]]:
    """Every structure over the knob classes: its failing pattern over the tested sets, its log weight (prior of
    one structure of its kind times the ways to pick its knobs from the classes), its picks per class and its shape
    (group sizes; for (1, 2) the picks are the pair's two classes, then the lone knob's)."""
    C = len(n)
    out = []

    def add(shape, f, mult, pick):
        p = STRUCTURES[shape]
        c = _count(n_all, shape)
        keep = mult > 0
        if not c or not keep.any():
            return
        out.append((f[keep], np.log(mult[keep]) + math.log(p / c), pick[keep], shape))

    none = np.full(C, -1)
    ar = np.arange(C)
    add((1,), M, n.copy(), np.stack([ar, none, none], axis=1))
    i, j = np.triu_indices(C)
    pair_mult = np.where(i == j, n[i] * (n[i] - 1) / 2, n[i] * n[j])
    pair_pick = np.stack([i, j, np.full(len(i), -1)], axis=1)
    add((2,), M[i] & M[j], pair_mult, pair_pick)
    add((1, 1), M[i] | M[j], pair_mult, pair_pick)
    if C <= MAX_CLASSES:
        a = np.repeat(np.arange(len(i)), C)
        k = np.tile(ar, len(i))
        avail = np.maximum(n[k] - (k == i[a]) - (k == j[a]), 0)
        add((1, 2), (M[i[a]] & M[j[a]]) | M[k], pair_mult[a] * avail, np.stack([i[a], j[a], k], axis=1))
        t = np.array(list(combinations_with_replacement(range(C), 3)), dtype=int).reshape(-1, 3)
        x, y, z = n[t[:, 0]], n[t[:, 1]], n[t[:, 2]]
        ab, bc = t[:, 0] == t[:, 1], t[:, 1] == t[:, 2]
        mult = np.select([ab & bc, ab, bc], [x * (x - 1) * (x - 2) / 6, x * (x - 1) / 2 * z, x * y * (y - 1) / 2],
                         x * y * z)
        add((1, 1, 1), M[t[:, 0]] | M[t[:, 1]] | M[t[:, 2]], mult, t)
    return out
