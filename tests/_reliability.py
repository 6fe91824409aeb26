"""What the reliability suite's two files share: the counts the README's table quotes, the
synthetic recipe pair, and the environment of a real ``bisector`` process."""

from __future__ import annotations

import os

from ._servers import REPO, base_env

COUNTS = {"inputs": 0, "exit_codes": {}, "tracebacks": 0, "runs_written": 0, "faults": 0, "trials_lost": 0,
          "trials_rerun": 0, "orphans": 0, "leaks": 0, "scanned": 0}
KILLED_SESSIONS: list[tuple[int, float]] = []  # (session id, when its driver was SIGKILLed)
SYNTH_GOOD = {"runner": "tests.synth_runner", "a": 1, "b": "mean", "c": 0.5}
SYNTH_BAD = {"runner": "tests.synth_runner", "a": 2, "b": "sum", "c": 0.9}


def _count_input(code: int, output: str) -> None:
    COUNTS["inputs"] += 1
    COUNTS["exit_codes"][code] = COUNTS["exit_codes"].get(code, 0) + 1
    COUNTS["tracebacks"] += "Traceback" in output


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return base_env(PYTHONPATH=path, RAY_AUTH_MODE="disabled", **extra)
