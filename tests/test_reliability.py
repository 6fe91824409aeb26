"""Reliability suite, hostile inputs: as a hostile but realistic user would try them.

Every hostile input must exit 2 with one ``error:`` message, no traceback, and
leave the store and the work directory as they were. Most run in-process
through typer's CliRunner (Ray is replaced by a stand-in that fails the test
if reached); a few run as real ``bisector`` processes to show that no
traceback reaches stderr and that they end in seconds. The faults are in
``test_reliability_faults.py``; each case adds a row to ``_reliability.COUNTS``.
"""


from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from typer.testing import CliRunner

from bisector import campaign, safeyaml
from bisector.cli import app

from ._reliability import COUNTS, SYNTH_BAD, SYNTH_GOOD, _count_input, _env  # noqa: F401
from ._servers import bisector_cmd, end_session
from .conftest import RECIPES
from .test_safeyaml import alias_bomb

pytestmark = pytest.mark.slow


# --- hostile inputs ---------------------------------------------------------------------------------------


def _rec(text: str):
    return lambda c: ["run", str(RECIPES / "good.yaml"), str(c.write("bad.yaml", text))]


def _opt(*args: str):
    return lambda c: ["run", str(RECIPES / "good.yaml"), str(RECIPES / "bad.yaml"), *args]


