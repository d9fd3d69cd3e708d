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

    [search]
    n_trials = 30
    probe_steps = 100

    [mlflow]
    experiment = "autoinit"

    [compare]
    steps = 1000                # one full training, for `autoinit compare` and the cost ratio R
    seeds = 3

Every key is optional except the two factories; the defaults keep everything local (the Optuna
study in ``sqlite:///autoinit.db``, MLflow in its default local store). Unknown keys and values of
the wrong type are :class:`StudyFileError` naming the key path and the value, e.g.
``search.n_trials must be a positive integer, got -3``.

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
import difflib
import hashlib
import json
import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from autoinit.errors import StudyFileError
from autoinit.settings import DEFAULTS
from autoinit.user_code import build_data, build_model, resolve_callable, resolve_loss

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
    "resolve_callable",
    "study_from_dict",
]

DEFAULT_STORAGE = DEFAULTS.storage


@dataclass(frozen=True)
class FactoryConfig:
    """``[model]`` or ``[data]``: a factory reference and its keyword arguments."""

    factory: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    """``[train]``: how every candidate is trained."""

    optimizer: str = DEFAULTS.optimizer
    lr: float = DEFAULTS.lr
    loss: str | None = None
    train_step: str | None = None  # references to the user's own loop (autoinit.loop)
    score: str | None = None
    make_state: str | None = None


@dataclass(frozen=True)
class SearchConfig:
    """``[search]``: the options of :func:`autoinit.fit` that a study file may set."""

    n_trials: int = DEFAULTS.n_trials
    timeout: float | None = None
    budget_steps: int | None = None
    probe_steps: int = DEFAULTS.probe_steps
    objective: str = DEFAULTS.objective
    groups: str | dict[str, str] = DEFAULTS.groups
    families: list[str] | None = None
    search_lr: bool = False
    storage: str = DEFAULT_STORAGE
    study_name: str | None = None
    n_jobs: int = DEFAULTS.n_jobs
    seed: int = DEFAULTS.seed
    device: str | None = None


@dataclass(frozen=True)
class MlflowConfig:
    """``[mlflow]``: where searches and comparisons are logged."""

    enabled: bool = True
    tracking_uri: str | None = None
    experiment: str = "autoinit"


@dataclass(frozen=True)
class CompareConfig:
    """``[compare]``: the full training that ``autoinit compare`` runs and the cost ratio uses."""

    steps: int = 1000
    seeds: int = 3


