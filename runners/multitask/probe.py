"""The multitask runner's side of the probe contract (see runners/README.md).

The terms are the task losses as the checkpoint trained them: each task's
loss times its normaliser's multiplier at that step (``model.scales``), so
the probe measures the gradients the trunk actually received. Gradients are
compared on the shared trunk (``SHARED_MODULE``): the heads are each task's
own. ``REPAIRS`` says what to try when the diagnosis finds a starved task:
balance the tasks' gradients on the trunk instead of their loss magnitudes.
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import data as D
from .config import TASKS, MultitaskRecipe
from .loop import build_model, elements, pick_device, task_losses, weights
from .model import MultiTask

PRIMARY_TERM = "loss_pointer"
SHARED_MODULE = "trunk"
REPAIRS = {"starved": {"loss.normaliser": "grad_balance"}}
"""Knob settings the repair rung applies to the bad recipe, per diagnosis kind."""
VAL_METRIC = "val_type_acc"
PER_CLASS_PREFIX = "val_acc."

__all__ = ["PER_CLASS_PREFIX", "PRIMARY_TERM", "REPAIRS", "SHARED_MODULE", "VAL_METRIC", "load_model",
           "probe_batches", "term_reductions", "term_weights", "terms"]


def load_model(recipe: MultitaskRecipe, checkpoint: str | Path, device: str | None = None) -> MultiTask:
    dev = pick_device(device)
    model = build_model(recipe, dev)
    model.load_state_dict(torch.load(checkpoint, map_location=dev, weights_only=True)["model"])
    return model.eval()


def probe_batches(recipe: MultitaskRecipe, n: int = 8, batch_size: int | None = None,
                  device: str | None = None) -> list[D.Split]:
    """``n`` fixed training batches: the same rows for the same recipe data."""
    train_set, _ = D.load(recipe.data)
    bs = batch_size or recipe.train.batch_size
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(12345))
    dev = pick_device(device)
    return [train_set.batch(order[i * bs : (i + 1) * bs]).to(dev) for i in range(n)]


def terms(model: MultiTask, batch: D.Split, recipe: MultitaskRecipe) -> dict[str, torch.Tensor]:
    _, out = model(batch.x)
    losses = task_losses(recipe, out, batch)
    return {f"loss_{t}": model.scales[i].detach() * losses[t] for i, t in enumerate(TASKS)}


def term_weights(recipe: MultitaskRecipe) -> dict[str, float]:
    return {f"loss_{t}": w for t, w in weights(recipe).items()}


def term_reductions(recipe: MultitaskRecipe, batch: D.Split) -> dict[str, tuple[str, int, str]]:
    """Per term: (reduction, elements reduced in this batch, what an element is)."""
    b, n = int(batch.x.shape[0]), elements(recipe)
    what = {"pointer": "outputs", "type": "samples", "flag": "samples", "countdown": "timesteps"}
    out = {f"loss_{t}": ("mean", b * n[t], what[t]) for t in TASKS}
    if recipe.loss.countdown_reduction == "sum":
        out["loss_countdown"] = ("sum", n["countdown"], "timesteps (then mean over samples)")
    return out
