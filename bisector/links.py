"""Where a person opens a campaign: MLflow UI addresses, and reproduce commands that work elsewhere.

MLflow 3.17's UI is a hash-routed app (``/#/experiments/<id>/runs/<run>``).
It opens an experiment on its GenAI pages unless the ``workflowType`` query
parameter says ``machine_learning`` (its choice is then kept in the browser);
the experiment tag ``mlflow.experimentKind`` is only read by UIs without
workflow-based navigation, so bisector sets it too but prints addresses that
carry the parameter. The runs tab also reads its search, sort and
table/chart mode from the address (``searchFilter``, ``orderByKey``,
``orderByAsc``, ``compareRunsMode``), which gives a link to the campaign's
trials, in ladder order, as charts.

A reproduce command names the store only when another machine can reach it
(a server, a database host); a local sqlite file or directory is given as
``$MLFLOW_TRACKING_URI`` with a line saying how to set it.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlsplit

WORKFLOW = {"workflowType": "machine_learning"}
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
LOCAL_UI = "http://127.0.0.1:5000"


def ui_base(display_uri: str | None) -> str | None:
    """The UI's address for a tracking URI that is an MLflow server (credentials already removed), else None."""
    if not display_uri:
        return None
    parts = urlsplit(display_uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def run_url(base: str, experiment_id: str, run_id: str) -> str:
    """A run's page in the model-training workflow."""
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?{urlencode(WORKFLOW)}"


def artifact_url(base: str, experiment_id: str, run_id: str, path: str) -> str:
    """A run's Artifacts tab with ``path`` selected (the UI renders .html, .md and images there)."""
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/{quote(path)}?{urlencode(WORKFLOW)}"


def trials_url(base: str, experiment_id: str, parent_run_id: str, charts: bool = True) -> str:
    """The campaign's child runs only, by name (= ladder order), as charts (or the table)."""
    query = {**WORKFLOW, "searchFilter": f"tags.mlflow.parentRunId = '{parent_run_id}'",
             "orderByKey": "tags.`mlflow.runName`", "orderByAsc": "true",
             "compareRunsMode": "CHART" if charts else "TABLE"}
    return f"{base}/#/experiments/{experiment_id}/runs?{urlencode(query, quote_via=quote)}"


def is_shared(display_uri: str | None) -> bool:
    """Whether another machine can reach this store by the same URI (a server or a database host)."""
    if not display_uri:
        return False
    parts = urlsplit(display_uri)
    if parts.scheme in ("", "file", "sqlite"):
        return False
    return bool(parts.netloc) or parts.scheme == "databricks"


def store_for_commands(display_uri: str | None) -> str:
    """The store as a reproduce command names it: the URI if it is shared, else ``$MLFLOW_TRACKING_URI``."""
    return display_uri if is_shared(display_uri) and display_uri else "$MLFLOW_TRACKING_URI"


def reproduce(display_uri: str | None, run_id: str | None) -> str | None:
    """Download a trial's exact recipe from the store and run it alone."""
    if not run_id:
        return None
    store = store_for_commands(display_uri)
    return (f"MLFLOW_TRACKING_URI={store} mlflow artifacts download --run-id {run_id} "
            "--artifact-path recipe.yaml --dst-path . && bisector smoke recipe.yaml")


def store_hint(display_uri: str | None) -> str | None:
    """The line that says how to set ``$MLFLOW_TRACKING_URI`` when the commands do not name the store."""
    if is_shared(display_uri):
        return None
    return (f"Set MLFLOW_TRACKING_URI to this campaign's store first: it was the local store {display_uri} on the "
            "machine that ran it (copy that file, or serve it with `mlflow server --backend-store-uri ...` and use "
            "the server's http:// address).")


def landing(display_uri: str | None, experiment_id: str | None, parent_run_id: str | None) -> list[str]:
    """What the end of a campaign prints: where to open it in the UI."""
    if not experiment_id or not parent_run_id:
        return []
    base = ui_base(display_uri)
    if base:
        return [f"MLflow: {run_url(base, experiment_id, parent_run_id)}",
                f"Trials as charts: {trials_url(base, experiment_id, parent_run_id)}"]
    return [f"MLflow: mlflow ui --backend-store-uri {display_uri}, then open "
            f"{run_url(LOCAL_UI, experiment_id, parent_run_id)}",
            f"Trials as charts: {trials_url(LOCAL_UI, experiment_id, parent_run_id)}"]
