"""Runs one user command as the leader of its own process group and ends the group if we are orphaned.

Started as ``python guard.py WATCH_PID GRACE_S -- argv...`` in a new session
(so its process group holds the command and anything the command spawns).
Stopping a trial signals the whole group. If the process that started us
dies without doing so (a Ray worker force-cancelled, a driver SIGKILLed), our
parent pid changes: we then end the group ourselves, SIGTERM first and SIGKILL
after the grace period, so no training process outlives its trial. Stdlib
only, and run by path, so it works in any Python environment.
"""

import os
import signal
import subprocess
import sys
import time


def _end_group(grace: float) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        os.killpg(0, signal.SIGTERM)
        time.sleep(grace)
        os.killpg(0, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main() -> int:
    watch, grace, sep, *argv = sys.argv[1:]
    if sep != "--" or not argv:
        print("usage: guard.py WATCH_PID GRACE_S -- argv...", file=sys.stderr)
        return 2
    watch_pid, grace_s = int(watch), float(grace)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))  # the group is being stopped: wait for the child
    try:
        child = subprocess.Popen(argv)
    except OSError as exc:
        print(f"bisector: cannot start {argv[0]!r}: {exc}", file=sys.stderr)
        return 127 if isinstance(exc, FileNotFoundError) else 126
    while True:
        try:
            rc = child.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            rc = None
        if os.getppid() != watch_pid:  # orphaned (the command may have died of the broken pipe): end the rest
            _end_group(grace_s if rc is None else 0.2)
            return 137
        if rc is not None:
            return 128 - rc if rc < 0 else rc


if __name__ == "__main__":
    sys.exit(main())
