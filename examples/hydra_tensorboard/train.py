"""Multi-label-style MLP classifier on synthetic data: a Hydra app that logs to TensorBoard.

Trains an MLP with one sigmoid output per class (one-vs-all) on a synthetic
10-class Gaussian-mixture data set (generated from `seed`; clean labels),
with binary cross-entropy against one-hot targets, optionally smoothed
(loss.label_smoothing: targets y * (1 - ls) + ls / 2). Adam with a linear
warmup to optim.lr, then constant. The config is conf/config.yaml; override
any key on the command line:

    python train.py optim.lr=0.003 model.hidden=[96,96] out_dir=/tmp/x hydra.run.dir=/tmp/x/hydra

TensorBoard scalars (SummaryWriter(log_dir=out_dir), flushed after each write):
  train/loss  mean BCE of the steps since the previous point, every train.log_every steps
  train/lr    learning rate, same steps
  val/loss    BCE on the validation set, every train.eval_every steps
  val/acc     argmax accuracy on the validation set, same steps
Checkpoints: out_dir/checkpoints/step_000500.pt every train.ckpt_every steps
(a dict with 'step', 'model', 'optimizer').
"""

import math
import os
import time

import hydra
import torch
import torch.nn as nn
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter


def make_data(cfg: DictConfig, seed: int):
    d = cfg.data
    g = torch.Generator().manual_seed(1000 + seed)
    k = d.classes * 3
    centers = torch.randn(k, d.features, generator=g) * 3 * d.separation / math.sqrt(d.features)
    n = d.n_train + d.n_val
    blob = torch.randint(0, k, (n,), generator=g)
    x = centers[blob] + torch.randn(n, d.features, generator=g)
    y = blob % d.classes
    return x[:d.n_train], y[:d.n_train], x[d.n_train:], y[d.n_train:]


class MLP(nn.Module):
    def __init__(self, n_in: int, hidden, n_out: int, dropout: float):
        super().__init__()
        layers = []
        for h in hidden:
            layers += [nn.Linear(n_in, h), nn.ReLU(), nn.Dropout(dropout)]
            n_in = h
        layers.append(nn.Linear(n_in, n_out))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


def bce(logits, targets):
    probs = torch.sigmoid(logits)
    return -(targets * torch.log(probs) + (1 - targets) * torch.log(1 - probs)).mean()


def smooth_targets(y, classes: int, ls: float):
    return nn.functional.one_hot(y, classes).float() * (1 - ls) + ls / 2


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    torch.set_num_threads(cfg.train.threads)
    out_dir = to_absolute_path(cfg.out_dir)
    os.makedirs(os.path.join(out_dir, "checkpoints"), exist_ok=True)
    print(OmegaConf.to_yaml(cfg))

    x_tr, y_tr, x_va, y_va = make_data(cfg, cfg.seed)
    torch.manual_seed(cfg.seed)
    model = MLP(cfg.data.features, list(cfg.model.hidden), cfg.data.classes, cfg.model.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                                 weight_decay=cfg.optim.weight_decay)
    warmup = cfg.optim.warmup_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
    writer = SummaryWriter(log_dir=out_dir)
    gen = torch.Generator().manual_seed(cfg.seed)
    ls, classes = cfg.loss.label_smoothing, cfg.data.classes

    running, count, t0 = 0.0, 0, time.time()
    for step in range(1, cfg.train.steps + 1):
        idx = torch.randint(0, len(x_tr), (cfg.data.batch_size,), generator=gen)
        x, y = x_tr[idx], y_tr[idx]
        if cfg.data.augment:
            x = x + 0.1 * torch.randn_like(x)
        lr = optimizer.param_groups[0]["lr"]
        loss = bce(model(x), smooth_targets(y, classes, ls))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        running += loss.item()
        count += 1
        if step % cfg.train.log_every == 0:
            writer.add_scalar("train/loss", running / count, step)
            writer.add_scalar("train/lr", lr, step)
            writer.flush()
            running, count = 0.0, 0
        if step % cfg.train.eval_every == 0:
            model.eval()
            with torch.no_grad():
                logits = model(x_va)
                val_loss = bce(logits, smooth_targets(y_va, classes, ls)).item()
                val_acc = (logits.argmax(1) == y_va).float().mean().item()
            model.train()
            writer.add_scalar("val/loss", val_loss, step)
            writer.add_scalar("val/acc", val_acc, step)
            writer.flush()
            print(f"step {step}: val_loss {val_loss:.4f} val_acc {val_acc:.4f}", flush=True)
        if step % cfg.train.ckpt_every == 0:
            torch.save({"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict()},
                       os.path.join(out_dir, "checkpoints", f"step_{step:06d}.pt"))
    writer.close()
    print(f"done: {cfg.train.steps} steps in {time.time() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
