"""The ladder for people in the MLflow UI: ``curves.png`` and a self-contained ``ladder.html``.

The HTML embeds the plot as a data URI and uses inline CSS only, so the UI's
artifact viewer renders it without fetching anything.
"""

from __future__ import annotations

import base64
import html
import io

from .ladder import Ladder
from .verdicts import Kind

COLORS = {Kind.STABLE: "#1a7f37", Kind.DIVERGED: "#cf222e", Kind.NAN: "#cf222e", Kind.ERROR: "#9a6700",
          Kind.LOST: "#9a6700"}


def curves_png(ladder: Ladder, curves: dict[str, list[tuple[int, float]]], metric: str) -> bytes:
    """Every trial's watched metric, with its climb start (o) and the step it stopped at (x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=100)
    cmap = plt.get_cmap("tab10")
    for i, rung in enumerate(ladder.rungs):
        pts = curves.get(rung.name) or []
        if not pts:
            continue
        steps, values = zip(*pts, strict=True)
        color = cmap(i % 10)
        style = "-" if rung.verdict == Kind.STABLE else "--"
        ax.plot(steps, values, style, color=color, lw=1.2, label=f"{rung.name} ({rung.verdict})")
        near = dict(pts)
        if rung.climb_start_step is not None:
            y = near.get(rung.climb_start_step, values[-1])
            ax.plot([rung.climb_start_step], [y], "o", color=color, ms=7, mfc="none", mew=2)
        if rung.verdict != Kind.STABLE:
            ax.plot([steps[-1]], [values[-1]], "x", color=color, ms=9, mew=2)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_title(f"{ladder.good_path} -> {ladder.bad_path}: o climb start, x stopped")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def ladder_html(ladder: Ladder, png: bytes | None = None) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in Ladder.HEADER)
    body = []
    for rung, row in zip(ladder.rungs, ladder.rows(), strict=True):
        color = COLORS.get(rung.verdict, "#57606a")
        cells = "".join(f"<td>{e(c)}</td>" for c in row[:-1])
        body.append(f"<tr>{cells}<td style='color:{color};font-weight:600'>{e(row[-1])}</td></tr>")
    repro = "".join(f"<li><b>{e(r.name)}</b>: <code>{e(r.reproduce)}</code></li>" for r in ladder.rungs
                    if r.reproduce)
    img = f"<img alt='curves' style='max-width:100%' src='data:image/png;base64,{base64.b64encode(png).decode()}'>" \
        if png else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>bisector ladder</title>
<style>
body{{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1f2328}}
table{{border-collapse:collapse;font-size:14px}}
th,td{{border:1px solid #d0d7de;padding:6px 10px;text-align:left;vertical-align:top}}
th{{background:#f6f8fa}} code{{font-size:12px;background:#f6f8fa;padding:2px 4px}}
.culprit{{font-size:16px;font-weight:600;margin:16px 0}}
</style></head><body>
<h2>Ladder: {e(ladder.good_path)} &rarr; {e(ladder.bad_path)}</h2>
<p>Strategy: {e(ladder.strategy)}</p>
<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>
<p class="culprit">{e(ladder.culprit_line())}</p>
<p>{e(ladder.cost_line())}</p>
{img}
<h3>Reproduce a rung</h3><ul>{repro}</ul>
</body></html>
"""
