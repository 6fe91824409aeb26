"""Gradient probe: per-loss-term gradients on a checkpoint, by magnitude and direction.

One forward per batch, then one ``torch.autograd.grad`` per term with the
graph retained, so only the k term gradients of one batch are alive at once.
Everything is reduced on the fly, in float64, to scalars: per batch each
term's norm (all parameters and per top-level module) and the Gram matrix of
the terms' gradients ``G_ij = g_i . g_j``, averaged over batches. From the
mean Gram matrix come the cosine (conflict when < 0), the magnitude
similarity ``2|gi||gj| / (|gi|^2 + |gj|^2)`` and the projection share
``c_i = w_i g_i . g / |g|^2`` of the weighted total ``g = sum_j w_j g_j``,
which sums to 1 and is negative for a term being cancelled.

Why direction matters: in our lab the ratio of norms alone did not separate
diverging from stable runs; the cosine did.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ALL = "all"


@dataclass
class TermStats:
    norm_median: float
    norm_min: float
    norm_max: float
    ratio_to_primary: float
    weight: float
    weighted_norm: float
    weighted_share: float
    projection_share: float


@dataclass
class PairStats:
    a: str
    b: str
    cosine: float
    conflict: bool
    magnitude_similarity: float


@dataclass
class ProbeReport:
    """Per scope ('all' and each top-level module): term and pair statistics."""

    primary: str
    weights: dict[str, float]
    batches: int
    terms: dict[str, dict[str, TermStats]] = field(default_factory=dict)
    pairs: dict[str, list[PairStats]] = field(default_factory=dict)
    reductions: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    label: str = ""
    step: int | None = None
    checkpoint: str = ""
    seconds: float = 0.0
    shared: str | None = None
    """The module every term's gradient flows through (a multi-task trunk), when the runner names one:
    the ladder's view then shows that scope instead of all parameters."""

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label, "step": self.step, "checkpoint": self.checkpoint, "primary": self.primary,
            "weights": self.weights, "batches": self.batches, "seconds": round(self.seconds, 3),
            "terms": {s: {t: asdict(v) for t, v in d.items()} for s, d in self.terms.items()},
            "pairs": {s: [asdict(p) for p in ps] for s, ps in self.pairs.items()},
            "reductions": {t: list(v) for t, v in self.reductions.items()}, "shared": self.shared,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ProbeReport:
        r = cls(d["primary"], d["weights"], d["batches"], label=d.get("label", ""), step=d.get("step"),
                checkpoint=d.get("checkpoint", ""), seconds=d.get("seconds", 0.0), shared=d.get("shared"))
        r.terms = {s: {t: TermStats(**v) for t, v in ts.items()} for s, ts in d["terms"].items()}
        r.pairs = {s: [PairStats(**p) for p in ps] for s, ps in d["pairs"].items()}
        r.reductions = {t: tuple(v) for t, v in d.get("reductions", {}).items()}
        return r

    @property
    def scope(self) -> str:
        """The ladder's scope: the shared module when the runner names one, else all parameters."""
        return self.shared if self.shared in self.terms else ALL

    def summary(self) -> dict[str, Any]:
        """The ladder's view: the scope's terms and pairs, plus per-module cosines."""
        return {
            "label": self.label, "step": self.step, "checkpoint": self.checkpoint, "scope": self.scope,
            "terms": {t: {k: getattr(v, k) for k in ("norm_median", "norm_min", "norm_max", "ratio_to_primary",
                                                      "weighted_share", "projection_share")}
                      for t, v in self.terms[self.scope].items()},
            "pairs": [asdict(p) for p in self.pairs[self.scope]],
            "modules": {s: [asdict(p) for p in ps] for s, ps in self.pairs.items() if s != ALL},
        }

    def pair(self, a: str, b: str, scope: str = ALL) -> PairStats | None:
        return next((p for p in self.pairs.get(scope, []) if {p.a, p.b} == {a, b}), None)


def module_of(param_name: str) -> str:
    return param_name.split(".", 1)[0]


