"""A trial of a user's script in this process: live metrics, early stop, and `git bisect run`'s exit rules."""

from __future__ import annotations

import textwrap
import time

from bisector.trial import TrialRequest, run_local

SCRIPT = textwrap.dedent("""
    import argparse, math, sys, time
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--climb-at", type=int, default=0)
    p.add_argument("--explode-at", type=int, default=0)
    p.add_argument("--exit", type=int, default=0)
    p.add_argument("--every", type=int, default=1)
    p.add_argument("--sleep", type=float, default=0.0)
    a = p.parse_args()
    loss = 2.5
    for step in range(1, a.steps + 1):
        loss = 0.3 + 2.2 * math.exp(-step / 40)
        if a.climb_at and step > a.climb_at:
            loss += 0.02 * (step - a.climb_at)
        if a.explode_at and step >= a.explode_at:
            loss = 2.5 * 10 ** (step - a.explode_at + 1)
        if step % a.every == 0:
            print(f"Train step {step} | lr 0.001 | loss {loss:.5f}", flush=True)
        print(f"perplexity {math.exp(loss)}")  # an OverflowError once the loss is past ~709
        time.sleep(a.sleep)
    sys.exit(a.exit)
""")


def _req(tmp_path, config: dict, **extra) -> TrialRequest:
    (tmp_path / "train.py").write_text(SCRIPT)
    recipe = {"runner": "command", "command": ["python", "train.py"], "cwd": ".", "config": config,
              "pass_config": {"underscores": "dash"},
              "metrics": {"source": "stdout", "regex": r"step (?P<step>\d+) .*loss (?P<loss>\S+)", "watch": "loss"},
              **extra}
    return TrialRequest("t", "command", recipe, str(tmp_path / "out"), base_dir=str(tmp_path))


def test_a_stable_script_is_judged_on_its_whole_curve(tmp_path):
    result, records = run_local(_req(tmp_path, {"steps": 300}, steps=300))
    assert result["kind"] == "stable" and result["steps_run"] == 300 and len(records) == 300
    assert (tmp_path / "out" / "metrics.jsonl").read_text().count("\n") == 300
    assert (tmp_path / "out" / "command.json").is_file()


def test_a_diverging_script_is_stopped_early(tmp_path):
    t0 = time.monotonic()
    result, _ = run_local(_req(tmp_path, {"steps": 3000, "climb_at": 150, "sleep": 0.002}))
    assert result["kind"] == "diverged" and 150 <= result["climb_start_step"] < result["detected_at_step"] < 400
    assert time.monotonic() - t0 < 30  # stopped long before 3000 steps x 2 ms


def test_exit_125_is_untestable_never_a_verdict(tmp_path):
    result, _ = run_local(_req(tmp_path, {"steps": 50, "exit": 125}))
    assert result["kind"] == "unresolved" and "exited 125" in result["error"]


def test_a_crash_on_a_healthy_curve_is_an_error_with_the_stderr_tail(tmp_path):
    result, _ = run_local(_req(tmp_path, {"steps": 100, "exit": 3}))
    assert result["kind"] == "error" and "exited 3" in result["error"]


def test_a_crash_that_follows_divergence_is_the_recipes_failure(tmp_path):
    """An OverflowError from math.exp(loss) right after the loss exploded: the recipe fails."""
    result, _ = run_local(_req(tmp_path, {"steps": 100, "explode_at": 10}))
    assert result["kind"] == "diverged", result
    assert "crashed after the loss" in result["note"] and "OverflowError" in result["error"]


def test_the_crash_rule_is_configurable(tmp_path):
    result, _ = run_local(_req(tmp_path, {"steps": 100, "explode_at": 10},
                               exit_codes={"crash_after_divergence_is_failure": False}))
    assert result["kind"] == "error"


def test_a_timeout_ends_the_trial(tmp_path):
    t0 = time.monotonic()
    result, _ = run_local(_req(tmp_path, {"steps": 100000, "sleep": 0.01}, timeout_s=2, grace_s=1))
    assert result["kind"] == "error" and "timed out after 2 s" in result["error"]
    assert time.monotonic() - t0 < 15


def test_sparse_epoch_logs_get_a_derived_step(tmp_path):
    (tmp_path / "train.py").write_text(textwrap.dedent("""
        import math
        for epoch in range(1, 4):
            for seen in range(64, 641, 64):
                step = (epoch - 1) * 10 + seen // 64
                print(f"Train Epoch: {epoch} [{seen}/640 ({seen / 6.4:.0f}%)]\\tLoss: {2 * math.exp(-step / 9):.6f}")
    """))
    recipe = {"runner": "command", "command": ["python", "train.py"],
              "metrics": {"regex": r"Epoch: (?P<epoch>\d+) \[(?P<seen>\d+)/(?P<total>\d+).*Loss: (?P<loss>\S+)",
                          "step": {"epoch": "epoch", "batch": "seen", "per_epoch_key": "total"}}}
    _, records = run_local(TrialRequest("t", "command", recipe, str(tmp_path / "o"), base_dir=str(tmp_path)))
    assert [r["step"] for r in records][:3] == [64, 128, 192] and records[-1]["step"] == 3 * 640
