"""Campaign overhead: wall time against the ideal, and time to the first trial.

    python benchmarks/overhead.py [--steps 1800] [--concurrency 2] [--warm]

Runs the reference campaign (recipes/tagger, 9 trials) with every trial
trained to a fixed horizon (``--no-early-stop``) as a real command, on a
warm machine (an already-migrated MLflow store), and prints:

* ideal = sum of the trials' own training durations / concurrency;
* overhead = (campaign wall - ideal) / ideal;
* the time from launching the command to the first trial running.

``--warm`` measures a warm machine: a Ray head already running (as on a
cluster, or inside a Ray Job) that the command joins with ``--address``;
without it the command starts and stops its own local Ray.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def recipe_copy(src: Path, dst: Path, steps: int) -> Path:
    data = yaml.safe_load(src.read_text())
    data["train"]["steps"] = steps
    dst.write_text(f"# bisector run {dst.parent}/good.yaml {dst.parent}/bad.yaml\n" + yaml.safe_dump(data))
    return dst


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_head(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """A local head in its own session (ended by signal, never `ray stop`, which kills every cluster)."""
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="bo-", dir="/tmp")
    cmd = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--num-cpus", "2",
           "--port", str(port), "--node-ip-address", "127.0.0.1", "--include-dashboard", "false",
           "--ray-client-server-port", str(free_port()), "--disable-usage-stats", "--temp-dir", temp_dir]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    address = f"127.0.0.1:{port}"
    probe = [sys.executable, "-c", f"import ray; ray.init(address='{address}', logging_level='ERROR'); "
             "ray.get(ray.remote(lambda: 1).remote())"]
    for _ in range(60):
        if subprocess.run(probe, env=env, capture_output=True, timeout=120).returncode == 0:
            return proc, address
        time.sleep(1)
    stop_head(proc)
    sys.exit("the Ray head did not come up in 60 s")


def stop_head(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1800, help="training steps per trial (fixed length)")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--warm", action="store_true", help="join a Ray head that is already running")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bisector-overhead-") as tmp:
        tmp = Path(tmp)
        good = recipe_copy(ROOT / "recipes/tagger/good.yaml", tmp / "good.yaml", args.steps)
        bad = recipe_copy(ROOT / "recipes/tagger/bad.yaml", tmp / "bad.yaml", args.steps)
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "RAY_AUTH_MODE": "disabled",
               "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        env.pop("RAY_ADDRESS", None)
        base = [sys.executable, "-m", "bisector", "run", str(good), str(bad), "--json", "--no-early-stop",
                "--max-concurrent", str(args.concurrency), "--workdir", str(tmp / "wd")]
        head = None
        if args.warm:
            head, address = start_head(env)
            base += ["--address", address]
        # warm the store: migrate it once, outside the timed run
        warm = tmp / "warm.db"
        subprocess.run([sys.executable, "-c", f"import mlflow; mlflow.MlflowClient('sqlite:///{warm}')"
                        ".search_experiments()"], env=env, check=True, capture_output=True)
        shutil.copy(warm, tmp / "run.db")
        try:
            t0 = time.time()
            proc = subprocess.run([*base, "--tracking-uri", f"sqlite:///{tmp / 'run.db'}"], env=env, cwd=tmp,
                                  capture_output=True, text=True)
            wall = time.time() - t0
        finally:
            if head is not None:
                stop_head(head)
        if proc.returncode not in (0, 1):
            sys.exit(proc.stderr[-3000:])
        out = json.loads(proc.stdout)
    rungs = out["ladder"]
    train = sum(r["wall_s"] for r in rungs)
    ideal = train / args.concurrency
    first = out["first_trial_started_at"] - t0
    ray = "joining a running Ray head (warm)" if args.warm else "starting and stopping its own local Ray"
    print(f"Campaign: {len(rungs)} trials of {args.steps} steps, concurrency {args.concurrency}, {ray}\n")
    print("| trial | steps | training s |")
    print("|---|---|---|")
    for r in rungs:
        print(f"| {r['name']} | {r['steps_run']} | {r['wall_s']:.1f} |")
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| command wall time | {wall:.1f} s |")
    print(f"| campaign wall (inside the command) | {out['wall_s']:.1f} s |")
    print(f"| sum of trial training times | {train:.1f} s |")
    print(f"| ideal (sum / concurrency) | {ideal:.1f} s |")
    print(f"| overhead (command wall vs ideal) | {100 * (wall - ideal) / ideal:.1f}% |")
    print(f"| overhead (campaign wall vs ideal) | {100 * (out['wall_s'] - ideal) / ideal:.1f}% |")
    print(f"| first trial running after launch | {first:.1f} s |")
    print(f"| mean trial length | {train / len(rungs):.1f} s |")


if __name__ == "__main__":
    main()
