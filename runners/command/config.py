"""The schema of a ``runner: command`` recipe: the user's own training script, no Python written.

The recipe's own structure is strict (unknown keys are errors with a "did you
mean"), while ``config`` is the user's free-form mapping of knobs: the
orchestrator descends into it key by key (``knob_maps``), types come from the
YAML values, and an optional ``schema`` (a Pydantic model path or a JSON
Schema file) validates it when the user has one.

A recipe says three things: how to start the script (``command``, ``cwd``,
``env``), how the config reaches it (``pass_config``), and where its metrics
appear (``metrics``). Everything else has a default a user rarely changes.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, field_validator, model_validator

PLACEHOLDERS = ("python", "out_dir", "seed", "device", "threads", "config_file", "trial", "cwd")
"""What ``{name}`` may stand for in ``command``, ``env`` values and metric/checkpoint paths."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PassConfig(_Strict):
    """How ``config`` reaches the script.

    ``flags``: ``--key value`` (``equals: true`` for ``--key=value``), nested keys
    as ``--a.b``, ``true``/``false`` as a bare flag present or absent
    (``bools: store_true``) or as a value (``bools: value``), lists as several
    values after one flag (``lists: nargs``), as a repeated flag
    (``lists: repeat``) or as one comma-joined value (``lists: comma``); a
    ``null`` omits the flag. ``underscores: dash`` writes ``--batch-size`` for
    the key ``batch_size``.
    ``hydra``: override arguments in Hydra's grammar, ``a.b=v``; keys absent from
    the app's base config need ``+a.b=v``: list them in ``add_keys``, or give
    ``add: always`` to write ``++a.b=v`` (add or override) for every key.
    ``file``: the config written per trial as YAML or JSON, its path in
    ``{config_file}`` and in the environment variable ``env_var`` if set.
    ``none``: nothing is passed (the command uses placeholders itself).
    """

    style: Literal["flags", "hydra", "file", "none"] = "flags"
    prefix: str = "--"
    equals: bool = False
    bools: Literal["store_true", "value"] = "store_true"
    lists: Literal["nargs", "repeat", "comma"] = "nargs"
    underscores: Literal["keep", "dash"] = "keep"
    add: Literal["listed", "always"] = "listed"
    add_keys: tuple[str, ...] = ()
    format: Literal["yaml", "json"] = "yaml"
    env_var: str | None = None
    position: Literal["end", "placeholder"] = "end"
    """``end``: arguments follow the command; ``placeholder``: they replace a ``{args}`` item in it."""


class StepSpec(_Strict):
    """Where a record's global step comes from when the log has none.

    ``key``: a field holding the step. Else ``epoch`` and ``batch`` fields give
    ``(epoch - first epoch seen) * per_epoch + batch``, with ``per_epoch`` a
    number or taken from the field ``per_epoch_key`` (e.g. ``640/60000``'s total).
    Else each record is one more step, times ``every``.
    """

    key: str = "step"
    epoch: str | None = None
    batch: str | None = None
    per_epoch: PositiveFloat | None = None
    per_epoch_key: str | None = None
    every: PositiveInt = 1


class Progress(_Strict):
    """The step axis in samples or tokens seen, so rungs whose batch size or sequence length
    differ compare: step x ``batch_size`` (x ``seq_len``), each a number or a ``config.`` path."""

    unit: Literal["steps", "samples", "tokens"] = "steps"
    batch_size: float | str | None = None
    seq_len: float | str | None = None


