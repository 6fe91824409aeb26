"""``curves.png``: every trial's watched loss, readable at a glance.

Two panels: the whole horizon, and a zoom on the steps where trials failed
(diverged trials stop early, so on the full axis their curves are crammed
into its first fifth). Colours are the runs' colours in the MLflow UI (one hue
per verdict family), line styles cycle within a family so overlapping curves
stay apart, rungs that change a culprit knob are drawn wide and translucent
under the others, and the legend sits outside the axes.
"""

from __future__ import annotations

import io
from pathlib import Path

from ..ladder import Ladder, Rung
from ..verdicts import FAILURES, Kind
from .mlflow_ui import colours, family

STYLES = ("-", "--", "-.", ":")


def culprit_rungs(ladder: Ladder) -> set[str]:
    """Rungs that change a culprit knob (and nothing but culprit knobs), plus the bad endpoint."""
    paths = {p for k in ladder.culprits for p in k.paths}
    out = {r.name for r in ladder.rungs if r.changed and set(r.changed) <= paths}
    return out | ({"bad"} if paths else set())


def zoom_window(ladder: Ladder, curves: dict[str, list[tuple[int, float]]]) -> tuple[int, int] | None:
    """Steps around the failures: from before the earliest climb to past the latest detection."""
    failed = [r for r in ladder.rungs if Kind.of(r.verdict) in FAILURES and curves.get(r.name)]
    if not failed:
        return None
    starts = [r.climb_start_step or r.best_step or curves[r.name][0][0] for r in failed]
    ends = [r.detected_at_step or curves[r.name][-1][0] for r in failed]
    lo, hi = min(starts), max(ends)
    span = max(hi - lo, 10)
    first = min(pts[0][0] for pts in curves.values() if pts)
    return max(first, int(lo - 0.6 * span)), int(hi + 0.3 * span)


def curves_png(ladder: Ladder, curves: dict[str, list[tuple[int, float]]], metric: str) -> bytes:
    """The plot as PNG bytes (matplotlib's Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    window = zoom_window(ladder, curves)
    fig, axes = plt.subplots(1, 2 if window else 1, figsize=(15 if window else 11, 5.5), dpi=100, squeeze=False)
    axes = axes[0]
    colour = colours(ladder)
    emphasised = culprit_rungs(ladder)
    seen: dict[str, int] = {}
    for rung in ladder.rungs:
        pts = curves.get(rung.name) or []
        if not pts:
            continue
        fam = family(rung)
        style = STYLES[seen.get(fam, 0) % len(STYLES)]
        seen[fam] = seen.get(fam, 0) + 1
        for ax in axes:
            _draw(ax, rung, pts, colour[rung.name], style, rung.name in emphasised, ax is axes[0])
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].set_title("all trials (o climb start, x stopped)")
    if window:
        _zoom(axes[1], window, curves)
        axes[1].set_title(f"failures, steps {window[0]}-{window[1]}")
    names = f"{Path(ladder.good_path).name} -> {Path(ladder.bad_path).name}"
    fig.suptitle(names + (f": {_answer(ladder)}" if ladder.culprits else ""),
                 fontsize=11)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False,
               title="wide: changes a culprit knob", title_fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _draw(ax, rung: Rung, pts, colour: str, style: str, wide: bool, labelled: bool) -> None:
    steps, values = zip(*pts, strict=True)
    label = f"{rung.name}: {rung.verdict}" if labelled else None
    if wide:
        ax.plot(steps, values, style, color=colour, lw=4.5, alpha=0.45, label=label, zorder=2)
    else:
        ax.plot(steps, values, style, color=colour, lw=1.3, label=label, zorder=3)
    near = dict(pts)
    if rung.climb_start_step is not None:
        y = near.get(rung.climb_start_step, _at(pts, rung.climb_start_step))
        ax.plot([rung.climb_start_step], [y], "o", color=colour, ms=8, mfc="white", mew=2, zorder=4)
    if Kind.of(rung.verdict) in FAILURES:
        ax.plot([steps[-1]], [values[-1]], "x", color=colour, ms=10, mew=2.5, zorder=4)


def _at(pts, step: int) -> float:
    before = [v for s, v in pts if s <= step]
    return before[-1] if before else pts[0][1]


def _zoom(ax, window: tuple[int, int], curves: dict[str, list[tuple[int, float]]]) -> None:
    lo, hi = window
    inside = [v for pts in curves.values() for s, v in pts if lo <= s <= hi and v > 0]
    ax.set_xlim(lo, hi)
    if inside:
        ax.set_ylim(min(inside) * 0.8, max(inside) * 1.25)


def _answer(ladder: Ladder) -> str:
    from .mlflow_ui import found

    return found(ladder)
