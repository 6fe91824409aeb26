"""What people see in the terminal: progress lines and the ladder table.

Progress goes to stderr (stdout is reserved for results and ``--json``).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from ..ladder import Ladder, Rung
from ..tracker import Callback

err = Console(stderr=True, highlight=False)


def stamp() -> str:
    return time.strftime("%H:%M:%S")


class Progress(Callback):
    """Plain timestamped lines: one when a trial starts, every 250 steps, at its verdict."""

    def __init__(self, console: Console = err, every: int = 250):
        self.console, self.every = console, every
        self._last: dict[str, int] = {}

    def _say(self, text: str) -> None:
        self.console.print(f"[{stamp()}] {text}", markup=False, soft_wrap=True)

    def on_campaign_start(self, info: dict[str, Any]) -> None:
        knobs = info["params"]["knobs"]
        self._say(f"campaign {info['name']}: {len(knobs)} knobs differ: {', '.join(knobs)}")

    def on_trial_start(self, name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        self._last[name] = 0
        self._say(f"{name}: started")

    def on_trial_metrics(self, name: str, records: list[dict[str, Any]]) -> None:
        step = int(records[-1]["step"])
        if step - self._last.get(name, 0) >= self.every:
            self._last[name] = step
            metric = next((k for k in ("train_ce", "train_loss", "loss") if k in records[-1]), None)
            value = f" {metric}={records[-1][metric]:.4g}" if metric else ""
            self._say(f"{name}: step {step}{value}")

    def on_trial_running(self, name: str, info: dict[str, Any]) -> None:
        self._say(f"{name}: running on {info.get('host')} (pid {info.get('pid')})")

    def on_trial_fault(self, name: str, error: str, will_retry: bool) -> None:
        self._say(f"{name}: infrastructure fault ({error.splitlines()[0][:120]}); "
                  + ("retrying" if will_retry else "giving up"))

    def on_trial_reused(self, name: str, rung: Rung) -> None:
        self._say(f"{name}: reused finished run {rung.run_id}: {rung.verdict}")

    def on_trial_end(self, name: str, rung: Rung, result: dict[str, Any]) -> None:
        extra = f", climb from step {rung.climb_start_step}" if rung.climb_start_step is not None else ""
        self._say(f"{name}: {rung.verdict} at step {rung.steps_run}{extra} ({rung.wall_s:.1f} s)")

    def on_trial_cancelled(self, name: str, rung: Rung) -> None:
        self._say(f"{name}: {rung.note} (at step {rung.steps_run})")

    def on_note(self, text: str) -> None:
        self._say(text)

    def on_campaign_end(self, ladder: Ladder, finished: bool) -> None:
        if ladder.not_finished:
            self._say(f"not finished: {ladder.not_finished_text()}")


class LiveProgress(Callback):
    """A live table on a terminal: one line per trial with step/horizon, the watched loss, the verdict."""

    def __init__(self, console: Console = err):
        from rich.live import Live

        self.rows: dict[str, list[str]] = {}
        self.horizon: dict[str, str] = {}
        self.metric = "loss"
        self.live = Live(self._table(), console=console, refresh_per_second=4, transient=False)

    def _table(self) -> Table:
        table = Table(title="bisector: trials", title_justify="left")
        for col in ("Trial", "Step", self.metric, "Verdict"):
            table.add_column(col)
        for name, row in self.rows.items():
            style = {"stable": "green", "diverged": "red", "nan": "red"}.get(row[2])
            table.add_row(name, row[0], row[1], row[2], style=style)
        return table

    def _set(self, name: str, **kw: str) -> None:
        row = self.rows.setdefault(name, ["-", "-", "running"])
        for i, k in enumerate(("step", "value", "verdict")):
            if k in kw:
                row[i] = kw[k]
        self.live.update(self._table())

    def on_campaign_start(self, info: dict[str, Any]) -> None:
        self.metric = info.get("metric", self.metric)
        self.live.start()

    def on_trial_start(self, name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        self.horizon[name] = str(params.get("train.steps", "?"))
        self._set(name, step=f"0/{self.horizon[name]}", verdict="starting")

    def on_trial_metrics(self, name: str, records: list[dict[str, Any]]) -> None:
        last = records[-1]
        value = next((f"{r[self.metric]:.4g}" for r in reversed(records) if self.metric in r), "-")
        self._set(name, step=f"{last['step']}/{self.horizon.get(name, '?')}", value=value, verdict="running")

    def on_trial_fault(self, name: str, error: str, will_retry: bool) -> None:
        self._set(name, verdict="fault, retrying" if will_retry else "lost")

    def on_trial_reused(self, name: str, rung: Rung) -> None:
        self._set(name, step=f"{rung.steps_run}/{rung.horizon}", verdict=f"{rung.verdict} (reused)")

    def on_trial_end(self, name: str, rung: Rung, result: dict[str, Any]) -> None:
        self._set(name, step=f"{rung.steps_run}/{rung.horizon}", verdict=rung.verdict)

    def on_trial_cancelled(self, name: str, rung: Rung) -> None:
        self._set(name, verdict="cancelled (moot)")

    def on_campaign_end(self, ladder: Ladder, finished: bool) -> None:
        self.live.stop()


def ladder_table(ladder: Ladder) -> Table:
    table = Table(title=f"Ladder: {ladder.good_path} -> {ladder.bad_path}", title_justify="left")
    for col in Ladder.HEADER:
        table.add_column(col, overflow="fold")
    for row in ladder.rows():
        style = {"stable": "green", "diverged": "red", "nan": "red", "invalid": "yellow"}.get(row[-1])
        table.add_row(*row, style=style)
    return table


def print_ladder(ladder: Ladder, console: Console | None = None) -> None:
    console = console or Console(file=sys.stdout, highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 150)
    console.print(ladder_table(ladder))
    console.print(ladder.culprit_line(), markup=False)
    if ladder.probe:
        if ladder.probe.get("checkpoints"):
            console.print(probe_table(ladder))
        console.print(f"Diagnosis: {ladder.probe.get('diagnosis')}", markup=False)
        for n in ladder.probe.get("notes", []):
            console.print(f"Note: {n}", markup=False)
    repair = ladder.repair_line()
    if repair:
        console.print(repair, markup=False)
    console.print(ladder.cost_line(), markup=False)


def probe_table(ladder: Ladder) -> Table:
    from ..ladder import PROBE_HEADER

    table = Table(title="Gradient probe (one forward, one backward per loss term)", title_justify="left")
    for col in PROBE_HEADER:
        table.add_column(col, overflow="fold")
    for row in ladder.probe_rows():
        table.add_row(*row, style="red" if row[-1].startswith("-") else None)
    return table
