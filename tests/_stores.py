"""Copies of one migrated sqlite store: a new MLflow store runs every schema migration (3-6 s here), and the
suite starts a few dozen campaigns. ``test_campaign_e2e`` and the two-campaigns fault test keep a brand-new
store, so that path stays covered."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_template: Path | None = None


def _make_template() -> Path:
    from mlflow.tracking import MlflowClient

    folder = Path(tempfile.mkdtemp(prefix="bisector-store-"))
    atexit.register(shutil.rmtree, folder, True)
    here = os.getcwd()
    os.chdir(folder)  # the Default experiment's artifact root is fixed where it is created: keep it in here
    try:
        path = folder / "store.db"
        MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()  # migrates; creates no experiment
    finally:
        os.chdir(here)
    return path


def sqlite_store(path: Path | str) -> str:
    """The URI of a sqlite store at ``path``: a copy of the migrated template unless ``path`` exists."""
    global _template
    path = Path(path)
    if not path.exists():
        if _template is None:
            _template = _make_template()
        shutil.copy(_template, path)
    return f"sqlite:///{path}"
