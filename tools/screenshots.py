"""Headless-Chromium screenshots of a campaign in the MLflow UI: what a person sees first.

    python tools/screenshots.py --out shots/                      # temp store, a synth campaign (seconds)
    python tools/screenshots.py --out shots/ --campaign tagger    # the small tagger pair (a few minutes)
    python tools/screenshots.py --out shots/ --uri http://127.0.0.1:5000   # the latest campaign on a server
    python tools/screenshots.py --out shots/ --backend-store-uri sqlite:///mlflow.db   # serve a store first

Takes: the parent run (its Overview with the note), the runs list (the
campaign's trials in ladder order), the chart view, and ``ladder.html``.
Needs ``/usr/bin/chromium`` (Debian package ``chromium``); without it the
script says so and exits 0, so CI never needs a browser. Every process it
starts (the server, the campaign, each browser) runs in its own session and
is ended by its process group.
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
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bisector import links  # noqa: E402 - after the path is set

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--hide-scrollbars"]
SYNTH = {"good": {"runner": "tests.synth_runner", "a": 1, "b": "mean", "c": 0.5, "steps": 300},
         "bad": {"runner": "tests.synth_runner", "a": 2, "b": "sum", "c": 0.9, "steps": 300}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read().decode())


def _end(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _env() -> dict[str, str]:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "RAY_AUTH_MODE": "disabled",
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("RAY_ADDRESS", None)
    return env


def serve(store: str, work: Path) -> tuple[str, subprocess.Popen]:
    """``mlflow server`` on ``store``, run in the store file's folder (its ./mlartifacts and ./mlruns live there)."""
    port = _free_port()
    if store.startswith("sqlite:///"):
        work = Path(store[len("sqlite:///"):]).resolve().parent
    mlflow = Path(sys.executable).parent / "mlflow"
    log_path = Path(tempfile.gettempdir()) / f"bisector-shots-server-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115 - the server's log lives as long as the server
    proc = subprocess.Popen([str(mlflow), "server", "--backend-store-uri", store, "--host", "127.0.0.1", "--port",
                             str(port), "--workers", "1"], cwd=work, env=_env(), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=5) as resp:
                if resp.status == 200:
                    return base, proc
        except OSError:
            time.sleep(1)
        if proc.poll() is not None:
            break
    _end(proc)
    raise SystemExit(f"mlflow server did not start; see {log_path}")


def campaign(base: str, kind: str, work: Path) -> None:
    if kind == "tagger":
        good, bad = REPO / "tests/recipes/small_good.yaml", REPO / "tests/recipes/small_bad.yaml"
    else:
        import yaml

        good, bad = work / "good.yaml", work / "bad.yaml"
        good.write_text(yaml.safe_dump(SYNTH["good"]))
        bad.write_text(yaml.safe_dump(SYNTH["bad"]))
    cmd = [sys.executable, "-m", "bisector", "run", str(good), str(bad), "--tracking-uri", base,
           "--workdir", str(work / "wd")]
    print(f"running a {kind} campaign ...", file=sys.stderr)
    proc = subprocess.Popen(cmd, cwd=work, env=_env(), start_new_session=True)
    try:
        proc.wait(timeout=1800)
    finally:
        _end(proc)


def latest(base: str, experiment: str) -> tuple[str, str] | None:
    """(experiment id, parent run id) of the newest campaign, or None."""
    q = urllib.parse.urlencode({"experiment_name": experiment})
    try:
        exp = _get(f"{base}/api/2.0/mlflow/experiments/get-by-name?{q}")["experiment"]
    except OSError:
        return None
    runs = _get(f"{base}/api/2.0/mlflow/runs/search", {
        "experiment_ids": [exp["experiment_id"]], "filter": "tags.`bisector.role` = 'campaign'",
        "order_by": ["attributes.start_time DESC"], "max_results": 1}).get("runs", [])
    return (exp["experiment_id"], runs[0]["info"]["run_id"]) if runs else None


def shoot(url: str, target: Path, size: str, wait_ms: int) -> bool:
    profile = tempfile.mkdtemp(prefix="chromium-")
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={target}", f"--window-size={size}",
           f"--virtual-time-budget={wait_ms}", url]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        pass
    finally:
        _end(proc)
        shutil.rmtree(profile, ignore_errors=True)
    ok = target.exists() and target.stat().st_size > 0
    print(f"{'wrote' if ok else 'FAILED'} {target}  <- {url}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="screenshots", help="folder for the PNGs")
    ap.add_argument("--uri", help="an MLflow server already running (http://...)")
    ap.add_argument("--backend-store-uri", help="serve this store (default: a new temp sqlite store)")
    ap.add_argument("--campaign", choices=["synth", "tagger", "none"], default=None,
                    help="run a campaign first (default: synth when the store has none)")
    ap.add_argument("--experiment", default="bisector")
    ap.add_argument("--size", default="1600,1000", help="window size W,H")
    ap.add_argument("--wait-ms", type=int, default=60000,
                    help="virtual time for a page to load its data (the chart view needs about a minute)")
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"no {CHROMIUM}: skipping the screenshots (install the Debian package 'chromium' to take them)")
        return 0
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bisector-shots-"))
    server = None
    try:
        base = args.uri.rstrip("/") if args.uri else None
        if base is None:
            base, server = serve(args.backend_store_uri or f"sqlite:///{work}/mlflow.db", work)
            print(f"mlflow server at {base}")
        found = latest(base, args.experiment)
        if args.campaign not in (None, "none") or (found is None and args.campaign is None):
            campaign(base, args.campaign or "synth", work)
            found = latest(base, args.experiment)
        if found is None:
            print(f"no campaign in experiment {args.experiment!r} at {base}")
            return 1
        exp_id, parent = found
        html = work / "ladder.html"
        q = urllib.parse.urlencode({"path": "ladder.html", "run_uuid": parent})
        with urllib.request.urlopen(f"{base}/get-artifact?{q}", timeout=30) as resp:
            html.write_bytes(resp.read())  # served as an attachment: open the file itself
        pages = {
            "parent_run.png": links.run_url(base, exp_id, parent),
            "runs_list.png": links.trials_url(base, exp_id, parent, charts=False),
            "chart_view.png": links.trials_url(base, exp_id, parent, charts=True),
            "experiment_runs.png": f"{base}/#/experiments/{exp_id}/runs?workflowType=machine_learning",
            "ladder_artifact.png": links.artifact_url(base, exp_id, parent, "ladder.html"),
            "ladder_html.png": html.as_uri(),
        }
        width, height = args.size.split(",")
        tall = {"parent_run.png": f"{width},{int(height) * 17 // 10}",  # below the fold: description, metrics
                "chart_view.png": f"{width},{int(height) * 2}", "ladder_html.png": f"{width},{int(height) * 3}"}
        ok = [shoot(url, out / name, tall.get(name, args.size), args.wait_ms) for name, url in pages.items()]
        return 0 if all(ok) else 1
    finally:
        if server is not None:
            _end(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
