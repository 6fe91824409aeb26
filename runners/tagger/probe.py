"""The tagger's side of the probe contract (see runners/README.md).

A probe needs a model restored from a checkpoint, a fixed set of batches
(the same for every checkpoint, so probes compare), and the named loss terms
with their weights and reductions. Training code stays in ``loop.py``; this
file only reuses it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import data as D
from .config import TaggerRecipe
from .loop import loss_terms, pick_device, term_weights
from .model import Tagger

PRIMARY_TERM = "ce"
VAL_METRIC = "val_macro_f1"
PER_CLASS_PREFIX = "val_f1."
WEIGHT_KNOBS = {"crf_nll": "model.crf_loss_weight"}
"""The recipe knob that weighs each non-primary term (a repair can set it to 0)."""

__all__ = [
    "PER_CLASS_PREFIX", "PRIMARY_TERM", "VAL_METRIC", "WEIGHT_KNOBS", "load_model", "loss_terms", "probe_batches",
    "term_reductions", "term_weights", "terms",
]


def load_model(recipe: TaggerRecipe, checkpoint: str | Path, device: str | None = None) -> Tagger:
    """The model of ``recipe`` with the weights of ``checkpoint``, in eval mode (dropout off)."""
    dev = pick_device(device)
    model = Tagger(recipe.model, recipe.data.tokenizer.vocab_size).to(dev)
    state = torch.load(checkpoint, map_location=dev, weights_only=True)
    model.load_state_dict(state["model"])
    return model.eval()


def probe_batches(recipe: TaggerRecipe, n: int = 8, batch_size: int | None = None,
                  device: str | None = None) -> list[D.Encoded]:
    """``n`` fixed training batches: the same rows for the same recipe data."""
    train_set, _, _ = D.load(recipe.data)
    bs = batch_size or recipe.train.batch_size
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(12345))
    dev = pick_device(device)
    return [train_set.batch(order[i * bs : (i + 1) * bs]).to(dev) for i in range(n)]


def term_reductions(recipe: TaggerRecipe, batch: D.Encoded) -> dict[str, tuple[str, int, str]]:
    """Per term: (reduction, elements reduced in this batch, what an element is)."""
    tokens, seqs = int(batch.mask.sum()), int(batch.mask.shape[0])
    crf = {"sum": ("sum", seqs, "sequences"), "per_sequence": ("mean", seqs, "sequences"),
           "token_mean": ("mean", tokens, "tokens")}[recipe.model.crf_reduction]
    return {"ce": ("mean", tokens, "tokens"), "crf_nll": crf}


def terms(model: Tagger, batch: D.Encoded, recipe: TaggerRecipe) -> dict[str, torch.Tensor]:
    return loss_terms(model, batch, recipe)[0]
