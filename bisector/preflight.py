"""A campaign's options, checked before anything starts or is written.

A bad option must fail in a second with one paragraph naming it, not after
Ray's start-up (a negative CPU count raised inside ``ray.remote`` after
20 s, with a parent run already logged), nor as a misleading outcome (a
negative ``--max-concurrent`` ran one trial and reported a budget stop; a
``--workdir`` under a regular file made every trial fail, reported as "the
bad recipe does not fail"). So every number is checked for range and
finiteness, every name for emptiness, ``--group`` for empty and repeated
paths, the work directory for being creatable (without creating it), and a
Ray address for answering at all (a TCP connect with a short timeout:
``ray.init`` on an address where nothing listens waits for minutes).
All option problems are reported at once. The tracking store is checked
where it is opened (``store.py``).
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from .errors import ClusterError, OptionError

CONNECT_TIMEOUT_S = 3.0
RAY_CLIENT_PORT = 10001
MAX_SEED = 2**32 - 1  # what numpy, torch and random all accept


def tcp_problem(host: str, port: int, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """None when something accepts a TCP connection at host:port within ``timeout``, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror:
        return f"host {host!r} not found"
    except TimeoutError:
        return "no answer"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()


def _number(problems: list[str], flag: str, value: Any, low: float | None = None, high: float | None = None,
            low_open: bool = False, integer: bool = False, optional: bool = True) -> None:
    if value is None:
        if not optional:
            problems.append(f"{flag} is required")
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (not integer or float(value).is_integer())
    ok = ok and (low is None or (value > low if low_open else value >= low)) and (high is None or value <= high)
    if not ok:
        kind = "a whole number" if integer else "a finite number"
        bounds = [f"{'>' if low_open else '>='} {low:g}" if low is not None else "",
                  f"<= {high:g}" if high is not None else ""]
        expected = " and ".join(b for b in bounds if b)
        problems.append(f"{flag} {value!r}: expected {kind}" + (f" {expected}" if expected else ""))


def group_problems(specs: list[str] | None) -> list[str]:
    """Empty groups, empty paths and paths named twice in ``--group`` specs (unknown paths: ``knobs.diff``)."""
    problems, seen = [], set()
    for spec in specs or []:
        members = [p.strip() for p in spec.split(",")]
        if not any(members):
            problems.append(f"--group {spec!r} names no knob; expected comma-separated dotted paths such as "
                            "'data.corpus,model.crf_reduction'")
            continue
        if not all(members):
            problems.append(f"--group {spec!r} has an empty path")
        for path in filter(None, members):
            if path in seen:
                problems.append(f"--group: {path!r} is named more than once (a knob belongs to one group)")
            seen.add(path)
    return problems


def check_groups(specs: list[str] | None) -> None:
    problems = group_problems(specs)
    if problems:
        raise OptionError("; ".join(problems))


def option_problems(opts: Any) -> list[str]:
    """Every out-of-range, non-finite or empty option of ``campaign.Options``, as one line each."""
    p: list[str] = []
    r = opts.resources
    _number(p, "--cpus-per-trial", r.cpus_per_trial, 0, optional=False)
    _number(p, "--gpus-per-trial", r.gpus_per_trial, 0, optional=False)
    for flag, v in (("--cpus-per-trial", r.cpus_per_trial), ("--gpus-per-trial", r.gpus_per_trial)):
        if isinstance(v, (int, float)) and math.isfinite(v) and 0 < v < 1e-4:
            p.append(f"{flag} {v!r}: Ray counts resources in steps of 0.0001")
    if isinstance(r.gpus_per_trial, (int, float)) and math.isfinite(r.gpus_per_trial) and r.gpus_per_trial > 1 \
            and not float(r.gpus_per_trial).is_integer():
        p.append(f"--gpus-per-trial {r.gpus_per_trial!r}: above 1 Ray reserves whole GPUs only")
    if r.cpus_per_trial == 0 and r.gpus_per_trial == 0:
        p.append("--cpus-per-trial 0 with --gpus-per-trial 0: a trial must reserve some CPUs or GPUs")
    _number(p, "--max-concurrent", r.max_concurrent, 1, integer=True)
    _number(p, "--max-trials", opts.max_trials, 1, integer=True)
    _number(p, "--max-hours", opts.max_hours, 0, low_open=True)
    _number(p, "--retries", opts.retries, 0, 100, integer=True, optional=False)
    _number(p, "--seed", opts.seed, 0, MAX_SEED, integer=True)
    _number(p, "--probe-batches", opts.probe_batches, 1, 100_000, integer=True, optional=False)
    _number(p, "--min-val", opts.min_val)
    _number(p, "--max-climb", opts.max_climb, 0, 1, optional=False)
    _number(p, "--class-floor", opts.class_floor, 0, 1, optional=False)
    for flag, value in (("--experiment", opts.experiment), ("--workdir", opts.workdir), ("--resume", opts.resume)):
        if value is not None and not str(value).strip():
            p.append(f"{flag} is empty")
    return p + group_problems(opts.groups)


