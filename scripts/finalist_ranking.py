"""Does the selection round rank a search's finalists the way their full trainings do?

docs/probe_ranking.md measures how probes rank the five fixed inits; what decides a search is
the ranking of its finalists, which are closer to each other: the incumbent, the best preset and
the top search trials that the selection round re-runs. For each task and seed this script runs
the default search exactly as ``scripts/benchmark.py`` does (method ``autoinit``), then trains
every finalist with the benchmark's own loop (the seed's batch order, the task's full length)
from ``--draws`` weight draws: the scheme's own seed (the draw the benchmark trains) and the
next ones (the draws the selection round re-ran). Every number is kept in ``--out``.

``--report`` prints, per task, how often each choice rule picks the finalist whose full
trainings are best (mean over the draws), and what the others cost: today's rule, the best probe
score, the best re-run mean, and the incumbent kept.

    OMP_NUM_THREADS=1 python scripts/finalist_ranking.py --tasks deep_tanh_mlp,silu_autoencoder \
        --seeds 0,1,2,3,4 --out docs/finalist_ranking.json
    python scripts/finalist_ranking.py --report docs/finalist_ranking.json [more.json ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from optuna.trial import TrialState
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark as bench  # noqa: E402

from autoinit.apply import apply_scheme  # noqa: E402
from autoinit.presets import list_presets  # noqa: E402
from autoinit.result import FitResult  # noqa: E402
from autoinit.scheme import rules_from_json  # noqa: E402
from autoinit.search import run_search  # noqa: E402
from autoinit.threads import compute_threads  # noqa: E402
from autoinit.twins import is_twin  # noqa: E402

RULES = ("today", "probe", "rerun_mean", "incumbent")


def measure(task_name: str, seed: int, draws: int) -> dict:
    """One default search on the task's seed, then ``draws`` full trainings of each finalist."""
    task = bench.get_task(task_name)
    data = bench.TaskData(task, seed)
    steps = bench.FULL_STEPS[task_name]
    train_loader, val_loader = data.loaders()
    t0 = time.perf_counter()
    result = run_search(bench.build(task, seed), train_loader, val_dataloader=val_loader,
                        lr=data.lr, seed=seed, device="cpu", threads=1, progress=False,
                        **task.fit_options())
    search_s = time.perf_counter() - t0
    finalists = [{"name": c.name, "trial": c.trial_number, "probe": c.search_score,
                  "reruns": c.scores, "scheme": c.scheme} for c in result.candidates]
    finalists += baselines_left_out(result, {c.name for c in result.candidates}, seed)
    for fin in finalists:
        scheme = fin.pop("scheme")
        fin["scheme"], fin["full"] = scheme.to_dict(), []
        for k in range(draws):
            draw = scheme.seed + k
            model = apply_scheme(bench.build(task, seed), scheme.with_seed(draw))
            res = bench.train(model, data.batches(steps), data.val, data.lr,
                              max(1, steps // 30), seed, data.loop)
            test = bench.final_report(model, data)
            fin["full"].append({"draw": draw, "test_loss": test["loss"], "test_acc": test["acc"],
                                "final_val_loss": res["curve"][-1][1] if res["curve"] else None,
                                "diverged": res["diverged"]})
    return {"chosen": result.chosen, "reason": result.reason, "search_seconds": search_s,
            "selection_ran": result.selection_ran, "probe_steps": result.context.config.steps
            if result.context else None, "train_steps": steps, "finalists": finalists,
            "code": bench.CODE_VERSION}


def baselines_left_out(result: FitResult, in_round: set[str], seed: int) -> list[dict]:
    """The baselines (fixed inits, LSUV) the selection round did not re-run, with their probe
    scores: does the round's pool miss the best full training?"""
    ctx = result.context
    out = []
    for t in sorted(result.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                    key=lambda t: t.value):
        name = t.user_attrs.get("baseline")
        if not name or name in in_round or name in list_presets() or is_twin(t):
            continue
        in_round.add(name)
        plan = ctx.layer_plan if name == "lsuv" else ctx.plan  # LSUV calibrates layer by layer
        scheme = plan.scheme(rules_from_json(t.user_attrs["rules"]), seed)  # the rules it probed
        out.append({"name": name, "trial": t.number, "probe": t.value, "reruns": None,
                    "scheme": scheme, "in_round": False})
    return out


def metric_of(task_name: str, full: dict) -> float | None:
    """The task's metric, oriented so that lower is better (accuracy negated); ``None`` for a
    training that diverged (its chance-level accuracy would read as a result)."""
    if full.get("diverged"):
        return None
    if task_name in bench.LOSS_METRIC:
        return full["test_loss"]
    return None if full["test_acc"] is None else -full["test_acc"]


def picks(fin: list[dict], chosen: str) -> dict[str, int]:
    """The finalist of the round (its index in ``fin``) each rule picks."""
    return {"today": next(i for i, f in enumerate(fin) if f["name"] == chosen),
            "probe": min(range(len(fin)), key=lambda i: fin[i]["probe"]),
            "rerun_mean": min(range(len(fin)), key=lambda i: _mean_or_inf(fin[i]["reruns"])),
            "incumbent": 0}


def _mean_or_inf(xs: list[float]) -> float:
    return statistics.fmean(xs) if all(_ok(x) for x in xs) else float("inf")


def _ok(x: float | None) -> bool:
    return x is not None and x == x and abs(x) != float("inf")


def quality(task_name: str, finalist: dict, own_draw: bool = False) -> float:
    """A finalist's full-training metric, mean over its draws (a diverged draw: +inf); with
    ``own_draw``, that of the scheme's own draw alone (the weights a search hands back)."""
    vals = [metric_of(task_name, f) for f in finalist["full"][: 1 if own_draw else None]]
    return statistics.fmean(v if _ok(v) else float("inf") for v in vals)


def _mean(xs: list[float]) -> str:
    xs = [x for x in xs if x == x]
    return f"{statistics.fmean(xs):.3g}" if xs else "—"


def task_row(task: str, seeds: dict, own_draw: bool = False) -> dict:
    """One task's tallies over its seeds: per rule, the seeds where it picks the round's best
    finalist and its regret against it; the seeds where a baseline left out of the round ends
    better than the round's best (and by how much); the Spearman ρ of the re-run means and of
    the probe scores against the full trainings, over the round's finalists."""
    found = {r: 0 for r in RULES}
    regret: dict[str, list[float]] = {r: [] for r in RULES}
    rho_re, rho_pr, sizes, outside = [], [], [], []
    for rec in seeds.values():
        fin = [f for f in rec["finalists"] if f.get("in_round", True)]
        out = [f for f in rec["finalists"] if not f.get("in_round", True)]
        q = [quality(task, f, own_draw) for f in fin]
        best = min(q)
        sizes.append(len(fin))
        for rule, i in picks(fin, rec["chosen"]).items():
            found[rule] += q[i] == best
            regret[rule].append(q[i] - best)
        q_out = [quality(task, f, own_draw) for f in out]
        if q_out and min(q_out) < best:
            outside.append(best - min(q_out))
        if len(fin) >= 3 and all(_ok(v) for v in q):
            means = [_mean_or_inf(f["reruns"]) for f in fin]
            if all(_ok(m) for m in means):
                rho_re.append(spearmanr(means, q).statistic)
            rho_pr.append(spearmanr([f["probe"] for f in fin], q).statistic)
    return {"n": len(seeds), "sizes": sizes, "found": found, "regret": regret,
            "outside": outside, "rho_reruns": rho_re, "rho_probe": rho_pr}


def report(paths: list[Path]) -> None:
    """Two tables (the scheme's own draw, the mean over the draws), a row per task: the round's
    best finalist found by each rule (seeds), each rule's mean regret against it, the baselines
    left out of the round that end better, and the round's and the probe's rank agreement
    with the full trainings; then each rule against today's, seed by seed."""
    data: dict = {}
    for path in paths:
        for task, seeds in json.loads(path.read_text()).items():
            data.setdefault(task, {}).update(seeds)
    for own in (True, False):
        which = "the scheme's own draw" if own else "mean over the draws"
        print(f"\n### Full trainings: {which}\n")
        print("| task | seeds | round | best of the round found: " + " / ".join(RULES)
              + " | regret vs the round's best: " + " / ".join(RULES)
              + " | a baseline left out of the round beats the round's best (seeds; mean gain) "
              "| ρ re-runs vs full | ρ probe vs full |")
        print("|" + " --- |" * 8)
        totals = {r: 0 for r in RULES}
        versus = {r: [0, 0, 0] for r in RULES[1:]}  # better / same / worse than today's pick
        rhos: dict[str, list[float]] = {"rho_reruns": [], "rho_probe": []}  # per-task means
        for task, seeds in data.items():
            row = task_row(task, seeds, own)
            for r in RULES:
                totals[r] += row["found"][r]
            for r in RULES[1:]:
                for a, b in zip(row["regret"][r], row["regret"]["today"], strict=True):
                    versus[r][0 if a < b else 1 if a == b else 2] += 1
            for key, per_task in rhos.items():
                finite = [x for x in row[key] if x == x]
                per_task += [statistics.fmean(finite)] if finite else []
            out = row["outside"]
            gain = f"{len(out)}; {statistics.fmean(out):.3g}" if out else "0"
            print(f"| {task} | {row['n']} | {statistics.median(row['sizes']):g} | "
                  + " / ".join(str(row["found"][r]) for r in RULES) + " | "
                  + " / ".join(_mean(row["regret"][r]) for r in RULES) + f" | {gain} | "
                  + f"{_mean(row['rho_reruns'])} | {_mean(row['rho_probe'])} |")
        n_all = sum(len(seeds) for seeds in data.values())
        print(f"\nthe round's best found over {n_all} task-seeds: "
              + ", ".join(f"{r} {totals[r]}" for r in RULES) + "; against today's pick "
              "(task-seeds better / same / worse): "
              + ", ".join(f"{r} {v[0]} / {v[1]} / {v[2]}" for r, v in versus.items())
              + f"; ρ over the finalists, mean of the tasks' means: re-runs {_mean(rhos['rho_reruns'])}, "
              f"probe {_mean(rhos['rho_probe'])}")
    print("\nregret: the picked finalist's full-training metric minus the round's best, in the "
          "task's unit (loss or accuracy points; positive = worse); gain: how much better the "
          "best left-out baseline ends than the round's best (same unit; positive = better)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="deep_tanh_mlp")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--draws", type=int, default=3,
                   help="full trainings per finalist: the scheme's own draw and the next ones")
    p.add_argument("--out", type=Path)
    p.add_argument("--report", type=Path, nargs="+", help="print the tables of --out files")
    args = p.parse_args(argv)
    if args.report:
        report(args.report)
        return 0
    if args.out is None:
        p.error("--out is required unless --report is given")
    store = json.loads(args.out.read_text()) if args.out.exists() else {}
    with compute_threads(1):
        for task in args.tasks.split(","):
            for seed in args.seeds.split(","):
                if seed in store.get(task, {}):
                    continue  # resume: measured already
                t0 = time.perf_counter()
                rec = measure(task, int(seed), args.draws)
                store.setdefault(task, {})[seed] = rec
                args.out.write_text(json.dumps(store, indent=1))
                print(f"[{time.strftime('%H:%M:%S')}] {task} seed {seed}: chose {rec['chosen']} "
                      f"of {len(rec['finalists'])} finalists ({time.perf_counter() - t0:.0f} s)",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
