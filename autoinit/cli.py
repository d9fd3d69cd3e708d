"""The ``autoinit`` command line: thin commands over the library.

Commands: ``search`` (a study file or ``--model``/``--data`` → a scheme JSON, the table of
baselines vs chosen, the cost), ``status`` (a study's trials and best scores so far, read from
its storage), ``show`` (a scheme as a table), ``diagnose`` (per-layer signals
under the default init or a scheme) and ``compare`` (full trainings, chosen scheme vs baselines,
several seeds). Exit codes: 0 success; 2 bad input, printed as one line naming the field and the
value; 1 an internal error, or a storage that fails (unreachable after retries, a full disk); 130
interrupted (Ctrl-C; a search keeps its trials and resumes when the same command is run again).
``--debug`` on any command prints the traceback too.

Example:
    >>> main(["show", "--help"])  # doctest: +ELLIPSIS
    Usage: autoinit show [OPTIONS] SCHEME_OR_RUN
    ...
    0
"""

from __future__ import annotations

import json
import math
import os
import sys
import traceback
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import click
from torch import nn

from autoinit.api import fit, load_scheme
from autoinit.apply import apply_scheme
from autoinit.batches import make_loss
from autoinit.cli_helpers import (
    check_out,
    check_tracking,
    explain_missing,
    finished_trials,
    first_batch,
    fit_tracking,
    interrupted_path,
    log_compare_run,
    naming_data,
    one_line,
    open_study_storage,
    prepare_compare,
    remove_if_unused,
    report_tracking,
    scheme_table,
    write_scheme,
)
from autoinit.cli_options import (
    CONTEXT,
    debug_option,
    factory_options,
    study_config,
    tracking_options,
    tracking_settings,
)
from autoinit.compare import ComparisonStopped, compare_table, train_comparison
from autoinit.config import build_data, proxy_model, seeded_model
from autoinit.diagnose import diagnose as diagnose_model
from autoinit.errors import AutoinitError, ConfigError, StorageError
from autoinit.redact import redact
from autoinit.scheme import InitScheme
from autoinit.search_input import materialize
from autoinit.settings import DEFAULTS
from autoinit.space import BASELINES
from autoinit.status import study_status
from autoinit.storage import missing_file
from autoinit.user_code import resolve_loss
from autoinit.version import __version__

__all__ = ["cli", "main"]

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
_BASELINES = (*BASELINES, "lsuv")  # what compare trains the chosen scheme against


# ---------------------------------------------------------------------------------- entry point

def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # no INFO lines about its tables
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            code = cli.main(args=args, prog_name="autoinit", standalone_mode=False)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.format_message())
            return EXIT_OK
        except click.ClickException as exc:
            return _fail(exc, exc.exit_code, debug,
                         f"{exc.format_message()} (see 'autoinit {_command(args)}--help')")
        except (click.Abort, KeyboardInterrupt) as exc:
            why = str(exc.__cause__ if isinstance(exc, click.Abort) else exc)  # click wraps it
            if not why and _command(args) == "search ":
                return _fail(exc, EXIT_INTERRUPTED, debug, "interrupted; the study keeps its "
                             "finished trials: rerun the same command to resume")
            return _fail(exc, EXIT_INTERRUPTED, debug, f"interrupted {why}" if why else
                         "interrupted")
        except StorageError as exc:  # the storage failed, not the input: exit 1, the cause
            return _fail(exc, EXIT_INTERNAL, debug, one_line(exc))
        except AutoinitError as exc:  # ConfigError, SchemeError, StudyFileError: bad input
            return _fail(exc, EXIT_BAD_INPUT, debug, one_line(exc))
        except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, exit 1
            return _fail(exc, EXIT_INTERNAL, debug, f"internal error: {type(exc).__name__}: "
                         f"{one_line(exc)} (rerun with --debug for the traceback)")
    return code if isinstance(code, int) else EXIT_OK


