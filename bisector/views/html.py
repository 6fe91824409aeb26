"""``ladder.html``: the whole campaign on one self-contained page for the MLflow artifact viewer.

The answer first (culprits, structure, confidence), then the ladder with each
rung linked to its run, the probe's tables, the diagnosis, the repair and its
gates, the cost, the curves and the reproduce commands. The plot is embedded
as a data URI and the CSS is inline, so the UI's sandboxed viewer renders it
without fetching anything; links open in a new tab (the frame itself cannot
navigate).
"""

from __future__ import annotations

import base64
import html

from ..ladder import PROBE_HEADER, Ladder
from .mlflow_ui import colours, found, headline, verdict_word

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1f2328;max-width:1500px}
table{border-collapse:collapse;font-size:13px;margin:8px 0 16px}
th,td{border:1px solid #d0d7de;padding:5px 9px;text-align:left;vertical-align:top}
th{background:#f6f8fa} code{font-size:12px;background:#f6f8fa;padding:2px 4px}
.answer{font-size:20px;font-weight:700;margin:8px 0} .sub{color:#57606a}
.dot{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:6px}
.neg{color:#cf222e;font-weight:600} .pass{color:#1a7f37;font-weight:600} .fail{color:#cf222e;font-weight:600}
"""


def ladder_html(ladder: Ladder, png: bytes | None = None, names: dict[str, str] | None = None,
                links: dict[str, str] | None = None, store_hint: str | None = None) -> str:
    """``names``: rung -> MLflow run name; ``links``: rung -> run URL (else the run id is shown)."""
    e = html.escape
    names, links = names or {}, links or {}
    parts = [f"<p class='answer'>{e(headline(ladder))}</p>"]
    if ladder.structure and ladder.explanation:
        parts.append(f"<p><b>Structure:</b> {e(ladder.structure)}: {e(ladder.explanation)}</p>")
    if ladder.culprits:
        rows = [[f"<code>{e(p)}</code>", e(repr(v["good"])), e(repr(v["bad"]))]
                for k in ladder.culprits for p, v in k.changes().items()]
        parts.append(_table(["Culprit knob", "Good", "Bad"], rows))
    parts += [f"<p class='sub'>Note: {e(n)}</p>" for n in ladder.notes]
    if not ladder.culprits:
        parts.append(f"<p>{e(ladder.culprit_line())}</p>".replace("\n", "<br>"))
    parts.append(f"<h3>Ladder</h3><p class='sub'>{e(ladder.good_path)} &rarr; {e(ladder.bad_path)}, strategy "
                 f"{e(ladder.strategy)}" + (f"; answer: {e(str(ladder.result))}" if ladder.result else "") + "</p>")
    parts.append(_ladder(ladder, names, links))
    if ladder.probe:
        parts.append("<h3>Gradient probe</h3>")
        if ladder.probe.get("checkpoints"):
            parts.append(_table(PROBE_HEADER, [[e(c) for c in row] for row in ladder.probe_rows()],
                                neg_last=True))
        parts.append(f"<p><b>Diagnosis:</b> {e(str(ladder.probe.get('diagnosis')))}</p>")
        parts += [f"<p class='sub'>Note: {e(n)}</p>" for n in ladder.probe.get("notes", [])]
    repair = next((r for r in ladder.rungs if r.role == "repair" or r.name.startswith("repair")), None)
    if repair is not None:
        parts.append(f"<h3>Repair</h3><p>{e(ladder.repair_line() or '')}</p>")
        if repair.gates:
            rows = [[e(g), f"<span class='{'pass' if v.get('passed') else 'fail'}'>"
                           f"{'passed' if v.get('passed') else 'FAILED'}</span>", e(str(v.get("value"))),
                     e(str(v.get("rule", "")))] for g, v in repair.gates.items()]
            parts.append(_table(["Gate", "Result", "Value", "Rule"], rows))
    parts.append(f"<h3>Cost</h3><p>{e(ladder.cost_line())}</p>")
    if png:
        parts.append("<h3>Curves</h3><img alt='curves' style='max-width:100%' "
                     f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    repro = "".join(f"<li><b>{e(r.name)}</b>: <code>{e(r.reproduce)}</code></li>" for r in ladder.rungs
                    if r.reproduce)
    if repro:
        parts.append("<h3>Reproduce a rung</h3>" + (f"<p class='sub'>{e(store_hint)}</p>" if store_hint else "")
                     + f"<ul>{repro}</ul>")
    title = e(f"bisector: {found(ladder)}")
    return (f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{title}</title><style>{CSS}</style>"
            f"</head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def _ladder(ladder: Ladder, names: dict[str, str], links: dict[str, str]) -> str:
    e = html.escape
    colour = colours(ladder)
    header = ["Run", *Ladder.HEADER[1:-1], "Verdict", "MLflow run"]
    body = []
    for rung, row in zip(ladder.rungs, ladder.rows(), strict=True):
        shown = e(names.get(rung.name, row[0]))
        dot = f"<span class='dot' style='background:{colour[rung.name]}'></span>"
        if rung.name in links:
            run = f"<a href='{e(links[rung.name])}' target='_blank' rel='noopener'>open</a>"
        else:
            run = f"<code>{e(rung.run_id or '-')}</code>"
        note = f"<br><span class='sub'>{e(rung.note)}</span>" if rung.note else ""
        cells = [dot + shown, *[e(c) for c in row[1:-1]],
                 f"<b style='color:{colour[rung.name]}'>{e(verdict_word(rung))}</b>{note}", run]
        body.append(cells)
    return _table(header, body)


def _table(header: list[str], rows: list[list[str]], neg_last: bool = False) -> str:
    """Cells are already escaped HTML."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    out = []
    for row in rows:
        cls = " class='neg'" if neg_last and row and row[-1].startswith("-") and row[-1] != "-" else ""
        cells = "".join(f"<td>{c}</td>" for c in row[:-1]) + f"<td{cls}>{row[-1]}</td>" if row else ""
        out.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(out)}</tbody></table>"
