"""Benchmark of issue 6: every initialization method on every task, trained in full, tested once.

For each task of :mod:`autoinit.tasks` and each seed (paired across methods: the same default
weights to start from and the same order of training batches), every method initializes a copy of
the model, the model is trained with Adam for the task's full budget while the validation loss is
recorded every ``eval_every`` steps, and the test split is evaluated once at the end. Searches and
calibrations (autoinit, LSUV, GradInit, MetaInit, anyinit, the equal-compute controls) see the
training and validation splits only.

Costs are in training-step equivalents (TSE): wall seconds divided by the time per step of the
training loop that follows the initializer in the same run (same model, batch, threads; a bare
Adam loop, evaluations excluded). On a shared machine this unit moves with the load, so it is taken
per method run; the bare loop timed once per seed is kept too (``init_tse_bare``).
R = an initializer's cost in TSE divided by the full training's steps.
Time-to-target = initializer cost + training steps until the validation loss first reaches the
median final validation loss of the best fixed baseline (censored at the budget when never).

Results go to ``<out>/runs/<task>.json`` after every seed (a stopped run keeps what finished,
marked partial), then ``<out>/benchmarks.json``, ``<out>/benchmarks.md`` and
``<out>/bench_<task>.png`` are rebuilt from every file in ``<out>/runs`` (with the hand-written
``<out>/benchmarks_notes.md`` on top when it exists).

Usage:
    python scripts/benchmark.py --smoke --out /tmp/bench            # CI: tiny, 1 seed
    python scripts/benchmark.py --tasks deep_relu_mlp,deep_tanh_mlp --seeds 5 --steps 300
    python scripts/benchmark.py --report-only --out docs             # tables from runs/*.json
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

import numpy as np
import optuna
import torch
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baselines import BASELINES  # noqa: E402

from autoinit.api import fit  # noqa: E402
from autoinit.apply import apply_scheme  # noqa: E402
from autoinit.batches import default_criterion, make_loss  # noqa: E402
from autoinit.evidence import LEARNED_MARGIN, prior_loss  # noqa: E402
from autoinit.loop import TrainLoop  # noqa: E402
from autoinit.plan import ModelPlan  # noqa: E402
from autoinit.search import Selection, run_search  # noqa: E402
from autoinit.settings import DEFAULTS  # noqa: E402
from autoinit.space import SearchSpace, baseline_names, baseline_params, suggest_scheme  # noqa: E402
from autoinit.tasks import Task, get_task, list_tasks  # noqa: E402
from autoinit.threads import compute_threads  # noqa: E402

FIXED = ("pytorch_default", "xavier_normal", "kaiming_normal", "lecun_normal", "orthogonal")
PRESETS = ("dcgan",)  # autoinit's preset baselines, run where they apply (space.baseline_names)
# tasks trained by their own loop (Task.fit_kwargs["train_step"]) run these methods only: the
# external initializers and the controls assume one loss and one optimizer
LOOP_METHODS = FIXED + PRESETS + ("autoinit", "autoinit_budget")
EXTERNAL = ("lsuv", "gradinit", "metainit", "anyinit_analytic", "anyinit_empirical", "fixup",
            "skipinit", "tfixup", "fixup_resnet", "gpt2", "forget_bias", "chrono", "irnn")
SEARCHED = ("autoinit", "autoinit_lr", "autoinit_lean", "autoinit_budget")
# autoinit_lean: a budget meant for R <= 1 against a 1000-step training (the baselines, 4 TPE
# trials, 50-step probes, one re-run of the top search trial and the best baseline at 100 steps)
LEAN = {"n_trials": 10, "probe_steps": 50, "selection": Selection(top=1, seeds=1, steps_factor=2.0)}
CONTROLS = ("default_best_of_n", "default_lr_grid", "default_longer")
# autoinit_proxy (issue 12): autoinit's search on a >= 4x narrower, >= 2x shallower copy of the
# model (the task's factory with these kwargs), its scheme transferred to the model by role group,
# with the budget below (the default one costs more than 1/8 of the full search: the proxies'
# steps are only 3-7x faster on this CPU); --smoke uses the smoke model as its own proxy
PROXY = {"residual_mlp": {"blocks": 8, "width": 32},
         "post_ln_transformer": {"n_layers": 6, "d_model": 16, "n_heads": 2, "ff": 32},
         "vgg_cnn": {"convs_per_stage": 2, "channels": 8}}
PROXY_SEARCH: dict = LEAN
REFERENCE = "preln_reference"  # post-LN tasks only: the same model with norm_first=True
METHODS = FIXED + PRESETS + EXTERNAL + SEARCHED + CONTROLS + (REFERENCE,)
METHODS += ("autoinit_proxy",)
# methods written for one architecture run on the tasks they fit only
ONLY_ON = {REFERENCE: ("post_ln_transformer", "post_ln_transformer_24", "tiny_vit"),
           "fixup_resnet": ("resnet_nonorm",), "gpt2": ("tiny_gpt",),
           "forget_bias": ("lstm_memory", "lstm_adding"), "chrono": ("lstm_memory", "lstm_adding"),
           "irnn": ("relu_rnn_pixel_digits",),
           "autoinit_proxy": tuple(PROXY)}
# full training budgets (the default of --steps): the [compare] steps of studies/<task>.toml for
# the Transformer and the recurrent tasks; 500 for the digits tasks (about 30 epochs; their study
# files compare over 300 steps, after which the held-out loss rises)
FULL_STEPS = {"deep_relu_mlp": 500, "deep_tanh_mlp": 500, "residual_mlp": 500, "vgg_cnn": 500,
              "post_ln_transformer": 1000, "rnn_adding": 2000, "lstm_adding": 2000,
              "dcgan_digits": 1500}
# issue 11: tasks where the initialization is known to matter, reported in their own section with
# steps-to-target and learning-rate robustness (their budgets fit a few minutes on one thread)
NEW_STEPS = {"resnet_nonorm": 200, "post_ln_transformer_24": 200, "lstm_memory": 600,
             "tiny_gpt": 500, "tiny_vit": 300, "relu_rnn_pixel_digits": 600}
FULL_STEPS.update(NEW_STEPS)
# session 9: held-out tasks, never used to design or tune the search, reported in their own
# section (docs/benchmarks_holdout.md) with steps-to-target like issue 11's
HOLDOUT_STEPS = {"gru_pixel_digits": 600, "silu_autoencoder": 500, "conv1d_signals": 400}
FULL_STEPS.update(HOLDOUT_STEPS)
SECTIONED = {**NEW_STEPS, **HOLDOUT_STEPS}  # tasks with a prior loss and steps-to-target
LOSS_METRIC = {"post_ln_transformer", "rnn_adding", "lstm_adding", "dcgan_digits",
               "post_ln_transformer_24", "tiny_gpt", "silu_autoencoder"}  # lower is better
METRIC_NAME = {"dcgan_digits": "test Fréchet distance"}  # default: test loss / test accuracy (%)
LR = 1e-3
# a task trained at another rate: resnet_nonorm at the rate where Kaiming on every layer blows up
TASK_LR = {"resnet_nonorm": 1e-2}


def task_lr(name: str) -> float:
    """The learning rate the benchmark trains task ``name`` at."""
    return TASK_LR.get(name, LR)

# learning-rate robustness: each init also trained at lr/sqrt(10) and lr*sqrt(10) (3 rates spanning
# 10x); a run "trains" when its final validation loss is finite and at least TRAINS_MARGIN below
# the prior loss (the loss of predicting the training targets' frequencies, or their mean)
LR_FACTORS = (10 ** -0.5, 10 ** 0.5)
TRAINS_MARGIN = LEARNED_MARGIN  # 0.10, the margin by which a search's probes learned
# --smoke shrinks every model and data set (CI checks that everything runs, not what it scores)
SMOKE_MODEL = {"deep_relu_mlp": {"depth": 4, "width": 16}, "deep_tanh_mlp": {"depth": 4, "width": 16},
               "residual_mlp": {"blocks": 2, "width": 16}, "vgg_cnn": {"convs_per_stage": 1, "channels": 4},
               "post_ln_transformer": {"n_layers": 2, "d_model": 16, "n_heads": 2, "ff": 16, "max_len": 16},
               "rnn_adding": {"hidden": 8}, "lstm_adding": {"hidden": 8},
               "dcgan_digits": {"z_dim": 4, "channels": 4},
               "resnet_nonorm": {"blocks": 2, "channels": 4},
               "post_ln_transformer_24": {"n_layers": 2, "d_model": 16, "n_heads": 2, "ff": 16,
                                          "max_len": 16},
               "lstm_memory": {"hidden": 8}, "tiny_gpt": {"n_layers": 2, "d_model": 16, "n_heads": 2,
                                                          "max_len": 16},
               "tiny_vit": {"n_layers": 1, "d_model": 16, "n_heads": 2, "ff": 16},
               "gru_pixel_digits": {"hidden": 8}, "relu_rnn_pixel_digits": {"hidden": 8},
               "silu_autoencoder": {"depth": 2, "width": 16},
               "conv1d_signals": {"convs": 2, "channels": 4}}
SMOKE_DATA = {"post_ln_transformer": {"seq_len": 16, "batch_size": 8, "n_train": 64, "n_eval": 16},
              "rnn_adding": {"seq_len": 10, "batch_size": 16, "n_train": 128, "n_eval": 32},
              "lstm_adding": {"seq_len": 10, "batch_size": 16, "n_train": 128, "n_eval": 32},
              "post_ln_transformer_24": {"seq_len": 16, "batch_size": 8, "n_train": 64, "n_eval": 16},
              "tiny_gpt": {"seq_len": 16, "batch_size": 8, "n_train": 64, "n_eval": 16},
              "lstm_memory": {"seq_len": 10, "batch_size": 16, "n_train": 128, "n_eval": 32},
              "conv1d_signals": {"length": 16, "batch_size": 16, "n_train": 128, "n_eval": 32}}


# ----------------------------------------------------------------------------- data and training

def batch_stream(tensors: tuple[torch.Tensor, ...], batch_size: int, seed: int, n: int) -> list:
    """``n`` shuffled training batches (epochs of a seeded permutation, last partial batch dropped)."""
    g = torch.Generator().manual_seed(seed)
    size = len(tensors[0])
    out: list = []
    while len(out) < n:
        perm = torch.randperm(size, generator=g)
        for i in range(0, size - batch_size + 1, batch_size):
            idx = perm[i:i + batch_size]
            out.append(tuple(t[idx] for t in tensors))
            if len(out) == n:
                break
    return out


class TaskData:
    """One task's splits for one seed: the training stream, validation and test sets."""

    def __init__(self, task: Task, seed: int, overrides: dict | None = None) -> None:
        self.task, self.seed, self.overrides = task, seed, overrides or {}
        self.lr = task_lr(task.name)
        train, val = self.loaders()
        self.train_tensors = train.dataset.tensors
        self.batch_size = train.batch_size
        self.val = next(iter(val))
        self._test_loader = lambda: task.loaders(split="test", seed=seed, **self.overrides)[1]
        self._cache: list = []
        opts = task.fit_options()
        # the task's own training loop and final report (the GAN), or None: Adam on the loss
        self.loop = TrainLoop(opts["train_step"], opts["score"], opts.get("make_state")) \
            if "train_step" in opts else None
        self.report = task.report_function()

    def batches(self, n: int) -> list:
        if len(self._cache) < n:
            self._cache = batch_stream(self.train_tensors, self.batch_size, self.seed, n)
        return self._cache[:n]

    def loaders(self) -> tuple[DataLoader, DataLoader]:
        """Fresh (train, val) loaders for a search (never the test split)."""
        return self.task.loaders(split="val", seed=self.seed, **self.overrides)

    def test(self) -> list[torch.Tensor]:
        return next(iter(self._test_loader()))

    def prior_loss(self) -> float | None:
        """The validation loss of a constant prediction fit on the training targets: their
        frequencies (cross-entropy) or their mean (MSE); None for a task with its own loop."""
        if self.loop is not None:
            return None
        return prior_loss([(None, self.train_tensors[-1])], [self.val], None)  # the search's