def _fail(exc: BaseException, code: int, debug: bool, message: str) -> int:
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    click.echo(f"autoinit: error: {message}" if code != EXIT_INTERRUPTED else f"autoinit: {message}",
               err=True)
    return code



def _command(args: list[str]) -> str:
    name = next((a for a in args if not a.startswith("-")), None)
    return f"{name} " if name in cli.commands else ""


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    click.echo(f"autoinit: warning: {one_line(Warning(message))}", err=True)


def _load_scheme(ref: str, tracking_uri: str | None) -> InitScheme:
    """A scheme from a JSON path, an MLflow run id or an artifact URI."""
    return load_scheme(ref, tracking_uri=tracking_uri)


# ------------------------------------------------------------------------------------- commands

@click.group(context_settings=CONTEXT, no_args_is_help=True)
@click.version_option(__version__, prog_name="autoinit")
def cli() -> None:
    """Find good weight initializations for PyTorch models by short probe trainings.

    \b
    Examples:
      autoinit search studies/deep_relu_mlp.toml
      autoinit show scheme.json
      autoinit diagnose studies/deep_relu_mlp.toml --scheme scheme.json
      autoinit compare studies/deep_relu_mlp.toml --scheme scheme.json
    """


@cli.command(context_settings=CONTEXT)
@click.argument("study", required=False, metavar="[STUDY.toml]")
@factory_options
@click.option("--n-trials", type=int, help="Trials the study should hold, baselines included "
              f"([search] n_trials, default {DEFAULTS.n_trials}).")
@click.option("--timeout", type=float, metavar="S", help="Stop starting trials after S seconds.")
@click.option("--probe-steps", type=int, help=f"Training steps per probe (default {DEFAULTS.probe_steps}).")
@click.option("--train-steps", type=int, metavar="N", help="The training you run afterwards "
              f"([train] steps): the search is then planned to fit a budget of "
              f"{DEFAULTS.budget_fraction} of its steps and reports its measured cost R against "
              "it (often up to 0.5: wall time counts too).")
@click.option("--rungs", type=int, help="Successive-halving rungs: probes scored at probe-steps "
              "x 3^i, the top third kept at each (default 1: none).")
@click.option("--storage", metavar="URL", help="Optuna storage URL (default "
              f"{DEFAULTS.storage}); the same command on it resumes the study.")
@click.option("--study-name", metavar="NAME", help="Optuna study name (default: the file's "
              "stem and a hash of its settings).")
@click.option("--n-jobs", type=int, help="Worker processes, one torch thread each.")
@click.option("--seed", type=int, help="Seed of the sampler, the probes and the scheme.")
@click.option("--population", type=int, metavar="K", help="Candidates trained at once as one "
              "stacked population ([search] population; default: measured, 1: one at a time).")
@click.option("--out", type=click.Path(dir_okay=False), default="scheme.json", show_default=True,
              help="Where the chosen scheme's JSON is written.")
