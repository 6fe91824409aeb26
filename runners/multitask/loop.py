"""The multitask training loop, top to bottom.

Each step: one forward through the shared trunk and the heads, the four task
losses, the normaliser's scale per task, one backward of the weighted sum.
The scales live in the model's ``scales`` buffer, so a checkpoint carries the
balance the run had reached and the probe measures the gradients as trained.
Records carry every task's raw loss (mean over its elements, whatever the
reduction, so tasks and recipes compare) and ``train_loss``, their sum.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from ..common import MetricsLog, batch_indices
from . import data as D
from .config import TASKS, MultitaskRecipe
from .model import MultiTask

PRIMARY = "train_loss"
METRICS = tuple(f"loss_{t}" for t in TASKS)


def pick_device(device: str | None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_model(recipe: MultitaskRecipe, device: torch.device) -> MultiTask:
    torch.manual_seed(recipe.seed)
    model = MultiTask(recipe.model, recipe.data).to(device)
    model.register_buffer("scales", torch.ones(len(TASKS), device=device))
    model.register_buffer("running", torch.ones(len(TASKS), device=device))
    return model


def elements(recipe: MultitaskRecipe) -> dict[str, int]:
    """Elements each task reduces per sample."""
    return {"pointer": 2, "type": 1, "flag": 1, "countdown": recipe.data.length}


def task_losses(recipe: MultitaskRecipe, out: dict[str, torch.Tensor], b: D.Split) -> dict[str, torch.Tensor]:
    """Each task's loss as trained (countdown with the recipe's reduction)."""
    cd = F.smooth_l1_loss(out["countdown"], b.countdown, reduction="none")
    return {
        "pointer": F.smooth_l1_loss(out["pointer"], b.pointer),
        "type": F.cross_entropy(out["type"], b.type),
        "flag": F.binary_cross_entropy_with_logits(out["flag"], b.flag),
        "countdown": cd.mean() if recipe.loss.countdown_reduction == "mean" else cd.sum(-1).mean(),
    }


def weights(recipe: MultitaskRecipe) -> dict[str, float]:
    w = recipe.loss.weights
    return {t: getattr(w, t) for t in TASKS}


def update_scales(model: MultiTask, recipe: MultitaskRecipe, losses: dict[str, torch.Tensor], h: torch.Tensor,
                  step: int) -> None:
    """The normaliser: one multiplier per task in ``model.scales`` (no gradient flows through it).

    running_mean divides each loss by its running mean, so every task's loss is about 1: equal loss
    *magnitudes*. A mean over 105 timesteps has a far smaller gradient than a mean over 2 outputs, so
    equal magnitudes are not equal gradients. grad_balance equalises the gradients on the trunk's output."""
    kind, s, r = recipe.loss.normaliser, model.scales, model.running
    if kind in ("running_mean", "running_mean_sqrt_elements"):
        mom, n = recipe.loss.momentum, elements(recipe)
        for i, t in enumerate(TASKS):
            value = losses[t].detach()
            r[i] = value if step == 1 else mom * r[i] + (1 - mom) * value
            s[i] = (1.0 if kind == "running_mean" else math.sqrt(n[t])) / r[i].clamp_min(1e-12)
    elif kind == "grad_balance":
        norms = torch.stack([torch.autograd.grad(losses[t], h, retain_graph=True)[0].norm() for t in TASKS])
        s.copy_(norms.mean() / norms.clamp_min(1e-12))
    elif kind == "uncertainty":
        s.copy_(0.5 * torch.exp(-model.log_vars.detach()))


def total_loss(model: MultiTask, recipe: MultitaskRecipe, losses: dict[str, torch.Tensor]) -> torch.Tensor:
    w = weights(recipe)
    total = sum(w[t] * model.scales[i] * losses[t] for i, t in enumerate(TASKS))
    if recipe.loss.normaliser == "uncertainty":
        total = total + 0.5 * model.log_vars.sum()
    return total


def raw_metrics(out: dict[str, torch.Tensor], b: D.Split, prefix: str = "loss_") -> dict[str, float]:
    """Every task's loss averaged over its elements (comparable across reductions and recipes)."""
    with torch.no_grad():
        vals = {
            "pointer": F.smooth_l1_loss(out["pointer"], b.pointer),
            "type": F.cross_entropy(out["type"], b.type),
            "flag": F.binary_cross_entropy_with_logits(out["flag"], b.flag),
            "countdown": F.smooth_l1_loss(out["countdown"], b.countdown),
        }
    return {f"{prefix}{t}": v.item() for t, v in vals.items()}


@torch.no_grad()
def evaluate(model: MultiTask, val: D.Split) -> dict[str, float]:
    model.eval()
    _, out = model(val.x)
    model.train()
    rec = raw_metrics(out, val, "val_loss_")
    rec["val_type_acc"] = (out["type"].argmax(-1) == val.type).float().mean().item()
    rec["val_flag_acc"] = ((out["flag"] > 0).float() == val.flag).float().mean().item()
    return rec


def make_optimizer(model: MultiTask, recipe: MultitaskRecipe) -> torch.optim.Optimizer:
    tr = recipe.train
    params = [p for n, p in model.named_parameters() if n != "log_vars" or recipe.loss.normaliser == "uncertainty"]
    if tr.optimizer == "sgd":
        return torch.optim.SGD(params, lr=tr.lr, momentum=0.9, weight_decay=tr.weight_decay)
    cls = torch.optim.AdamW if tr.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=tr.lr, weight_decay=tr.weight_decay)


def save_checkpoint(path: Path, model: MultiTask, step: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "model": model.state_dict()}, tmp)
    tmp.replace(path)


def train(recipe: MultitaskRecipe, out_dir: Path | None = None, device: str | None = None,
          threads: int | None = None) -> Iterator[dict[str, float]]:
    if threads:
        torch.set_num_threads(threads)
    dev = pick_device(device)
    train_set, val_set = (s.to(dev) for s in D.load(recipe.data))
    model = build_model(recipe, dev)
    opt = make_optimizer(model, recipe)
    batches = batch_indices(len(train_set), recipe.train.batch_size, recipe.seed)
    log = MetricsLog(out_dir)
    try:
        for step in range(1, recipe.train.steps + 1):
            b = train_set.batch(next(batches).to(dev))
            h, out = model(b.x)
            losses = task_losses(recipe, out, b)
            update_scales(model, recipe, losses, h, step)
            total = total_loss(model, recipe, losses)
            opt.zero_grad(set_to_none=True)
            total.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.train.grad_clip or math.inf).item()
            opt.step()
            rec = {"step": step, **raw_metrics(out, b), "total": total.item(), "grad_norm": grad_norm}
            rec[PRIMARY] = sum(rec[m] for m in METRICS)
            if step % recipe.train.eval_every == 0 or step == recipe.train.steps:
                rec.update(evaluate(model, val_set))
            if out_dir is not None and step % recipe.train.checkpoint_every == 0:
                save_checkpoint(out_dir / "checkpoints" / f"step_{step:06d}.pt", model, step)
            log.write(rec)
            yield rec
    finally:
        log.close()
