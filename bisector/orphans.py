"""Campaigns whose driver died without closing them (SIGKILL, OOM, a lost machine).

A driver that is killed outright cannot mark its parent run; MLflow would
show it RUNNING for ever. Each campaign therefore tags its parent run with
its driver's identity (host, pid, process start time), and every new
campaign in the experiment closes the RUNNING campaigns whose driver is
provably gone: same host, and no process with that pid and start time (a
reused pid has another start time). Their RUNNING trials are marked KILLED
too; their finished trials stay reusable by key, so re-running the same
command trains only what had not finished. A driver on another host cannot
be checked from here and is left alone.
"""

from __future__ import annotations

import json
import os
import socket

TAG = "bisector.driver"


def identity() -> str:
    """This process, as the tag value a later campaign can check."""
    import psutil

    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                       "started": psutil.Process().create_time()})


def gone(tag: str | None) -> bool:
    """True only when the driver described by ``tag`` ran on this host and no longer runs."""
    import psutil

    try:
        driver = json.loads(tag or "")
        if driver["host"] != socket.gethostname():
            return False
        proc = psutil.Process(int(driver["pid"]))
        return abs(proc.create_time() - float(driver["started"])) > 1.0 or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except (ValueError, KeyError, TypeError, psutil.Error):
        return False  # no tag (an older campaign), or nothing we can tell


def close(client, experiment_id: str, by: str) -> list[str]:
    """Mark KILLED the RUNNING campaigns of ``experiment_id`` whose driver is gone, and their RUNNING trials;
    the ids closed."""
    closed = []
    running = client.search_runs([experiment_id], "tags.`bisector.role` = 'campaign' AND attributes.status = 'RUNNING'",
                                 max_results=500)
    for run in running:
        run_id = run.info.run_id
        if run_id == by or not gone(run.data.tags.get(TAG)):
            continue
        for trial in client.search_runs(
                [experiment_id], f"tags.mlflow.parentRunId = '{run_id}' AND attributes.status = 'RUNNING'",
                max_results=1000):
            client.set_terminated(trial.info.run_id, status="KILLED")
        client.set_tag(run_id, "bisector.closed_by", by)
        client.set_tag(run_id, "outcome", f"Not finished: its driver died; closed by campaign {by}.")
        client.set_terminated(run_id, status="KILLED")
        closed.append(run_id)
    return closed
