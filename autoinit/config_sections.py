"""The sections of a study file (``[model]``, ``[data]``, ``[train]``, ``[search]``, ``[mlflow]``,
``[compare]``, ``[proxy]``), each a frozen dataclass (``[proxy]``: a table of ``[model]`` kwargs)
with its reader. A reader takes one TOML table and
checks every key: an unknown key or a value of the wrong type is a
:class:`~autoinit.errors.StudyFileError` naming the key path and the value. Numeric options are
checked by :func:`autoinit.settings.check_option`, as :func:`autoinit.fit` checks them.

Example:
    >>> SECTIONS["search"](Table({"n_trials": 12}, "search")).n_trials
    12
    >>> SECTIONS["search"](Table({"n_trial": 12}, "search"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    autoinit.errors.StudyFileError: search.n_trial is not a known key (did you mean 'search.n_trials'? ...
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from autoinit.errors import StudyFileError
from autoinit.settings import DEFAULTS, check_option

__all__ = ["LOOP_KEYS", "SECTIONS", "CompareConfig", "FactoryConfig", "MlflowConfig",
           "SearchConfig", "Table", "TrainConfig", "check_proxy"]

LOOP_KEYS = ("train_step", "score", "make_state")  # [train]: references to the user's own loop


@dataclass(frozen=True)
class FactoryConfig:
    """``[model]`` or ``[data]``: a factory reference and its keyword arguments."""

    factory: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    """``[train]``: how every candidate is trained, and ``steps``: the training the user runs
    after the search, which bounds the search (:mod:`autoinit.budget`)."""

    optimizer: str = DEFAULTS.optimizer
    lr: float = DEFAULTS.lr
    loss: str | None = None
    train_step: str | None = None  # references to the user's own loop (autoinit.loop)
    score: str | None = None
    make_state: str | None = None
    steps: int | None = None


@dataclass(frozen=True)
class SearchConfig:
    """``[search]``: the options of :func:`autoinit.fit` that a study file may set."""

    n_trials: int = DEFAULTS.n_trials
    timeout: float | None = None
    budget_steps: int | None = None
    probe_steps: int = DEFAULTS.probe_steps
    rungs: int = DEFAULTS.rungs
    cooldown: float = DEFAULTS.cooldown
    objective: str = DEFAULTS.objective
    groups: str | dict[str, str] = DEFAULTS.groups
    families: list[str] | None = None
    search_lr: bool = False
    storage: str = DEFAULTS.storage
    study_name: str | None = None
    n_jobs: int = DEFAULTS.n_jobs
    seed: int = DEFAULTS.seed
    device: str | None = None
    # the keys the file (or a flag) set: with [train] steps, the others are planned
    given: frozenset[str] = field(default=frozenset(), repr=False)
    population: int | None = None  # candidates trained at once (None: measured, 1: off)


@dataclass(frozen=True)
class MlflowConfig:
    """``[mlflow]``: where searches and comparisons are logged."""

    enabled: bool = True
    tracking_uri: str | None = None
    experiment: str = DEFAULTS.experiment


@dataclass(frozen=True)
class CompareConfig:
    """``[compare]``: the full training that ``autoinit compare`` runs and the cost ratio uses."""

    steps: int = DEFAULTS.compare_steps
    seeds: int = DEFAULTS.compare_seeds


class Table:
    """Typed reads from one TOML table; every error names the key path and the value."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, dict):
            raise StudyFileError(f"{path} must be a table, got {show(data)}")
        self.data, self.path, self.used = data, path, set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, default: Any = None) -> Any:
        self.used.add(name)
        return self.data.get(name, default)

    def bad(self, name: str, rule: str) -> StudyFileError:
        return StudyFileError(f"{self.key(name)} must be {rule}, got {show(self.data[name])}")

    def table(self, name: str) -> Table:
        return Table(self.get(name, {}), self.key(name))

    def str(self, name: str, default: str | None = None,
            choices: Collection[str] | None = None) -> str | None:
        value = self.get(name, default)
        if value is default:
            return value
        if not isinstance(value, str) or not value.strip():
            raise self.bad(name, "a non-empty string")
        if choices is not None and value not in choices:
            raise self.bad(name, f"one of {list(choices)}")
        return value

    def option(self, name: str, default: Any) -> Any:
        """A numeric option, checked by :func:`~autoinit.settings.check_option`."""
        value = self.get(name, default)
        if value is default:
            return value
        return check_option(name, value, self.key(name), StudyFileError)

    def number(self, name: str, default: float | None) -> float | None:
        value = self.option(name, default)
        return value if value is None else float(value)

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


