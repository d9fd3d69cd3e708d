"""scripts/benchmark.py --smoke: every method runs on every task and the report is written."""

from __future__ import annotations

import json
import math
import shutil
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

from autoinit.scheme import InitScheme  # noqa: E402


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
        for searched in set(benchmark.SEARCHED) & set(methods):  # what it chose, replayable
            scheme = InitScheme.from_dict(methods[searched]["scheme"])
            assert scheme.origin and scheme.groups, (task, searched)
        if own_loop:  # the GAN: its own report says whether each run collapsed
            assert all("collapsed" in rec for rec in methods.values())
            assert "collapsed on" in markdown.split(f"### {task}")[1].split("###")[0]
        summary = payload["tasks"][task]["summary"]["methods"]
        assert set(summary) == expected
        assert f"### {task}" in markdown
        for name in expected:
            assert f"| {name} |" in markdown.split(f"### {task}")[1], (task, name)
        assert (tmp_path / f"bench_{task}.png").stat().st_size > 0
        old, new = markdown.split("## New tasks (issue 11)")
        if task in benchmark.SECTIONED:  # issue 11's and the held-out tasks: own sections
            section = "## Held-out tasks" if task in benchmark.HOLDOUT_STEPS else "### Summary"
            assert f"| {task} |" in new.split(section, 1)[1].split(f"### {task}")[0]
            assert all(len(rec["lr_robustness"]) == 3 for m, rec in methods.items()
                       if rec["applies"] and m not in benchmark.CONTROLS)
        else:
            assert f"| {task} |" in old.split("## Per task")[0]


def test_median_ci_brackets_the_median():
    med, lo, hi = benchmark.median_ci([1.0, 2.0, 3.0, 4.0, 100.0])
    assert med == 3.0 and lo <= med <= hi
    assert benchmark.median_ci([]) is None


def test_median_ci_of_five_values_is_their_range():
    """docs/benchmarks.md: at 5 seeds "disjoint intervals" means every seed beats every seed."""
    values = [0.5789, 0.5647, 0.5745, 0.5625, 0.5778]
    assert benchmark.median_ci(values)[1:] == (min(values), max(values))


def test_the_glance_table_calls_disjoint_intervals_better_and_counts_paired_seeds():
    def rec(loss: float) -> dict:
        return {"applies": True, "curve": [[10, loss, 0.0]], "test_loss": loss, "test_acc": None,
                "init_tse": 5.0, "total_tse": 15.0, "steps": 10}

    losses = {"orthogonal": [0.60, 0.61, 0.62], "lsuv": [0.70, 0.71, 0.72],
              "gradinit": [0.59, 0.65, 0.66], "autoinit": [0.50, 0.61, 0.52],
              "autoinit_budget": [0.80, 0.81, 0.82]}
    result = {"task": "tiny_gpt", "steps": 10, "metric": "test loss", "seeds": {
        str(i): {"methods": {m: rec(v[i]) for m, v in losses.items()}} for i in range(3)}}
    lines = benchmark.glance_table({"tiny_gpt": result},
                                   {"tiny_gpt": benchmark.summarize(result)}, {"new": ["tiny_gpt"]})
    row = lines[2].split(" | ")
    assert row[3].startswith("orthogonal: 0.6100") and row[5] == "tie (2 / 1 / 0)"
    assert row[6].startswith("gradinit") and row[7] == "tie"
    assert row[9] == "worse"  # the budgeted search: every seed above orthogonal's
    assert lines[-1].startswith("In all: autoinit against the best baseline: better on 0, tie on 1")


def test_curve_extrapolation_reads_a_power_law_at_the_end_and_ranks_by_the_final_metric():
    from curve_extrapolation import scores, task_rows

    curve = [[s, 2.0 * s ** -0.5] for s in range(10, 310, 10)]
    got = scores(curve, 100, 300)
    assert got["raw"] == curve[9][1] and math.isclose(got["power"], 2.0 * 300 ** -0.5)
    assert got["loglin"] < got["raw"]  # a falling line read further on is lower

    def run(final: float, shift: float) -> dict:
        return {"curve": [[s, v + shift] for s, v in curve], "test_loss": final, "test_acc": None}

    task = {"steps": 300, "metric": "test loss", "seeds": {"0": {"methods": {
        "a": run(0.1, 0.0), "b": run(0.2, 0.1), "c": run(0.3, 0.2), "autoinit": run(0.0, 0.5)}}}}
    rows = task_rows(task)
    assert rows[(0.2, "raw")] == [(1.0, 0)]  # the search's curve is not a candidate


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