class Metrics(_Strict):
    source: Literal["stdout", "stderr", "jsonl", "csv", "tensorboard", "hf_trainer_state", "lightning_csv"] = "stdout"
    path: str | None = None
    """For file sources: the file (or log directory), usually under ``{out_dir}``."""
    regex: str | None = None
    """For stdout/stderr: a regex with named groups; without one, ``key: value`` / ``key=value`` pairs."""
    watch: str = "loss"
    """The metric the detector judges (a regex group, a JSON/CSV column or a TensorBoard tag)."""
    rename: dict[str, str] = Field(default_factory=dict)
    """Log name -> name in bisector (e.g. ``train/loss: loss``)."""
    step: StepSpec = StepSpec()
    progress: Progress = Progress()
    poll_s: PositiveFloat = 0.2

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            rx = re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if not rx.groupindex:
            raise ValueError("the regex needs named groups, e.g. 'loss (?P<loss>[0-9.eE+-]+)'")
        return v

    @model_validator(mode="after")
    def _path_for_files(self) -> Metrics:
        if self.source not in ("stdout", "stderr") and not self.path:
            raise ValueError(f"metrics.source {self.source!r} reads a file: set metrics.path "
                             "(e.g. '{out_dir}/metrics.jsonl')")
        if self.source in ("stdout", "stderr") and self.path:
            raise ValueError(f"metrics.path is for file sources; metrics.source is {self.source!r}")
        return self


class ExitCodes(_Strict):
    """``git bisect run``'s rule: ``untestable`` codes (125) mean the trial cannot be tested (never a
    verdict); 0 means judge the curve; any other code is a failure of the recipe when the curve was
    already climbing, exploding or non-finite, else an ``error``."""

    untestable: tuple[int, ...] = (125,)
    ok: tuple[int, ...] = (0,)
    crash_after_divergence_is_failure: bool = True


class ProbeSpec(_Strict):
    """The gradient probe for a script: a module implementing the probe contract
    (``runners/README.md``; it receives the recipe's ``config`` as ``recipe``) and where the
    script writes checkpoints, with ``{step}`` where the step number is."""

    module: str
    checkpoints: str
    """E.g. ``{out_dir}/checkpoints/step_{step}.pt``."""

    @field_validator("checkpoints")
    @classmethod
    def _has_step(cls, v: str) -> str:
        if "{step}" not in v:
            raise ValueError("needs a {step} placeholder where the checkpoint's step number is")
        return v


class CommandRecipe(_Strict):
    knob_maps: ClassVar[tuple[str, ...]] = ("config",)
    """Mapping fields the orchestrator diffs key by key."""

    runner: Literal["command"] = "command"
    seed: int = 0
    command: tuple[str, ...] = Field(min_length=1)
    """An argument list, never a shell string: ``[python, train.py, --seed, "{seed}"]``."""
    cwd: str = "."
    """Working directory, relative to the recipe file (made relative to where bisector runs when loaded)."""
    config: dict[str, Any] = Field(default_factory=dict)
    pass_config: PassConfig = PassConfig()
    metrics: Metrics = Metrics()
    env: dict[str, str] = Field(default_factory=dict)
    steps: PositiveInt | None = None
    """The horizon in the metrics' step unit, when known (for the ladder's steps saved)."""
    timeout_s: PositiveFloat | None = None
    grace_s: PositiveFloat = 10.0
    """Seconds between SIGTERM and SIGKILL when a trial is stopped."""
    exit_codes: ExitCodes = ExitCodes()
    files: tuple[str, ...] = ()
    """Files (relative to ``cwd``) hashed into the trial's identity, e.g. the script: editing
    them means old verdicts are not reused."""
    schema_: str | None = Field(None, alias="schema")
    """A Pydantic model path (``pkg.module:Model``) or a JSON Schema file validating ``config``."""
    probe: ProbeSpec | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)

    @field_validator("command")
    @classmethod
    def _argv(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(v) == 1 and " " in v[0].strip():
            raise ValueError("an argument list, not a shell string: write [python, train.py, --lr, '0.1'] "
                             f"instead of {v[0]!r}")
        return v

    @field_validator("command", mode="before")
    @classmethod
    def _items_as_text(cls, v: Any) -> Any:
        if isinstance(v, str):
            raise ValueError(f"an argument list, not a shell string: write it as a YAML list, e.g. "
                             f"{v.split()!r}")
        if isinstance(v, (list, tuple)):
            bad = [x for x in v if not isinstance(x, (str, int, float)) or isinstance(x, bool)]
            if bad:
                raise ValueError(f"every item must be a string or a number, got {bad[0]!r}")
            return tuple(str(x) for x in v)
        return v