def probe_model(model, batches, loss_fn, weights: dict[str, float], primary: str) -> ProbeReport:
    """The probe on an already-built model: ``loss_fn(model, batch) -> {term: scalar}``."""
    import torch

    model.eval()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    scopes = [ALL] + sorted({module_of(n) for n, _ in named})
    index = {s: [i for i, (n, _) in enumerate(named) if s == ALL or module_of(n) == s] for s in scopes}
    norms: dict[str, dict[str, list[float]]] = {s: {} for s in scopes}
    gram: dict[str, dict[tuple[str, str], float]] = {s: {} for s in scopes}
    names: list[str] = []
    for batch in batches:
        terms = loss_fn(model, batch)
        names = list(terms)
        grads = {}
        for j, name in enumerate(names):
            g = torch.autograd.grad(terms[name], params, retain_graph=j < len(names) - 1, allow_unused=True)
            grads[name] = [torch.zeros_like(p) if x is None else x for x, p in zip(g, params, strict=True)]
        per_param = {}  # (a, b) -> float64 dot per parameter
        for ia, a in enumerate(names):
            for b in names[ia:]:
                per_param[a, b] = [torch.dot(x.detach().reshape(-1).double(), y.detach().reshape(-1).double()).item()
                                   for x, y in zip(grads[a], grads[b], strict=True)]
        del grads
        for s in scopes:
            for (a, b), dots in per_param.items():
                v = sum(dots[i] for i in index[s])
                gram[s][a, b] = gram[s].get((a, b), 0.0) + v
                if a == b:
                    norms[s].setdefault(a, []).append(v ** 0.5)
    report = ProbeReport(primary, {n: float(weights.get(n, 0.0)) for n in names}, len(batches))
    for s in scopes:
        n = len(batches)
        G = {(a, b): v / n for (a, b), v in gram[s].items()}
        G.update({(b, a): v for (a, b), v in list(G.items())})
        report.terms[s], report.pairs[s] = _summarize(names, norms[s], G, report.weights, primary)
    return report


def _summarize(names, norms, G, w, primary):
    med = {t: statistics.median(norms[t]) for t in names}
    weighted = {t: w[t] * med[t] for t in names}
    total_w = sum(weighted.values()) or 1.0
    gg = sum(w[a] * w[b] * G[a, b] for a in names for b in names)
    terms = {}
    for t in names:
        proj = sum(w[t] * w[b] * G[t, b] for b in names) / gg if gg > 0 else 0.0
        terms[t] = TermStats(
            norm_median=med[t], norm_min=min(norms[t]), norm_max=max(norms[t]),
            ratio_to_primary=med[t] / med[primary] if med.get(primary) else float("inf"),
            weight=w[t], weighted_norm=weighted[t], weighted_share=weighted[t] / total_w, projection_share=proj,
        )
    pairs = []
    for ia, a in enumerate(names):
        for b in names[ia + 1:]:
            denom = (G[a, a] * G[b, b]) ** 0.5
            cos = G[a, b] / denom if denom > 0 else 0.0
            mag = 2 * (G[a, a] * G[b, b]) ** 0.5 / (G[a, a] + G[b, b]) if G[a, a] + G[b, b] > 0 else 0.0
            pairs.append(PairStats(a, b, cos, cos < 0, mag))
    return terms, pairs


def probe_checkpoint(runner, recipe, checkpoint: str | Path, batches: int = 8, device: str | None = None,
                     label: str = "") -> ProbeReport:
    """The probe through a runner's probe contract (``runner.probe``)."""
    import time

    import torch

    from . import registry

    contract = registry.probe_contract(runner, recipe)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = contract.load_model(recipe, checkpoint, device)
    data = contract.probe_batches(recipe, batches, device=device)
    report = probe_model(model, data, lambda m, b: contract.terms(m, b, recipe), contract.term_weights(recipe),
                         contract.PRIMARY_TERM)
    report.reductions = contract.term_reductions(recipe, data[0])
    report.seconds = time.perf_counter() - t0
    report.checkpoint, report.label = str(checkpoint), label
    report.shared = getattr(contract, "SHARED_MODULE", None)
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    report.step = int(saved.get("step", -1)) if isinstance(saved, dict) else -1
    return report


def reduction_note(report: ProbeReport) -> str | None:
    """Say so when one term sums what another averages: the gradient scales by exactly N, not sqrt(N)."""
    red = report.reductions
    sums = [(t, r) for t, r in red.items() if r[0] == "sum"]
    means = [(t, r) for t, r in red.items() if r[0] == "mean"]
    if not sums or not means:
        return None
    (ts, (_, n, what)), (tm, (_, m, mwhat)) = sums[0], means[0]
    return (f"{ts} is summed over {n} {what} per batch while {tm} is averaged over {m} {mwhat}: a sum's "
            f"gradient is exactly {n}x the gradient of the same loss averaged over its {n} {what} "
            f"(the number of elements reduced, not its square root {n ** 0.5:.1f})")


def probe_task(runner_name: str, recipe: dict[str, Any], checkpoint: str, batches: int, label: str,
               device: str | None = None) -> dict[str, Any]:
    """Entry point for a Ray task (or a direct call): the probe's report as JSON."""
    from . import registry

    runner = registry.resolve(runner_name)
    model = runner.Recipe.model_validate(recipe)
    return probe_checkpoint(runner, model, checkpoint, batches, device, label).to_json()
