"""Which logs a detector change moved: ``detector.py --dump`` on the old tree, ``--against`` on the new.

The tables say how many; a before -> after says which. A rule that helps one
family can move a healthy log elsewhere, and identical totals can hide logs
that moved both ways, so each round compares the two runs log by log: same
command, same seeds, so the logs are the same rows. One JSON line per log.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path

KEYS = ("family", "cadence", "run", "expect", "truth", "kind", "at", "climb", "streamed", "above")


def dump(results: list[dict], path: str | Path) -> None:
    with open(path, "w") as f:
        for r in results:
            f.write(json.dumps({k: r[k] for k in KEYS}) + "\n")


def load(path: str | Path) -> list[dict]:
    """The logs of a ``dump``; ``ValueError`` naming the first line that is not one, or an empty file."""
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"line {n} is not JSON ({e.msg})") from None
            if not (isinstance(r, dict) and all(k in r for k in KEYS) and isinstance(r["kind"], str)
                    and isinstance(r["streamed"], bool) and isinstance(r["run"], list) and len(r["run"]) == 2
                    and all(isinstance(x, int) for x in r["run"]) and (r["at"] is None or isinstance(r["at"], int))):
                raise ValueError(f"line {n} is not a --dump row (expected the keys {', '.join(KEYS)}; kind a "
                                 "string, streamed true or false, run [seed, index], at a step or null)")
            out.append(r)
    if not out:
        raise ValueError("no rows: not a --dump of a benchmark run")
    return out


def _key(r: dict) -> tuple:
    return r["family"], r["cadence"], tuple(r["run"])


def _how(r: dict) -> str:
    """The verdict, and whether a trial would have been stopped on it."""
    return r["kind"] + (" (stopped)" if r["streamed"] and r["kind"] != "stable" else "")


def moves(before: list[dict], after: list[dict], show: int = 20) -> str:
    """A markdown report: the verdicts that changed kind (by family, healthy or not, streamed or at the end),
    and the detections that moved step, earlier or later. ``ValueError`` where the two runs judged other logs."""
    old = {_key(r): r for r in before}
    new = [_key(r) for r in after]
    if len(old) != len(before) or len(new) != len(set(new)):
        raise ValueError("a log was judged twice (a seed given twice?): compare runs of distinct seeds")
    if set(old) != set(new):
        raise ValueError(f"the runs judged other logs ({len(before)} and {len(after)}): "
                         "compare runs of the same command (seeds, --n, --gens, --cadences, --no-real)")
    kinds, logs, shifts = Counter(), [], []
    for r in after:
        o = old[_key(r)]
        if (o["kind"], o["streamed"]) != (r["kind"], r["streamed"]):
            kinds[(r["family"], "healthy" if r["expect"] == "stable" else r["expect"], _how(o), _how(r))] += 1
            logs.append(r | {"was": _how(o), "now": _how(r), "at_was": o["at"]})
        elif o["at"] is not None and r["at"] is not None and o["at"] != r["at"]:
            shifts.append(r["at"] - o["at"])
    out = [f"{len(after)} logs compared: {len(logs)} changed verdict, {len(shifts)} detections moved step."]
    if kinds:
        out += ["", "| family | expected | before | after | logs |", "|---|---|---|---|---|"]
        out += [f"| {f} | {e} | {b} | {a} | {n} |" for (f, e, b, a), n in sorted(kinds.items())]
        out += ["", "Logs (family, cadence, seed and index, detected at before -> after):"]
        out += [f"- {r['family']}, {r['cadence']}, {tuple(r['run'])}: {r['was']} at {r['at_was']} -> "
                f"{r['now']} at {r['at']}" for r in logs[:show]]
        out += [f"- ... and {len(logs) - show} more"] if len(logs) > show else []
    if shifts:
        later, earlier = [d for d in shifts if d > 0], [-d for d in shifts if d < 0]
        out += ["", "Detections moved, same verdict: " + "; ".join(
            f"{len(ds)} {word} (median {statistics.median(ds):g} steps, at most {max(ds)})" if ds else f"0 {word}"
            for ds, word in ((later, "later"), (earlier, "earlier"))) + "."]
    return "\n".join(out)
