"""The tagger's training loop, written top to bottom.

``train`` is a generator: it yields one metrics record per step (eval metrics
merged into the records of eval steps) and writes the same records to
``metrics.jsonl`` and a checkpoint every ``checkpoint_every`` steps. Whoever
iterates decides when to stop (closing the generator ends training), so the
runner knows nothing about verdicts, Ray or MLflow.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from ..common import MetricsLog, batch_indices
from . import data as D
from .config import TAGS, TaggerRecipe
from .model import Tagger

PRIMARY = "train_ce"  # the watched metric (runners.tagger.primary_metric)


def pick_device(device: str | None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build(recipe: TaggerRecipe, device: torch.device) -> tuple[Tagger, D.Encoded, D.Encoded]:
    """Model and data for a recipe (deterministic for a given recipe)."""
    torch.manual_seed(recipe.seed)
    train_set, val_set, _ = D.load(recipe.data)
    model = Tagger(recipe.model, recipe.data.tokenizer.vocab_size).to(device)
    return model, train_set.to(device), val_set.to(device)


def term_weights(recipe: TaggerRecipe) -> dict[str, float]:
    return {"ce": 1.0, "crf_nll": recipe.model.crf_loss_weight}


def loss_terms(model: Tagger, batch: D.Encoded, recipe: TaggerRecipe) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Named loss terms (unweighted) and the emissions they came from."""
    em = model(batch.tokens, batch.priors, batch.mask)
    gold, flat = batch.tags[batch.mask], em[batch.mask]
    weight = None
    if recipe.train.class_weights:
        weight = torch.ones(len(TAGS), device=em.device)
        for tag, w in recipe.train.class_weights.items():
            weight[TAGS.index(tag)] = w
    ce = F.cross_entropy(flat, gold, weight=weight)
    nll = model.crf.nll(em, batch.tags, batch.mask)
    reduction = recipe.model.crf_reduction
    if reduction == "sum":
        crf = nll.sum()
    elif reduction == "per_sequence":
        crf = nll.mean()
    else:
        crf = nll.sum() / batch.mask.sum()
    return {"ce": ce, "crf_nll": crf}, em


def f1_per_tag(pred: torch.Tensor, gold: torch.Tensor) -> dict[str, float]:
    """Token-level F1 for every non-O tag."""
    out = {}
    for i, tag in enumerate(TAGS):
        if tag == "O":
            continue
        tp = ((pred == i) & (gold == i)).sum().item()
        fp = ((pred == i) & (gold != i)).sum().item()
        fn = ((pred != i) & (gold == i)).sum().item()
        out[tag] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return out


@torch.no_grad()
def evaluate(model: Tagger, val: D.Encoded) -> dict[str, float]:
    model.eval()
    em = model(val.tokens, val.priors, val.mask)
    gold = val.tags[val.mask]
    viterbi = model.crf.decode(em, val.mask)[val.mask]
    per_tag = f1_per_tag(viterbi, gold)
    argmax_f1 = f1_per_tag(em[val.mask].argmax(-1), gold)
    model.train()
    rec = {
        "val_ce": F.cross_entropy(em[val.mask], gold).item(),
        "val_macro_f1": sum(per_tag.values()) / len(per_tag),
        "val_argmax_macro_f1": sum(argmax_f1.values()) / len(argmax_f1),
    }
    rec.update({f"val_f1.{t}": v for t, v in per_tag.items()})
    return rec


def lr_at(step: int, recipe: TaggerRecipe) -> float:
    warm = recipe.train.warmup_steps
    return recipe.train.lr * (min(1.0, step / warm) if warm else 1.0)


def save_checkpoint(path: Path, model: Tagger, step: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "model": model.state_dict()}, tmp)
    tmp.replace(path)


def train(
    recipe: TaggerRecipe, out_dir: Path | None = None, device: str | None = None, threads: int | None = None
) -> Iterator[dict[str, float]]:
    if threads:
        torch.set_num_threads(threads)
    dev = pick_device(device)
    model, train_set, val_set = build(recipe, dev)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.train.lr, weight_decay=recipe.train.weight_decay)
    weights = term_weights(recipe)
    batches = batch_indices(len(train_set), recipe.train.batch_size, recipe.seed)
    log = MetricsLog(out_dir)
    try:
        for step in range(1, recipe.train.steps + 1):
            batch = train_set.batch(next(batches).to(dev))
            lr = lr_at(step, recipe)
            for group in opt.param_groups:
                group["lr"] = lr
            terms, em = loss_terms(model, batch, recipe)
            total = sum(weights[k] * v for k, v in terms.items() if weights[k])
            opt.zero_grad(set_to_none=True)
            total.backward()
            clip = recipe.train.grad_clip or math.inf
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip).item()
            opt.step()
            with torch.no_grad():
                train_ce = F.cross_entropy(em[batch.mask], batch.tags[batch.mask]).item()
            rec = {
                "step": step, PRIMARY: train_ce, "crf_nll": terms["crf_nll"].item(),
                "total": total.item(), "lr": lr, "grad_norm": grad_norm,
            }
            if step % recipe.train.eval_every == 0 or step == recipe.train.steps:
                rec.update(evaluate(model, val_set))
            if out_dir is not None and step % recipe.train.checkpoint_every == 0:
                save_checkpoint(out_dir / "checkpoints" / f"step_{step:06d}.pt", model, step)
            log.write(rec)
            yield rec
    finally:
        log.close()
