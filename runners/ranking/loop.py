"""The ranking runner's training loop, written top to bottom.

``train`` yields one record per step: ``train_loss`` (the active phase's
objective, watched), ``ce``, ``rank`` (after the switch), ``temperature``,
``grad_norm``; at step 1 and every ``MONITOR_EVERY`` steps each positive
class's ``ap_loss.<c>`` (1 - its exact average precision on the validation
rows: a per-class loss, the runner's ``task_metrics``, so the trial can tell
a class that never improves while the others learn); every ``eval_every``
steps the AP itself per class (``val_ap.<c>``) and their mean (``val_map``).
Checkpoints hold the model *and* the queue, so a probe sees the pool the
ranking loss saw.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from ..common import MetricsLog, batch_indices
from . import data as D
from .config import RankingRecipe
from .loss import PhaseSwitch
from .model import Scorer

PRIMARY = "train_loss"
MONITOR_EVERY = 10
"""Steps between per-class ``ap_loss.<c>`` points (one forward on the validation rows each)."""


def pick_device(device: str | None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build(recipe: RankingRecipe, device: torch.device) -> tuple[Scorer, D.Split, D.Split]:
    torch.manual_seed(recipe.seed)
    train_set, val_set = D.load(recipe.data)
    return Scorer(recipe.model, recipe.data).to(device), train_set.to(device), val_set.to(device)


def average_precision(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """Exact AP of one class: mean precision at the rank of each positive."""
    order = scores.argsort(descending=True)
    hits = positive[order].float()
    if hits.sum() == 0:
        return 0.0
    precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1, device=hits.device)
    return float((precision * hits).sum() / hits.sum())


@torch.no_grad()
def class_aps(model: Scorer, val: D.Split) -> dict[int, float]:
    """Exact AP of each positive class on the validation rows."""
    model.eval()
    scores = model(val.x)
    model.train()
    return {c: average_precision(scores[:, c], val.y == c) for c in range(1, scores.shape[1])}


def evaluate(model: Scorer, val: D.Split, aps: dict[int, float] | None = None) -> dict[str, float]:
    aps = aps if aps is not None else class_aps(model, val)
    rec = {f"val_ap.{c}": v for c, v in aps.items()}
    rec["val_map"] = sum(aps.values()) / len(aps)
    return rec


def ap_losses(aps: dict[int, float]) -> dict[str, float]:
    """``ap_loss.<c>`` = 1 - AP: one falling metric per class (the task metrics)."""
    return {f"ap_loss.{c}": 1.0 - v for c, v in aps.items()}


def save_checkpoint(path: Path, model: Scorer, wrapper: PhaseSwitch, step: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "model": model.state_dict(), "queue": wrapper.state()}, tmp)
    tmp.replace(path)


def make_optimizer(recipe: RankingRecipe, model: Scorer) -> torch.optim.Optimizer:
    if recipe.train.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=recipe.train.lr, momentum=0.9)
    return torch.optim.Adam(model.parameters(), lr=recipe.train.lr)


def train(recipe: RankingRecipe, out_dir: Path | None = None, device: str | None = None,
          threads: int | None = None) -> Iterator[dict[str, float]]:
    if threads:
        torch.set_num_threads(threads)
    dev = pick_device(device)
    model, train_set, val_set = build(recipe, dev)
    opt = make_optimizer(recipe, model)
    wrapper = PhaseSwitch(recipe.loss, recipe.data.classes, dev)
    bs = min(recipe.train.batch_size, len(train_set))
    batches = batch_indices(len(train_set), bs, recipe.seed)
    log = MetricsLog(out_dir)
    try:
        for step in range(1, recipe.train.steps + 1):
            idx = next(batches).to(dev)
            x, y = train_set.x[idx], train_set.y[idx]
            scores = model(x)
            terms = wrapper.terms(scores, y, step)
            weights = wrapper.weights(step)
            total = sum(weights[k] * v for k, v in terms.items() if weights.get(k))
            opt.zero_grad(set_to_none=True)
            total.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")))
            opt.step()
            wrapper.push(scores, y, step)
            rec = {"step": step, PRIMARY: total.item(), "ce": terms["ce"].item(), "grad_norm": grad_norm,
                   "phase": 1.0 if wrapper.ranking(step) else 0.0, "queue": float(len(wrapper.q_labels))}
            if "rank" in terms:
                rec["rank"] = terms["rank"].item()
                rec["temperature"] = wrapper.temperature(step)
            evaluating = step % recipe.train.eval_every == 0 or step == recipe.train.steps
            if evaluating or step == 1 or step % MONITOR_EVERY == 0:
                aps = class_aps(model, val_set)
                rec.update(ap_losses(aps))
                if evaluating:
                    rec.update(evaluate(model, val_set, aps))
            if out_dir is not None and step % recipe.train.checkpoint_every == 0:
                save_checkpoint(out_dir / "checkpoints" / f"step_{step:06d}.pt", model, wrapper, step)
            log.write(rec)
            yield rec
    finally:
        log.close()
