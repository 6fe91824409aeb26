"""Detector benchmark: every family at every logging cadence, on held-out seeds.

    python benchmarks/detector.py [--seeds 1 2 3] [--n 40] [--gens a b] [--peers] [--peer-n 10] [--no-real] [--speed]
                                  [--cadences 1 5 10 50 irregular] [--set sustain=300 ...]

``--cadences`` scores a subset (each log is the same as in the full run) and ``--set`` changes a detector
setting, so a trade-off can be measured where it acts.

Curves: generator A (``synth_a``: the v2 benchmark's healthy and 100-300-step
climbs), generator B (``synth_b``: broader families, built independently), the
reference tagger's real per-step curves (``tagger_curves``, cached) and, with
``--gens c``, generator C (``synth_c``: shaped like real runs, written without
reading the detector or A and B; held out, no rule was tuned on it) and, with ``--gens d``,
generator D (``synth_d``: a fourth, written blind to the detector and to A-C, with noise models
of its own: heteroscedastic, Student-t, correlated, printed to 3-4 digits). Each
underlying run is written as a log at every cadence in ``logsim.CADENCES``
(the value at the step or the mean since the last row, some with a
crash-resume's replayed rows) and fed row by row to ``ClimbDetector``.

Truth: the *climb start* is the first step after the best after which the
clean curve (noise- and spike-free; for real curves a 21-step moving average,
101 for the noisy late climb)
stays above best + 10% of (start - best); the *delay* is ``detected_at_step``
minus that, and a detection before it is a false alarm. For ``nan`` runs the
truth is the first non-finite step; a ``diverged`` verdict on one counts as
caught when it comes after the clean curve's own climb start (an explosion
caught before it overflowed), else as a false alarm. The goals allow one logging interval: the
longest gap between logged steps from the truth to the detection (the cadence
of a regular log; a lost chunk of an irregular one). Seed 0 is the development
seed; report others.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import synth_a  # noqa: E402
import synth_b  # noqa: E402
import synth_c  # noqa: E402
import synth_d  # noqa: E402
import verdict_moves  # noqa: E402
from logsim import CADENCES, Curve, average, climb_start, interval, log_rows  # noqa: E402

from bisector.detector import DIVERGED, NAN, STABLE, ClimbDetector  # noqa: E402

REAL_FAMILIES = {"good": "tagger healthy", "late-10pct": "tagger healthy", "late-no-orphans": "tagger healthy",
                 "v2-token-mean": "tagger healthy", "v1-sum": "tagger healthy", "bad": "tagger bad recipe",
                 "sum": "tagger sum (slow, 7x)", "late": "tagger late slow climb"}
HORIZON = {"late": 1200}  # the late climb as the trial saw it: cut at the recipe's 1200-step horizon
SMOOTH = {"late": 101}  # its train CE is so noisy near 0.1-0.6 that a 21-step average still dips below 10%


def real_curves() -> list[Curve]:
    import tagger_curves

    out = []
    for entry in tagger_curves.load().values():
        name = entry["name"]
        if name not in REAL_FAMILIES:
            continue
        v = np.array(entry["train_ce"][: HORIZON.get(name)], dtype=float)
        k = SMOOTH.get(name, 21)
        smooth = average(v, k)
        start = float(np.median(v[:5]))
        truth = None
        if not entry["healthy"]:
            best_i = int(np.argmin(smooth[: len(smooth) * 2 // 3]))
            truth = climb_start(smooth, start, best_i + 1)
        out.append(Curve(REAL_FAMILIES[name], v, smooth, "stable" if entry["healthy"] else "diverged", truth, start))
    return out


def cases(seed: int, n: int, real: bool, gens: str = "ab") -> list[Curve]:
    """The curves of one seed: A and B share a stream (indices stable since v2), then the real curves, then C
    and D each from its own stream (adding one moves nothing before it)."""
    rng = np.random.default_rng(seed)
    out = synth_a.curves(rng, n) + synth_b.curves(rng, n)
    out = [c for c in out if c.family[0].lower() in gens] + (real_curves() if real else [])
    out += synth_c.curves(np.random.default_rng([seed, 3]), n) if "c" in gens else []
    return out + (synth_d.curves(np.random.default_rng([seed, 11]), n) if "d" in gens else [])


def blowup_start(c: Curve) -> int | None:
    """A nan run's own climb start (the clean curve's, before its first non-finite step), if it climbed."""
    if c.expect != NAN or c.start is None:
        return None
    finite = np.isfinite(c.clean)
    k = len(c.clean) if finite.all() else int(np.argmax(~finite))
    if k < 3:
        return None
    return climb_start(c.clean[:k], c.start, k)


def ends_above_start(c: Curve, rows: list[tuple[int, float]] | None = None) -> bool:
    """Whether the curve ends above where it started, over the span its log covers: the clean curve at the
    last row's step against the clean curve at the first row's (all of it without rows). The issue's own
    case reads a CSV's start as its first row ("falls from 2.68 ... ends at 18.6 by step 2000, seven times
    its start"), and a log every 50 steps never shows step 1: B's oscillations swing around ``start`` from
    any phase, and two every 50 steps whose clean curve began in a trough at step 1 and ended above it, but
    rose to near a crest by their first row and ended below that, were counted as ending above their start
    (their rows end below where they begin). Against ``start`` itself (before the nineteenth round) an
    oscillation that began at a crest read as ending above; every other family starts at ``start``. A run
    that overflows after its last row is still read at that row (the clean curve there, not at its end)."""
    if c.start is None:
        return False
    first, last = (min(s for s, _ in rows), max(s for s, _ in rows)) if rows else (1, len(c.clean))
    return bool(c.clean[last - 1] > c.clean[first - 1])


def judge(rows, settings: dict | None = None) -> tuple:
    """(final verdict, whether a streaming update reached it, i.e. a trial would have been stopped)."""
    det = ClimbDetector(**(settings or {}))
    update = det.update
    for step, value in rows:
        if update(step, value).final:
            return det.finish(), True
    return det.finish(), False


def run(seeds, n, real, peers=None, peer_n=0, gens="ab", cadences=CADENCES, settings=None):
    results, peer_results = [], []
    for seed in seeds:
        for i, c in enumerate(cases(seed, n, real, gens)):
            blowup = blowup_start(c)
            for j, cad in enumerate(CADENCES):
                if cad not in cadences:
                    continue
                rows = log_rows(c, cad, np.random.default_rng([seed, i, j]))
                v, streamed = judge(rows, settings)
                above = ends_above_start(c, rows)
                results.append({"family": c.family, "cadence": cad, "interval": interval(rows),
                                "gap": gap(rows, c.truth, v.detected_at_step), "expect": c.expect,
                                "truth": c.truth, "kind": v.kind, "at": v.detected_at_step,
                                "climb": v.climb_start_step, "streamed": streamed, "above": above,
                                "run": (seed, i), "blowup": blowup})
                if peers and c.expect in ("stable", "diverged", "nan") and (i % max(1, n // peer_n or 1) == 0):
                    for name, fn in peers.items():
                        peer_results.append({"rule": name, "family": c.family, "cadence": cad, "run": (seed, i),
                                             "interval": interval(rows), "expect": c.expect, "truth": c.truth,
                                             "at": fn(rows)})
    return results, peer_results


# -- scoring -------------------------------------------------------------------------------


def gap(rows, truth, at) -> float:
    """The logging interval in force between the truth and the detection: the longest gap between
    logged steps there (the cadence for a regular log; a lost chunk of an irregular one counts)."""
    steps = sorted({s for s, _ in rows})
    if truth is None or at is None or len(steps) < 2:
        return interval(rows)
    spans = [b - a for a, b in zip(steps, steps[1:], strict=False) if b > truth and a < at]
    return float(max(spans, default=interval(rows)))


def score(rs) -> dict:
    healthy = [r for r in rs if r["expect"] == STABLE]
    bad = [r for r in rs if r["expect"] != STABLE]
    fa = sum(r["kind"] != STABLE for r in healthy)
    stopped = sum(r["streamed"] for r in healthy)
    hits, early, excess, delays, within = 0, 0, [], [], []
    for r in bad:
        if r["expect"] == NAN and r["kind"] == DIVERGED and r["at"] is not None and r.get("blowup") is not None:
            # the explosion before the overflow was caught: right if after its own climb start (no delay: the
            # truth is the nan, which came later)
            hits += r["at"] >= r["blowup"]
            early += r["at"] < r["blowup"]
            continue
        if r["expect"] in (DIVERGED, NAN):
            ok = r["kind"] == r["expect"] or (r["expect"] == DIVERGED and r["kind"] == NAN)
            if ok and r["at"] is not None and r["at"] < r["truth"]:
                early += 1
                continue
            if ok:
                hits += 1
                delays.append(r["at"] - r["truth"])
                excess.append(r["at"] - r["truth"] - r["gap"])
                if r["expect"] == DIVERGED:  # (a diverged verdict with no climb start is not within)
                    within.append(r["climb"] is not None and abs(r["climb"] - r["truth"]) <= max(50, r["gap"]))
        else:
            hits += r["kind"] != STABLE
    return {
        "curves": len(rs), "healthy": len(healthy), "fa": fa + early, "stopped": stopped,
        "recall": hits / len(bad) if bad else None, "n_bad": len(bad),
        "med": statistics.median(delays) if delays else None,
        "p90": float(np.percentile(delays, 90)) if delays else None,
        "xmed": statistics.median(excess) if excess else None,
        "xp90": float(np.percentile(excess, 90)) if excess else None,
        "within": sum(within) / len(within) if within else None,
        "above_stable": sum(r["above"] and r["kind"] == STABLE for r in rs),
        "exact": sum(r["kind"] == r["expect"] for r in rs) / len(rs),
    }


def consistency(rs) -> float:
    """Share of runs whose verdict is the same at every cadence."""
    kinds = defaultdict(set)
    for r in rs:
        kinds[(r["run"], r["family"])].add(r["kind"])
    return sum(len(k) == 1 for k in kinds.values()) / len(kinds)


def _cadences(results) -> list[str]:
    return [c for c in CADENCES if any(r["cadence"] == c for r in results)]


def fmt(v, pct=False, nd=0):
    if v is None:
        return "-"
    return f"{100 * v:.{nd}f}%" if pct else f"{v:.{nd}f}" if isinstance(v, float) else str(v)


HEAD = ["curves", "false alarms", "stopped wrongly /healthy", "recall", "median delay", "p90 delay",
        "median - gap", "p90 - gap", "climb start within +-max(50, gap)", "ends above start, called stable",
        "right kind"]


def row(label, s):
    return "| " + " | ".join([
        label, str(s["curves"]), f"{s['fa']}/{s['curves']}", f"{s['stopped']}/{s['healthy']}",
        fmt(s["recall"], True, 1), fmt(s["med"]), fmt(s["p90"]), fmt(s["xmed"]), fmt(s["xp90"]),
        fmt(s["within"], True, 1), str(s["above_stable"]), fmt(s["exact"], True)]) + " |"


def tables(results) -> str:
    out, cads = [], _cadences(results)
    head = ["cadence", *HEAD]
    out += ["By cadence (delays in steps; gap: the logging interval in force from the truth to the detection; "
            "goals: median - gap <= 60, p90 - gap <= 120):", "",
            "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cad in cads:
        rs = [r for r in results if r["cadence"] == cad]
        iv = statistics.median(r["interval"] for r in rs)
        out.append(row(f"{cad} (interval {iv:.0f})", score(rs)))
    out.append(row("**all**", score(results)))
    head = ["family", *HEAD]
    out += ["", "By family, all cadences:", "",
            "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for fam in dict.fromkeys(r["family"] for r in results):
        out.append(row(fam, score([r for r in results if r["family"] == fam])))
    out += ["", f"Same verdict at all {len(cads)} cadences: {100 * consistency(results):.1f}% of runs", ""]
    fams = [f for f in dict.fromkeys(r["family"] for r in results) if any(
        r["expect"] == DIVERGED for r in results if r["family"] == f)]
    out += ["p90 delay - gap (steps) by family and cadence:", "",
            "| family | " + " | ".join(cads) + " |", "|---|" + "---|" * len(cads)]
    for fam in fams:
        cells = [fmt(score([r for r in results if r["family"] == fam and r["cadence"] == c])["xp90"])
                 for c in cads]
        out.append(f"| {fam} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def peer_table(peer_results, ours) -> str:
    head = ["rule", "cadence", "false alarms", "recall", "median delay", "p90 delay"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keys = {(r["run"], r["cadence"]) for r in peer_results}
    for name in dict.fromkeys(r["rule"] for r in peer_results):
        for cad in _cadences(ours):
            rs = [r for r in peer_results if r["rule"] == name and r["cadence"] == cad]
            fa = sum(r["at"] is not None and (r["expect"] == STABLE or r["at"] < r["truth"]) for r in rs)
            bad = [r for r in rs if r["expect"] != STABLE]
            d = [r["at"] - r["truth"] for r in bad if r["at"] is not None and r["at"] >= r["truth"]]
            out.append(f"| {name} | {cad} | {fa}/{len(rs)} | {fmt(len(d) / len(bad), True)} | "
                       f"{fmt(statistics.median(d) if d else None)} | {fmt(np.percentile(d, 90) if d else None)} |")
    for cad in _cadences(ours):
        rs = [r for r in ours if r["cadence"] == cad and (r["run"], cad) in keys]
        s = score(rs)
        out.append(f"| **bisector ClimbDetector** | {cad} | {s['fa']}/{s['curves']} | {fmt(s['recall'], True)} | "
                   f"{fmt(s['med'])} | {fmt(s['p90'])} |")
    return "\n".join(out)


def speed(n: int = 100_000) -> tuple[float, float]:
    """(detector alone, reading a CSV log + fingerprint) seconds for an n-point log."""
    import tempfile

    from bisector.detector import classify
    from bisector.fingerprint import fingerprint
    from bisector.metrics_log import read

    rng = np.random.default_rng(1)
    values = (0.5 + 2.5 * np.exp(-np.arange(n) / 5000)) * np.exp(0.05 * rng.standard_normal(n))
    pts = list(zip(range(1, n + 1), values.tolist(), strict=True))
    t0 = time.perf_counter()
    classify(pts)
    alone = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.csv"
        path.write_text("step,train_loss,lr\n" + "".join(f"{i},{v:.6g},0.001\n" for i, v in pts))
        t0 = time.perf_counter()
        fingerprint(read(str(path)))
        whole = time.perf_counter() - t0
    return alone, whole


def _settings(ap: argparse.ArgumentParser, pairs: list[str]) -> dict:
    """``--set`` pairs as ClimbDetector keywords, typed as their defaults; a name it does not take is an error."""
    import inspect

    defaults = {k: p.default for k, p in inspect.signature(ClimbDetector).parameters.items()}
    out = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        kind = int if isinstance(defaults.get(name), int) else float
        try:
            out[name] = kind(value) if name in defaults else None
        except ValueError:
            out[name] = None
        if out[name] is None:
            ap.error(f"--set {pair!r}: expected NAME=VALUE, NAME one of {', '.join(sorted(defaults))} and VALUE "
                     f"a number ({kind.__name__})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="generator seeds (0 is for development)")
    ap.add_argument("--n", type=int, default=40, help="curves per family per generator per seed")
    ap.add_argument("--peers", action="store_true", help="also score the peer rules (slower)")
    ap.add_argument("--peer-n", type=int, default=10, help="curves per family the peers are scored on")
    ap.add_argument("--no-real", action="store_true", help="leave out the cached real tagger curves")
    ap.add_argument("--gens", nargs="+", default=["a", "b"], choices=["a", "b", "c", "d"],
                    help="which generators (c, d: the third and fourth, held out; their tables are read apart)")
    ap.add_argument("--speed", action="store_true", help="time the detector on a 100,000-point log")
    ap.add_argument("--cadences", nargs="+", default=list(CADENCES), choices=CADENCES, help="score only these")
    ap.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE",
                    help="a detector setting (a keyword of ClimbDetector), e.g. sustain=300")
    ap.add_argument("--dump", metavar="PATH", help="write each log's verdict (JSON lines) for a later --against")
    ap.add_argument("--against", metavar="PATH", help="report the logs whose verdict moved from this --dump's")
    args = ap.parse_args()
    settings = _settings(ap, args.set)
    before = None
    if args.against:
        try:
            before = verdict_moves.load(args.against)
        except (OSError, ValueError) as e:
            ap.error(f"--against {args.against}: {e}")
    if args.dump:
        try:
            open(args.dump, "w").close()  # (refused now, not after the run)
        except OSError as e:
            ap.error(f"--dump {args.dump}: {e}")
    t0 = time.perf_counter()
    peers = None
    if args.peers:
        from peers import PEERS as peers
    results, peer_results = run(args.seeds, args.n, not args.no_real, peers, args.peer_n, "".join(args.gens),
                                args.cadences, settings)
    changed = f", settings {settings}" if settings else ""
    print(f"Seeds {args.seeds}, {args.n} curves per family per seed, cadences {', '.join(args.cadences)}{changed}: "
          f"{len(results)} logs judged in {time.perf_counter() - t0:.0f} s\n")
    print(tables(results))
    if args.dump:
        verdict_moves.dump(results, args.dump)
    if before is not None:
        try:
            print("\nAgainst " + args.against + ": " + verdict_moves.moves(before, results))
        except ValueError as e:
            ap.error(f"--against {args.against}: {e}")
    if peer_results:
        print(f"\nPeers ({args.peer_n} curves per family per seed; healthy, climb and nan families):\n")
        print(peer_table(peer_results, results))
    if args.speed:
        alone, whole = speed()
        print(f"\nSpeed, 100,000 points: detector {alone:.3f} s; CSV read + fingerprint {whole:.3f} s")


if __name__ == "__main__":
    main()
