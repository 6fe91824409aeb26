"""The ranking runner's side of the probe contract (see runners/README.md).

Terms: ``ce`` (cross-entropy, weight ``loss.ce_weight`` after the switch)
and ``rank`` (1 - smooth AP against the batch *and the memory queue*). A
checkpoint holds the queue as it was at that step, so the probe ranks each
batch against the same stale pool the training step did, at that step's
temperature.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from . import data as D
from .config import RankingRecipe
from .loop import pick_device
from .loss import PhaseSwitch, smooth_ap
from .model import Scorer

PRIMARY_TERM = "rank"
VAL_METRIC = "val_map"
PER_CLASS_PREFIX = "val_ap."
WEIGHT_KNOBS = {"ce": "loss.ce_weight"}
"""The recipe knob that weighs each non-primary term (a repair can set it to 0)."""

__all__ = ["PER_CLASS_PREFIX", "PRIMARY_TERM", "VAL_METRIC", "WEIGHT_KNOBS", "load_model", "probe_batches",
           "term_reductions", "term_weights", "terms"]


def load_model(recipe: RankingRecipe, checkpoint: str | Path, device: str | None = None) -> Scorer:
    """The scorer with the checkpoint's weights, in eval mode; the queue and step ride along as attributes."""
    dev = pick_device(device)
    model = Scorer(recipe.model, recipe.data).to(dev)
    state = torch.load(checkpoint, map_location=dev, weights_only=True)
    model.load_state_dict(state["model"])
    model.probe_queue = state.get("queue") or {"q_scores": torch.zeros(0, recipe.data.classes + 1, device=dev),
                                               "q_labels": torch.zeros(0, dtype=torch.long, device=dev)}
    model.probe_step = int(state["step"])
    return model.eval()


def probe_batches(recipe: RankingRecipe, n: int = 8, batch_size: int | None = None,
                  device: str | None = None) -> list[D.Split]:
    """``n`` fixed training batches: the same rows for the same recipe data."""
    train_set, _ = D.load(recipe.data)
    bs = batch_size or recipe.train.batch_size
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(12345))
    dev = pick_device(device)
    return [D.Split(train_set.x[idx], train_set.y[idx]).to(dev) for idx in (order[i * bs:(i + 1) * bs]
                                                                             for i in range(n))]


def terms(model: Scorer, batch: D.Split, recipe: RankingRecipe) -> dict[str, torch.Tensor]:
    scores = model(batch.x)
    wrapper = PhaseSwitch(recipe.loss, recipe.data.classes, scores.device)
    step = max(getattr(model, "probe_step", wrapper.switch_step), wrapper.switch_step)
    q = getattr(model, "probe_queue", None) or wrapper.state()
    rank = smooth_ap(scores, batch.y, q["q_scores"], q["q_labels"], wrapper.temperature(step))[0]
    return {"ce": F.cross_entropy(scores, batch.y), "rank": rank}


def term_weights(recipe: RankingRecipe) -> dict[str, float]:
    return {"ce": recipe.loss.ce_weight, "rank": 1.0}


def term_reductions(recipe: RankingRecipe, batch: D.Split) -> dict[str, tuple[str, int, str]]:
    """Per term: (reduction, elements reduced in this batch, what an element is)."""
    anchors = int((batch.y > 0).sum())
    return {"ce": ("mean", len(batch.y), "rows"), "rank": ("mean", anchors, "positive rows (per class)")}