def evaluate(model: nn.Module, batch: Sequence[torch.Tensor]) -> dict:
    model.eval()
    with torch.no_grad():
        out = model(batch[0])
        loss = float(default_criterion(out, batch[1]))
        acc = None
        if not batch[1].is_floating_point():
            acc = float((out.argmax(-1) == batch[1]).float().mean()) * 100
    model.train()
    return {"loss": loss if math.isfinite(loss) else None, "acc": acc}


def final_report(model: nn.Module, data: TaskData) -> dict:
    """The test split, once: loss and accuracy, or the task's own report (its ``fd`` as loss)."""
    if data.report is None:
        return evaluate(model, data.test())
    model.eval()
    with torch.no_grad():
        rep = data.report(model, [data.test()])
    model.train()
    return {"loss": rep["fd"], "acc": None, "report": rep}


def train(model: nn.Module, batches: list, val: Sequence[torch.Tensor], lr: float, eval_every: int, seed: int,
          loop: TrainLoop | None = None) -> dict:
    """Adam for ``len(batches)`` steps; the validation loss every ``eval_every`` steps (or the
    task's own ``loop``: its step, and its score on the validation batch)."""
    if loop is not None:
        return train_loop(model, batches, val, lr, eval_every, seed, loop)
    loss_fn = make_loss(None)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    curve, train_s, cpu_s, diverged = [], 0.0, 0.0, None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.train()
        for step, batch in enumerate(batches, 1):
            t0, c0 = time.perf_counter(), time.process_time()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model, batch)
            loss.backward()
            opt.step()
            train_s += time.perf_counter() - t0
            cpu_s += time.process_time() - c0
            if not math.isfinite(loss.item()):
                diverged = f"non-finite training loss at step {step}"
                curve.append([step, None, train_s])
                break
            if step % eval_every == 0 or step == len(batches):
                curve.append([step, evaluate(model, val)["loss"], train_s])
    return {"curve": curve, "train_seconds": train_s, "train_cpu_seconds": cpu_s,
            "diverged": diverged, "steps": len(batches) if diverged is None else curve[-1][0]}


def train_loop(model: nn.Module, batches: list, val: Sequence[torch.Tensor], lr: float,
               eval_every: int, seed: int, loop: TrainLoop) -> dict:
    curve, train_s, diverged = [], 0.0, None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.train()
        state = loop.start(model, "adam", lr)
        for step, batch in enumerate(batches, 1):
            t0 = time.perf_counter()
            values = loop.step(model, batch, state)
            train_s += time.perf_counter() - t0
            bad = [k for k, v in values.items() if not math.isfinite(float(v))]
            if bad:
                diverged = f"non-finite {bad[0]} at step {step}"
                curve.append([step, None, train_s])
                break
            if step % eval_every == 0 or step == len(batches):
                value = loop.evaluate(model, [val], seed)
                curve.append([step, value if math.isfinite(value) else None, train_s])
    return {"curve": curve, "train_seconds": train_s, "diverged": diverged,
            "steps": len(batches) if diverged is None else curve[-1][0]}


