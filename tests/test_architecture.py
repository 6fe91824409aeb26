"""The layering the developers' guide promises, read from the source: who may import whom.

A newcomer trusts these rules when reading one module; a test keeps them true
(an import added in a hurry fails here, not in a review months later).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "bisector"
STRATEGIES = ["strategy", "oat", "splitting", "dd", "auto", "speculate", "votes", "posterior", "answer", "simulate",
              "strategy_registry"]
ORCHESTRATOR = {"campaign", "scheduler", "tracker", "cli", "probe_phase", "presenter"}


def _module(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    return ".".join(p for p in rel.parts if p != "__init__")


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Absolute names a file imports (relative imports resolved inside ``bisector``)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    here = ["bisector", *_module(path).split(".")] if path.is_relative_to(PKG) else []
    if path.name == "__init__.py":
        here.append("__init__")
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level]
                mod = ".".join(base + ([node.module] if node.module else []))
                out |= {f"{mod}.{a.name}" for a in node.names} | {mod}
            else:
                out.add(node.module or "")
    return out


def _files() -> dict[str, Path]:
    return {_module(p) or "bisector": p for p in PKG.rglob("*.py")}


def test_the_package_import_graph_is_acyclic():
    """Module-level imports only: a function-level import is how a heavy or late dependency is deferred."""
    files = _files()
    graph = {
        name: {m.removeprefix("bisector.") for m in _imports(path, top_level_only=True) if m.startswith("bisector.")}
        & set(files)
        for name, path in files.items()
    }
    seen: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack, node, nxt]))
            if nxt not in seen:
                visit(nxt, [*stack, node])
        seen[node] = 2

    for name in sorted(graph):
        if name not in seen:
            visit(name, [])
    assert len(graph) > 30  # the walk saw the package


@pytest.mark.parametrize("name", STRATEGIES)
def test_strategies_import_neither_ray_nor_mlflow_nor_the_loop(name):
    imported = _imports(PKG / f"{name}.py", top_level_only=False)
    heavy = {m for m in imported if m.split(".")[0] in {"ray", "mlflow", "torch"}}
    loop = {m for m in imported if m.startswith("bisector.") and m.split(".")[1] in ORCHESTRATOR}
    assert not heavy and not loop, (heavy, loop)


def test_views_render_and_record_nothing():
    for path in (PKG / "views").glob("*.py"):
        imported = _imports(path, top_level_only=False)
        bad = {m for m in imported if m.split(".")[0] in {"ray", "mlflow", "torch"}
               or (m.startswith("bisector.") and m.split(".")[1] in ORCHESTRATOR - {"tracker"})}
        assert not bad, (path.name, bad)


def test_runners_and_examples_never_import_bisector():
    files = [*(ROOT / "runners").rglob("*.py"), *(ROOT / "examples").rglob("*.py")]
    assert len(files) > 5
    for path in files:
        imported = _imports(path, top_level_only=False)
        assert not {m for m in imported if m.split(".")[0] == "bisector"}, path



def test_the_public_names_resolve_and_import_nothing_heavy():
    """``__all__`` is the API people may import; each name resolves, and ``import bisector`` alone stays light."""
    import subprocess
    import sys

    code = ("import sys, bisector; heavy = [m for m in ('ray', 'mlflow', 'torch') if m in sys.modules]; "
            "names = [n for n in bisector.__all__ if getattr(bisector, n, None) is None]; print(heavy, names)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[] []", out.stdout + out.stderr

    import bisector

    assert bisector.run.__module__ == "bisector.campaign" and issubclass(bisector.InputError, bisector.BisectorError)
    with pytest.raises(AttributeError):
        bisector.no_such_name  # noqa: B018
