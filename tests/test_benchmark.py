"""scripts/benchmark.py --smoke: every method runs on every task and the report is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
pytest.importorskip("lsuv")
pytest.importorskip("anyinit")

import benchmark  # noqa: E402


@pytest.mark.timeout(300)
def test_smoke_run_covers_every_task_and_method(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--smoke", "--out",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tasks = list(benchmark.FULL_STEPS)
    payload = json.loads((tmp_path / "benchmarks.json").read_text())
    assert payload["format"] == "autoinit-benchmarks/1"
    assert sorted(payload["tasks"]) == sorted(tasks)
    markdown = (tmp_path / "benchmarks.md").read_text()
    for task in tasks:
        run = json.loads((tmp_path / "runs" / f"{task}.json").read_text())
        methods = run["seeds"]["0"]["methods"]
        expected = set(benchmark.methods_for(task, list(benchmark.METHODS)))
        assert set(methods) == expected
        for name, rec in methods.items():
            # a method either trained (with a curve and a test result) or says why it does not apply
            assert not str(rec.get("reason", "")).startswith("error"), (task, name, rec.get("reason"))
            if rec["applies"]:
                assert rec["curve"] and rec["steps"] >= 1 and "test_loss" in rec, (task, name)
            else:
                assert rec["reason"], (task, name)
        own_loop = "train_step" in benchmark.get_task(task).fit_kwargs
        cores = benchmark.LOOP_METHODS if own_loop else (
            benchmark.FIXED + benchmark.SEARCHED + benchmark.CONTROLS + ("gradinit", "metainit"))
        for core in cores:
            assert methods[core]["applies"], (task, core, methods[core].get("reason"))
        if own_loop:  # the GAN: its own report says whether each run collapsed
            assert all("collapsed" in rec for rec in methods.values())
            assert "collapsed on" in markdown.split(f"### {task}")[1].split("###")[0]
        summary = payload["tasks"][task]["summary"]["methods"]
        assert set(summary) == expected
        assert f"### {task}" in markdown
        for name in expected:
            assert f"| {name} |" in markdown.split(f"### {task}")[1], (task, name)
        assert (tmp_path / f"bench_{task}.png").stat().st_size > 0
        assert f"| {task} |" in markdown.split("## Per task")[0]


def test_median_ci_brackets_the_median():
    med, lo, hi = benchmark.median_ci([1.0, 2.0, 3.0, 4.0, 100.0])
    assert med == 3.0 and lo <= med <= hi
    assert benchmark.median_ci([]) is None


def test_batch_stream_is_paired_by_seed():
    import torch

    x = torch.arange(20.0).reshape(10, 2)
    y = torch.arange(10)
    a = benchmark.batch_stream((x, y), 3, seed=4, n=7)
    b = benchmark.batch_stream((x, y), 3, seed=4, n=7)
    assert len(a) == 7 and all(torch.equal(p[0], q[0]) for p, q in zip(a, b, strict=True))


def test_seed_lists_merge_into_one_file_and_resume_adds_only_missing_methods(tmp_path):
    def run(*extra):
        assert benchmark.main(["--smoke", "--tasks", "residual_mlp", "--out", str(tmp_path),
                               *extra]) == 0
        return json.loads((tmp_path / "runs" / "residual_mlp.json").read_text())

    run("--methods", "pytorch_default,xavier_normal", "--seed-list", "0")
    merged = run("--methods", "pytorch_default", "--seed-list", "1")  # as a second process would
    assert sorted(merged["seeds"]) == ["0", "1"]
    first = merged["seeds"]["0"]["methods"]["pytorch_default"]
    resumed = run("--methods", "pytorch_default,orthogonal", "--seed-list", "0", "--resume")
    methods = resumed["seeds"]["0"]["methods"]
    assert sorted(methods) == ["orthogonal", "pytorch_default", "xavier_normal"]
    assert methods["pytorch_default"] == first  # kept, not trained again
    assert sorted(resumed["seeds"]) == ["0", "1"] and resumed["earlier_runs"]