@tracking_options
@debug_option
def search(study: str | None, model_ref: str | None, model_kwargs: str | None,
           data_ref: str | None, data_kwargs: str | None, n_trials: int | None,
           timeout: float | None, probe_steps: int | None, train_steps: int | None,
           rungs: int | None, storage: str | None, study_name: str | None, n_jobs: int | None,
           seed: int | None, population: int | None, out: str,
           tracking_uri: str | None, experiment: str | None, no_mlflow: bool) -> int:
    """Search an initialization for a model on its data; write the chosen scheme.

    Flags override the study file. Shows live progress, then the table of baselines vs the
    chosen scheme with the search cost, writes the scheme JSON and prints the MLflow run.
    Rerunning the same command on a persistent storage resumes (or, with a larger --n-trials,
    extends) the study.

    \b
    Examples:
      autoinit search studies/deep_relu_mlp.toml
      autoinit search studies/deep_relu_mlp.toml --n-trials 60 --out relu.json
      autoinit search studies/deep_relu_mlp.toml --train-steps 5000
      autoinit search --model mymodels:make_net --data mymodels:make_loaders \\
          --model-kwargs '{"depth": 20}' --storage sqlite:///runs.db
    """
    config = study_config(study, {"search.n_trials": n_trials, "search.timeout": timeout,
                             "search.probe_steps": probe_steps, "search.rungs": rungs,
                             "train.steps": train_steps, "search.storage": storage,
                             "search.study_name": study_name, "search.n_jobs": n_jobs,
                             "search.seed": seed, "search.population": population},
                          model_ref, data_ref, model_kwargs, data_kwargs)
    tracking = tracking_settings(config, tracking_uri, experiment, no_mlflow)
    check_tracking(tracking, tracking_uri)
    check_out(out)
    options = config.fit_options()  # resolves the loss early: a bad reference fails here
    model = seeded_model(config)
    train, val = build_data(config)
    proxy = proxy_model(config)
    # opened once the model and data are built: a bad reference leaves no storage file behind
    created = missing_file(config.search.storage)
    storage_handle = open_study_storage(config.search.storage)
    options.update(val_dataloader=val, **fit_tracking(tracking))
    name, s = config.study_name, config.search
    last_round, before = finished_trials(storage_handle, name)
    steps = config.train.steps
    shape = f"{s.n_trials} trials of {s.probe_steps} probe steps" if steps is None else (
        f"planned to fit {DEFAULTS.budget_fraction} of your {steps}-step training")
    click.echo(f"autoinit search {name!r}: {type(model).__name__} "
               f"({_parameters(model)}), {shape}; study in "
               f"{redact(s.storage)}")
    if proxy is not None:
        options["proxy"] = proxy
        click.echo(f"searching on the proxy ([proxy] {_kwargs(config.proxy)}: "
                   f"{_parameters(proxy)}); the chosen scheme "
                   "is transferred to the model by role group")
    if before:
        full = "; nothing left to search (a larger --n-trials extends it)" \
            if before >= s.n_trials else ""
        where = f" in its round {last_round!r} (its probes were lengthened)" \
            if last_round != name else ""
        click.echo(f"resuming: the study already holds {before} finished trials{where}{full}")
    try:
        with naming_data(config):
            result = fit(model, train, progress=True, **options)
    except BaseException:
        remove_if_unused(created, storage_handle)
        raise
    click.echo()
    click.echo(result.summary())
    ratio = result.cost.ratio(config.compare.steps)
    if steps is None and math.isfinite(ratio):  # with [train] steps the summary states R
        whose = "[compare] steps" if study else \
            "the default of [compare] steps; --train-steps N states it against yours"
        click.echo(f"search cost ratio R = {ratio:.2f} against one {config.compare.steps}-step "
                   f"training ({whose})")
    interrupted = result.interrupted
    written = interrupted_path(out) if interrupted else out
    write_scheme(result.scheme, written)
    click.echo(f"scheme written to {written}" + (
        f" (best so far, by probe score alone; {out} left as it was)" if interrupted else ""))
    report_tracking(result, tracking)
    click.echo(f"Optuna study {name!r} in {redact(s.storage)}: rerun this command to resume "
               "it; a larger --n-trials extends it")
    if interrupted:
        click.echo("search interrupted: the table shows the best so far; rerun the same command "
                   "to resume", err=True)
        return EXIT_INTERRUPTED
    return EXIT_OK


def _parameters(model: nn.Module) -> str:
    """``"1,234 parameters"``; a lazy module's are counted once the search has shaped them."""
    params = list(model.parameters())
    lazy = sum(isinstance(p, nn.parameter.UninitializedParameter) for p in params)
    count = sum(p.numel() for p in params if not isinstance(p, nn.parameter.UninitializedParameter))
    return f"{count:,} parameters" + (f" and {lazy} lazy ones, shaped on the first batch"
                                      if lazy else "")


def _kwargs(values: dict) -> str:
    return ", ".join(f"{k} = {v!r}" for k, v in values.items())


