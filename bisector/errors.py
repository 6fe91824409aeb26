"""Every error bisector raises on purpose derives from one root.

The CLI catches ``BisectorError`` and prints its message in one paragraph with
exit code 2 (bad input) or the error's own ``exit_code``; anything else is a
bug and keeps its traceback.

    BisectorError
    ├── InputError                 bad input from the user: exit code 2
    │   ├── RecipeError            a recipe file cannot be read or validated
    │   ├── DiffError              the two recipes cannot be bisected
    │   ├── MetricsLogError        a metrics log cannot be read (fingerprint)
    │   ├── OptionError            a command-line option is out of range or empty
    │   ├── ResourceError          the cluster cannot hold one trial as asked
    │   ├── ClusterError           the Ray address cannot be reached, or a local Ray left loopback
    │   ├── StoreError             the MLflow tracking store cannot be reached or used
    │   └── ResumeError            --resume names no campaign this store has
    └── CampaignError              the campaign cannot continue (exit code 1)
        └── EndpointError          good is not stable or bad does not fail
"""

from __future__ import annotations

__all__ = [
    "BisectorError",
    "CampaignError",
    "ClusterError",
    "DiffError",
    "EndpointError",
    "InputError",
    "MetricsLogError",
    "OptionError",
    "RecipeError",
    "ResourceError",
    "ResumeError",
    "StoreError",
]


class BisectorError(Exception):
    exit_code = 1


class InputError(BisectorError):
    exit_code = 2


class RecipeError(InputError):
    """``problems`` holds one line per problem, each naming its field path."""

    def __init__(self, path: str, problems: list[str] | str):
        self.path = str(path)
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        n = len(self.problems)
        head = f"{self.path}: {n} problem{'s' if n > 1 else ''}" if n > 1 else f"{self.path}:"
        super().__init__(head + (" " if n == 1 else "\n  ") + "\n  ".join(self.problems))


class DiffError(InputError):
    pass


class MetricsLogError(InputError):
    pass


class OptionError(InputError):
    pass


class ResourceError(InputError):
    pass


class ClusterError(InputError):
    pass


class StoreError(InputError):
    pass


class ResumeError(InputError):
    pass


class CampaignError(BisectorError):
    exit_code = 1


class EndpointError(CampaignError):
    pass