def show(value: object) -> str:
    """``repr(value)``, cut to 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _keys(section: str) -> str:
    return f"[{section}] takes " + ", ".join(f.name for f in fields(_DATACLASS[section])
                                             if f.name != "given")


def _factory(t: Table) -> FactoryConfig:
    factory = t.str("factory", "")
    if factory and not re.fullmatch(r"[^:\s]+:[A-Za-z_][\w.]*", factory):
        raise t.bad("factory", "'package.module:function' or 'path/file.py:function'")
    kwargs = t.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise t.bad("kwargs", "a table of keyword arguments")
    t.no_extra(_keys(t.path))
    return FactoryConfig(factory, kwargs)


def _train(t: Table) -> TrainConfig:
    from autoinit.probe import OPTIMIZERS

    loss = t.str("loss")
    if loss is not None and loss not in ("cross_entropy", "mse", "binary_cross_entropy") \
            and ":" not in loss:
        raise t.bad("loss", "'cross_entropy', 'mse', 'binary_cross_entropy' or "
                    "'package.module:function'")
    loop = {}
    for name in LOOP_KEYS:
        ref = loop[name] = t.str(name)
        if ref is not None and ":" not in ref:
            raise t.bad(name, "'package.module:function' or 'path/file.py:function'")
    out = TrainConfig(t.str("optimizer", DEFAULTS.optimizer, choices=sorted(OPTIMIZERS)),
                      t.number("lr", DEFAULTS.lr), loss, **loop, steps=t.option("steps", None))
    t.no_extra(_keys("train"))
    return out


def _search(t: Table) -> SearchConfig:
    from autoinit.groups import GROUP_MODES
    from autoinit.probe import OBJECTIVES

    out = SearchConfig(
        n_trials=t.option("n_trials", DEFAULTS.n_trials), timeout=t.number("timeout", None),
        budget_steps=t.option("budget_steps", None),
        probe_steps=t.option("probe_steps", DEFAULTS.probe_steps),
        rungs=t.option("rungs", DEFAULTS.rungs), cooldown=t.number("cooldown", DEFAULTS.cooldown),
        objective=t.str("objective", DEFAULTS.objective, choices=OBJECTIVES),
        groups=_groups(t, GROUP_MODES), families=_families(t),
        search_lr=t.bool("search_lr", False), storage=t.str("storage", DEFAULTS.storage),
        study_name=t.str("study_name"), n_jobs=t.option("n_jobs", DEFAULTS.n_jobs),
        seed=t.option("seed", DEFAULTS.seed), device=_device(t), given=frozenset(t.data),
        population=t.option("population", None),
    )
    t.no_extra(_keys("search"))
    return out


def _groups(t: Table, modes: Collection[str]) -> str | dict[str, str]:
    value = t.get("groups", DEFAULTS.groups)
    if isinstance(value, dict):
        for name, pattern in value.items():
            try:
                re.compile(pattern)
            except (re.error, TypeError):
                raise StudyFileError(f"search.groups.{name} must be a regular expression, got "
                                     f"{show(pattern)}") from None
        if not value:
            raise t.bad("groups", "a mode or a non-empty table of regular expressions")
        return value
    if value not in modes:
        raise t.bad("groups", f"one of {list(modes)} or a table {{name = 'regex'}}")
    return value


def _device(t: Table) -> str | None:
    """A torch device name of the CPU or CUDA kind; whether CUDA is here is checked by the
    commands that train, so ``status`` and ``show`` still read a GPU study on a laptop."""
    import torch

    value = t.str("device")
    try:
        kind = torch.device(value).type if value is not None else "cpu"
    except (RuntimeError, TypeError):
        kind = None
    if kind not in ("cpu", "cuda"):
        raise t.bad("device", "'cpu', 'cuda' or 'cuda:N'")
    return value


def _families(t: Table) -> list[str] | None:
    from autoinit.families import list_families

    families = t.strings("families")
    known = list_families()
    for name in families or []:
        if name not in known:
            raise StudyFileError(f"search.families: {name!r} is not a registered family; "
                                 f"families are {known}")
    return families


def _mlflow(t: Table) -> MlflowConfig:
    out = MlflowConfig(t.bool("enabled", True), t.str("tracking_uri"),
                       t.str("experiment", DEFAULTS.experiment))
    t.no_extra(_keys("mlflow"))
    return out


def _compare(t: Table) -> CompareConfig:
    out = CompareConfig(t.option("steps", DEFAULTS.compare_steps),
                        t.option("seeds", DEFAULTS.compare_seeds))
    t.no_extra(_keys("compare"))
    return out


def _proxy(t: Table) -> dict[str, Any]:
    """``[proxy]``: ``[model]`` kwargs for the smaller copy of the model the search runs on
    (e.g. ``width = 32, depth = 8``); checked against ``[model]`` by :func:`check_proxy`."""
    for name, value in t.data.items():
        t.get(name)
        if not isinstance(value, bool | int | float | str):
            raise t.bad(name, "a number, a string or true/false (a [model] kwargs value)")
    return dict(t.data)


def check_proxy(model: FactoryConfig, proxy: Mapping[str, Any]) -> None:
    """Every ``[proxy]`` key overrides a ``[model]`` kwarg with a value of its type; an integer
    is positive and no larger than the model's (a proxy is never the larger model)."""
    for name, value in proxy.items():
        if name not in model.kwargs:
            close = difflib.get_close_matches(name, sorted(model.kwargs), n=1)
            maybe = f"did you mean 'proxy.{close[0]}'? " if close else ""
            raise StudyFileError(f"proxy.{name} is not a key of model.kwargs ({maybe}[proxy] "
                                 f"overrides [model] kwargs: {sorted(model.kwargs)}); got "
                                 f"{name} = {show(value)}")
        base = model.kwargs[name]
        if type(value) is not type(base):
            raise StudyFileError(f"proxy.{name} must be of type {type(base).__name__} like "
                                 f"model.kwargs.{name} ({show(base)}), got {show(value)}")
        if isinstance(base, int) and not isinstance(base, bool) and base > 0 \
                and not 0 < value <= base:
            raise StudyFileError(f"proxy.{name} must be a positive integer no larger than "
                                 f"model.kwargs.{name} ({base}), got {show(value)}")


SECTIONS: Mapping[str, Callable[[Table], Any]] = {
    "model": _factory, "data": _factory, "train": _train, "search": _search, "mlflow": _mlflow,
    "compare": _compare, "proxy": _proxy,
}
_DATACLASS = {"model": FactoryConfig, "data": FactoryConfig, "train": TrainConfig,
              "search": SearchConfig, "mlflow": MlflowConfig, "compare": CompareConfig}
