"""The parent run's content, built from a :class:`FitResult`: the baselines-vs-chosen table, its
metrics, its Markdown, and the plot files. Plain data in, plain data (and PNG files) out."""

from __future__ import annotations

import copy
import math
import re
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import optuna
import torch
from mlflow.entities import Metric
from optuna.trial import TrialState
from torch import nn

from autoinit.apply import apply_scheme
from autoinit.diagnose import diagnose
from autoinit.errors import first_line
from autoinit.result import FitResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["comparison", "markdown", "metrics", "plots"]


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _key(name: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", name).strip("_") or "unnamed"


def _baseline_trials(study: optuna.Study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        name = t.user_attrs.get("baseline")
        if name and name not in out:
            out[name] = t.number
    return out


def comparison(result: FitResult) -> dict[str, Any]:
    """The baselines-vs-chosen table as JSON-ready data (non-finite numbers are ``None``).

    Without a selection round (:attr:`~autoinit.result.FitResult.selection_ran`) the rows hold no
    selection scores: the choice was made by the probe scores, which ``score`` then holds."""
    trials = _baseline_trials(result.study)
    ran = result.selection_ran
    reruns = {c.name: c for c in result.candidates} if ran else {}
    rows = []
    for name, score in result.baselines.items():
        c = reruns.get(name)
        rows.append({"name": name, "kind": "baseline", "trial": trials.get(name),
                     "probe_score": _num(score),
                     "selection_scores": [_num(s) for s in c.scores] if c else None,
                     "selection_mean": _num(c.mean) if c else None, "chosen": name == result.chosen})
    for c in result.candidates:
        if c.name not in result.baselines:
            rows.append({"name": c.name, "kind": "search", "trial": c.trial_number,
                         "probe_score": _num(c.search_score),
                         "selection_scores": [_num(s) for s in c.scores] if ran else None,
                         "selection_mean": _num(c.mean) if ran else None,
                         "chosen": c.name == result.chosen})
    base = next((c for c in result.candidates if c.name in result.baselines), None)
    return {
        "study": result.study.study_name,
        "chosen": result.chosen,
        "score": _num(result.score),
        "reason": result.reason,
        "selection_round": ran,
        "best_baseline": {"name": base.name, "selection_mean": _num(base.mean) if ran else None,
                          "score": _num(base.mean)} if base else None,
        "rows": rows,
        "cost": {k: _num(v) for k, v in result.cost.to_dict().items()},
    }


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def markdown(result: FitResult, table: dict[str, Any]) -> str:
    """The table in Markdown, with the reason and the cost (also the run's description)."""
    ran = table["selection_round"]  # without a round, no selection column
    lines = [f"## autoinit search `{table['study']}`", "",
             f"**Chosen:** {table['chosen']} — score {_fmt(table['score'])}", "",
             "| candidate | kind | trial | probe score |" + " selection mean |" * ran + " |",
             "| --- | --- | ---: | ---: |" + " ---: |" * ran + " --- |"]
    for r in table["rows"]:
        mark = "**chosen**" if r["chosen"] else ""
        trial = "" if r["trial"] is None else str(r["trial"])
        mean = f" {_fmt(r['selection_mean'])} |" * ran
        lines.append(f"| {r['name']} | {r['kind']} | {trial} | {_fmt(r['probe_score'])} |"
                     f"{mean} {mark} |")
    cost = result.cost.describe()  # the summary's cost line (interrupted trials, a reuse)
    lines += ["", table["reason"], "", f"{cost[0].upper()}{cost[1:]}."]
    return "\n".join(lines) + "\n"


def metrics(result: FitResult, table: dict[str, Any]) -> list[Metric]:
    """``baseline/<name>``, ``selection/<name>`` (only where a selection round ran),
    ``best_score``, ``improvement`` (the chosen against the best baseline, by the scores that
    chose: the probe scores when no round ran), ``cost/*`` and the score history."""
    now = int(time.time() * 1000)
    values: dict[str, float | None] = {}
    for r in table["rows"]:
        if r["kind"] == "baseline":
            values[f"baseline/{_key(r['name'])}"] = r["probe_score"]
        if r["selection_mean"] is not None:
            values[f"selection/{_key(r['name'])}"] = r["selection_mean"]
    best = _num(result.score)
    values["best_score"] = best
    values["chosen_probe_score"] = next((r["probe_score"] for r in table["rows"] if r["chosen"]), None)
    base = (table["best_baseline"] or {}).get("score")
    if base is not None and best is not None:
        values["best_baseline_score"] = base
        values["improvement"] = base - best
        values["improvement_pct"] = 100 * (base - best) / abs(base) if base else None
    done = result.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    probe_base = [t.value for t in done if t.user_attrs.get("baseline") and _num(t.value) is not None]
    probe_search = [t.value for t in done if not t.user_attrs.get("baseline") and _num(t.value) is not None]
    if probe_base:
        values["probe/best_baseline"] = min(probe_base)
    if probe_search:
        values["probe/best_search"] = min(probe_search)
    if probe_base and probe_search:
        values["probe/improvement"] = min(probe_base) - min(probe_search)
    values.update({f"cost/{k}": v for k, v in table["cost"].items()})
    out = [Metric(k, float(v), now, 0) for k, v in values.items() if v is not None]
    running = math.inf
    for t in sorted(done, key=lambda t: t.number):
        if _num(t.value) is None:
            continue
        running = min(running, t.value)
        out += [Metric("search/score", float(t.value), now, t.number),
                Metric("search/best_so_far", float(running), now, t.number)]
    return out


# ---------------------------------------------------------------- plots


def plots(result: FitResult, model: nn.Module, folder: Path) -> list[str]:
    """Write the parent run's PNG plots into ``folder``; the reasons for those skipped.

    ``model`` is the searched model, initialized with the chosen scheme (it is not changed).
    """
    try:
        from autoinit.integrations import plots as P
    except ImportError as exc:  # matplotlib is optional
        return [f"all plots: {exc}"]
    skipped = []
    for name, make in (("probe_curves", _curves_figure), ("signal_profile", _signal_figure),
                       ("optimization_history", _history_figure),
                       ("param_importances", _importance_figure)):
        try:
            fig = make(result, model, P)
            if fig is not None:
                P.save_png(fig, folder / f"{name}.png")
        except Exception as exc:  # noqa: BLE001 - a plot that cannot be drawn is skipped, named
            skipped.append(f"{name}: {type(exc).__name__}: {first_line(exc)}")
    return skipped


def _curves_figure(result: FitResult, model: nn.Module, P: ModuleType) -> Figure | None:
    by_number = {t.number: t for t in result.study.get_trials(deepcopy=False)}
    curves = {name: by_number[n].user_attrs.get("curve", [])
              for name, n in _baseline_trials(result.study).items()}
    for c in result.candidates:
        if c.name not in curves and (c.name == result.chosen or result.chosen in result.baselines):
            curves[c.name] = by_number[c.trial_number].user_attrs.get("curve", [])
            if result.chosen in result.baselines:
                break  # the best search candidate, for comparison
    return P.probe_curves(curves, chosen=result.chosen)


def _signal_figure(result: FitResult, model: nn.Module, P: ModuleType) -> Figure | None:
    context = result.context
    if context is None or context.batch is None or context.loss is None:
        raise ValueError("the result holds no batch, loss or plan")
    batch, loss, plan, device = context.batch, context.loss, context.plan, context.config.device
    chosen = copy.deepcopy(model).to(device)
    default = apply_scheme(copy.deepcopy(chosen), plan.uniform("pytorch_default", seed=result.scheme.seed))
    diags = []
    for model in (default, chosen):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            diags.append(diagnose(model, batch, loss))
    return P.signal_profile(*diags, chosen_label=f"chosen: {result.chosen}")


def _history_figure(result: FitResult, model: nn.Module, P: ModuleType) -> Figure | None:
    points = []
    for t in result.study.get_trials(deepcopy=False):
        if t.state == TrialState.COMPLETE:
            points.append((t.number, t.value, "baseline" if t.user_attrs.get("baseline") else "search"))
        elif t.state == TrialState.PRUNED and t.intermediate_values:
            last = t.intermediate_values[max(t.intermediate_values)]
            points.append((t.number, last, "pruned"))
    return P.optimization_history(points, title=f"Optimization history: {result.study.study_name}")


def _importance_figure(result: FitResult, model: nn.Module, P: ModuleType) -> Figure | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        importances = optuna.importance.get_param_importances(result.study)
    if not importances:
        raise ValueError("no parameter varied across the complete trials")
    return P.param_importances(importances)