@cli.command(context_settings=CONTEXT)
@click.argument("scheme_ref", metavar="SCHEME_OR_RUN")
@click.option("--tracking-uri", metavar="URI", help="MLflow tracking URI to find a run id in.")
@debug_option
def show(scheme_ref: str, tracking_uri: str | None) -> int:
    """Show a scheme as a table: group, layers, family, scale, bias.

    SCHEME_OR_RUN is a scheme JSON file or an MLflow run id that logged one.

    \b
    Example:
      autoinit show scheme.json
    """
    click.echo(scheme_table(_load_scheme(scheme_ref, tracking_uri)))
    return EXIT_OK


@cli.command(context_settings=CONTEXT)
@click.argument("study", required=False, metavar="[STUDY.toml]")
@click.option("--storage", metavar="URL", help="Optuna storage URL (default: the study file's).")
@click.option("--study-name", metavar="NAME", help="Optuna study name (default: the study file's).")
@click.option("--probe-steps", type=int, help="As given to the search (its default study name "
              "depends on it).")
@click.option("--seed", type=int, help="As given to the search (its default study name "
              "depends on it).")
@click.option("--rungs", type=int, help="As given to the search (its default study name "
              "depends on it).")
@click.option("--train-steps", type=int, metavar="N", help="As given to the search (its default "
              "study name depends on it).")
@click.option("--top", type=int, default=5, show_default=True, help="Best trials to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@debug_option
def status(study: str | None, storage: str | None, study_name: str | None,
           probe_steps: int | None, seed: int | None, rungs: int | None,
           train_steps: int | None, top: int, as_json: bool) -> int:
    """Print where a study stands: trials by state and the best probe scores so far.

    Reads the storage only, so any machine of a shared search can run it while the workers
    search. The scheme a search hands back comes from its selection round at the end.

    \b
    Examples:
      autoinit status studies/deep_relu_mlp.toml
      autoinit status --storage postgresql://USER@HOST/DB --study-name relu-team --json
    """
    n_trials = None  # the study file's: with it, a study holding them has ended
    if study is not None:
        config = study_config(study, {"search.storage": storage, "search.study_name": study_name,
                                 "search.probe_steps": probe_steps, "search.seed": seed,
                                 "search.rungs": rungs, "train.steps": train_steps})
        storage, study_name = config.search.storage, config.study_name
        n_trials = config.search.n_trials
        explain_missing(config)
    elif storage is None or study_name is None:
        raise ConfigError("give a study file (STUDY.toml) or both --storage URL and "
                          "--study-name NAME")
    result = study_status(storage, study_name, top=top, n_trials=n_trials)
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.summary())
    return EXIT_OK


@cli.command(context_settings=CONTEXT)
@click.argument("study", required=False, metavar="[STUDY.toml]")
@factory_options
@click.option("--scheme", "scheme_ref", metavar="SCHEME_OR_RUN",
              help="Initialize with this scheme (default: the model's own default init).")
@click.option("--seed", type=int, help="Seed for building the model and its default init.")
@click.option("--tracking-uri", metavar="URI", help="MLflow tracking URI to find a run id in.")
@debug_option
def diagnose(study: str | None, model_ref: str | None, model_kwargs: str | None,
             data_ref: str | None, data_kwargs: str | None, scheme_ref: str | None,
             seed: int | None, tracking_uri: str | None) -> int:
    """Per-layer signal statistics on one training batch: activation std, gradient RMS, dead
    and saturated units, symmetry, and the flags they raise.

    \b
    Examples:
      autoinit diagnose studies/deep_relu_mlp.toml
      autoinit diagnose studies/deep_relu_mlp.toml --scheme scheme.json
      autoinit diagnose --model mymodels:make_net --data mymodels:make_loaders
    """
    config = study_config(study, {"search.seed": seed}, model_ref, data_ref, model_kwargs, data_kwargs)
    model = seeded_model(config)
    train, _ = build_data(config)
    batch = first_batch(train)
    loss = resolve_loss(config.train.loss, config.base_dir)
    label = "its default init"
    with naming_data(config):
        if scheme_ref is not None:
            materialize(model, [batch], make_loss(loss))  # a lazy module's shape, for the scheme
            apply_scheme(model, _load_scheme(scheme_ref, tracking_uri))
            label = f"scheme {scheme_ref}"
        result = diagnose_model(model, batch, loss)
    click.echo(f"{type(model).__name__} under {label} (seed {config.search.seed}), one training "
               f"batch: loss {result.loss:.4f}")
    click.echo(result.table())
    counts = Counter(f for r in result.records for f in r.flags)
    click.echo("flags: " + (", ".join(f"{f} in {n} of {len(result.records)} layers"
                                      for f, n in sorted(counts.items())) or "none"))
    return EXIT_OK