TAGGER = "runner: tagger\n"
CASES = {  # name: (argv from a context, a fragment the one-paragraph error must hold)
    "alias bomb (9 levels)": (_rec(alias_bomb(9)), "values with every alias expanded"),
    "recursive alias": (_rec(TAGGER + "model: &m {x: *m}\n"), "recursive alias"),
    "nested 10,000 deep (flow)": (_rec("[" * 10_000 + "]" * 10_000), "nested more than 100 levels"),
    "nested 150 deep (block)": (_rec("".join("  " * i + f"k{i}:\n" for i in range(150)) + "  " * 150 + "v: 1\n"),
                                "nested more than 100 levels"),
    "lr: 1e400": (_rec(TAGGER + "train: {lr: 1e400}\n"), "train.lr: expected a finite number"),
    "class weight .inf": (_rec(TAGGER + "train: {class_weights: {B-road: .inf}}\n"),
                          "train.class_weights.B-road: expected a finite number"),
    "dropout .nan": (_rec(TAGGER + "model: {dropout: .nan}\n"), "model.dropout: expected a finite number"),
    "free-form config -.inf": (lambda c: ["run", str(c.write("g.yaml", yaml.safe_dump(SYNTH_GOOD))),
                                          str(c.write("b.yaml", yaml.safe_dump(SYNTH_BAD | {"config": {
                                              "opt": {"eps": float("-inf")}}})))], "config.opt.eps: expected"),
    "file over 1 MiB": (_rec(TAGGER + "#" + "x" * safeyaml.MAX_BYTES + "\n"), "larger than"),
    "binary file": (lambda c: ["run", str(RECIPES / "good.yaml"), str(c.write("b.yaml", b"\x89PNG\r\n\x1a\n\xff"))],
                    "not a text file"),
    "NUL byte": (_rec(TAGGER + "seed: 1\x00\n"), "control characters are not allowed"),
    "python tag": (_rec(TAGGER + "x: !!python/object/apply:os.system ['echo pwned']\n"), "invalid YAML at line 2"),
    "two documents": (_rec(TAGGER + "---\n" + TAGGER), "invalid YAML"),
    "duplicate key": (_rec(TAGGER + "seed: 1\nseed: 2\n"), "duplicate key 'seed'"),
    "empty file": (_rec(""), "empty file"),
    "top-level list": (_rec("- runner: tagger\n"), "expected a mapping"),
    "complex key": (_rec(TAGGER + "? [a, b]\n: 1\n"), "unhashable key"),
    "recipe is a directory": (lambda c: ["run", str(RECIPES / "good.yaml"), str(c.dir)], "not a regular file"),
    "recipe is /dev/zero": (lambda c: ["run", str(RECIPES / "good.yaml"), "/dev/zero"], "not a regular file"),
    "unknown runner": (_rec("runner: nope\n"), "unknown runner 'nope'"),
    "--cpus-per-trial -1": (_opt("--cpus-per-trial", "-1"), "--cpus-per-trial -1"),
    "--gpus-per-trial -1": (_opt("--gpus-per-trial", "-1"), "--gpus-per-trial -1"),
    "--cpus-per-trial nan": (_opt("--cpus-per-trial", "nan"), "expected a finite number"),
    "--gpus-per-trial 1.5": (_opt("--gpus-per-trial", "1.5"), "whole GPUs only"),
    "--max-concurrent -3": (_opt("--max-concurrent", "-3"), "--max-concurrent -3"),
    "--max-trials -3": (_opt("--max-trials", "-3"), "--max-trials -3"),
    "--max-hours 0": (_opt("--max-hours", "0"), "--max-hours 0"),
    "--retries -1": (_opt("--retries", "-1"), "--retries -1"),
    "--seed -1": (_opt("--seed", "-1"), "--seed -1"),
    "--probe-batches 0": (_opt("--probe-batches", "0"), "--probe-batches 0"),
    "--max-climb nan": (_opt("--max-climb", "nan"), "--max-climb nan"),
    "--experiment ''": (_opt("--experiment", ""), "--experiment is empty"),
    "--group ''": (_opt("--group", ""), "names no knob"),
    "--group a,a": (_opt("--group", "data.corpus,data.corpus"), "named more than once"),
    "--group twice": (_opt("--group", "data.corpus", "--group", "data.corpus,model.crf_reduction"),
                      "named more than once"),
    "--workdir under a file": (lambda c: _opt("--workdir", str(c.write("f", "x")) + "/wd")(c), "which is a file"),
    "--workdir in /proc": (_opt("--workdir", "/proc/bisector-wd"), "cannot write in /proc"),
    "--tracking-uri http with password, nothing listening": (
        _opt("--tracking-uri", "http://alice:s3cret@127.0.0.1:9"), "store http://127.0.0.1:9 cannot be used"),
    "--tracking-uri file:///proc/x": (_opt("--tracking-uri", "file:///proc/x"), "filesystem store"),
    "--tracking-uri a directory": (lambda c: _opt("--tracking-uri", f"sqlite:///{c.dir}")(c), "is a directory"),
    "--tracking-uri not a database": (lambda c: _opt("--tracking-uri", f"sqlite:///{c.write('t.db', 'x')}")(c),
                                      "not a sqlite database"),
    "--tracking-uri ''": (_opt("--tracking-uri", ""), "--tracking-uri is empty"),
    "--tracking-uri bogus://x": (_opt("--tracking-uri", "bogus://x"), "unsupported URI"),
    "--address 127.0.0.1:9": (_opt("--address", "127.0.0.1:9"), "nothing answers at 127.0.0.1:9"),
    "--address http://...:8265": (_opt("--address", "http://127.0.0.1:8265"), "dashboard's address"),
    "--address without port": (_opt("--address", "headnode"), "is not an address"),
    "--experiment deleted": (_opt("--experiment", "gone"), "is deleted; restore it"),
    "--resume unknown id": (lambda c: ["run", "--resume", "0123456789abcdef"], "no campaign run"),
    "diff --group a,a": (lambda c: ["diff", str(RECIPES / "good.yaml"), str(RECIPES / "bad.yaml"), "--group",
                                    "train.lr,train.lr"], "named more than once"),
    "ls on file:///proc/x": (lambda c: ["ls", "--tracking-uri", "file:///proc/x"], "filesystem store"),
}
WITH_OWN_STORE = ("--tracking-uri", "ls on")


class _NoScheduler:
    def __init__(self, *a, **k):
        raise AssertionError("bad input reached the scheduler")


