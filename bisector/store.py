"""The MLflow tracking store, opened so that a bad one fails fast and a good one is never broken.

Opening the store is where a campaign first touches the outside world, so
each way it goes wrong becomes one clear error (exit 2) before anything is
recorded, instead of a traceback or a silent wait:

* a server or database host that does not answer fails in seconds: a TCP
  connect with a short timeout, then MLflow's own first request with no
  retries and a short timeout (its defaults retry with backoff for minutes);
  later requests keep MLflow's retries, so a campaign rides out an outage;
* a sqlite path that is a directory, lies under a missing directory or holds
  something else than a database is refused at once (MLflow retries creating
  its engine for about 100 s, or quietly creates missing directories);
* a new sqlite store is created and migrated under a file lock next to it:
  two campaigns started at once on a fresh store otherwise both run alembic's
  migrations and leave the store broken for every later run;
* a deleted experiment of the same name is named, with how to restore it.

Credentials are needed to talk to a store but never shown: ``redact`` strips
the user information (``user:password@``) and secret-looking query values
from every URI bisector prints or stores (the final line, ``--json``, the
ladder artifacts, each rung's reproduce command, error messages).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from .errors import OptionError, StoreError

CONNECT_TIMEOUT_S = 3.0
FIRST_REQUEST_TIMEOUT_S = 5
LOCK_TIMEOUT_S = 300.0
"""Waiting for another campaign to finish creating the same new store (seconds on a busy machine)."""

_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]*(?:@[^/\s@]*)*@")
_SECRET_QUERY = re.compile(r"([?&;][\w.-]*(?:token|password|passwd|pwd|secret|signature|sig|key|auth)=)[^&#;\s]*",
                           re.IGNORECASE)
_NETWORK_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433}


def redact(text: str | None) -> str | None:
    """``text`` with credentials removed from every URI in it: ``http://u:p@h/x?token=t`` -> ``http://h/x?token=***``."""
    if text is None:
        return None
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\1", text))


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:`` URI (None for an in-memory one), as SQLAlchemy reads it."""
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    return Path(database) if database and database != ":memory:" else None


def _fail(shown: str, problem: str) -> StoreError:
    return StoreError(f"the MLflow tracking store {shown} cannot be used: {redact(problem)}")


def _check_sqlite(uri: str, shown: str) -> Path | None:
    try:
        path = sqlite_path(uri)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy.exc.ArgumentError on a malformed URI
        raise _fail(shown, f"not a valid sqlite URI ({exc}); expected sqlite:///relative.db or "
                           "sqlite:////absolute/path.db") from None
    if path is None:
        return None
    if path.is_dir():
        raise _fail(shown, f"{path} is a directory; name a database file in it, e.g. {path / 'mlflow.db'}")
    if not path.parent.is_dir():
        raise _fail(shown, f"directory {path.parent} does not exist")
    if path.exists():
        try:
            with path.open("rb") as f:
                head = f.read(16)
        except OSError as exc:
            raise _fail(shown, f"{path} cannot be read: {exc.strerror or exc}") from None
        if head and head != b"SQLite format 3\x00":
            raise _fail(shown, f"{path} exists and is not a sqlite database")
    return path


def _check_host(uri: str, shown: str) -> None:
    from .preflight import tcp_problem

    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0]
    if scheme not in _NETWORK_PORTS:
        return
    try:
        host, port = parts.hostname, parts.port or _NETWORK_PORTS[scheme]
    except ValueError as exc:  # a port that is not a number
        raise _fail(shown, str(exc)) from None
    if not host:
        raise _fail(shown, "no host in the URI")
    problem = tcp_problem(host, port, CONNECT_TIMEOUT_S)
    if problem:
        raise _fail(shown, f"nothing answers at {host}:{port} ({problem}; waited at most {CONNECT_TIMEOUT_S:g} s)")


@contextlib.contextmanager
def _first_use(db: Path | None) -> Iterator[None]:
    """The first request: no retries and a short timeout for a server; a lock around creating a sqlite store."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT=str(FIRST_REQUEST_TIMEOUT_S))
    try:
        if db is None:
            yield
        else:
            from filelock import FileLock

            with FileLock(str(db) + ".lock", timeout=LOCK_TIMEOUT_S):
                yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def open_client(tracking_uri: str | None, experiment: str | None = None):
    """(uri, MlflowClient) for ``tracking_uri`` (default: MLflow's), its store created if new, checked usable.

    Raises ``StoreError`` naming the store (credentials stripped) and what is wrong with it."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # stdout is for results
    import mlflow
    from filelock import Timeout
    from mlflow.tracking import MlflowClient

    if experiment is not None and not experiment.strip():
        raise OptionError("--experiment is empty; name an MLflow experiment (default: bisector)")
    if tracking_uri is not None and not tracking_uri.strip():
        raise StoreError("--tracking-uri is empty; give an MLflow tracking URI such as sqlite:///mlflow.db or "
                         "http://HOST:5000, or leave it out for MLflow's default store")
    uri = tracking_uri or mlflow.get_tracking_uri()
    shown = redact(uri)
    db = _check_sqlite(uri, shown) if urlsplit(uri).scheme == "sqlite" else None
    _check_host(uri, shown)
    try:
        with _first_use(db):
            client = MlflowClient(tracking_uri=uri)
            exp = client.get_experiment_by_name(experiment or "Default")  # creates and migrates a new store
    except Timeout:
        raise _fail(shown, f"another process has held {db}.lock for {LOCK_TIMEOUT_S:g} s") from None
    except Exception as exc:  # noqa: BLE001 - MlflowException, sqlalchemy and OS errors: all mean unusable here
        text = str(exc)
        if "MLFLOW_ALLOW_FILE_STORE" in text:
            raise _fail(shown, "it is MLflow's filesystem store, which MLflow 3 refuses; use a database store such "
                               "as sqlite:///mlflow.db (or set MLFLOW_ALLOW_FILE_STORE=true)") from None
        lines = [ln for ln in text.splitlines() if ln.strip()] or [type(exc).__name__]
        raise _fail(shown, f"{type(exc).__name__}: {lines[0][:400]}") from None
    if exp is not None and exp.lifecycle_stage == "deleted":
        raise StoreError(
            f"experiment {experiment!r} in {shown} is deleted; restore it with `mlflow experiments restore "
            f"--experiment-id {exp.experiment_id}` or choose another name with --experiment")
    return uri, client