def test_a_training_trains_when_its_loss_is_clearly_below_the_prior():
    assert benchmark.trains({"final_val_loss": 0.8}, prior=1.0)
    assert not benchmark.trains({"final_val_loss": 0.95}, prior=1.0)
    assert not benchmark.trains({"final_val_loss": None}, prior=1.0)
    assert benchmark.trains({"final_val_loss": 0.1}, prior=None) is None


def test_new_tasks_get_lr_robustness_in_their_own_section_and_the_old_section_is_kept(tmp_path):
    old_only, both = tmp_path / "old", tmp_path / "both"
    assert benchmark.main(["--smoke", "--tasks", "residual_mlp", "--methods", "pytorch_default",
                           "--out", str(old_only)]) == 0
    (both / "runs").mkdir(parents=True)
    shutil.copy(old_only / "runs" / "residual_mlp.json", both / "runs")
    assert benchmark.main(["--smoke", "--tasks", "lstm_memory", "--methods", "pytorch_default,chrono",
                           "--out", str(both)]) == 0
    run = json.loads((both / "runs" / "lstm_memory.json").read_text())
    assert run["prior_val_loss"] == pytest.approx(math.log(4), abs=0.1)  # 4 classes
    rec = run["seeds"]["0"]["methods"]["chrono"]
    factors = [r["factor"] for r in rec["lr_robustness"]]
    assert factors == pytest.approx([10 ** -0.5, 1.0, 10 ** 0.5])
    assert [r["lr"] for r in rec["lr_robustness"]] == pytest.approx([f * 1e-3 for f in factors])
    assert rec["lr_robustness"][1]["final_val_loss"] == rec["curve"][-1][1]  # the main run
    assert "lr_robustness" not in json.loads((both / "runs" / "residual_mlp.json").read_text())[
        "seeds"]["0"]["methods"]["pytorch_default"]
    old_md = (old_only / "benchmarks.md").read_text()
    new_md = (both / "benchmarks.md").read_text()
    head, section = new_md.split("\n## New tasks (issue 11)\n")
    glance, head = head.split("\n## Runs\n")
    assert head.rstrip() == old_md.split("\n## Runs\n")[1].rstrip()  # byte for byte, but for
    assert "| lstm_memory | issue 11 |" in glance  # the table at a glance, which holds every task
    table = section.split("### lstm_memory")[1]
    assert "| chrono |" in table and "| pytorch_default |" in table
    assert "| lstm_memory | 1 | 0.001 |" in section


def test_parallel_processes_keep_each_others_seeds(tmp_path):
    """Two processes resumed from the same file, each running one seed (``--seed-list``): the
    second to save must not put back its stale copy of the first one's seed."""
    (tmp_path / "runs").mkdir()
    start = {"steps": 10, "seeds": {"3": {"methods": {"xavier_normal": {}}},
                                    "4": {"methods": {"xavier_normal": {}}}}}
    env = {"started": "now"}

    def after(seed: str) -> dict:  # what a process holds once its seed ran: both seeds, one new
        seeds = json.loads(json.dumps(start["seeds"]))
        seeds[seed]["methods"]["autoinit"] = {"test_loss": float(seed)}
        return {"steps": 10, "seeds": seeds}

    (tmp_path / "runs" / "t.json").write_text(json.dumps(start))
    for seed in ("4", "3"):
        benchmark._save(tmp_path, "t", after(seed), env, {"seeds": 5, "seed_list": [int(seed)]})
    saved = json.loads((tmp_path / "runs" / "t.json").read_text())["seeds"]
    assert {s: saved[s]["methods"]["autoinit"]["test_loss"] for s in ("3", "4")} == {"3": 3.0,
                                                                                   "4": 4.0}


