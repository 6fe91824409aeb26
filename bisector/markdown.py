"""Markdown tables that render: every cell escaped, every row the header's width.

MLflow's note renderer and the Artifacts tab's ``.md`` viewer split rows on
``|``, so a cell holding one (the probe's ``|g|`` header, a knob value with a
pipe) adds a column and breaks the table; a newline in a cell ends the row.
Every table bisector writes goes through ``table``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


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
