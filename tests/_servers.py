"""Helpers for the slow end-to-end tests: free ports, process groups, bounded waits.

Every process these tests start gets its own session (``start_new_session=True``),
so it and all its descendants can be found by session id and ended by id,
never by name.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GOOD = REPO / "tests/recipes/small_good.yaml"
BAD = REPO / "tests/recipes/small_bad.yaml"
CULPRITS = ["data.corpus", "model.crf_reduction"]
# The bisection trials of the small pair: both endpoints, one revert per knob, and the two fixing reverts
# confirmed on the next seed (the first once more: two votes each leave "only together" under 95%). A campaign
# that found its culprits may add probe-phase runs after them (a "probe" child run, "repair ..." trials); tests
# name those apart.
BISECTION = {"good", "bad", "revert data.corpus", "revert model.crf_reduction", "revert model.hidden_size",
             "revert data.corpus (seed +1)", "revert model.crf_reduction (seed +1)", "revert data.corpus (seed +2)"}
# The plan follows the free slots (``auto``: lone applications too once the 3 knobs fit at once), and a
# machine's slots are its CPUs: two, as on CI, wherever the suite runs, or BISECTION holds on 2 cores only.
SLOTS = ("--max-concurrent", "2")


def is_aftermath(name: str) -> bool:
    return name.startswith("repair") or name == "probe"


def trial_of(tags: dict[str, str]) -> str:
    """A child run's ladder name (its run name adds a number and the verdict): the ``bisector.trial`` tag,
    or ``probe`` for the probe run."""
    return "probe" if tags.get("bisector.role") == "probe" else tags.get("bisector.trial", "")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    """This process's environment for a child: no inherited Ray cluster or MLflow store, telemetry off."""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **extra}
    for name in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    return env


def bisector_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "bisector", *args]


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 1.0,
             proc: subprocess.Popen | None = None) -> Any:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` s or if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - transient while a server starts or a store is written
            last_exc = exc
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} while waiting for {what}")
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_exc!r})")


def _live() -> list[tuple[int, list[str], str]]:
    """(pid, stat fields after the name: state ppid pgrp session ..., command line) of every live process."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            out.append((int(entry), fields, cmd))
    return out


def session_pids(sid: int) -> list[int]:
    """Live processes of session ``sid`` (the pid of a process started with start_new_session=True)."""
    return [pid for pid, fields, _ in _live() if int(fields[3]) == sid]


def pids_using(path: str) -> list[int]:
    """Live processes whose command line mentions ``path`` (a unique temp dir of the test's own)."""
    return [pid for pid, _, cmd in _live() if path in cmd]


def end_session(proc: subprocess.Popen, grace: float = 15.0) -> list[int]:
    """SIGTERM the process group of ``proc``, wait, then SIGKILL whatever of its session is left.

    Returns the pids that were still alive after the grace period (killed with SIGKILL)."""
    sid = proc.pid
    try:
        os.killpg(sid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + grace
    while session_pids(sid) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = session_pids(sid)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 10
    while session_pids(sid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def http_json(url: str, body: dict[str, Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """GET (or POST ``body`` as JSON) and decode the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


def http_get(url: str, timeout: float = 30.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