def workdir_problem(workdir: str, flag: str = "--workdir") -> str | None:
    """Why trials could not write under ``workdir`` on this machine (nothing is created to find out)."""
    path = Path(workdir).resolve()
    existing = next(a for a in (path, *path.parents) if a.exists())
    if not existing.is_dir():
        return (f"{flag} {workdir}: {existing} is not a directory" if existing == path else
                f"{flag} {workdir}: it would be under {existing}, which is a file, not a directory")
    try:
        with tempfile.TemporaryFile(dir=existing):  # O_TMPFILE on Linux: no name is ever visible
            pass
    except OSError as exc:
        return f"{flag} {workdir}: cannot write in {existing} ({(exc.strerror or str(exc)).lower()})"
    return None


def check_smoke(seed: int | None, out_dir: str | None) -> None:
    """``bisector smoke``'s own options."""
    problems: list[str] = []
    _number(problems, "--seed", seed, 0, MAX_SEED, integer=True)
    problem = workdir_problem(out_dir, "--out-dir") if out_dir is not None else None
    if problems or problem:
        raise OptionError("; ".join(problems + [problem] if problem else problems))


def _host_port(text: str, default_port: int | None) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":") if not text.endswith("]") else (text, "", "")
    if not sep:
        host, port = text, ""
    host = host.strip("[]")
    if not port and default_port:
        return (host, default_port) if host else None
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def ray_address(address: str | None) -> str | None:
    """The Ray cluster to join (``--address``, else ``RAY_ADDRESS``), checked to answer; None: start a local Ray."""
    origin = "--address" if address is not None else "RAY_ADDRESS"
    raw = address if address is not None else os.environ.get("RAY_ADDRESS")
    if raw is None:
        return None
    value = raw.strip()
    expected = ("expected HOST:PORT of a Ray head's GCS (e.g. 10.0.0.5:6379), ray://HOST:PORT for Ray Client, "
                "'auto' for the cluster `ray start` started on this machine, or no address for a local Ray")
    if not value:
        raise ClusterError(f"{origin} is empty; {expected}")
    if value == "local":
        return None
    if value == "auto":
        from ray._private.services import canonicalize_bootstrap_address

        try:
            found = canonicalize_bootstrap_address("auto")
        except Exception as exc:  # noqa: BLE001 - ConnectionError and friends: no cluster to join
            found, value = None, f"auto ({exc})"
        if found is None:
            raise ClusterError(f"{origin} {value}: no running Ray cluster on this machine; start one with "
                               "`ray start --head`, or leave the address out to run a local Ray")
        hostport = _host_port(found, None)
    elif "://" in value:
        scheme, _, rest = value.partition("://")
        if scheme != "ray":
            hint = " (http:// is the dashboard's address, for `ray job submit`)" if scheme.startswith("http") else ""
            raise ClusterError(f"{origin} {value!r}: unsupported scheme {scheme!r}{hint}; {expected}")
        hostport = _host_port(rest.rstrip("/"), RAY_CLIENT_PORT)
    else:
        hostport = _host_port(value, None)
    if hostport is None:
        raise ClusterError(f"{origin} {value!r} is not an address; {expected}")
    problem = tcp_problem(*hostport)
    if problem:
        host, port = hostport
        raise ClusterError(f"{origin} {value}: nothing answers at {host}:{port} ({problem}; waited at most "
                           f"{CONNECT_TIMEOUT_S:g} s); start the cluster first, or leave the address out to run a "
                           "local Ray")
    return value


def check(opts: Any) -> None:
    """Raise an ``InputError`` subclass for the first kind of problem found: options, the Ray address, the
    work directory (checked here only for a local Ray: on a cluster, trials write on the nodes)."""
    problems = option_problems(opts)
    if problems:
        raise OptionError("; ".join(problems))
    if ray_address(opts.address) is None:
        cpus = os.cpu_count() or 1
        if opts.resources.cpus_per_trial > cpus:
            raise OptionError(f"--cpus-per-trial {opts.resources.cpus_per_trial:g}: this machine has {cpus} CPUs "
                              "and the local Ray holds no more; lower it, or join a cluster with --address")
        problem = workdir_problem(opts.workdir)
        if problem:
            raise OptionError(problem)