@cli.command(context_settings=CONTEXT)
@click.argument("study", metavar="STUDY.toml")
@click.option("--scheme", "scheme_ref", required=True, metavar="SCHEME_OR_RUN",
              help="The chosen scheme: a JSON file or an MLflow run id.")
@click.option("--steps", type=int, help="Training steps per run ([compare] steps, default "
              f"{DEFAULTS.compare_steps}).")
@click.option("--seeds", type=int, help="Seeds per method ([compare] seeds, default "
              f"{DEFAULTS.compare_seeds}).")
@click.option("--baselines", metavar="LIST", default=",".join(_BASELINES),
              help=f"Comma-separated baselines to train against (default: {', '.join(_BASELINES)}).")
@click.option("--split", type=click.Choice(["val", "test"]), default="val", show_default=True,
              help="Held-out split to score on (test: the data factory must take split=).")
@tracking_options
@debug_option
def compare(study: str, scheme_ref: str, steps: int | None, seeds: int | None, baselines: str,
            split: str, tracking_uri: str | None, experiment: str | None, no_mlflow: bool) -> int:
    """Full trainings with the chosen scheme against the baselines, several seeds each: the
    evidence that the probe's choice holds over a real run.

    Every method sees the same batches in the same order for a given seed (paired); the table
    shows the median final held-out loss (and accuracy for class targets) with the spread.

    \b
    Example:
      autoinit compare studies/deep_relu_mlp.toml --scheme scheme.json --steps 2000 --seeds 5
    """
    config = study_config(study, {"compare.steps": steps, "compare.seeds": seeds})
    tracking = tracking_settings(config, tracking_uri, experiment, no_mlflow)
    scheme = _load_scheme(scheme_ref, tracking["tracking_uri"])
    names = [b.strip() for b in baselines.split(",") if b.strip()]
    if not names or not set(names) <= set(_BASELINES):
        raise ConfigError(f"--baselines must name some of {list(_BASELINES)}, got {baselines!r}")
    baseline = scheme.origin.removeprefix("the ").partition(" baseline")[0] \
        if " baseline" in scheme.origin else ""
    chosen = f"chosen {baseline} ({Path(scheme_ref).name})".replace("  ", " ")
    methods = {chosen: scheme, **dict.fromkeys(names)}
    with naming_data(config):
        prepared = prepare_compare(config, methods, split)  # bad input fails before any line
    c = config.compare
    click.echo(f"autoinit compare {config.study_name!r}: {len(methods)} methods x {c.seeds} seeds "
               f"x {c.steps} steps, scored on the {split} split")
    if baseline == "lsuv" and "lsuv" in names:
        click.echo("the chosen scheme is the search's LSUV baseline, calibrated once on the "
                   "search's first batch; the 'lsuv' row calibrates anew on each seed's first "
                   "batch, so the two rows differ by their calibration only")
    stopped = None
    with naming_data(config):
        try:
            runs = train_comparison(prepared, echo=click.echo)
        except ComparisonStopped as exc:  # the seeds that finished are shown and logged first
            stopped, runs = exc, exc.runs
    table = compare_table(runs, c.steps, split)
    click.echo()
    click.echo(table)
    if tracking["enabled"]:
        log_compare_run(config, tracking, runs, table, scheme, scheme_ref, split)
    if stopped is not None:
        raise stopped
    return EXIT_OK
