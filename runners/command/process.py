"""The user's training process: started in its own process group, read line by line, always ended.

Stdout and stderr are read by two threads into one queue, so a script that
prints its loss is followed live (``PYTHONUNBUFFERED=1`` keeps Python scripts
from holding lines back in a pipe buffer). Stopping sends SIGTERM to the whole
group, then SIGKILL after a grace period; a guard process (``guard.py``) leads
the group and ends it if the worker that started it dies first.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from .render import Invocation

GUARD = str(Path(__file__).with_name("guard.py"))


class Process:
    def __init__(self, inv: Invocation, grace_s: float = 10.0, tail: int = 40):
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **inv.env}
        self.grace_s = grace_s
        self.argv = inv.argv
        self.lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
        self.tails = {"stdout": deque(maxlen=tail), "stderr": deque(maxlen=tail)}
        self.proc = subprocess.Popen(
            [sys.executable, GUARD, str(os.getpid()), str(grace_s), "--", *inv.argv],
            cwd=inv.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.pgid = self.proc.pid
        self._open = 2
        for name, stream in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
            threading.Thread(target=self._pump, args=(name, stream), daemon=True).start()

    def _pump(self, name: str, stream) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.tails[name].append(line)
            self.lines.put((name, line))
        stream.close()
        self.lines.put((name, None))

    def read(self, timeout: float) -> list[tuple[str, str]]:
        """Lines that arrived (waiting up to ``timeout`` for the first)."""
        out: list[tuple[str, str]] = []
        try:
            item = self.lines.get(timeout=timeout)
            while True:
                if item[1] is None:
                    self._open -= 1
                else:
                    out.append(item)  # type: ignore[arg-type]
                item = self.lines.get_nowait()
        except queue.Empty:
            pass
        return out

    @property
    def drained(self) -> bool:
        """Both streams closed: every line the process wrote has been read."""
        return self._open <= 0

    def poll(self) -> int | None:
        return self.proc.poll()

    def tail(self, stream: str = "stderr", lines: int = 20) -> str:
        return "\n".join(list(self.tails[stream])[-lines:])

    def _signal(self, sig: int) -> bool:
        try:
            os.killpg(self.pgid, sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def _group_alive(self) -> bool:
        return self._signal(0)

    def stop(self) -> None:
        """End the whole group: SIGTERM, then SIGKILL after the grace period (also after a normal exit,
        for anything the script left running in the background)."""
        self.proc.poll()
        if self._group_alive():
            self._signal(signal.SIGTERM)
            deadline = time.monotonic() + self.grace_s
            while time.monotonic() < deadline:
                self.proc.poll()  # reap the guard, so a zombie does not count as alive
                if not self._group_alive():
                    break
                time.sleep(0.05)
            self._signal(signal.SIGKILL)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
