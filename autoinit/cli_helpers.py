"""What the commands of :mod:`autoinit.cli` share beyond their options: a study's storage looked
at before a search, MLflow reachability, writing the scheme, the scheme table of ``show``,
``compare``'s trainings from the study file and their MLflow log.

Example:
    >>> from autoinit.plan import uniform_scheme
    >>> import torch.nn as nn
    >>> print(scheme_table(uniform_scheme(nn.Sequential(nn.Linear(2, 2)), "orthogonal")).splitlines()[-1])
    head.linear  0       orthogonal  1      zeros
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import optuna
from optuna.trial import TrialState

from autoinit.batches import check_batched
from autoinit.compare import CompareRun, Comparison, prepare_comparison
from autoinit.config import StudyConfig, build_data, seeded_model
from autoinit.errors import ConfigError, DataError, StudyFileError
from autoinit.integrations.ui import ui_lines
from autoinit.redact import redact
from autoinit.result import FitResult
from autoinit.scheme import InitScheme
from autoinit.study import stored_rounds
from autoinit.table import text_table

# --------------------------------------------------------------------------- search: storage

def explain_missing(config: StudyConfig) -> None:
    """A study file's default study is missing but the storage holds others of that file:
    say that the name's hash covers the search's settings, and how to name them."""
    if config.search.study_name or config.source is None:
        return
    from autoinit.storage import missing_file, open_storage

    if missing_file(config.search.storage) is not None:
        return  # study_status says there is no such file; opening it would create one

    try:
        names = sorted(st.study_name for st in open_storage(config.search.storage)
                       .get_all_studies())
    except Exception:  # noqa: BLE001 - study_status reports a storage that cannot be read
        return
    if config.study_name in names:
        return
    stem = f"{config.source.stem}-"
    siblings = [n for n in names if n.startswith(stem)]
    if siblings:
        raise ConfigError(
            f"study {config.study_name!r} is not in storage {redact(config.search.storage)!r}, "
            f"but {', '.join(repr(n) for n in siblings)} from the same study file is: the default "
            "name hashes the model, data and training settings ([train] steps too) and probe_steps, "
            "rungs, cooldown, objective, groups, families, search_lr and seed, so give the flags "
            f"the search was given (--probe-steps, --rungs, --seed, --train-steps) or --study-name "
            f"{siblings[-1]}")


def open_study_storage(url: str) -> optuna.storages.BaseStorage:
    """Open the Optuna storage now: a bad one is bad input (exit 2), one that stays unreachable
    after retries a StorageError (exit 1)."""
    from autoinit.storage import open_storage

    try:
        return open_storage(url)
    except ConfigError as exc:
        raise StudyFileError(f"search.storage: {one_line(exc)}") from None


def remove_if_unused(path: str | None, storage: optuna.storages.BaseStorage) -> None:
    """Remove the storage file ``path`` this command created when it holds no study: the
    command failed before its search began (say, a model whose forward fails on the data)."""
    if path is None:
        return
    with contextlib.suppress(Exception):  # best effort: the error being raised is what matters
        if not storage.get_all_studies():
            Path(path).unlink()


def finished_trials(storage: optuna.storages.BaseStorage, name: str) -> tuple[str, int]:
    """The study's last stored round (``name``, or the last round a search that lengthened its
    probes stored, ``<name>@<steps>-steps``) and its finished trials; ``(name, 0)`` for none.

    >>> storage = optuna.storages.InMemoryStorage()
    >>> for study in ("s", "s@200-steps"):
    ...     optuna.create_study(storage=storage, study_name=study).add_trial(
    ...         optuna.trial.create_trial(value=1.0))
    >>> finished_trials(storage, "s"), finished_trials(storage, "t")
    (('s@200-steps', 1), ('t', 0))
    """
    names = [s.study_name for s in storage.get_all_studies()]
    if name not in names:
        return name, 0
    last = stored_rounds(names, name)[-1][0]
    study_id = storage.get_study_id_from_name(last)
    return last, len(storage.get_all_trials(study_id, deepcopy=False,
                                            states=(TrialState.COMPLETE, TrialState.PRUNED)))


def check_tracking(tracking: Mapping[str, Any], flag: str | None) -> None:
    """A tracking URI given explicitly must answer before any trial runs (else exit 2)."""
    uri = tracking["tracking_uri"]
    if not tracking["enabled"] or uri is None:
        return
    from mlflow import MlflowClient

    from autoinit.integrations.mlflow._client import _quick_http
    from autoinit.integrations.ui import error_text

    try:
        with _quick_http(quiet=True):
            MlflowClient(uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - any failure here is a bad tracking URI
        source = "--tracking-uri" if flag else "mlflow.tracking_uri"
        raise ConfigError(f"{source}: MLflow at {redact(uri)!r} cannot be reached "
                          f"({redact(error_text(exc))}); no trial was run: start the tracking "
                          "server, correct the URI, or pass --no-mlflow to search without "
                          "tracking") from None


def fit_tracking(tracking: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`autoinit.fit`'s MLflow options; a URI given explicitly must work (else exit 2)."""
    return {"mlflow": tracking["enabled"], "tracking_uri": tracking["tracking_uri"],
            "experiment": tracking["experiment"],
            "require_tracking": tracking["enabled"] and tracking["tracking_uri"] is not None}


def interrupted_path(out: str) -> str:
    """Where an interrupted search writes its best so far: beside ``out``, never over it."""
    path = Path(out)
    return str(path.with_name(f"{path.stem}.interrupted{path.suffix or '.json'}"))