def test_merge_runs_copies_the_named_methods_and_records_where_they_came_from():
    from merge_runs import merge

    target = {"seeds": {"0": {"methods": {"a": {"v": 1}, "b": {"v": 2}}}}}
    source = {"seeds": {"0": {"methods": {"a": {"v": 9}, "b": {"v": 8}}},
                        "1": {"bare_step_seconds": [0.1], "methods": {"a": {"v": 7}}}},
              "environment": {"commit": "x"}}
    assert merge(source, target, ["a"]) == [("0", "a"), ("1", "a")]
    assert target["seeds"]["0"]["methods"] == {"a": {"v": 9}, "b": {"v": 2}}
    assert target["seeds"]["1"] == {"bare_step_seconds": [0.1], "methods": {"a": {"v": 7}}}
    assert target["earlier_runs"] == [{"commit": "x", "merged_methods": ["a"]}]
    assert merge(source, target, []) == []  # by default only what the target lacks


def test_merge_runs_carries_every_new_environment_and_touches_only_files_it_merged_into(
        tmp_path, monkeypatch, capsys):
    """It kept only the scratch file's last environment, and it appended one to a file whose
    records it 'copied' unchanged (a copy of the target's file in the scratch folder)."""
    import merge_runs

    def env(name: str) -> dict:
        return {"command": name, "started": name}

    held = {"seeds": {"0": {"methods": {"g": {"v": 5}}}}, "earlier_runs": [env("A")],
            "environment": env("B")}
    scratch = {"seeds": {"0": {"methods": {"g": {"v": 6}}}}, "earlier_runs": [
        env("A"), {**env("B"), "merged_methods": ["x"]}, env("C")], "environment": env("D")}
    for folder, files in (("src", {"new.json": scratch, "same.json": held}),
                          ("dst", {"new.json": held, "same.json": held})):
        (tmp_path / folder).mkdir()
        for name, data in files.items():
            (tmp_path / folder / name).write_text(json.dumps(data))
    same = (tmp_path / "dst" / "same.json").stat().st_mtime_ns
    monkeypatch.setattr(sys, "argv", ["merge_runs.py", str(tmp_path / "src"),
                                      str(tmp_path / "dst"), "g"])
    merge_runs.main()
    merged = json.loads((tmp_path / "dst" / "new.json").read_text())
    assert merged["seeds"]["0"]["methods"]["g"] == {"v": 6}
    assert merged["earlier_runs"] == [env("A"), {**env("C"), "merged_methods": ["g"]},
                                      {**env("D"), "merged_methods": ["g"]}]
    assert json.loads((tmp_path / "dst" / "same.json").read_text()) == held
    assert (tmp_path / "dst" / "same.json").stat().st_mtime_ns == same
    assert "same.json: 0 records copied" in capsys.readouterr().out


def test_outcome_spread_reproduces_the_benchmark_run_and_varies_with_the_draw(tmp_path):
    import torch
    from outcome_spread import spread, stored_scheme

    from autoinit.plan import uniform_scheme

    task = benchmark.get_task("deep_relu_mlp")
    scheme = uniform_scheme(benchmark.build(task, 0), "kaiming_normal", seed=0)
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "deep_relu_mlp.json").write_text(json.dumps(
        {"seeds": {"3": {"methods": {"kaiming": {"scheme": scheme.to_dict()}}}}}))
    assert stored_scheme(runs, "deep_relu_mlp", 0, "3:kaiming").to_dict() == scheme.to_dict()
    rows = spread("deep_relu_mlp", 0, scheme, draws=[0, 1], orders=[0], steps=3)
    # draw 0 and order 0 are the benchmark's own run of that scheme on seed 0
    data = benchmark.TaskData(task, 0)
    from autoinit.apply import apply_scheme
    model = apply_scheme(benchmark.build(task, 0), scheme)
    torch.manual_seed(123)  # the global RNG does not enter either run
    own = benchmark.train(model, data.batches(3), data.val, data.lr, 1, 0)
    assert rows[0]["final_val_loss"] == own["curve"][-1][1]
    assert rows[1]["final_val_loss"] != rows[0]["final_val_loss"]  # another weight draw
