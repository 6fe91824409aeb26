"""bisector's probe contract for train.py (runners/README.md, "A probe for a script").

bisector hands each function the recipe's `config` mapping; the model and the
data come from the training script itself, so the probe sees what training saw.
"""

import torch
import torch.nn.functional as F
from train import DEFAULTS, build_model, make_data, merge

PRIMARY_TERM = "ce"
WEIGHT_KNOBS = {}  # one loss term: nothing to reweigh


def load_model(config, checkpoint, device=None):
    model = build_model(merge(DEFAULTS, config))
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True)["model"])
    return model.eval()


def probe_batches(config, n, batch_size=None, device=None):
    cfg = merge(DEFAULTS, config)
    x, y, _, _ = make_data(cfg, cfg["train"]["seed"])
    bs = batch_size or cfg["data"]["batch_size"]
    return [(x[i * bs:(i + 1) * bs], y[i * bs:(i + 1) * bs]) for i in range(n)]


def terms(model, batch, config):
    x, y = batch
    return {"ce": F.cross_entropy(model(x), y)}


def term_weights(config):
    return {"ce": 1.0}
