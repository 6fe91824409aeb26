"""The user's process: its whole group is ended on every path, orphaned or not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from runners.command.process import Process
from runners.command.render import Invocation

SPAWNER = textwrap.dedent("""
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print("grandchild", child.pid, flush=True)
    for i in range(1000):
        print(f"step={i} loss={1.0 / (i + 1)}", flush=True)
        time.sleep(0.05)
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _grandchild(proc: Process) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for _, line in proc.read(0.2):
            if line.startswith("grandchild"):
                return int(line.split()[1])
    raise AssertionError("the script never started its child")


def test_stop_ends_the_whole_group_with_sigterm_then_sigkill(tmp_path):
    script = tmp_path / "spawn.py"
    script.write_text(SPAWNER)
    proc = Process(Invocation([sys.executable, str(script)], str(tmp_path)), grace_s=1.0)
    grandchild = _grandchild(proc)
    deadline = time.monotonic() + 20  # a step line while the script still runs (50 s of them): followed live
    while not any(line.startswith("step=") for _, line in proc.read(0.2)):
        assert time.monotonic() < deadline and proc.poll() is None, "no step line while the script ran"
    proc.stop()
    assert _wait_gone(grandchild, 5) and proc.poll() is not None


def test_a_script_that_ignores_sigterm_is_killed_after_the_grace(tmp_path):
    script = tmp_path / "stubborn.py"
    script.write_text("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                      "print('ready', flush=True)\ntime.sleep(300)\n")
    proc = Process(Invocation([sys.executable, str(script)], str(tmp_path)), grace_s=0.5)
    while not any(line == "ready" for _, line in proc.read(0.2)):
        pass
    t0 = time.monotonic()
    proc.stop()
    assert proc.poll() is not None and time.monotonic() - t0 < 5


def test_the_group_ends_when_the_process_that_started_it_dies(tmp_path):
    """A Ray worker force-cancelled or a driver SIGKILLed: the guard notices and ends the group."""
    script = tmp_path / "spawn.py"
    script.write_text(SPAWNER)
    owner = tmp_path / "owner.py"
    owner.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from runners.command.process import Process
        from runners.command.render import Invocation
        p = Process(Invocation([sys.executable, {str(script)!r}], {str(tmp_path)!r}), grace_s=0.5)
        while True:
            for _, line in p.read(0.2):
                if line.startswith("grandchild"):
                    print(line, p.pgid, flush=True)
    """))
    holder = subprocess.Popen([sys.executable, str(owner)], stdout=subprocess.PIPE, text=True)
    _, pid, pgid = holder.stdout.readline().split()
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert _wait_gone(int(pid), 10), "the training process outlived its owner"
    assert _wait_gone(int(pgid), 5)


def test_exit_code_and_stderr_tail(tmp_path):
    proc = Process(Invocation([sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"],
                              str(tmp_path)))
    while not (proc.poll() is not None and proc.drained):
        proc.read(0.1)
    assert proc.poll() == 3 and proc.tail() == "boom"
    proc.stop()