@dataclass(frozen=True)
class StudyConfig:
    """A whole study file, validated."""

    model: FactoryConfig
    data: FactoryConfig
    train: TrainConfig = TrainConfig()
    search: SearchConfig = SearchConfig()
    mlflow: MlflowConfig = MlflowConfig()
    compare: CompareConfig = CompareConfig()
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
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
        return f"{stem}-{digest[:8]}"

    def fit_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`autoinit.fit` (tracking options are the caller's)."""
        s, t = self.search, self.train
        loop = {name: resolve_callable(ref, f"train.{name}", self.base_dir)
                for name in _LOOP_KEYS if (ref := getattr(t, name)) is not None}
        return {
            **loop,
            "loss_fn": resolve_loss(t.loss, self.base_dir), "optimizer": t.optimizer, "lr": t.lr,
            "n_trials": s.n_trials, "timeout": s.timeout, "budget_steps": s.budget_steps,
            "probe_steps": s.probe_steps, "objective": s.objective, "groups": s.groups,
            "families": s.families, "search_lr": s.search_lr, "storage": s.storage,
            "study_name": self.study_name, "n_jobs": s.n_jobs, "seed": s.seed, "device": s.device,
        }

    @property
    def base_dir(self) -> Path:
        """Where ``file.py:function`` references are looked up: the study file's folder."""
        return self.source.parent if self.source else Path.cwd()


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
    if overrides and any(_in(data, key) for key in overrides):
        kept = {k: v for k, v in overrides.items() if not _in(data, k)}
        try:
            study_from_dict(data, kept, source)
        except StudyFileError as exc:
            where = f"study file {str(source)!r}" if source else "the study"
            raise StudyFileError(f"{exc} (in {where}; a command-line flag replaces the value, "
                                 "but the file must be valid too)") from None
    data = copy.deepcopy(dict(data))
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        table = data.setdefault(section, {})
        if isinstance(table, dict):
            table[name] = value
    top = _Table(data, "")
    sections = {name: top.table(name) for name in _SECTIONS}
    top.no_extra(f"sections are {', '.join(f'[{s}]' for s in _SECTIONS)}")
    config = StudyConfig(**{name: _SECTIONS[name](t) for name, t in sections.items()},
                         source=source)
    for name in ("model", "data"):
        if not getattr(config, name).factory:
            raise StudyFileError(f"{name}.factory is missing: give 'package.module:function' "
                                 f"that returns the {_WHAT[name]}")
    return config


def _in(data: Mapping[str, Any], key: str) -> bool:
    section, _, name = key.partition(".")
    table = data.get(section)
    return isinstance(table, dict) and name in table


_WHAT = {"model": "model", "data": "training loader, or (train_loader, val_loader)"}
_LOOP_KEYS = ("train_step", "score", "make_state")


class _Table:
    """Typed reads from one TOML table; every error names the key path and the value."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise StudyFileError(f"{path} must be a table, got {_show(data)}")
        self.data, self.path, self.used = data, path, set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, default: Any = None) -> Any:
        self.used.add(name)
        return self.data.get(name, default)

    def bad(self, name: str, rule: str) -> StudyFileError:
        return StudyFileError(f"{self.key(name)} must be {rule}, got {_show(self.data[name])}")

    def table(self, name: str) -> _Table:
        return _Table(self.get(name, {}), self.key(name))

    def str(self, name: str, default: str | None = None, choices=None) -> str | None:
        value = self.get(name, default)
        if value is default:
            return value
        if not isinstance(value, str) or not value.strip():
            raise self.bad(name, "a non-empty string")
        if choices is not None and value not in choices:
            raise self.bad(name, f"one of {list(choices)}")
        return value

    def int(self, name: str, default: int | None, low: int = 1) -> int | None:
        value = self.get(name, default)
        if value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.bad(name, "a positive integer" if low == 1 else f"an integer >= {low}")
        return value

    def number(self, name: str, default: float | None) -> float | None:
        value = self.get(name, default)
        if value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and value > 0):
            raise self.bad(name, "a positive number")
        return float(value)

    def bool(self, name: str, default: bool) -> bool:
        value = self.get(name, default)
        if not isinstance(value, bool):
            raise self.bad(name, "true or false")
        return value

    def strings(self, name: str) -> list[str] | None:
        value = self.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.bad(name, "a non-empty list of strings")
        return value

    def no_extra(self, hint: str) -> None:
        for name in self.data:
            if name not in self.used:
                close = difflib.get_close_matches(name, sorted(self.used), n=1)
                maybe = f"did you mean {self.key(close[0])!r}? " if close else ""
                raise StudyFileError(f"{self.key(name)} is not a known key ({maybe}{hint})")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _keys(cls) -> str:
    return f"[{cls}] takes " + ", ".join(f.name for f in fields(_DATACLASS[cls]))


def _factory(t: _Table) -> FactoryConfig:
    factory = t.str("factory", "")
    if factory and not re.fullmatch(r"[^:\s]+:[A-Za-z_][\w.]*", factory):
        raise t.bad("factory", "'package.module:function' or 'path/file.py:function'")
    kwargs = t.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise t.bad("kwargs", "a table of keyword arguments")
    t.no_extra(_keys(t.path))
    return FactoryConfig(factory, kwargs)


def _train(t: _Table) -> TrainConfig:
    from autoinit.probe import OPTIMIZERS

    loss = t.str("loss")
    if loss is not None and loss not in ("cross_entropy", "mse") and ":" not in loss:
        raise t.bad("loss", "'cross_entropy', 'mse' or 'package.module:function'")
    loop = {}
    for name in _LOOP_KEYS:
        ref = loop[name] = t.str(name)
        if ref is not None and ":" not in ref:
            raise t.bad(name, "'package.module:function' or 'path/file.py:function'")
    out = TrainConfig(t.str("optimizer", DEFAULTS.optimizer, choices=sorted(OPTIMIZERS)),
                      t.number("lr", DEFAULTS.lr), loss, **loop)
    t.no_extra(_keys("train"))
    return out


def _search(t: _Table) -> SearchConfig:
    from autoinit.groups import GROUP_MODES
    from autoinit.probe import OBJECTIVES

    out = SearchConfig(
        n_trials=t.int("n_trials", DEFAULTS.n_trials), timeout=t.number("timeout", None),
        budget_steps=t.int("budget_steps", None), probe_steps=t.int("probe_steps", DEFAULTS.probe_steps),
        objective=t.str("objective", DEFAULTS.objective, choices=OBJECTIVES), groups=_groups(t, GROUP_MODES),
        families=_families(t), search_lr=t.bool("search_lr", False),
        storage=t.str("storage", DEFAULT_STORAGE), study_name=t.str("study_name"),
        n_jobs=t.int("n_jobs", DEFAULTS.n_jobs), seed=t.int("seed", DEFAULTS.seed, low=0),
        device=t.str("device"),
    )
    t.no_extra(_keys("search"))
    return out


def _groups(t: _Table, modes) -> str | dict[str, str]:
    value = t.get("groups", DEFAULTS.groups)
    if isinstance(value, dict):
        for name, pattern in value.items():
            try:
                re.compile(pattern)
            except (re.error, TypeError):
                raise StudyFileError(f"search.groups.{name} must be a regular expression, got "
                                     f"{_show(pattern)}") from None
        if not value:
            raise t.bad("groups", "a mode or a non-empty table of regular expressions")
        return value
    if value not in modes:
        raise t.bad("groups", f"one of {list(modes)} or a table {{name = 'regex'}}")
    return value


def _families(t: _Table) -> list[str] | None:
    from autoinit.families import list_families

    families = t.strings("families")
    known = list_families()
    for name in families or []:
        if name not in known:
            raise StudyFileError(f"search.families: {name!r} is not a registered family; "
                                 f"families are {known}")
    return families


def _mlflow(t: _Table) -> MlflowConfig:
    out = MlflowConfig(t.bool("enabled", True), t.str("tracking_uri"),
                       t.str("experiment", "autoinit"))
    t.no_extra(_keys("mlflow"))
    return out


def _compare(t: _Table) -> CompareConfig:
    out = CompareConfig(t.int("steps", 1000), t.int("seeds", 3))
    t.no_extra(_keys("compare"))
    return out


_SECTIONS: dict[str, Callable[[_Table], Any]] = {
    "model": _factory, "data": _factory, "train": _train, "search": _search, "mlflow": _mlflow,
    "compare": _compare,
}
_DATACLASS = {"model": FactoryConfig, "data": FactoryConfig, "train": TrainConfig,
              "search": SearchConfig, "mlflow": MlflowConfig, "compare": CompareConfig}
