"""bisector: find the recipe change that makes a training run diverge.

The Python API is what the ``bisector`` command uses: ``run`` a campaign with
``Options`` and read its ``Outcome``; judge a curve with ``ClimbDetector`` or
``classify`` (``bisector fingerprint`` reads a log you already have); every
error bisector raises on purpose derives from ``BisectorError``. Names load on first use, so
``import bisector`` starts neither Ray, MLflow nor torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_WHERE = {
    "run": "campaign", "Options": "options", "Outcome": "options", "Resources": "scheduler",
    "ClimbDetector": "climb", "classify": "detector", "Verdict": "curve_verdict",
    "Kind": "verdicts", "Result": "verdicts", "BisectorError": "errors", "InputError": "errors",
    "CampaignError": "errors",
}

__all__ = ["__version__", *_WHERE]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'bisector' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
