"""Where a study stands, read from its storage: trial counts and the best trials so far.

Any worker of a shared study (or anyone with the storage URL) can read it while the search
runs; nothing is written. The best trial here is the best *probe* score; the scheme a search
hands back comes from its selection round, which each ``fit`` call runs after its trials.

Example:
    >>> import optuna
    >>> storage = optuna.storages.InMemoryStorage()
    >>> study = optuna.create_study(storage=storage, study_name="demo")
    >>> study.enqueue_trial({"global.family": "orthogonal"}, user_attrs={"baseline": "orthogonal"})
    >>> study.optimize(lambda t: len(t.suggest_categorical("global.family", ["orthogonal"])), 1)
    >>> status = study_status(storage, "demo")
    >>> status.best.name, status.best.value, status.counts["complete"]
    ('orthogonal', 10.0, 1)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autoinit.errors import ConfigError, SchemeError
from autoinit.interrupt import interrupted
from autoinit.result import SearchCost
from autoinit.rungs import RungAgreement, study_agreement
from autoinit.scheme import rules_from_json
from autoinit.selection import SELECTION_ATTR
from autoinit.sharing import SURPLUS
from autoinit.storage import missing_file, open_storage, redact
from autoinit.stored_cost import cost_of, json_values
from autoinit.study import DONE, stored_rounds

__all__ = ["StudyStatus", "TrialSummary", "study_status"]

_STATES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned",
           TrialState.RUNNING: "running", TrialState.WAITING: "waiting", TrialState.FAIL: "failed"}


@dataclass(frozen=True)
class TrialSummary:
    """One finished trial: its number, name (a baseline's, or ``search #N``), probe score and
    rules per group (``{group: {"family": ..., "scale": ..., ...}}``)."""

    number: int
    name: str
    value: float
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    lr: float | None = None


@dataclass(frozen=True)
class StudyStatus:
    """Trial counts by state, the best complete trials (best first) and, for a search with
    rungs, the rank agreement between consecutive rungs so far. ``ended``: the search ended
    (nothing runs, and a fit's selection round is stored for the trials the study holds, or it
    holds ``n_trials`` finished trials); its ``waiting`` trials are then named candidates queued
    beyond its trials, never run (a later fit with more trials would run them). ``earlier``: a
    search that lengthened its probes (:mod:`autoinit.evidence`) is reported at its last round
    (``<study>@<steps>-steps``), and ``earlier`` names the rounds before it. ``cost``: the
    search's cost as the run that completed it stored it, every run that searched the study
    counted (:mod:`autoinit.stored_cost`; the line a rerun reports); ``None`` before a run
    completed it."""

    study_name: str
    counts: dict[str, int]
    top: tuple[TrialSummary, ...]
    rank_agreement: tuple[RungAgreement, ...] = ()
    ended: bool = False
    earlier: tuple[str, ...] = ()
    cost: SearchCost | None = None

    @property
    def best(self) -> TrialSummary | None:
        return self.top[0] if self.top else None

    @property
    def finished(self) -> int:
        """Complete and pruned trials: what ``n_trials`` counts."""
        return self.counts["complete"] + self.counts["pruned"]

    def to_dict(self) -> dict[str, Any]:
        return {"study_name": self.study_name, "counts": dict(self.counts),
                "finished": self.finished, "ended": self.ended, "earlier": list(self.earlier),
                "top": [vars(t) for t in self.top],
                "rank_agreement": [vars(a) for a in self.rank_agreement],
                "cost": None if self.cost is None else json_values(self.cost.to_dict())}

    def summary(self) -> str:
        """A few plain lines: the counts, then the best trials with their families."""
        queued = self.counts["waiting"] if self.ended else 0  # never run: not waiting work
        counts = ", ".join(f"{n} {state}" for state, n in self.counts.items()
                           if n and not (queued and state == "waiting"))
        lines = [f"study {self.study_name!r}: {self.finished} finished trials ({counts or 'none yet'})"
                 + (f"; the search ended, {queued} queued candidate{'s' * (queued > 1)} not run"
                    if queued else "")]
        if self.earlier:
            lines.append(f"  probes lengthened; the earlier rounds: {', '.join(map(repr, self.earlier))}")
        for rank, t in enumerate(self.top, 1):
            families = sorted({r.get("family", "?") for r in t.rules.values()})
            lr = f", lr {t.lr:.3g}" if t.lr is not None else ""
            lines.append(f"  {rank}. trial {t.number} {t.name}: probe score {t.value:.4f} "
                         f"({', '.join(families) or 'no rules recorded'}{lr})")
        if not self.top:
            lines.append("  no complete trial yet")
        if self.rank_agreement:
            lines.append("  probe rank agreement between rungs (Spearman): "
                         + "; ".join(a.describe() for a in self.rank_agreement))
        if self.cost is not None:
            lines.append(f"  {self.cost.describe()}")
        return "\n".join(lines)


def study_status(storage: str | optuna.storages.BaseStorage, study_name: str,
                 top: int = 5, n_trials: int | None = None) -> StudyStatus:
    """Read a study's progress from ``storage`` (a URL or an Optuna storage); writes nothing.
    ``n_trials``: the trials the search asks for (a study file's), to tell that it ended.

    Raises:
        ConfigError: the storage cannot be opened, its SQLite or journal file does not exist
            (it is not created), or it holds no study of that name (the message lists the names
            it does hold).
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"top must be a positive integer, got {top!r}")
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int)
                                 or n_trials < 1):
        raise ConfigError(f"n_trials must be a positive integer or None, got {n_trials!r}")
    path = missing_file(storage) if isinstance(storage, str) else None
    if path is not None:
        raise ConfigError(f"storage {redact(storage)!r} holds no study: there is no file {path!r}")
    opened = open_storage(storage)
    if opened is None:
        raise ConfigError("storage must be given: an in-memory study cannot be read from outside")
    names = [s.study_name for s in opened.get_all_studies()]
    if study_name not in names:
        raise ConfigError(f"study_name {study_name!r} is not in storage {redact(str(storage))!r}; "
                          f"it holds {sorted(names) or 'no study'}")
    rounds = [name for name, _ in stored_rounds(names, study_name)]
    study_name, earlier = rounds[-1], tuple(rounds[:-1])
    study_id = opened.get_study_id_from_name(study_name)
    trials = [t for t in opened.get_all_trials(study_id, deepcopy=False)
              if not t.user_attrs.get(SURPLUS)]  # never run: a worker counted with another
    counts = {name: sum(t.state == state for t in trials) for state, name in _STATES.items()}
    # a trial Ctrl-C cut is recorded as failed and queued again on resume: not a failure
    counts["interrupted"] = sum(t.state == TrialState.FAIL and interrupted(t.user_attrs)
                                for t in trials)
    counts["failed"] -= counts["interrupted"]
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE and t.value is not None),
                      key=lambda t: (t.value, t.number))
    attrs = opened.get_study_user_attrs(study_id)
    return StudyStatus(study_name, counts, tuple(_summary(t) for t in complete[:top]),
                       study_agreement(trials), _ended(trials, attrs.get(SELECTION_ATTR), n_trials),
                       earlier, cost_of(attrs))



def _ended(trials: list[FrozenTrial], stored: Any, n_trials: int | None) -> bool:
    """Nothing runs, and the study holds ``n_trials`` finished trials or the selection round a
    fit stored after the trials it holds (its key counts them)."""
    if any(t.state == TrialState.RUNNING for t in trials):
        return False
    finished = sum(t.state in DONE for t in trials)
    if n_trials is not None and finished >= n_trials:
        return True
    try:
        return json.loads(stored["key"])["finished"] == finished
    except (TypeError, KeyError, ValueError):  # no round stored, or one of another form
        return False


def _summary(trial: FrozenTrial) -> TrialSummary:
    attrs = trial.user_attrs
    name = attrs.get("baseline") or f"search #{trial.number}"
    try:
        rules = {g: r.to_dict(members=False) for g, r in rules_from_json(attrs["rules"]).items()}
    except (KeyError, SchemeError):  # not recorded, or a family not registered in this process
        rules = {}
    lr = trial.params.get("lr")
    return TrialSummary(trial.number, str(name), float(trial.value), rules,
                        float(lr) if lr is not None else None)
