"""Train an MLP classifier on synthetic Gaussian-mixture data, configured by a YAML/JSON file.

    python train.py --config cfg.yaml --out-dir runs/exp1

The config is nested (see cfg_good.yaml): model (hidden widths, dropout),
optim (Adam: lr, betas, weight_decay, warmup_steps, clip), data (sizes,
classes, label noise, batch size, input jitter), train (steps, seed, logging
and checkpoint cadence). Data are generated from data.seed (default
train.seed): a mixture of Gaussian blobs, several per class, with a
data.label_noise fraction of the training labels replaced by a random other
class; the validation set is clean. The learning rate warms up linearly from
0 to optim.lr over optim.warmup_steps and then stays constant.

Writes OUT_DIR/metrics.jsonl, one JSON object per line, flushed as written:

  {"step": 10, "train_loss": 2.1234, "lr": 0.0003}          every train.log_every steps
  {"step": 100, "val_loss": 0.5123, "val_acc": 0.9415}     every train.eval_every steps

(train_loss is the mean cross-entropy of the steps since the previous line),
OUT_DIR/config.yaml (the resolved config), and checkpoints
OUT_DIR/checkpoints/step_000100.pt every train.ckpt_every steps (a dict with
'step', 'model', 'optimizer', 'config').
"""

import argparse
import copy
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

DEFAULTS = {
    "model": {"hidden": [64, 64], "dropout": 0.0},
    "optim": {"lr": 3e-3, "betas": [0.9, 0.999], "weight_decay": 0.0, "warmup_steps": 1000, "clip": None},
    "data": {"n_train": 8000, "n_val": 2000, "features": 20, "classes": 10, "blobs_per_class": 3,
             "separation": 2.0, "label_noise": 0.1, "batch_size": 32, "augment": False, "seed": None},
    "train": {"steps": 2500, "seed": 0, "log_every": 10, "eval_every": 100, "ckpt_every": 100, "threads": 1},
}


def merge(base, override, where=""):
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if k not in base:
            raise SystemExit(f"unknown config key {where}{k}")
        out[k] = merge(base[k], v, f"{where}{k}.") if isinstance(base[k], dict) else v
    return out


def load_config(path):
    with open(path) as f:
        raw = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
    return merge(DEFAULTS, raw)


def make_data(cfg, seed):
    d = cfg["data"]
    g = torch.Generator().manual_seed(1000 + seed)
    k = d["classes"] * d["blobs_per_class"]
    centers = torch.randn(k, d["features"], generator=g) * 3 * d["separation"] / math.sqrt(d["features"])
    n = d["n_train"] + d["n_val"]
    blob = torch.randint(0, k, (n,), generator=g)
    x = centers[blob] + torch.randn(n, d["features"], generator=g)
    y = blob % d["classes"]
    x_tr, y_tr, x_va, y_va = x[:d["n_train"]], y[:d["n_train"]].clone(), x[d["n_train"]:], y[d["n_train"]:]
    flip = torch.rand(d["n_train"], generator=g) < d["label_noise"]
    shift = torch.randint(1, d["classes"], (int(flip.sum()),), generator=g)
    y_tr[flip] = (y_tr[flip] + shift) % d["classes"]
    return x_tr, y_tr, x_va, y_va


def build_model(cfg):
    layers, width = [], cfg["data"]["features"]
    for h in cfg["model"]["hidden"]:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(cfg["model"]["dropout"])]
        width = h
    layers.append(nn.Linear(width, cfg["data"]["classes"]))
    return nn.Sequential(*layers)


def batches(n, batch_size, gen):
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - batch_size + 1, batch_size):
            yield perm[i:i + batch_size]


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y).item()
        acc = (logits.argmax(1) == y).float().mean().item()
    model.train()
    return loss, acc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="YAML or JSON config file")
    ap.add_argument("--out-dir", required=True, help="where metrics.jsonl and checkpoints/ go")
    args = ap.parse_args()

    cfg = load_config(args.config)
    tr, opt_cfg = cfg["train"], cfg["optim"]
    torch.set_num_threads(tr["threads"])
    seed = tr["seed"]
    data_seed = cfg["data"]["seed"] if cfg["data"]["seed"] is not None else seed
    os.makedirs(os.path.join(args.out_dir, "checkpoints"), exist_ok=True)
    with open(os.path.join(args.out_dir, "config.yaml"), "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)

    x_tr, y_tr, x_va, y_va = make_data(cfg, data_seed)
    torch.manual_seed(seed)
    model = build_model(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=opt_cfg["lr"], betas=tuple(opt_cfg["betas"]),
                                 weight_decay=opt_cfg["weight_decay"])
    warmup = opt_cfg["warmup_steps"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)

    batch_iter = batches(len(x_tr), cfg["data"]["batch_size"], torch.Generator().manual_seed(seed))
    log = open(os.path.join(args.out_dir, "metrics.jsonl"), "w")
    running, count, t0 = 0.0, 0, time.time()
    for step in range(1, tr["steps"] + 1):
        idx = next(batch_iter)
        x, y = x_tr[idx], y_tr[idx]
        if cfg["data"]["augment"]:
            x = x + 0.1 * torch.randn_like(x)
        lr = optimizer.param_groups[0]["lr"]
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if opt_cfg["clip"]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), opt_cfg["clip"])
        optimizer.step()
        scheduler.step()
        running += loss.item()
        count += 1
        if step % tr["log_every"] == 0:
            log.write(json.dumps({"step": step, "train_loss": running / count, "lr": lr}) + "\n")
            log.flush()
            running, count = 0.0, 0
        if step % tr["eval_every"] == 0:
            val_loss, val_acc = evaluate(model, x_va, y_va)
            log.write(json.dumps({"step": step, "val_loss": val_loss, "val_acc": val_acc}) + "\n")
            log.flush()
        if step % tr["ckpt_every"] == 0:
            torch.save({"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "config": cfg}, os.path.join(args.out_dir, "checkpoints", f"step_{step:06d}.pt"))
    log.close()
    print(f"done: {tr['steps']} steps in {time.time() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
