"""Train a small MLP classifier on a synthetic 10-class Gaussian-mixture data set.

An ordinary argparse training script in the style of pytorch/examples/mnist:
8000 training rows (20 features, 10 classes, 3 Gaussian blobs per class,
generated from --seed; a --label-noise fraction of the training labels is
replaced by a random other class), 2000 clean test rows, Adam with a linear
learning-rate warmup, cross-entropy plus an optional "confidence bonus"
(--aux-weight, --aux-kind) that rewards the model for being sure of its
predicted class:

  logprob: mean over rows of log softmax(logits)[argmax]  (bounded by 0)
  margin:  mean over rows of max(logits) - mean(logits)    (unbounded)

Progress goes to stdout every --log-interval batches:

  Train Epoch: 1 [640/8000 (8%)]\tLoss: 2.301234\tlr: 0.000600

where Loss is the mean training cross-entropy of the batches since the
previous progress line (the bonus is not included), and after each epoch

  Test set: Average loss: 0.2345, Accuracy: 1950/2000 (98%)

A checkpoint (a dict with 'step', 'epoch', 'model', 'optimizer', 'args') is
saved at the end of each epoch as SAVE_DIR/epoch_NNN.pt.

    python train.py --epochs 10 --lr 3e-3 --hidden 64 64 --save-dir ckpt
"""

import argparse
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

NUM_CLASSES = 10
NUM_FEATURES = 20
BLOBS_PER_CLASS = 3


def make_data(seed, n_train=8000, n_test=2000, label_noise=0.0, separation=2.0):
    g = torch.Generator().manual_seed(1000 + seed)
    centers = torch.randn(NUM_CLASSES * BLOBS_PER_CLASS, NUM_FEATURES, generator=g)
    centers *= 3 * separation / math.sqrt(NUM_FEATURES)
    n = n_train + n_test
    blob = torch.randint(0, NUM_CLASSES * BLOBS_PER_CLASS, (n,), generator=g)
    x = centers[blob] + torch.randn(n, NUM_FEATURES, generator=g)
    y = blob % NUM_CLASSES
    x_train, y_train = x[:n_train], y[:n_train].clone()
    x_test, y_test = x[n_train:], y[n_train:]
    flip = torch.rand(n_train, generator=g) < label_noise
    shift = torch.randint(1, NUM_CLASSES, (int(flip.sum()),), generator=g)
    y_train[flip] = (y_train[flip] + shift) % NUM_CLASSES
    return TensorDataset(x_train, y_train), TensorDataset(x_test, y_test)


class Net(nn.Module):
    def __init__(self, hidden, dropout=0.0):
        super().__init__()
        layers, width = [], NUM_FEATURES
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, NUM_CLASSES))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def confidence_bonus(logits, kind):
    if kind == "logprob":
        return F.log_softmax(logits, dim=1).max(dim=1).values.mean()
    return (logits.max(dim=1).values - logits.mean(dim=1)).mean()


def train(args, model, train_loader, optimizer, scheduler, epoch, state):
    model.train()
    running, count = 0.0, 0
    for batch_idx, (data, target) in enumerate(train_loader):
        if args.augment:
            data = data + 0.1 * torch.randn_like(data)
        optimizer.zero_grad()
        output = model(data)
        ce = F.cross_entropy(output, target)
        loss = ce
        if args.aux_weight:
            loss = loss - args.aux_weight * confidence_bonus(output, args.aux_kind)
        loss.backward()
        if args.clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        lr = optimizer.param_groups[0]["lr"]  # the rate this batch was trained with
        scheduler.step()
        state["step"] += 1
        running += ce.item()
        count += 1
        if batch_idx % args.log_interval == 0:
            seen, total, pct = batch_idx * len(data), len(train_loader.dataset), 100. * batch_idx / len(train_loader)
            print(f"Train Epoch: {epoch} [{seen}/{total} ({pct:.0f}%)]\tLoss: {running / count:.6f}\tlr: {lr:.6f}",
                  flush=True)
            running, count = 0.0, 0


def test(model, test_loader):
    model.eval()
    test_loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in test_loader:
            output = model(data)
            test_loss += F.cross_entropy(output, target, reduction="sum").item()
            correct += (output.argmax(dim=1) == target).sum().item()
    test_loss /= len(test_loader.dataset)
    n = len(test_loader.dataset)
    print(f"\nTest set: Average loss: {test_loss:.4f}, Accuracy: {correct}/{n} ({100. * correct / n:.0f}%)\n",
          flush=True)


def main():
    parser = argparse.ArgumentParser(description="Synthetic Gaussian-mixture classifier")
    parser.add_argument("--batch-size", type=int, default=32, metavar="N", help="training batch size (default: 32)")
    parser.add_argument("--test-batch-size", type=int, default=500, metavar="N")
    parser.add_argument("--epochs", type=int, default=10, metavar="N", help="number of epochs (default: 10)")
    parser.add_argument("--lr", type=float, default=3e-3, metavar="LR", help="peak learning rate (default: 3e-3)")
    parser.add_argument("--warmup-steps", type=int, default=100, help="linear warmup steps (default: 100)")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64], help="hidden layer widths (default: 64 64)")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--clip", type=float, default=None, help="max gradient norm (default: no clipping)")
    parser.add_argument("--aux-weight", type=float, default=0.01, help="weight of the confidence bonus")
    parser.add_argument("--aux-kind", choices=["logprob", "margin"], default="logprob",
                        help="confidence bonus: log-probability or logit margin of the predicted class")
    parser.add_argument("--label-noise", type=float, default=0.1, help="fraction of training labels flipped")
    parser.add_argument("--augment", action="store_true", default=False, help="add Gaussian jitter to the inputs")
    parser.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default: 1)")
    parser.add_argument("--log-interval", type=int, default=10, metavar="N", help="batches between progress lines")
    parser.add_argument("--save-dir", default="checkpoints", help="where epoch checkpoints go")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_set, test_set = make_data(args.seed, label_noise=args.label_noise)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True,
                              generator=torch.Generator().manual_seed(args.seed))
    test_loader = DataLoader(test_set, batch_size=args.test_batch_size)

    model = Net(args.hidden, args.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / args.warmup_steps) if args.warmup_steps > 0 else 1.0)
    os.makedirs(args.save_dir, exist_ok=True)

    state = {"step": 0}
    t0 = time.time()
    for epoch in range(1, args.epochs + 1):
        train(args, model, train_loader, optimizer, scheduler, epoch, state)
        test(model, test_loader)
        torch.save({"step": state["step"], "epoch": epoch, "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "args": vars(args)},
                   os.path.join(args.save_dir, f"epoch_{epoch:03d}.pt"))
    print(f"Done: {state['step']} steps in {time.time() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