def bare_step_seconds(model: nn.Module, batches: list, repeats: int = 3, steps: int = 8,
                      loop: TrainLoop | None = None) -> list:
    """Medians of ``repeats`` timings of the bare loop (Adam step, or the task's own step) on a
    copy of ``model``."""
    loss_fn = make_loss(None)
    out = []
    for _ in range(repeats + 1):  # the first round warms up and is dropped
        work = copy.deepcopy(model)
        opt = torch.optim.Adam(work.parameters(), lr=LR) if loop is None else \
            loop.start(work, "adam", LR)
        times = []
        with torch.random.fork_rng(devices=[]):
            for i in range(steps + 1):
                t0 = time.perf_counter()
                if loop is not None:
                    loop.step(work, batches[i % len(batches)], opt)
                    times.append(time.perf_counter() - t0)
                    continue
                opt.zero_grad(set_to_none=True)
                loss_fn(work, batches[i % len(batches)]).backward()
                opt.step()
                times.append(time.perf_counter() - t0)
        out.append(statistics.median(times[1:]))
    return out[1:]


def build(task: Task, seed: int, overrides: dict | None = None) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return task.build_model(**(overrides or {}))


# ----------------------------------------------------------------------------- methods

def probe_loss(model: nn.Module, data: TaskData, lr: float, steps: int, seed: int) -> float:
    res = train(model, data.batches(steps), data.val, lr, steps, seed)
    last = res["curve"][-1][1] if res["curve"] else None
    return math.inf if res["diverged"] or last is None else last


def init_method(method: str, model: nn.Module, data: TaskData, cfg: argparse.Namespace, ctx: dict) -> dict:
    """Initialize ``model`` in place with ``method``; returns facts (``applies``, ``lr``, ...)."""
    seed = data.seed
    if method == "pytorch_default":
        return {"applies": True}
    if method in FIXED:
        apply_scheme(model, ModelPlan.of(model).uniform(method, seed=seed))
        return {"applies": True}
    if method in PRESETS:  # the baseline autoinit queues: the same scheme as its trial
        plan, space = ModelPlan.of(model, data.task.fit_options().get("groups", "role")), SearchSpace()
        if method not in baseline_names(plan):
            return {"applies": False, "reason": f"autoinit does not queue {method} for this model"}
        trial = optuna.trial.FixedTrial(baseline_params(plan, space, method))
        apply_scheme(model, suggest_scheme(trial, plan, space, data.lr, seed)[0])
        return {"applies": True}
    if method in EXTERNAL:
        budget = {"gradinit": cfg.gradinit_budget, "metainit": cfg.metainit_budget}.get(method)
        rec = BASELINES[method](model, data.batches(cfg.init_batches), make_loss(None), seed=seed,
                                budget=budget)
        facts = {k: v for k, v in rec.items() if isinstance(v, str | int | float | bool)}
        # the baseline's own record (its lr is its meta-optimizer's, not the training's) kept apart
        return {"applies": bool(rec.get("applies", True)), "reason": rec.get("reason", ""),
                "baseline_record": facts}
    if method in SEARCHED:
        return search(method, model, data, cfg)
    if method == "autoinit_proxy":
        return proxy_search(model, data, cfg)
    if method == REFERENCE:
        if data.task.name not in ONLY_ON[REFERENCE]:
            return {"applies": False, "reason": "reference for the post-LN Transformer tasks only"}
        for layer in model.layers:
            layer.norm_first = True
        return {"applies": True, "note": "same model and init with norm_first=True (pre-LN)"}
    return control(method, model, data, cfg, ctx)


def search(method: str, model: nn.Module, data: TaskData, cfg: argparse.Namespace) -> dict:
    train_loader, val_loader = data.loaders()
    kw = {"n_trials": cfg.n_trials}
    if cfg.probe_steps != DEFAULTS.probe_steps:  # the default's length is autoinit's to lengthen
        kw["probe_steps"] = cfg.probe_steps
    if method == "autoinit_lean" and not cfg.smoke:
        kw.update(LEAN)
    if method == "autoinit_budget":  # the user's training stated, every other option default
        kw = {"train_steps": cfg.steps}
    if cfg.smoke:
        kw.update(val_batches=1)
        if method != "autoinit_budget":  # its plan sizes the round to the (smoke) training
            kw.update(selection=Selection(top=1, seeds=1, steps_factor=1.0))
    kw.update(data.task.fit_options())  # the task's own loop and groups, if any
    result = run_search(model, train_loader, val_dataloader=val_loader, lr=data.lr, seed=data.seed,
                        search_lr=method == "autoinit_lr", device="cpu", threads=cfg.threads,
                        progress=False, **kw)
    lr = data.lr
    if method == "autoinit_lr":
        chosen = [c for c in result.candidates if c.name == result.chosen]
        if chosen:
            lr = float(result.study.trials[chosen[0].trial_number].params.get("lr", data.lr))
    # the chosen scheme as its file holds it (InitScheme.from_dict replays it), for the reader
    rec = {"applies": True, "lr": lr, "chosen": result.chosen, "reason": result.reason,
           "scheme": result.scheme.to_dict(), "search_cost": result.cost.to_dict(),
           "search_R": result.cost.ratio(cfg.steps)}
    if result.budget is not None:
        rec["budget"] = {k: v for k, v in vars(result.budget).items()}
        rec["budget_code"] = CODE_VERSION
    return rec


def _code_version() -> str:
    """The commit the search ran on (and whether the tree had changes)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "autoinit"], cwd=root, text=True,
                               capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


CODE_VERSION = _code_version()  # read once: the code this process imported


def proxy_search(model: nn.Module, data: TaskData, cfg: argparse.Namespace) -> dict:
    """autoinit on the task's proxy (:data:`PROXY`), transferred to ``model`` by role group; the
    cost in ``model``'s step time."""
    kwargs = cfg.model_overrides if cfg.smoke else PROXY[data.task.name]
    proxy = build(data.task, data.seed, {**cfg.model_overrides, **kwargs})
    train_loader, val_loader = data.loaders()
    kw = {"n_trials": cfg.n_trials, "probe_steps": cfg.probe_steps,
          **({} if cfg.smoke else PROXY_SEARCH)}
    if cfg.smoke:
        kw.update(selection=Selection(top=1, seeds=1, steps_factor=1.0), val_batches=1)
    kw.update(data.task.fit_options())
    result = fit(model, train_loader, proxy=proxy, mlflow=False, val_dataloader=val_loader,
                 lr=data.lr, seed=data.seed, device="cpu", threads=cfg.threads, progress=False,
                 **kw)
    rep = result.proxy
    return {"applies": True, "chosen": result.chosen, "reason": result.reason,
            "scheme": result.scheme.to_dict(), "search_cost": result.cost.to_dict(),
            "search_R": result.cost.ratio(cfg.steps),
            "proxy": {"kwargs": kwargs, "search": {k: str(v) for k, v in PROXY_SEARCH.items()},
                      "parameters": rep.proxy_parameters, "model_parameters": rep.model_parameters,
                      "proxy_step_seconds": rep.proxy_step_seconds,
                      "model_step_seconds": rep.model_step_seconds, "mapping": rep.describe()}}


