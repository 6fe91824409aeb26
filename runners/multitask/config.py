"""The multitask runner's recipe schema (every section forbids unknown keys).

The knobs are the ones a multi-task training recipe changes in practice: how
the task losses are balanced (``loss.normaliser``), how the per-timestep task
is reduced, per-task weights, and the usual model and optimiser settings.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

TASKS = ("pointer", "type", "flag", "countdown")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Data(_Strict):
    seed: int = 1234
    """The synthetic data's own seed (the recipe's ``seed`` moves initialisation and batch order only)."""
    train_rows: PositiveInt = 4000
    val_rows: PositiveInt = 500
    length: int = Field(105, ge=16, le=512)
    """Timesteps per sequence: the countdown head has one output per timestep."""
    types: int = Field(4, ge=2, le=8)


class Weights(_Strict):
    pointer: float = Field(1.0, ge=0.0)
    type: float = Field(1.0, ge=0.0)
    flag: float = Field(1.0, ge=0.0)
    countdown: float = Field(1.0, ge=0.0)


class Loss(_Strict):
    normaliser: Literal["none", "running_mean", "running_mean_sqrt_elements", "uncertainty", "grad_balance"] = "none"
    """none: the weighted sum. running_mean: each task's loss over its running mean (equal loss magnitudes).
    running_mean_sqrt_elements: the same, times sqrt(elements reduced per sample). uncertainty: Kendall et al.'s
    learned log-variances. grad_balance: each task scaled so its gradient on the trunk's output has the mean norm."""
    countdown_reduction: Literal["mean", "sum"] = "mean"
    """mean: over batch and timesteps. sum: over timesteps, mean over the batch."""
    momentum: float = Field(0.99, ge=0.0, lt=1.0)
    """Of the running means (``running_mean*`` normalisers)."""
    weights: Weights = Weights()


class Model(_Strict):
    width: PositiveInt = 32
    """Of every trunk layer; the last is the bottleneck all heads read."""
    layers: int = Field(2, ge=1, le=6)


class Train(_Strict):
    steps: PositiveInt = 800
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 1e-3
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    weight_decay: float = Field(0.0, ge=0.0)
    grad_clip: PositiveFloat | None = None
    eval_every: PositiveInt = 100
    checkpoint_every: PositiveInt = 100


class MultitaskRecipe(_Strict):
    runner: Literal["multitask"] = "multitask"
    seed: int = 0
    data: Data = Data()
    loss: Loss = Loss()
    model: Model = Model()
    train: Train = Train()
