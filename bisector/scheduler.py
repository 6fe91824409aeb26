"""Who runs trials: Ray tasks that stream metric batches back to the driver.

Each trial is a Ray streaming-generator task (``trial.run_trial``) reserving
``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs (fractions pack several
small trials on one GPU). A trial stops itself when its detector's verdict is
final, so the driver only streams, collects and, on shutdown, force-cancels.

Ray starts lazily, at the first trial that has to run (a campaign whose
trials are all reused never starts it): locally unless ``address`` or
``RAY_ADDRESS`` names a cluster (inside a Ray Job, ``RAY_ADDRESS`` is set and
the driver joins the job's cluster). A cluster we started we also stop.

A local Ray stays on loopback: asked for 127.0.0.1, Ray 2.x still advertises
the host's address and its GCS, raylet and workers listen on every
interface, unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (its local-only
mode), which Ray reads once, when it is imported. So the local start sets it
for the processes it spawns and for this one, and checks the GCS address it
got; a cluster is joined only when the user names one.

Ray retries a task whose worker died by itself (``max_retries``); we turn
that off and report the death as an infrastructure ``fault`` event instead,
so the campaign can retry it as a fresh attempt and never mistake it for a
training verdict. An exception raised by training code is the trial's own
``error`` result.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
from dataclasses import dataclass
from typing import Any

from .errors import ClusterError, ResourceError
from .trial import TrialRequest, run_trial
from .verdicts import Kind

LOCAL_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _trial_task(req: TrialRequest):
    """``run_trial`` on a worker, its start event tagged with the node (probes run where checkpoints are)."""
    import ray

    for item in run_trial(req):
        if "started" in item:
            item["started"]["node_id"] = ray.get_runtime_context().get_node_id()
        yield item


def _signal_handlers() -> dict:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore(handlers: dict) -> None:
    import signal

    for sig, handler in handlers.items():
        if callable(handler):
            signal.signal(sig, handler)


def _call(fn, *args):
    return fn(*args)


@contextlib.contextmanager
def _loopback_only():
    """Ray's local-only mode while a local cluster starts: its processes inherit the variable; this process
    read it when ray was imported, so its module constant is set as well (and both restored after)."""
    from ray._private import ray_constants

    saved_env, saved_const = os.environ.get(LOCAL_ONLY), vars(ray_constants).get("ENABLE_RAY_CLUSTER")
    os.environ[LOCAL_ONLY] = "0"
    if saved_const is not None:  # a later Ray may drop the constant; the GCS address check below still holds
        ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if saved_const is not None:
            ray_constants.ENABLE_RAY_CLUSTER = saved_const
        if saved_env is None:
            os.environ.pop(LOCAL_ONLY, None)
        else:
            os.environ[LOCAL_ONLY] = saved_env


def _is_loopback(address: str) -> bool:
    host = address.rpartition(":")[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass(frozen=True)
class Resources:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None

    @property
    def device_kind(self) -> str:
        return "GPU" if self.gpus_per_trial else "CPU"

    @property
    def devices(self) -> float:
        """Devices a trial holds: GPUs if it reserves any, else CPUs."""
        return self.gpus_per_trial or self.cpus_per_trial


class RayScheduler:
    """``submit`` trials while ``has_room``; ``poll`` returns (name, event) pairs.

    Events: ``{"started": {...}}``, ``{"metrics": [...]}``, ``{"result": {...}}``
    and ``{"fault": "..."}`` (the worker died; nothing more will come)."""

    def __init__(self, resources: Resources = Resources(), address: str | None = None, quiet: bool = True):
        self.resources = resources
        self.address = address or os.environ.get("RAY_ADDRESS")
        self.address = None if self.address in ("local", "") else self.address  # "local": our loopback start
        self.quiet = quiet
        self.started = False
        self._owns_ray = False
        self._live: dict[Any, str] = {}
        self._remote = None
        self.capacity = 1
        self.cluster: dict[str, float] = {}

    def __enter__(self) -> RayScheduler:
        return self

    def start(self) -> None:
        if self.started:
            return
        import ray

        kwargs: dict[str, Any] = {"log_to_driver": not self.quiet}
        if self.quiet:
            kwargs["logging_level"] = logging.ERROR
        if not ray.is_initialized():
            handlers = _signal_handlers()
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                with _loopback_only():
                    ray.init(num_cpus=os.cpu_count() or 1, _node_ip_address="127.0.0.1", include_dashboard=False,
                             **kwargs)
                self._owns_ray = True
            _restore(handlers)  # ray.init replaces SIGTERM with sys.exit: keep the caller's clean shutdown
            gcs = ray.get_runtime_context().gcs_address
            if self._owns_ray and not _is_loopback(gcs):
                self.close()
                raise ClusterError(f"the local Ray advertised its GCS at {gcs}, not on loopback; refusing to run "
                                   "trials reachable from the network (join a cluster with --address instead)")
        self.started = True
        r = self.resources
        opts: dict[str, Any] = {"num_cpus": r.cpus_per_trial, "max_retries": 0}
        if r.gpus_per_trial:
            opts["num_gpus"] = r.gpus_per_trial
        self._remote = ray.remote(_trial_task).options(**opts)
        self._opts = opts
        self.cluster = {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}
        fits = int(self.cluster.get("CPU", 0) // r.cpus_per_trial) if r.cpus_per_trial else 10**6
        if r.gpus_per_trial:
            fits = min(fits, int(self.cluster.get("GPU", 0) // r.gpus_per_trial))
        if fits < 1:
            have = f"{self.cluster.get('CPU', 0):g} CPUs and {self.cluster.get('GPU', 0):g} GPUs"
            self.close()
            raise ResourceError(
                f"the Ray cluster has {have}, which cannot hold one trial of --cpus-per-trial "
                f"{r.cpus_per_trial:g} and --gpus-per-trial {r.gpus_per_trial:g}"
                + ("; this cluster has no GPU: drop --gpus-per-trial or join a GPU cluster with --address"
                   if r.gpus_per_trial and not self.cluster.get("GPU") else "")
            )
        self.capacity = min(fits, r.max_concurrent or fits)

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.cancel_all()
        if self._owns_ray:
            import ray

            ray.shutdown()
            self._owns_ray = False
        self.started = False

    def cancel_all(self) -> list[str]:
        """Force-cancel every live trial (its worker ends within ~0.1 s); their names."""
        if not self._live:
            return []
        import ray

        names = list(self._live.values())
        for gen in list(self._live):
            try:
                ray.cancel(gen, force=True)
            except Exception:  # noqa: BLE001 - already finished or gone
                pass
        self._live.clear()
        return names

    def cancel(self, name: str) -> bool:
        """Force-cancel one live trial (a strategy found it moot): its worker ends, and with it a command runner's
        process group (the guard ends the group when its parent dies). False when it is no longer live."""
        gen = next((g for g, n in self._live.items() if n == name), None)
        if gen is None:
            return False
        import ray

        try:
            ray.cancel(gen, force=True)
        except Exception:  # noqa: BLE001 - finished meanwhile: its result is dropped, it was moot
            pass
        del self._live[gen]
        return True

    @property
    def running(self) -> int:
        return len(self._live)

    def has_room(self) -> bool:
        return not self.started or self.running < self.capacity

    def submit(self, req: TrialRequest) -> None:
        self.start()
        if req.threads is None:
            req = TrialRequest(**{**req.__dict__, "threads": max(1, int(self.resources.cpus_per_trial))})
        self._live[self._remote.remote(req)] = req.name

    def call_on_node(self, node_id: str | None, fn, *args, timeout: float = 600):
        """Run ``fn(*args)`` as a Ray task on ``node_id`` (where a trial left its checkpoints)."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.start()
        opts = dict(self._opts)
        if node_id:
            opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id, soft=True)
        return ray.get(ray.remote(_call).options(**opts).remote(fn, *args), timeout=timeout)

    def poll(self, timeout: float = 1.0) -> list[tuple[str, dict[str, Any]]]:
        import ray
        from ray.exceptions import RayError, RayTaskError, TaskCancelledError

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
            except TaskCancelledError:
                del self._live[gen]
                continue
            except RayTaskError as exc:  # the trial function itself raised (e.g. the runner cannot import)
                del self._live[gen]
                item = {"result": {"name": name, "kind": Kind.ERROR, "error": str(exc)[-4000:], "steps_run": 0,
                                   "wall_s": 0.0}}
            except RayError as exc:  # the worker or its node died: infrastructure, not a verdict
                del self._live[gen]
                item = {"fault": f"{type(exc).__name__}: {exc}"[:2000]}
            if "result" in item:
                self._live.pop(gen, None)
            events.append((name, item))
        return events
