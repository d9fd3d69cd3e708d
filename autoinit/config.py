"""Study files: a TOML description of one search, read into :class:`StudyConfig`.

A study file names the user's model and data factories and the search's settings::

    [model]
    factory = "autoinit.tasks.mlp:deep_relu_mlp"   # "package.module:function" or "file.py:function"
    kwargs = { depth = 32, width = 128 }

    [data]                      # the factory returns (train_loader, val_loader) or a train loader
    factory = "autoinit.tasks.digits:digits_data"
    kwargs = { batch_size = 64 }

    [train]
    optimizer = "adam"          # adam, adamw, sgd (momentum 0.9), rmsprop
    lr = 1e-3
    loss = "cross_entropy"      # or "mse", or "package.module:function" for loss(model, batch)
    # your own loop instead (see autoinit.loop), each "package.module:function" or "file.py:function":
    # train_step = "my_loop:train_step"   score = "my_loop:score"   make_state = "my_loop:make_state"
    # steps = 5000              # the training you run afterwards: the search then costs at most
                                # budget_fraction (0.3) of it, planned to fit (autoinit.budget)

    [search]
    n_trials = 30
    probe_steps = 100
    rungs = 1                   # 3: successive halving, probes scored at 100, 300, 900 steps
    cooldown = 0.0              # fraction of each probe ending in a linear lr decay to 0
    # population = 8            # candidates trained at once (default: measured; 1: one at a time)

    [mlflow]
    experiment = "autoinit"

    [compare]
    steps = 1000                # one full training, for `autoinit compare` and the cost ratio R
    seeds = 3

    [proxy]                     # optional: search on a smaller copy, transfer by role group
    width = 32                  # overrides [model] kwargs (autoinit.proxy)
    depth = 8

Every key is optional except the two factories; the defaults (:data:`autoinit.settings.DEFAULTS`)
keep everything local (the Optuna study in ``sqlite:///autoinit.db``, MLflow in its default local
store). Unknown keys and values of the wrong type are :class:`StudyFileError` naming the key path
and the value, e.g. ``search.n_trials must be a positive integer, got -3``. Each section and its
reader is in :mod:`autoinit.config_sections`; the user's code is imported by
:mod:`autoinit.user_code`.

Example:
    >>> cfg = study_from_dict({"model": {"factory": "autoinit.tasks.mlp:deep_relu_mlp"},
    ...                        "data": {"factory": "autoinit.tasks.digits:digits_data"},
    ...                        "search": {"n_trials": 12}})
    >>> cfg.search.n_trials, cfg.search.probe_steps, cfg.search.storage
    (12, 100, 'sqlite:///autoinit.db')
    >>> study_from_dict({"search": {"n_trials": -3}})
    Traceback (most recent call last):
    ...
    autoinit.errors.StudyFileError: search.n_trials must be a positive integer, got -3
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from autoinit.config_sections import (
    LOOP_KEYS,
    SECTIONS,
    CompareConfig,
    FactoryConfig,
    MlflowConfig,
    SearchConfig,
    Table,
    TrainConfig,
    check_proxy,
)
from autoinit.errors import StudyFileError
from autoinit.settings import DEFAULTS
from autoinit.user_code import make_data, make_model, resolve_callable, resolve_loss

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "CompareConfig",
    "FactoryConfig",
    "MlflowConfig",
    "SearchConfig",
    "StudyConfig",
    "StudyFileError",
    "TrainConfig",
    "build_data",
    "build_model",
    "load_study",
    "proxy_model",
    "resolve_callable",
    "seeded_model",
    "study_from_dict",
]


@dataclass(frozen=True)
class StudyConfig:
    """A whole study file, validated."""

    model: FactoryConfig
    data: FactoryConfig
    train: TrainConfig = TrainConfig()
    search: SearchConfig = SearchConfig()
    mlflow: MlflowConfig = MlflowConfig()
    compare: CompareConfig = CompareConfig()
    proxy: dict[str, Any] = field(default_factory=dict)  # [model] kwargs of the search's proxy
    source: Path | None = None

    @property
    def study_name(self) -> str:
        """``search.study_name``, or the file's stem (the model factory's name without a file)
        plus a hash of every setting that changes what a trial means, so rerunning the same
        command resumes its study and a changed setting starts a new one."""
        if self.search.study_name:
            return self.search.study_name
        stem = self.source.stem if self.source else self.model.factory.rpartition(":")[2]
        s = self.search
        train = {k: v for k, v in asdict(self.train).items() if v is not None or k == "loss"}
        key = {"model": asdict(self.model), "data": asdict(self.data), "train": train,
               "search": [s.probe_steps, s.objective, s.groups, s.families, s.search_lr, s.seed]}
        if (s.rungs, s.cooldown) != (DEFAULTS.rungs, DEFAULTS.cooldown):  # older names unchanged
            key["probe"] = [s.rungs, s.cooldown]
        if self.proxy:
            key["proxy"] = self.proxy
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
        return f"{stem}-{digest[:8]}"

    def train_options(self) -> dict[str, Any]:
        """How every model of the study is trained, as plain values: ``loss_fn``, ``optimizer``,
        ``lr`` and the user's own loop (``train_step``, ``score``, ``make_state``) when it has one.
        A bad reference fails here."""
        t = self.train
        loop = {name: resolve_callable(ref, f"train.{name}", self.base_dir)
                for name in LOOP_KEYS if (ref := getattr(t, name)) is not None}
        return {**loop, "loss_fn": resolve_loss(t.loss, self.base_dir), "optimizer": t.optimizer,
                "lr": t.lr}

    def fit_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`autoinit.fit` (tracking options are the caller's). With
        ``[train] steps`` the search is planned to a budget (:mod:`autoinit.budget`): the probe
        length comes from the plan unless ``[search] probe_steps`` is set; without it, a search
        whose probes learn nothing may lengthen them (:mod:`autoinit.evidence`)."""
        s = self.search
        planned = {} if self.train.steps is None else {"train_steps": self.train.steps}
        options = {
            **self.train_options(),
            "n_trials": s.n_trials, "timeout": s.timeout, "budget_steps": s.budget_steps,
            "probe_steps": s.probe_steps, "rungs": s.rungs, "cooldown": s.cooldown,
            "objective": s.objective, "groups": s.groups,
            "families": s.families, "search_lr": s.search_lr, "storage": s.storage,
            "study_name": self.study_name, "n_jobs": s.n_jobs, "seed": s.seed, "device": s.device,
            **planned,
            "population": s.population,
        }
        if "probe_steps" not in s.given:  # the search's default: a budget plans it, and a
            del options["probe_steps"]  # search whose probes learn nothing lengthens it
        return options

    @property
    def base_dir(self) -> Path:
        """Where ``file.py:function`` references are looked up: the study file's folder."""
        return self.source.parent if self.source else Path.cwd()


