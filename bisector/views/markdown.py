"""Markdown tables that render: every cell escaped, every row the header's width.

MLflow's note renderer and the Artifacts tab's ``.md`` viewer split rows on
``|``, so a cell holding one (the probe's ``|g|`` header, a knob value with a
pipe) adds a column and breaks the table; a newline in a cell ends the row.
Every table bisector writes goes through ``table``; ``ladder.md`` and
``probe.md`` are written here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..ladder import PROBE_HEADER, Ladder


def cell(text: object) -> str:
    """One table cell: pipes escaped, newlines as spaces, never empty (an empty cell collapses in some viewers)."""
    s = " ".join(str(text).replace("\\|", "|").replace("|", "\\|").split())
    return s or "-"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A GitHub-flavoured markdown table as lines; rows shorter than the header are padded, longer ones refused."""
    width = len(header)
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * width]
    for row in rows:
        row = list(row)
        if len(row) > width:
            raise ValueError(f"a table row has {len(row)} cells for {width} columns: {row!r}")
        row += ["-"] * (width - len(row))
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    return lines


def split_row(line: str) -> list[str]:
    """The cells of one table line as a renderer reads them (unescaped pipes split; used by tests and checks)."""
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    cells, cur, i = [], "", 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            cur += body[i : i + 2]
            i += 2
            continue
        if body[i] == "|":
            cells.append(cur.strip())
            cur = ""
        else:
            cur += body[i]
        i += 1
    cells.append(cur.strip())
    return cells


def tables(text: str) -> list[list[list[str]]]:
    """Every table in a markdown text, each as its rows of cells (the separator row included)."""
    found, current = [], []
    for line in text.splitlines():
        if line.lstrip().startswith("|"):
            current.append(split_row(line))
        elif current:
            found.append(current)
            current = []
    if current:
        found.append(current)
    return found


def ladder_md(ladder: Ladder, names: dict[str, str] | None = None, store_hint: str | None = None) -> str:
    """``ladder.md``; ``names`` are the MLflow run names of the rungs (numbered, with their verdict)."""
    names = names or {}
    lines = [
        f"# Ladder: {ladder.good_path} -> {ladder.bad_path}", "",
        f"Strategy: {ladder.strategy}" + (f"; answer: {ladder.result}" if ladder.result else ""), "",
    ]
    rows = [[names.get(r.name, row[0]), *row[1:]] for r, row in zip(ladder.rungs, ladder.rows(), strict=True)]
    lines += table(ladder.HEADER, rows)
    lines += [line for text in ladder.culprit_line().splitlines() for line in ("", text)] + [""]
    if ladder.probe:
        lines += ["## Probe", "", *probe_md(ladder.probe).splitlines(), ""]
    repair = ladder.repair_line()
    lines += [repair, ""] if repair else []
    lines += [ladder.cost_line(), "", "## Reproduce a rung", ""]
    lines += [store_hint, ""] if store_hint and any(r.reproduce for r in ladder.rungs) else []
    lines += [f"- {r.name}: `{r.reproduce}`" for r in ladder.rungs if r.reproduce]
    return "\n".join(lines + [""])


def probe_md(probe: dict) -> str:
    """The probe's tables (one row per checkpoint and term) and the diagnosis: ``probe.md``."""
    rows = Ladder("", "", "", probe=probe).probe_rows()
    lines = table(PROBE_HEADER, rows) if probe.get("checkpoints") else []
    lines += ["", f"Diagnosis: {probe.get('diagnosis')}", *[f"Note: {n}" for n in probe.get("notes", [])]]
    return "\n".join(lines) + "\n"