def check_out(out: str) -> None:
    """``--out``'s folder, made now: a path that cannot hold the scheme fails before the search,
    not after it has run."""
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out: cannot write {out!r}: {exc.strerror or exc}") from None


def write_scheme(scheme: InitScheme, out: str) -> None:
    check_out(out)
    try:
        scheme.to_json(out)
    except OSError as exc:
        raise ConfigError(f"--out: cannot write {out!r}: {exc.strerror or exc}") from None


def report_tracking(result: FitResult, tracking: Mapping[str, Any]) -> None:
    """The summary names the run; here, where to open it."""
    if not tracking["enabled"]:
        return
    if result.run is None:
        click.echo("MLflow: not logged (see the warning above)")
        return
    uri = result.run.tracking_uri or tracking["tracking_uri"] or "mlflow.db"
    for line in ui_lines(uri, result.run.experiment_id):
        click.echo(line)


# ------------------------------------------------------------------------------- show, diagnose

def scheme_table(scheme: InitScheme) -> str:
    """A scheme as a fixed-width table: group, layers, family, scale, bias."""
    head = (f"scheme for {scheme.model_class or 'an unnamed model'}: {len(scheme.parameters)} "
            f"parameters, fingerprint {scheme.fingerprint}, seed {scheme.seed}"
            f" (autoinit {scheme.autoinit_version or '?'}, torch {scheme.torch_version or '?'})")
    rows = [("group", "layers", "family", "scale", "bias")]
    for name, rule in scheme.groups.items():
        options = ", ".join(f"{k}={v}" for k, v in rule.options.items())
        family = f"{rule.family}({options})" if options else rule.family
        bias = rule.bias if rule.bias in ("zeros", "default") else f"{rule.bias} {rule.bias_value:.3g}"
        rows.append((name, _layers(rule.members), family, f"{rule.scale:.3g}", bias))
    what = [f"this scheme is {scheme.origin}"] if scheme.origin else []
    return "\n".join([head, *what, "", *text_table(rows)])


def _layers(members: Sequence[str]) -> str:
    modules = list(dict.fromkeys(m.rpartition(".")[0] or m for m in members))
    if len(modules) <= 4:
        return ", ".join(modules)
    return f"{modules[0]}, {modules[1]}, ..., {modules[-1]} ({len(modules)} layers)"


@contextlib.contextmanager
def naming_data(config: StudyConfig) -> Iterator[None]:
    """The data's errors, raised in the library by the names of its arguments (``dataloader``,
    ``batch``), named by the study's field: ``data.factory 'ref': ...``."""
    try:
        yield
    except DataError as exc:
        raise StudyFileError(f"data.factory {config.data.factory!r}: {one_line(exc)}") from None


def first_batch(loader: Any) -> Any:
    """The training loader's first batch, refused where it is a single example
    (:func:`~autoinit.batches.check_batched`)."""
    try:
        batch = next(iter(loader))
    except StopIteration:
        raise StudyFileError("data.factory: the training loader yielded no batch") from None
    check_batched(loader, batch, "the training loader")
    return batch


def prepare_compare(config: StudyConfig, methods: Mapping[str, InitScheme | None], split: str
                    ) -> Comparison:
    """``autoinit compare``'s trainings, checked and ready: the study file unpacked into
    :func:`~autoinit.compare.prepare_comparison`'s plain values."""
    model = seeded_model(config)
    train_loader, held = build_data(config, "test" if split == "test" else None)
    if held is None:
        raise StudyFileError(f"data.factory must return (train_loader, {split}_loader) for "
                             "autoinit compare: it returned only a training loader")
    return prepare_comparison(model, train_loader, held, methods, **config.train_options(),
                              steps=config.compare.steps, seeds=config.compare.seeds,
                              device=config.search.device, split=split)


def log_compare_run(config: StudyConfig, tracking: Mapping[str, Any], runs: Sequence[CompareRun],
                 table: str, scheme: InitScheme, scheme_ref: str, split: str) -> None:
    """Log the trainings to MLflow; a failure is a warning (they are done and printed)."""
    try:
        import mlflow

        from autoinit.integrations.compare_log import log_compare

        params = {"study": config.study_name, "steps": config.compare.steps,
                  "seeds": config.compare.seeds, "split": split, "scheme": scheme_ref,
                  "model.factory": config.model.factory, "data.factory": config.data.factory}
        run_id = log_compare(tracking["tracking_uri"], tracking["experiment"],
                             f"compare {config.study_name}", params, runs, table, scheme, split)
    except Exception as exc:  # noqa: BLE001 - logging must not lose the printed result
        click.echo(f"autoinit: warning: MLflow logging failed: {type(exc).__name__}: "
                   f"{one_line(exc)}", err=True)
        return
    uri = tracking["tracking_uri"] or mlflow.get_tracking_uri()
    click.echo(f"MLflow run {run_id} (experiment {tracking['experiment']!r})")
    what = f"the compare run 'compare {config.study_name}' (a child run per method)"
    for line in ui_lines(redact(uri), experiment_of(uri, run_id), what):
        click.echo(line)


def experiment_of(uri: str, run_id: str) -> str | None:
    try:
        from mlflow import MlflowClient

        return MlflowClient(uri).get_run(run_id).info.experiment_id
    except Exception:  # noqa: BLE001 - only for the address printed
        return None

def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