def control(method: str, model: nn.Module, data: TaskData, cfg: argparse.Namespace, ctx: dict
            ) -> dict:
    """Equal-compute controls: PyTorch's default given the compute of the autoinit search."""
    budget = ctx.get("autoinit_tse")
    if budget is None:
        return {"applies": False, "reason": "autoinit did not run for this seed (no budget to match)"}
    if method == "default_longer":
        extra = round(budget) if cfg.max_extra_steps is None else min(round(budget), cfg.max_extra_steps)
        return {"applies": True, "extra_steps": extra,
                "note": f"trained {cfg.steps} + {extra} steps (R = {budget / cfg.steps:.2f})"}
    n = int(min(cfg.max_n, max(2, round(budget / cfg.probe_steps))))
    if method == "default_best_of_n":
        scores = []
        for i in range(n):
            cand = build(data.task, 1000 * (data.seed + 1) + i, cfg.model_overrides)
            scores.append(probe_loss(cand, data, data.lr, cfg.probe_steps, data.seed))
        best = int(np.argmin(scores))
        chosen = build(data.task, 1000 * (data.seed + 1) + best, cfg.model_overrides)
        model.load_state_dict(chosen.state_dict())
        return {"applies": True, "n": n, "chosen_seed_index": best}
    lrs = np.geomspace(data.lr / 10, data.lr * 10, n).tolist()
    scores = [probe_loss(copy.deepcopy(model), data, lr, cfg.probe_steps, data.seed) for lr in lrs]
    return {"applies": True, "n": n, "lr": lrs[int(np.argmin(scores))], "grid": lrs}


def run_method(method: str, base: nn.Module, data: TaskData, cfg: argparse.Namespace, ctx: dict,
               step_s: float) -> dict:
    model = copy.deepcopy(base)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        rec = init_method(method, model, data, cfg, ctx)
    except Exception as exc:  # noqa: BLE001 - a method that breaks on a task is reported, not fatal
        return {"applies": False, "reason": f"error: {type(exc).__name__}: {str(exc)[:300]}",
                "traceback": traceback.format_exc()[-2000:]}
    init_s, init_cpu = time.perf_counter() - t0, time.process_time() - c0
    if not rec.get("applies", True):
        return rec
    rec.update(applies=True, init_seconds=init_s, init_tse_bare=init_s / step_s)
    steps = cfg.steps + rec.get("extra_steps", 0)
    start = copy.deepcopy(model) if cfg.lr_robustness and method not in CONTROLS else None
    res = train(model, data.batches(steps), data.val, rec.get("lr", data.lr), cfg.eval_every,
                data.seed, data.loop)
    if start is not None:
        rec["lr_robustness"] = lr_robustness(start, data, cfg, rec.get("lr", data.lr), res)
    test = final_report(model, data)  # the test split, once
    # The TSE unit: this run's own training time per step, measured right after the initializer
    # (the machine is shared, so a per-seed bare timing can be minutes and a different load away).
    unit = res["train_seconds"] / max(1, res["steps"])
    if "report" in test:  # the task's own (the GAN: classes covered, collapsed)
        rec["report"] = test["report"]
        rec["collapsed"] = bool(test["report"]["collapsed"])
    rec.update(res, test_loss=test["loss"], test_acc=test["acc"], step_seconds=unit,
               init_tse=init_s / unit, total_tse=init_s / unit + res["steps"])
    if res.get("train_cpu_seconds"):  # the same in CPU seconds, steadier than wall on a busy machine
        rec.update(init_cpu_seconds=init_cpu,
                   init_cpu_tse=init_cpu * res["steps"] / res["train_cpu_seconds"])
    if method == "autoinit":
        ctx["autoinit_tse"] = rec["init_tse"]
    return rec


def lr_robustness(start: nn.Module, data: TaskData, cfg: argparse.Namespace, lr: float, main: dict
                  ) -> list[dict]:
    """Final validation losses of the same initialized weights trained at ``lr`` (the main run)
    and at ``lr`` times each of :data:`LR_FACTORS`, on the same batches."""
    def final(res: dict) -> dict:
        value = res["curve"][-1][1] if res["curve"] else None
        return {"final_val_loss": None if res["diverged"] else value, "diverged": res["diverged"]}

    out = [{"factor": 1.0, "lr": lr, **final(main)}]
    for factor in LR_FACTORS:
        res = train(copy.deepcopy(start), data.batches(cfg.steps), data.val, lr * factor, cfg.steps,
                    data.seed, data.loop)
        out.append({"factor": factor, "lr": lr * factor, **final(res)})
    return sorted(out, key=lambda r: r["factor"])


# ----------------------------------------------------------------------------- the run

def methods_for(task: str, methods: list[str]) -> list[str]:
    out = [m for m in methods if m not in ONLY_ON or task in ONLY_ON[m]]
    if "train_step" in get_task(task).fit_kwargs:
        out = [m for m in out if m in LOOP_METHODS]
    queued = baseline_names(ModelPlan.of(build(get_task(task), 0)))  # presets where queued
    # controls need autoinit's measured cost of the same seed: run autoinit first
    return sorted((m for m in out if m not in PRESETS or m in queued),
                  key=lambda m: (m in CONTROLS, METHODS.index(m)))


def run_task(name: str, cfg: argparse.Namespace, save: Callable[[dict], None] | None = None,
             previous: dict | None = None) -> dict:
    """Every seed of one task; ``save(result)`` is called after each seed (partial results).

    With ``previous`` (the task's earlier result, same training length) the seeds and methods it
    holds are kept and only the missing ones run: a stopped run resumes, a new method is added.
    """
    task = get_task(name)
    out = previous or {"task": name, "summary": task.summary, "steps": cfg.steps,
                       "eval_every": cfg.eval_every,
                       "metric": METRIC_NAME.get(name, "test loss" if name in LOSS_METRIC
                                                 else "test accuracy (%)"),
                       "model_kwargs": {**task.model_kwargs, **cfg.model_overrides},
                       "data_kwargs": {**task.data_kwargs, **cfg.data_overrides}, "seeds": {}}
    for seed in cfg.seed_list or range(cfg.seeds):
        runs = out["seeds"].get(str(seed)) or {"methods": {}}
        todo = [m for m in methods_for(name, cfg.methods) if m not in runs["methods"]]
        if not todo:
            continue
        data = TaskData(task, seed, cfg.data_overrides)
        if name in SECTIONED:
            out.update(lr=data.lr, prior_val_loss=data.prior_loss())
        base = build(task, seed, cfg.model_overrides)
        runs.setdefault("bare_step_seconds", bare_step_seconds(base, data.batches(16),
                                                               loop=data.loop))
        step_s = statistics.median(runs["bare_step_seconds"])
        earlier = runs["methods"].get("autoinit", {})
        ctx: dict = {"autoinit_tse": earlier["init_tse"]} if earlier.get("applies") else {}
        for method in todo:
            t0 = time.perf_counter()
            runs["methods"][method] = run_method(method, base, data, cfg, ctx, step_s)
            rec = runs["methods"][method]
            print(f"[{time.strftime('%H:%M:%S')}] {name} seed {seed} {method}: "
                  f"{_brief(rec)} ({time.perf_counter() - t0:.1f} s)", flush=True)
        out["seeds"][str(seed)] = runs
        out["complete"] = len(out["seeds"]) >= cfg.seeds
        if save is not None:
            save(out)
    return out


def _previous(out: Path, name: str, steps: int) -> dict | None:
    """The task's earlier result for ``--resume`` (its environment kept under ``earlier_runs``)."""
    path = out / "runs" / f"{name}.json"
    if not path.exists():
        return None
    result = json.loads(path.read_text())
    if result["steps"] != steps:
        raise SystemExit(f"--resume: {path} holds {result['steps']}-step trainings, this run "
                         f"asks for {steps}; pass --steps {result['steps']} or move the file")
    earlier = result.pop("earlier_runs", []) + [result.pop("environment", None)]
    result.pop("config", None)
    result["earlier_runs"] = [e for e in earlier if e]
    return result


def _brief(rec: dict) -> str:
    if not rec.get("applies"):
        return f"n/a ({rec.get('reason', '')[:80]})"
    acc = f", test acc {rec['test_acc']:.1f}" if rec.get("test_acc") is not None else ""
    return f"test loss {rec['test_loss']}{acc}, init {rec['init_tse']:.0f} TSE"


