"""The tagger's recipe schema.

The schema is the single source of truth for what a recipe may say: the
orchestrator validates recipes with it, diffs recipes after validation (so an
absent key equals its default), and the runner trains from the validated
object. Every section forbids unknown keys so a typo is an error, not a silent
default.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, field_validator, model_validator

TAGGER_FIELDS = ("house_number", "road", "unit", "locality", "region", "postcode", "venue")
TAGS = ("O",) + tuple(f"{p}-{f}" for f in TAGGER_FIELDS for p in ("B", "I"))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tokenizer(_Strict):
    """One knob as a whole: scheme and vocabulary change together."""

    atomic_knob: ClassVar[bool] = True
    scheme: Literal["word", "hash"] = "word"
    vocab_size: PositiveInt = Field(2000, ge=16)
    lowercase: bool = True


class Data(_Strict):
    corpus: Literal["v1", "v2"] = "v1"
    """v1: clean template addresses. v2: v1 mixed with LLM-written rows
    (transliterated and rare tokens, some with BIO-invalid gold tags)."""
    corpus_seed: int = 1234
    train_rows: PositiveInt = 8000
    val_rows: PositiveInt = 800
    llm_rows: float = Field(0.15, ge=0.0, le=1.0)
    """Share of v2 rows that are LLM-style (rare/transliterated tokens)."""
    orphan_rows: float = Field(0.10, ge=0.0, le=1.0)
    """Share of v2 rows whose road starts with an orphan I-road tag."""
    tokenizer: Tokenizer = Tokenizer()


class Model(_Strict):
    encoder: Literal["lstm", "transformer"] = "lstm"
    embed_dim: PositiveInt = 48
    hidden_size: PositiveInt = 64
    layers: PositiveInt = 1
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    phrase_priors: bool = False
    """Add a gazetteer feature embedding (digits, road suffixes, unit words...)."""
    crf_reduction: Literal["token_mean", "per_sequence", "sum"] = "token_mean"
    crf_loss_weight: float = Field(0.05, ge=0.0)
    """0 keeps the CRF for Viterbi decoding only."""

    @model_validator(mode="after")
    def _heads_divide_width(self) -> Model:
        if self.encoder == "transformer" and self.hidden_size % 4:
            raise ValueError(f"the transformer's 4 heads need hidden_size divisible by 4, got {self.hidden_size}")
        return self


class Train(_Strict):
    steps: PositiveInt = 1500
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 3e-3
    warmup_steps: int = Field(200, ge=0)
    weight_decay: float = Field(0.0, ge=0.0)
    grad_clip: PositiveFloat | None = None
    class_weights: dict[str, PositiveFloat] | None = None
    """Cross-entropy weight per tag name; tags not named weigh 1."""
    eval_every: PositiveInt = 100
    checkpoint_every: PositiveInt = 100

    @field_validator("class_weights")
    @classmethod
    def _known_tags(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        bad = sorted(set(v or {}) - set(TAGS))
        if bad:
            raise ValueError(f"unknown tags {bad}; expected some of {list(TAGS)}")
        return v


class TaggerRecipe(_Strict):
    runner: Literal["tagger"] = "tagger"
    seed: int = 0
    data: Data = Data()
    model: Model = Model()
    train: Train = Train()

