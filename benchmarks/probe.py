"""Probe cost: time per batch against one training step, and gradient memory.

    python benchmarks/probe.py [--batches 16] [--repeats 3]

Trains the bad tagger recipe to just before its climb (a real pre-climb
checkpoint), then times on the same model and batch size:

* one training step (forward, backward of the weighted total, Adam step);
* one probe batch (one forward, one ``autograd.grad`` per loss term with the
  graph retained, the float64 reductions).

The floor for k terms is (1 + 2k) / 3 training steps (k = 2: 1.67). Memory:
the probe holds the k term gradients of one batch at once, against the one
gradient a training step holds: for k = 2, one extra copy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bisector.probe import probe_model  # noqa: E402
from runners.tagger import TaggerRecipe, probe, train  # noqa: E402
from runners.tagger.loop import loss_terms, term_weights  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "recipes/tagger/bad.yaml").read_text())
    raw["train"].update(steps=100, checkpoint_every=100)
    recipe = TaggerRecipe.model_validate(raw)
    with tempfile.TemporaryDirectory() as tmp:
        for _ in train(recipe, out_dir=Path(tmp), threads=args.threads):
            pass
        model = probe.load_model(recipe, Path(tmp) / "checkpoints/step_000100.pt", "cpu")
    batches = probe.probe_batches(recipe, args.batches, device="cpu")
    weights = term_weights(recipe)
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in params)

    def train_steps() -> float:
        m = model
        m.train()
        opt = torch.optim.Adam(m.parameters(), lr=0.0)  # lr 0: same cost, weights unchanged
        t0 = time.perf_counter()
        for b in batches:
            terms, _ = loss_terms(m, b, recipe)
            total = sum(weights[k] * v for k, v in terms.items())
            opt.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), float("inf"))
            opt.step()
        return (time.perf_counter() - t0) / len(batches)

    def probe_batches_time() -> float:
        t0 = time.perf_counter()
        probe_model(model, batches, lambda m, b: loss_terms(m, b, recipe)[0], weights, "ce")
        return (time.perf_counter() - t0) / len(batches)

    train_steps(), probe_batches_time()  # warm up
    step = statistics.median(train_steps() for _ in range(args.repeats))
    prob = statistics.median(probe_batches_time() for _ in range(args.repeats))
    k = 2
    grad_mb = n_params * 4 / 2**20
    print(f"Tagger (bad recipe, pre-climb checkpoint at step 100): {n_params:,} parameters, batch "
          f"{recipe.train.batch_size}, {args.batches} batches, {args.threads} thread(s), median of {args.repeats}\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| one training step | {1000 * step:.2f} ms |")
    print(f"| one probe batch (k = {k} terms) | {1000 * prob:.2f} ms |")
    print(f"| probe / training step | {prob / step:.2f} (floor (1+2k)/3 = {(1 + 2 * k) / 3:.2f}, goal <= 2.0) |")
    print(f"| gradients held by a training step | 1 copy ({grad_mb:.2f} MiB) |")
    print(f"| gradients held by the probe | {k} copies ({k * grad_mb:.2f} MiB): one extra copy |")


if __name__ == "__main__":
    main()