def environment(args: list[str]) -> dict:
    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    return {"threads": torch.get_num_threads(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "load_average_at_start": list(os.getloadavg()), "python": platform.python_version(),
            "platform": platform.platform(),
            "versions": {p: version(p) for p in ("torch", "optuna", "numpy", "lsuv", "anyinit",
                                                 "scikit-learn", "torch-autoinit")},
            "command": "python scripts/benchmark.py " + " ".join(args),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


# ----------------------------------------------------------------------------- statistics and report

def median_ci(values: list[float], n_boot: int = 2000) -> tuple[float, float, float] | None:
    vals = np.array([v for v in values if v is not None], dtype=float)
    if len(vals) == 0:
        return None
    rng = np.random.default_rng(0)
    boots = np.median(rng.choice(vals, size=(n_boot, len(vals)), replace=True), axis=1)
    return float(np.median(vals)), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def summarize(result: dict) -> dict:
    """Per method: medians and intervals over seeds, costs and time-to-target."""
    seeds = list(result["seeds"].values())
    methods = sorted({m for s in seeds for m in s["methods"]}, key=METHODS.index)
    lower = result["task"] in LOSS_METRIC
    recs = {m: [s["methods"][m] for s in seeds if m in s["methods"]] for m in methods}

    def final_val(r: dict) -> float | None:
        return r["curve"][-1][1] if r.get("applies") and r["curve"] else None

    fixed = {m: median_ci([final_val(r) if final_val(r) is not None else math.inf for r in recs[m]])
             for m in FIXED + PRESETS if m in recs and any(r.get("applies") for r in recs[m])}
    best_fixed = min(fixed, key=lambda m: fixed[m][0]) if fixed else None
    target = fixed[best_fixed][0] if best_fixed else None
    rows = {}
    for m, rs in recs.items():
        ok = [r for r in rs if r.get("applies")]
        if not ok:
            rows[m] = {"applies": False, "reason": rs[0].get("reason", "") if rs else "not run"}
            continue
        metric = [r["test_loss"] if lower else r["test_acc"] for r in ok]
        if lower:
            metric = [math.inf if v is None else v for v in metric]
        ttt, censored = [], 0
        for r in ok:
            hit = next((s for s, v, _ in r["curve"] if v is not None and target is not None
                        and v <= target), None)
            censored += hit is None
            ttt.append(r["init_tse"] + (hit if hit is not None else r["steps"]))
        rows[m] = {"applies": True, "n": len(ok), "metric": median_ci(metric),
                   "val_loss": median_ci([final_val(r) if final_val(r) is not None else math.inf
                                          for r in ok]),
                   "init_tse": median_ci([r["init_tse"] for r in ok]),
                   "total_tse": median_ci([r["total_tse"] for r in ok]),
                   # default_longer's extra compute is its extra training steps
                   "R": statistics.median(r["init_tse"] + r.get("extra_steps", 0) for r in ok)
                   / result["steps"],
                   "time_to_target_tse": median_ci(ttt), "censored": censored,
                   "diverged": sum(r.get("diverged") is not None for r in ok)}
        if any("collapsed" in r for r in ok):  # the task's own report says so (the GAN)
            rows[m]["collapsed"] = sum(bool(r.get("collapsed")) for r in ok)
        if len(ok) < len(rs):
            rows[m]["partial_reason"] = next(r.get("reason") for r in rs if not r.get("applies"))
    return {"best_fixed": best_fixed, "target_val_loss": target, "methods": rows,
            "lower_is_better": lower}


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:.4f}"


def _fmt(ci: tuple[float, float, float] | None, digits: int = 1) -> str:
    if ci is None:
        return "—"
    m, lo, hi = ci
    if not math.isfinite(m):
        return "diverged"
    f = f"{{:.{digits}f}}"
    return f"{f.format(m)} [{f.format(lo)}, {f.format(hi)}]"


def task_table(result: dict, summ: dict) -> list[str]:
    digits = 4 if summ["lower_is_better"] else 1
    partial = "" if result.get("complete", True) else (
        f"**Partial: the run stopped after {len(result['seeds'])} of {result['config']['seeds']} seeds.** ")
    lines = [f"### {result['task']}", "", partial + f"{result['summary']} (model "
             f"{result['model_kwargs']}, data {result['data_kwargs']}). Full training: "
             f"{result['steps']} {_training(result)}, {len(result['seeds'])} seeds; metric: "
             f"{result['metric']} "
             f"({'lower' if summ['lower_is_better'] else 'higher'} is better). Target for time-to-"
             f"target: {summ['best_fixed']}'s median final validation loss {_num(summ['target_val_loss'])}.",
             "", f"| method | {result['metric']} median [95% CI] | final val loss | init cost (TSE) | R "
             "| total compute (TSE) | time to target (TSE, incl. init) | notes |", "|" + " --- |" * 8]
    for m, row in summ["methods"].items():
        if not row["applies"]:
            lines.append(f"| {m} | n/a | | | | | | {row['reason'][:120].replace('|', '/')} |")
            continue
        notes = []
        if row["censored"]:
            notes.append(f"{row['censored']}/{row['n']} never reached the target (censored)")
        if row["diverged"]:
            notes.append(f"{row['diverged']} diverged")
        if "collapsed" in row:
            notes.append(f"collapsed on {row['collapsed']}/{row['n']} seeds")
        if row.get("partial_reason"):
            notes.append(f"some seeds n/a: {row['partial_reason'][:80]}")
        lines.append(f"| {m} | {_fmt(row['metric'], digits)} | {_fmt(row['val_loss'], 3)} | "
                     f"{_fmt(row['init_tse'], 0)} | {row['R']:.2f} | {_fmt(row['total_tse'], 0)} | "
                     f"{_fmt(row['time_to_target_tse'], 0)} "
                     f"| {'; '.join(notes).replace('|', '/')} |")
    return lines


def _training(result: dict) -> str:
    if "train_step" in get_task(result["task"]).fit_kwargs:
        return "steps of the task's own training loop"
    return f"Adam steps at lr {result.get('lr', LR):g}"


def summary_table(results: dict, summaries: dict) -> list[str]:
    lines = ["| task | seeds | metric | PyTorch default | best fixed baseline | best other initializer "
             "| best equal-compute control | autoinit | autoinit + lr | autoinit lean | autoinit R "
             "| lean R | autoinit vs best other | lean vs best other |",
             "|" + " --- |" * 14]
    for name, summ in summaries.items():
        rows, lower = summ["methods"], summ["lower_is_better"]
        digits = 4 if lower else 1

        def cell(m: str | None, rows: dict = rows, digits: int = digits) -> str:
            row = rows.get(m)
            return f"{_fmt(row['metric'], digits)}" if row and row["applies"] else "not run"

        def key(m: str, rows: dict = rows, lower: bool = lower) -> float:
            v = rows[m]["metric"][0]
            return v if lower else -v

        def best(group: Sequence[str], rows: dict = rows, key: Callable[[str], float] = key
                 ) -> str | None:
            ms = [m for m in group if m in rows and rows[m]["applies"]]
            return min(ms, key=key) if ms else None

        fixed = FIXED + PRESETS  # a preset (dcgan) is a fixed init too, where it runs
        best_fixed, best_other, best_ctrl = best(fixed), best(fixed + EXTERNAL), best(CONTROLS)
        auto, lean = rows.get("autoinit", {}), rows.get("autoinit_lean", {})
        r = f"{auto['R']:.2f}" if auto.get("applies") else "—"
        r_lean = f"{lean['R']:.2f}" if lean.get("applies") else "—"
        lines.append(f"| {name} | {len(results[name]['seeds'])} | {results[name]['metric']} | "
                     f"{cell('pytorch_default')} | {best_fixed}: {cell(best_fixed)} | "
                     f"{best_other}: {cell(best_other)} | "
                     f"{f'{best_ctrl}: {cell(best_ctrl)}' if best_ctrl else 'not run'} | "
                     f"{cell('autoinit')} | {cell('autoinit_lr')} | {cell('autoinit_lean')} | {r} | "
                     f"{r_lean} | {_versus(auto, rows.get(best_other), lower)} | "
                     f"{_versus(lean, rows.get(best_other), lower)} |")
    return lines


BAR = FIXED + PRESETS + ("lsuv", "anyinit_analytic", "anyinit_empirical")  # issue 11's bar
COMPETITORS = tuple(m for m in EXTERNAL if m not in BAR)  # from the papers: Fixup, GradInit...


def glance_table(results: dict, summaries: dict, sets: dict[str, list[str]]) -> list[str]:
    """One row per task: autoinit and the budgeted search against the best of the fixed inits,
    LSUV and anyinit (by median), and against the best competitor from the papers."""
    lines = ["| task | set | metric | best of the fixed inits, LSUV, anyinit | autoinit | "
             "autoinit vs it (paired seeds better / equal / worse) | best competitor | autoinit vs "
             "it | budgeted search (`train_steps`) | budgeted vs the best baseline | R: autoinit "
             "/ budgeted |", "|" + " --- |" * 11]
    for label, tasks in sets.items():
        for name in tasks:
            summ, result = summaries[name], results[name]
            rows, lower = summ["methods"], summ["lower_is_better"]
            digits = 4 if lower else 1

            def best(group: Sequence[str], rows: dict = rows, lower: bool = lower) -> str | None:
                ms = [m for m in group if rows.get(m, {}).get("applies")]
                return min(ms, key=lambda m: rows[m]["metric"][0] * (1 if lower else -1)) \
                    if ms else None

            def cell(m: str | None, rows: dict = rows, digits: int = digits) -> str:
                row = rows.get(m or "", {})
                return f"{_fmt(row['metric'], digits)}" if row.get("applies") else "—"

            base, rival = best(BAR), best(COMPETITORS)
            auto, budget = rows.get("autoinit", {}), rows.get("autoinit_budget", {})
            pairs = paired_counts(result, "autoinit", base, lower) if base else None
            r = " / ".join(f"{row['R']:.2g}" if row.get("applies") else "—" for row in (auto, budget))
            lines.append(
                f"| {name} | {label} | {result['metric']} | {base}: {cell(base)} | "
                f"{cell('autoinit')} | {_versus(auto, rows.get(base), lower)}"
                f"{f' ({pairs[0]} / {pairs[1]} / {pairs[2]})' if pairs else ''} | "
                f"{f'{rival}: {cell(rival)}' if rival else '—'} | "
                f"{_versus(auto, rows.get(rival), lower) if rival else '—'} | "
                f"{cell('autoinit_budget')} | {_versus(budget, rows.get(base), lower)} | {r} |")
    return [line.replace(" (intervals overlap)", "") for line in lines] + ["", _tally(lines)]


def _tally(lines: list[str]) -> str:
    """How many tasks each comparison of :func:`glance_table` calls better, tie and worse."""
    cells = [line.split(" | ") for line in lines[2:]]
    columns = {"autoinit against the best baseline": 5, "autoinit against the best competitor": 7,
               "the budgeted search against the best baseline": 9}
    parts = []
    for what, i in columns.items():
        verdicts = [c[i].split(" (")[0] for c in cells]
        parts.append(f"{what}: better on {verdicts.count('better')}, tie on "
                     f"{sum(v.startswith('tie') for v in verdicts)}, worse on "
                     f"{verdicts.count('worse')} of {len(verdicts) - verdicts.count('—')} tasks")
    return "In all: " + "; ".join(parts) + "."


def paired_counts(result: dict, a: str, b: str, lower: bool) -> tuple[int, int, int] | None:
    """Seeds where ``a``'s test metric is better than, equal to and worse than ``b``'s."""
    key = "test_loss" if lower else "test_acc"
    out = [0, 0, 0]
    for record in result["seeds"].values():
        ra, rb = record["methods"].get(a, {}), record["methods"].get(b, {})
        if not (ra.get("applies") and rb.get("applies")) or ra.get(key) is None or rb.get(key) is None:
            continue
        diff = (ra[key] - rb[key]) * (1 if lower else -1)
        out[0 if diff < 0 else 1 if diff == 0 else 2] += 1
    return tuple(out) if sum(out) else None  # type: ignore[return-value]


def _versus(a: dict, b: dict | None, lower: bool) -> str:
    """better / tie (95 % intervals overlap) / worse, for a's metric against b's."""
    if not a.get("applies") or not b or not b.get("applies"):
        return "—"
    (_, alo, ahi), (_, blo, bhi) = a["metric"], b["metric"]
    if ahi >= blo and bhi >= alo:
        return "tie (intervals overlap)"
    return "better" if (ahi < blo) == lower else "worse"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    seeds = list(result["seeds"].values())
    methods = sorted({m for s in seeds for m in s["methods"]}, key=METHODS.index)
    for i, m in enumerate(methods):
        rs = [s["methods"][m] for s in seeds if s["methods"].get(m, {}).get("applies")]
        if not rs:
            continue
        n = min(len(r["curve"]) for r in rs)
        if n == 0:
            continue
        steps = np.array([p[0] for p in rs[0]["curve"][:n]], dtype=float)
        vals = np.array([[p[1] if p[1] is not None else np.nan for p in r["curve"][:n]] for r in rs])
        med = np.nanmedian(vals, axis=0) if np.isfinite(vals).any() else vals[0]
        style = "-" if m in SEARCHED else ("--" if m in FIXED + PRESETS else ":")
        color = {"autoinit": "black", "autoinit_lr": "red", "autoinit_lean": "blue"}.get(
            m, plt.cm.tab20(i % 20))
        kw = {"label": m, "linestyle": style, "color": color, "linewidth": 2.6 if m in SEARCHED else 1.4}
        axes[0].plot(steps, med, **kw)
        axes[1].plot(steps + statistics.median(r["init_tse"] for r in rs), med, **kw)
    axes[0].set_xlabel("training step")
    axes[1].set_xlabel("training-step equivalents, initializer cost included")
    for ax in axes:
        what = METRIC_NAME.get(result["task"], "test loss").replace("test ", "validation ")
        ax.set_ylabel(f"{what} (median over seeds)")
        ax.set_yscale("log")
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle(f"{result['task']}: {len(seeds)} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(out: Path) -> None:
    files = sorted((out / "runs").glob("*.json"))
    results = {}
    for f in files:
        r = json.loads(f.read_text())
        results[r["task"]] = r
    order = [t for t in FULL_STEPS if t in results and t not in SECTIONED]
    new = [t for t in NEW_STEPS if t in results]
    held = [t for t in HOLDOUT_STEPS if t in results]
    summaries = {t: summarize(results[t]) for t in order + new + held}
    md = ["# Benchmarks (issue 6)", "", "Generated by `scripts/benchmark.py` from `runs/*.json`; "
          "every number below was measured in the run recorded with it.", "",
          "## At a glance", "",
          "Every task, test metric medians over the seeds with bootstrap 95 % intervals; "
          "\"better\" and \"worse\" mean disjoint intervals, \"tie\" overlapping ones. With 5 "
          "seeds an interval is the range of the 5 values, so \"better\" means every seed of one "
          "method beats every seed of the other. The best baseline is the best by median of the "
          "five fixed inits, the task's preset (dcgan), LSUV and anyinit (issue 11's bar); the "
          "competitors are the methods from the papers that apply (GradInit, MetaInit, Fixup, "
          "T-Fixup, GPT-2's init, chrono, IRNN...). R: the search's cost in trainings of the task, "
          "median over seeds. The sections below hold the details, the runs and what they mean.",
          ""] + glance_table(results, summaries, {"issue 6": order, "issue 11": new,
                                                   "held out": held}) + [""]
    notes = out / "benchmarks_notes.md"  # hand-written analysis, kept when the tables are rebuilt
    if notes.exists():
        md += ["## Session by session", "", notes.read_text().strip(), ""]
    md += ["## Runs", ""]
    runs = [(t, env) for t in order
            for env in results[t].get("earlier_runs", []) + [results[t]["environment"]]]
    for t, env in runs:
        md.append(f"- `{t}`: `{env['command']}` — {env['threads']} torch thread(s), {env['cpu']} "
                  f"({env['cpu_count']} cores, load {env['load_average_at_start'][0]:.1f} at start), "
                  f"torch {env['versions']['torch']}, optuna {env['versions']['optuna']}, lsuv "
                  f"{env['versions']['lsuv']}, anyinit {env['versions']['anyinit']}, started "
                  f"{env['started']}")
    md += ["", "## Summary", ""] + summary_table(results, {t: summaries[t] for t in order}) + [
        "", "## Per task", ""]
    for t in order:
        plot(results[t], out / f"bench_{t}.png")
        md += task_table(results[t], summaries[t]) + ["", f"![{t}](bench_{t}.png)", ""]
    if new:
        md += new_tasks_section(out, results, summaries, new, "New tasks (issue 11)",
                                "benchmarks_issue11_notes.md")
    if held:
        md += new_tasks_section(out, results, summaries, held, "Held-out tasks (session 9)",
                                "benchmarks_holdout.md")
    (out / "benchmarks.md").write_text("\n".join(md) + "\n")
    payload = {"format": "autoinit-benchmarks/1", "tasks": {
        t: {"summary": _finite(summaries[t]), "environment": results[t]["environment"],
            "config": results[t]["config"], "run_file": f"runs/{t}.json"} for t in order + new + held}}
    (out / "benchmarks.json").write_text(json.dumps(payload, indent=1))


# ----------------------------------------------------------------------------- issue 11's section

def trains(run: dict, prior: float | None) -> bool | None:
    """Whether one training "trains": a finite final validation loss at least TRAINS_MARGIN below
    the prior loss (None when the task has no prior loss)."""
    if prior is None:
        return None
    value = run["final_val_loss"]
    return value is not None and math.isfinite(value) and value <= (1 - TRAINS_MARGIN) * prior


def robustness_summary(result: dict, summ: dict) -> None:
    """Adds to each method of ``summ`` (an issue-11 task): steps to target (training only, censored
    at the budget), how many seeds reached it, and how many seeds train at each learning rate.

    The target is the best fixed init's median final validation loss, or the "trains" threshold
    ``(1 - TRAINS_MARGIN) * prior`` where that loss is above it (no fixed init trains: reaching
    the prior loss says nothing); time to target (TSE) is recomputed with it."""
    prior, target = result.get("prior_val_loss"), summ["target_val_loss"]
    if prior is not None and target is not None and target > (1 - TRAINS_MARGIN) * prior:
        target = (1 - TRAINS_MARGIN) * prior
        summ["target_val_loss"], summ["target_rule"] = target, "the trains threshold"
    for m, row in summ["methods"].items():
        ok = [s["methods"][m] for s in result["seeds"].values()
              if s["methods"].get(m, {}).get("applies")]
        if not row["applies"] or not ok:
            continue
        hits = [next((st for st, v, _ in r["curve"] if v is not None and target is not None
                      and v <= target), None) for r in ok]
        steps = [r["steps"] if h is None else h for h, r in zip(hits, ok, strict=True)]
        row["steps_to_target"] = median_ci(steps)
        row["time_to_target_tse"] = median_ci([r["init_tse"] + st for st, r in zip(steps, ok, strict=True)])
        row["reached_target"] = sum(h is not None for h in hits)
        runs = [r["lr_robustness"] for r in ok if "lr_robustness" in r]
        if not runs or prior is None:
            continue
        row["trains_by_factor"] = {f"{run['factor']:.3g}": sum(bool(trains(rs[i], prior)) for rs in runs)
                                   for i, run in enumerate(runs[0])}
        row["rates_that_train"] = statistics.median(sum(bool(trains(r, prior)) for r in rs)
                                                    for rs in runs)
        row["lr_seeds"] = len(runs)


def new_tasks_section(out: Path, results: dict, summaries: dict, tasks: list[str], title: str,
                      notes_file: str) -> list[str]:
    """A section of tasks reported with steps-to-target and learning-rate robustness, under
    ``title``, with the hand-written ``notes_file`` (kept when the tables are rebuilt) on top."""
    for t in tasks:
        robustness_summary(results[t], summaries[t])
    md = ["", f"## {title}", ""]
    notes = out / notes_file
    if notes.exists():
        md += [notes.read_text().strip(), ""]
    md += [f"A training **trains** when its final validation loss is finite and at least "
           f"{TRAINS_MARGIN:.0%} below the prior loss (the validation loss of predicting the "
           f"training targets' frequencies). Learning-rate robustness: the same initialized weights "
           f"also trained at lr/√10 and lr·√10 (3 rates spanning 10×) on the same batches. Steps to "
           f"target: training steps until the validation loss first reaches the best fixed init's "
           f"median final validation loss, or the trains threshold where no fixed init trains "
           f"(censored at the budget); the TSE column adds the initializer's cost (for a search: the "
           f"whole search).", "", "### Runs", ""]
    for t in tasks:
        for env in results[t].get("earlier_runs", []) + [results[t]["environment"]]:
            md.append(f"- `{t}`: `{env['command']}` — {env['threads']} torch thread(s), "
                      f"{env['cpu_count']} cores, load {env['load_average_at_start'][0]:.1f} at "
                      f"start, torch {env['versions']['torch']}, started {env['started']}")
    md += ["", f"### Summary: {title}", "",
           "| task | seeds | lr | metric | prior loss | best fixed init | competitor | autoinit "
           "| fixed inits that do not train at lr (seeds) | fixed inits training at all 3 rates |",
           "|" + " --- |" * 10]
    for t in tasks:
        md.append(_new_summary_row(results[t], summaries[t]))
    for t in tasks:
        plot(results[t], out / f"bench_{t}.png")
        md += [""] + _new_task_table(results[t], summaries[t]) + ["", f"![{t}](bench_{t}.png)"]
    return md


def _new_summary_row(result: dict, summ: dict) -> str:
    rows, lower = summ["methods"], summ["lower_is_better"]
    digits = 4 if lower else 1

    def cell(m: str) -> str:
        row = rows.get(m)
        return f"{m}: {_fmt(row['metric'], digits)}" if row and row["applies"] else "—"

    fixed = [m for m in FIXED + PRESETS if rows.get(m, {}).get("applies")]
    best = min(fixed, key=lambda m: rows[m]["metric"][0] * (1 if lower else -1)) if fixed else None
    others = [m for m in EXTERNAL + (REFERENCE,) if rows.get(m, {}).get("applies")]
    fail = [f"{m} ({row['lr_seeds'] - row['trains_by_factor']['1']}/{row['lr_seeds']})"
            for m in fixed if (row := rows[m]).get("lr_seeds")
            and row["trains_by_factor"]["1"] < row["lr_seeds"]]
    robust = [m for m in fixed if (row := rows[m]).get("lr_seeds")
              and all(v == row["lr_seeds"] for v in row["trains_by_factor"].values())]
    prior = result.get("prior_val_loss")
    measured = any(rows[m].get("lr_seeds") for m in fixed)  # --no-lr-robustness: not run
    return (f"| {result['task']} | {len(result['seeds'])} | {result.get('lr', LR):g} | "
            f"{result['metric']} | {_num(prior)} | {cell(best) if best else '—'} | "
            f"{'; '.join(cell(m) for m in others) or '—'} | {cell('autoinit')} | "
            f"{(', '.join(fail) or 'none') if measured else 'not run'} | "
            f"{(', '.join(robust) or 'none') if measured else 'not run'} |")


def _new_task_table(result: dict, summ: dict) -> list[str]:
    digits = 4 if summ["lower_is_better"] else 1
    partial = "" if result.get("complete", True) else (
        f"**Partial: {len(result['seeds'])} of {result['config']['seeds']} seeds.** ")
    lines = [f"### {result['task']}", "", partial + f"{result['summary']} (model "
             f"{result['model_kwargs']}, data {result['data_kwargs']}). Full training: "
             f"{result['steps']} {_training(result)}, {len(result['seeds'])} seeds; metric: "
             f"{result['metric']}. Prior loss {_num(result.get('prior_val_loss'))}; target: "
             + (f"{summ['best_fixed']}'s median final validation loss" if "target_rule" not in summ
                else f"no fixed init trains, so {summ['target_rule']}")
             + f" {_num(summ['target_val_loss'])}.",
             "", f"| method | {result['metric']} median [95% CI] | final val loss | trains at "
             "lr/√10 · lr · lr·√10 (seeds) | rates that train (median of 3) | steps to target, "
             "training only | steps to target incl. init/search (TSE) | reached target | init cost "
             "(TSE) | notes |", "|" + " --- |" * 10]
    for m, row in summ["methods"].items():
        if not row["applies"]:
            lines.append(f"| {m} | n/a | | | | | | | | {row['reason'][:120].replace('|', '/')} |")
            continue
        by = row.get("trains_by_factor")
        lr_cell = " · ".join(f"{v}/{row['lr_seeds']}" for v in by.values()) if by else "—"
        rates = f"{row['rates_that_train']:g}" if by else "—"
        notes = [f"{row['diverged']} diverged"] if row["diverged"] else []
        lines.append(f"| {m} | {_fmt(row['metric'], digits)} | {_fmt(row['val_loss'], 3)} | "
                     f"{lr_cell} | {rates} | {_fmt(row['steps_to_target'], 0)} | "
                     f"{_fmt(row['time_to_target_tse'], 0)} | {row['reached_target']}/{row['n']} | "
                     f"{_fmt(row['init_tse'], 0)} | {'; '.join(notes)} |")
    return lines


def _finite(obj: object) -> object:
    """JSON without Infinity/NaN: non-finite numbers become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------- command line

def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default=",".join(FULL_STEPS), help="comma-separated task names")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated method names")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--seed-list", default=None,
                   help="run only these seeds (comma-separated), e.g. to split a task over processes")
    p.add_argument("--steps", type=int, default=None, help="full training steps (default: per task)")
    p.add_argument("--eval-every", type=int, default=None, help="default: steps // 30")
    p.add_argument("--n-trials", type=int, default=30, help="autoinit trials (its default: 30)")
    p.add_argument("--probe-steps", type=int, default=100, help="autoinit probe (its default: 100)")
    p.add_argument("--gradinit-budget", type=int, default=100)
    p.add_argument("--metainit-budget", type=int, default=50)
    p.add_argument("--init-batches", type=int, default=8, help="batches given to LSUV/GradInit/...")
    p.add_argument("--max-n", type=int, default=64, help="cap on best-of-N seeds / lr-grid size")
    p.add_argument("--max-extra-steps", type=int, default=None,
                   help="cap on default_longer's extra steps (default: none, the search's TSE)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("docs"))
    p.add_argument("--smoke", action="store_true", help="tiny budgets, 1 seed: every method runs")
    p.add_argument("--report-only", action="store_true", help="rebuild the report from runs/*.json")
    p.add_argument("--no-lr-robustness", action="store_true",
                   help="skip the runs at lr/sqrt(10) and lr*sqrt(10) (default: on for the issue-11 "
                        f"and held-out tasks {', '.join(SECTIONED)})")
    p.add_argument("--resume", action="store_true",
                   help="keep the seeds and methods in <out>/runs/<task>.json; run only the missing")
    args = p.parse_args(argv)
    if args.smoke:
        args.seeds, args.steps, args.eval_every = 1, 10, 5
        args.n_trials, args.probe_steps, args.gradinit_budget, args.metainit_budget = 2, 3, 2, 2
        args.init_batches, args.max_n, args.max_extra_steps = 2, 2, 10
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    args.seed_list = [int(x) for x in args.seed_list.split(",")] if args.seed_list else None
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for t in args.tasks:
        if t not in list_tasks():
            p.error(f"task must be one of {list_tasks()}, got {t!r}")
    for m in args.methods:
        if m not in METHODS:
            p.error(f"method must be one of {list(METHODS)}, got {m!r}")
    return args


def _save(out: Path, name: str, result: dict, env: dict, config: dict) -> None:
    """Write the task's file, merged with the seeds other processes wrote to it meanwhile (under a
    lock), so that several processes (``--seed-list``) can fill one task."""
    import fcntl

    path = out / "runs" / f"{name}.json"
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            on_disk = json.loads(path.read_text())
            if on_disk.get("steps") == result["steps"]:
                # only the seeds this process runs: its copies of the others (read at --resume)
                # may be older than what a parallel process wrote meanwhile
                ran = {str(s) for s in config.get("seed_list") or range(config["seeds"])}
                mine = {s: v for s, v in result["seeds"].items() if s in ran}
                result = {**result, "seeds": {**on_disk["seeds"], **mine}}
                runs = on_disk.get("earlier_runs", []) + [on_disk.get("environment")]
                result["earlier_runs"] = [e for e in runs if e and e != env] + [
                    e for e in result.get("earlier_runs", []) if e not in runs]
                result["complete"] = len(result["seeds"]) >= config["seeds"]
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(_finite({**result, "environment": env, "config": config})))
        os.replace(tmp, path)  # atomic: a report built by a parallel run never reads half a file


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    (args.out / "runs").mkdir(parents=True, exist_ok=True)
    # every training on --threads threads, subnormals flushed on each of them
    with compute_threads(args.threads):
        _run(args, argv)
    write_report(args.out)
    return 0


def _run(args: argparse.Namespace, argv: list[str]) -> None:
    if not args.report_only:
        env = environment(argv)
        # torch's first optimizer imports torch._dynamo (seconds): here, not in a timed initializer
        torch.optim.Adam([nn.Parameter(torch.zeros(1))])
        for name in args.tasks:
            cfg = argparse.Namespace(**vars(args))
            cfg.steps = args.steps or FULL_STEPS[name]
            cfg.eval_every = args.eval_every or max(1, cfg.steps // 30)
            cfg.lr_robustness = name in SECTIONED and not args.no_lr_robustness
            cfg.model_overrides = SMOKE_MODEL.get(name, {}) if args.smoke else {}
            cfg.data_overrides = SMOKE_DATA.get(name, {}) if args.smoke else {}
            config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()}
            previous = _previous(args.out, name, cfg.steps) if args.resume else None
            run_task(name, cfg, save=lambda r, n=name, c=config: _save(args.out, n, r, env, c),
                     previous=previous)
            if not args.smoke:
                try:  # after every task, so a partial run leaves a report
                    write_report(args.out)
                except Exception as exc:  # noqa: BLE001 - the next task matters more than the report
                    print(f"report not written ({type(exc).__name__}: {exc}); rerun --report-only",
                          file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
