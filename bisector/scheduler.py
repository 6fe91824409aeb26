"""Who runs trials: Ray tasks that stream metric batches back to the driver.

Each trial is a Ray streaming-generator task (``trial.run_trial``) reserving
``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs. A trial stops itself when
its detector's verdict is final, so the driver only streams, collects and
(on shutdown) force-cancels. Ray is started locally unless ``address`` or
``RAY_ADDRESS`` names a cluster; a cluster we started we also stop.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from .errors import CampaignError
from .trial import ERROR, TrialRequest, run_trial


@dataclass(frozen=True)
class Resources:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None


class RayScheduler:
    """``submit`` trials while ``has_room``; ``poll`` returns (name, item) events."""

    def __init__(self, resources: Resources = Resources(), address: str | None = None, quiet: bool = True):
        self.resources = resources
        self.address = address or os.environ.get("RAY_ADDRESS")
        self.quiet = quiet
        self._started = False
        self._live: dict[Any, str] = {}
        self._remote = None
        self.capacity = 1

    def __enter__(self) -> RayScheduler:
        import ray

        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": not self.quiet}
        if self.quiet:
            kwargs["logging_level"] = logging.ERROR
        if ray.is_initialized():
            pass
        elif self.address:
            ray.init(address=self.address, **{k: v for k, v in kwargs.items() if k != "include_dashboard"})
        else:
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            ray.init(num_cpus=os.cpu_count() or 1, _node_ip_address="127.0.0.1", **kwargs)
            self._started = True
        r = self.resources
        opts: dict[str, Any] = {"num_cpus": r.cpus_per_trial, "max_retries": 0}
        if r.gpus_per_trial:
            opts["num_gpus"] = r.gpus_per_trial
        self._remote = ray.remote(run_trial).options(**opts)
        total = ray.cluster_resources()
        fits = int(total.get("CPU", 0) // r.cpus_per_trial) if r.cpus_per_trial else 10**6
        if r.gpus_per_trial:
            fits = min(fits, int(total.get("GPU", 0) // r.gpus_per_trial))
        if fits < 1:
            self.__exit__(None, None, None)
            raise CampaignError(
                f"the Ray cluster ({total.get('CPU', 0)} CPUs, {total.get('GPU', 0)} GPUs) cannot hold one "
                f"trial of {r.cpus_per_trial} CPUs and {r.gpus_per_trial} GPUs"
            )
        self.capacity = min(fits, r.max_concurrent or fits)
        return self

    def __exit__(self, *exc) -> None:
        import ray

        for gen in list(self._live):
            ray.cancel(gen, force=True)
        self._live.clear()
        if self._started:
            ray.shutdown()

    @property
    def running(self) -> int:
        return len(self._live)

    def has_room(self) -> bool:
        return self.running < self.capacity

    def submit(self, req: TrialRequest) -> None:
        if req.threads is None:
            req = TrialRequest(**{**req.__dict__, "threads": max(1, int(self.resources.cpus_per_trial))})
        self._live[self._remote.remote(req)] = req.name

    def poll(self, timeout: float = 1.0) -> list[tuple[str, dict[str, Any]]]:
        import ray
        from ray.exceptions import RayError

        if not self._live:
            return []
        ready, _ = ray.wait(list(self._live), num_returns=1, timeout=timeout)
        events = []
        for gen in ready:
            name = self._live[gen]
            try:
                item = ray.get(next(gen))
            except StopIteration:
                del self._live[gen]
                continue
            except RayError as exc:  # the worker died or the task could not run
                del self._live[gen]
                item = {"result": {"name": name, "kind": ERROR, "error": f"{type(exc).__name__}: {exc}"[-2000:],
                                   "infrastructure": True, "steps_run": 0, "wall_s": 0.0}}
            if "result" in item:
                self._live.pop(gen, None)
            events.append((name, item))
        return events

    def wait_all(self, timeout: float = 1.0):
        """Yield events until no trial is live."""
        while self._live:
            yield from self.poll(timeout)
            time.sleep(0)