# --------------------------------------------------------------------------- the user's factories

def build_model(config: StudyConfig) -> nn.Module:
    """The study's model: its factory called with its kwargs."""
    return make_model(config.model.factory, config.model.kwargs, config.base_dir)


def seeded_model(config: StudyConfig, seed: int | None = None) -> nn.Module:
    """The model, built with the global RNG seeded (``search.seed`` unless ``seed`` is given)
    so that its default init is reproducible; the caller's RNG state is left as it was."""
    return make_model(config.model.factory, config.model.kwargs, config.base_dir,
                      seed=config.search.seed if seed is None else seed)


def proxy_model(config: StudyConfig) -> nn.Module | None:
    """The search's proxy: the model's factory with ``[proxy]`` overriding its kwargs, seeded
    like :func:`seeded_model`; ``None`` without a ``[proxy]`` section."""
    if not config.proxy:
        return None
    return make_model(config.model.factory, {**config.model.kwargs, **config.proxy},
                      config.base_dir, seed=config.search.seed)


def build_data(config: StudyConfig, split: str | None = None
               ) -> tuple[Iterable[Any], Iterable[Any] | None]:
    """``(train_loader, val_loader or None)`` from the study's data factory; ``split="test"``
    asks the factory for its test split (it must take a ``split`` argument)."""
    return make_data(config.data.factory, config.data.kwargs, config.base_dir, split)


# --------------------------------------------------------------------------- reading and checking

def load_study(path: str | Path, overrides: Mapping[str, Any] | None = None) -> StudyConfig:
    """Read and validate the study file at ``path``; ``overrides`` maps key paths such as
    ``"search.n_trials"`` to values that replace the file's (the command-line flags)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyFileError(f"study file {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyFileError(f"cannot read study file {str(path)!r}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyFileError(f"study file {str(path)!r} is not valid TOML: {exc}") from None
    return study_from_dict(data, overrides, source=path)


def study_from_dict(data: Mapping[str, Any], overrides: Mapping[str, Any] | None = None,
                    source: Path | None = None) -> StudyConfig:
    """Validate a parsed study file (and ``overrides``) into a :class:`StudyConfig`. The file's
    own values must be valid too, also where an override replaces them."""
    replaced = [key for key in overrides or {} if _in(data, key)]
    if replaced:
        kept = {k: v for k, v in overrides.items() if k not in replaced}
        try:
            study_from_dict(data, kept, source)
        except StudyFileError as exc:
            if not str(exc).startswith(tuple(replaced)):
                raise  # an error of the file's own, where no flag was given: as without flags
            where = f"study file {str(source)!r}" if source else "the study"
            raise StudyFileError(f"{exc} (in {where}; a command-line flag replaces the value, "
                                 "but the file must be valid too)") from None
    data = copy.deepcopy(dict(data))
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        table = data.setdefault(section, {})
        if isinstance(table, dict):
            table[name] = value
    top = Table(data, "")
    sections = {name: top.table(name) for name in SECTIONS}
    top.no_extra(f"sections are {', '.join(f'[{s}]' for s in SECTIONS)}")
    config = StudyConfig(**{name: SECTIONS[name](t) for name, t in sections.items()},
                         source=source)
    for name in ("model", "data"):
        if not getattr(config, name).factory:
            raise StudyFileError(f"{name}.factory is missing: give 'package.module:function' "
                                 f"that returns the {_WHAT[name]}")
    check_proxy(config.model, config.proxy)
    return config


def _in(data: Mapping[str, Any], key: str) -> bool:
    section, _, name = key.partition(".")
    table = data.get(section)
    return isinstance(table, dict) and name in table


_WHAT = {"model": "model", "data": "training loader, or (train_loader, val_loader)"}
