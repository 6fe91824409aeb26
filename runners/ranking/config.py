"""The ranking runner's recipe schema.

One strict section per concern (data, model, loss, train): an unknown key is
an error, an absent key equals its default, and the orchestrator diffs
recipes after validation, so every field below is a knob a campaign can
revert on its own.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Data(_Strict):
    data_seed: int = 4321
    """The dataset is a function of this seed (not the training seed): every trial sees the same rows."""
    train_rows: PositiveInt = 20000
    val_rows: PositiveInt = 4000
    features: PositiveInt = 32
    classes: int = Field(4, ge=2, le=16)
    """Positive classes; label 0 is the background."""
    positive_rate: float = Field(0.04, gt=0.0, lt=0.5)
    """Share of rows that belong to any positive class."""
    rare_share: float = Field(0.25, gt=0.0, le=1.0)
    """The last class's frequency relative to the others (1: balanced positives)."""
    separation: PositiveFloat = 3.5
    """How far class centres lie from the background's, in noise standard deviations."""


class Model(_Strict):
    hidden: PositiveInt = 64
    layers: int = Field(2, ge=1, le=6)


class Loss(_Strict):
    warmup_steps: int = Field(200, ge=0)
    """Cross-entropy only for this many steps, then the ranking loss (the phase switch)."""
    ce_weight: float = Field(0.1, ge=0.0)
    """Weight of cross-entropy kept beside the ranking loss after the switch."""
    temp_start: PositiveFloat = 0.5
    """Sigmoid temperature of the smooth-AP surrogate at the switch."""
    temp_end: PositiveFloat = 0.1
    temp_decay_steps: PositiveInt = 300
    """Time constant (steps) of the exponential decay from ``temp_start`` to ``temp_end``."""
    queue_size: int = Field(256, ge=0)
    """Rows of past (detached) scores and labels the ranking loss compares each batch with."""
    queue_reset: bool = True
    """Empty the queue at the switch (the wrapper's job): else it keeps warmup-era scores."""
    queue_during_warmup: bool = True
    """Fill the queue during warmup too (so it is full at the switch)."""

    @model_validator(mode="after")
    def _temperature_decays(self) -> Loss:
        if self.temp_end > self.temp_start:
            raise ValueError(f"temp_end ({self.temp_end}) must not exceed temp_start ({self.temp_start}): "
                             "the temperature decays")
        return self


class Train(_Strict):
    steps: PositiveInt = 900
    batch_size: PositiveInt = 256
    lr: PositiveFloat = 2e-3
    optimizer: Literal["adam", "sgd"] = "adam"
    eval_every: PositiveInt = 50
    checkpoint_every: PositiveInt = 50


class RankingRecipe(_Strict):
    runner: Literal["ranking"] = "ranking"
    seed: int = 0
    data: Data = Data()
    model: Model = Model()
    loss: Loss = Loss()
    train: Train = Train()