@pytest.fixture(scope="module")
def template_store(tmp_path_factory) -> Path:
    """A migrated, empty sqlite store (with a deleted experiment 'gone'), copied for each case."""
    from bisector.store import open_client

    path = tmp_path_factory.mktemp("template") / "store.db"
    _, client = open_client(f"sqlite:///{path}", "bisector")
    client.delete_experiment(client.create_experiment("gone"))
    return path


def _store_counts(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as db:
        return (db.execute("select count(*) from runs").fetchone()[0],
                db.execute("select count(*) from experiments").fetchone()[0])


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input(name, template_store, tmp_path, monkeypatch):
    build, fragment = CASES[name]
    case = tmp_path / "case"
    case.mkdir()

    def write(fname: str, body: str | bytes) -> Path:
        (case / fname).write_bytes(body if isinstance(body, bytes) else body.encode())
        return case / fname

    ctx = SimpleNamespace(dir=case, write=write)
    argv = build(ctx)
    store = tmp_path / "store.db"
    shutil.copy(template_store, store)
    before = _store_counts(store)
    if argv[0] == "run" and not any(a.startswith(WITH_OWN_STORE) for a in argv + [name]):
        argv += ["--tracking-uri", f"sqlite:///{store}"]
    if argv[0] == "run" and "--workdir" not in argv:
        argv += ["--workdir", str(tmp_path / "wd")]
    monkeypatch.setattr(campaign, "RayScheduler", _NoScheduler)
    monkeypatch.chdir(case)
    files = sorted(p.name for p in case.iterdir())
    t0 = time.perf_counter()
    result = CliRunner().invoke(app, argv)
    elapsed = time.perf_counter() - t0
    _count_input(result.exit_code, result.output + repr(result.exception))
    after = _store_counts(store)
    COUNTS["runs_written"] += after[0] - before[0]
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and fragment in result.stderr, result.stderr
    assert "s3cret" not in result.stderr
    assert after == before  # no run, no experiment
    assert not (tmp_path / "wd").exists()
    assert sorted(p.name for p in case.iterdir()) == files  # no mlflow.db, mlruns or lock next to the inputs
    assert elapsed < 10, elapsed


SUBPROCESS_CASES = {  # as users run it: a real process, its stderr, its time, what it leaves running
    "alias bomb": lambda d: [str(RECIPES / "good.yaml"), _write(d / "bomb.yaml", alias_bomb(9))],
    "nested 10,000 deep": lambda d: [str(RECIPES / "good.yaml"), _write(d / "deep.yaml", "[" * 10_000 + "]" * 10_000)],
    "--cpus-per-trial -1": lambda d: [str(RECIPES / "good.yaml"), str(RECIPES / "bad.yaml"), "--cpus-per-trial", "-1"],
    "--tracking-uri with password, nothing listening": lambda d: [
        str(RECIPES / "good.yaml"), str(RECIPES / "bad.yaml"), "--tracking-uri", "http://alice:s3cret@127.0.0.1:9"],
    "--address 127.0.0.1:9": lambda d: [str(RECIPES / "good.yaml"), str(RECIPES / "bad.yaml"), "--address",
                                        "127.0.0.1:9"],
    "--workdir under a file": lambda d: [str(RECIPES / "good.yaml"), str(RECIPES / "bad.yaml"), "--workdir",
                                         _write(d / "file", "x") + "/wd"],
}


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("name", list(SUBPROCESS_CASES))
def test_hostile_input_subprocess(name, tmp_path):
    args = SUBPROCESS_CASES[name](tmp_path)
    if "--tracking-uri" not in args:
        args += ["--tracking-uri", f"sqlite:///{tmp_path}/m.db"]
    files = sorted(p.name for p in tmp_path.iterdir())
    t0 = time.monotonic()
    proc = subprocess.Popen(bisector_cmd("run", *args), cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        left = end_session(proc, grace=5)
    elapsed = time.monotonic() - t0
    _count_input(proc.returncode, out + err)
    COUNTS["orphans"] += len(left)
    assert proc.returncode == 2, err[-2000:]
    assert "Traceback" not in err and out == ""
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "s3cret" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # no store, no workdir
    assert elapsed < 20, elapsed
    assert left == []
