"""The per-trial callback: one nested child run per finished trial."""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from mlflow import MlflowClient
from mlflow.entities import Metric, RunStatus, RunTag
from optuna.trial import FrozenTrial, TrialState

from autoinit.errors import FAILURE
from autoinit.integrations.mlflow._alarm import _Alarm
from autoinit.integrations.mlflow._client import (
    PARENT_TAG,
    SCHEME_ARTIFACT,
    _finite,
    _ms,
    _quick_http,
    _send,
    _tags,
    flatten_rules,
    param_entities,
)
from autoinit.objective import PROBE_LENGTH_ATTR, thin_stride
from autoinit.result import SearchContext
from autoinit.rungs import RUNGS_ATTR
from autoinit.scheme import GroupRule, rules_from_json
from autoinit.sharing import SURPLUS
from autoinit.twins import TWIN_ATTR

CHILD_RUN_POINTS = 50  # training-loss points per child run (each metric row costs the store time)
BREAK_AFTER = 3  # consecutive failed attempts after which a logger tries only every RETRY_AFTER s
RETRY_AFTER = 15.0
_STATES = {TrialState.COMPLETE: ("complete", RunStatus.FINISHED),
           TrialState.PRUNED: ("pruned", RunStatus.KILLED),
           TrialState.FAIL: ("failed", RunStatus.FAILED)}
# Fast failure when a server is down: MLflow's defaults retry 7 times with backoff 2 (minutes).


# ---------------------------------------------------------------- the per-trial callback


@dataclass
class TrialLogger:
    """Optuna callback ``(study, frozen_trial)``: one child run per finished trial.

    Picklable (strings and plain data); the client is opened lazily in each process. In the
    process that made it (``n_jobs=1``), trials are logged from one background thread so that
    tracking latency stays off the search's path; :meth:`drain` waits for them. Worker processes
    (and ``require=True``, which must fail at once) log in the callback itself.

    A trial that cannot be logged (the tracking server is away) waits in a backlog and is logged
    with the next trial that can be, so a server restarted mid-search misses nothing; after
    ``BREAK_AFTER`` failed attempts in a row the logger tries again only every ``RETRY_AFTER``
    seconds. A child run left half-written by a failure is closed as KILLED and deleted once the
    server answers again (the trial is then logged whole).
    """

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    alarm: _Alarm
    lr: float
    seed: int = 0
    plans: Mapping[str, Any] | None = None  # "group" / "layer" ModelPlan, to rebuild full schemes
    first_length: int | None = None  # the first round's probe length (a lengthening adds rounds)
    background: bool = True
    failures: int = 0
    backlog: list[FrozenTrial] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)  # child runs a failure left half-written
    _last_failure: float = 0.0
    _client: MlflowClient | None = field(default=None, repr=False)
    _queue: queue.SimpleQueue | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None, "_queue": None, "_thread": None}

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(self.tracking_uri)
        return self._client

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state not in _STATES or trial.user_attrs.get(SURPLUS):  # a trial never run
            return
        if self.background and not self.alarm.require and os.getpid() == self.alarm.owner:
            if self._thread is None:
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._work, name="autoinit-mlflow",
                                                daemon=True)
                self._thread.start()
            self._queue.put(trial)
        else:
            self.log_safely(trial)

    def bind_search(self, context: SearchContext) -> None:
        """Keep the search's plans, to rebuild a trial's full scheme, and its first probe length
        (called before each round of trials)."""
        self.plans = {"group": context.plan, "layer": context.layer_plan}
        if self.first_length is None:
            self.first_length = context.config.steps

    def drain(self, timeout: float | None = None) -> None:
        """Wait until the trials handed to the background thread are logged; stop it; try the
        backlog once more."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            if self._thread.is_alive():
                return
            self._thread = None
        if (self.backlog or self.abandoned) and not self.alarm.require:  # require: raised already
            self._flush()

    def _work(self) -> None:
        while (trial := self._queue.get()) is not None:
            self.log_safely(trial)

    def log_safely(self, trial: FrozenTrial) -> None:
        """:meth:`log` this trial and the backlog, with errors reported (once per search)
        instead of raised."""
        self.backlog.append(trial)
        if self.failures < BREAK_AFTER or time.monotonic() - self._last_failure >= RETRY_AFTER:
            self._flush()

    def _flush(self) -> None:
        try:
            with _quick_http(quiet=True):
                while self.abandoned:
                    self.client.set_terminated(self.abandoned[0],
                                               RunStatus.to_string(RunStatus.KILLED))
                    self.client.delete_run(self.abandoned.pop(0))
                while self.backlog:
                    self.log(self.backlog[0])
                    self.backlog.pop(0)
            self.failures = 0
        except Exception as exc:  # noqa: BLE001 - tracking must not break the search
            self.failures += 1
            self._last_failure = time.monotonic()
            what = f"logging trial {self.backlog[0].number}" if self.backlog else \
                "closing a half-written child run"
            self.alarm.report(exc, what)

    def log(self, trial: FrozenTrial) -> str:
        """Create the child run of ``trial``, fill it and close it; its run id."""
        state, status = _STATES[trial.state]
        attrs = trial.user_attrs
        baseline = attrs.get("baseline")
        reason = attrs.get(FAILURE) or trial.system_attrs.get("fail_reason")
        if trial.state == TrialState.FAIL and not reason:
            reason = "the objective raised an exception (see the Optuna log)"
        length = attrs.get(PROBE_LENGTH_ATTR)
        tags = {PARENT_TAG: self.parent_run_id, "autoinit.trial": str(trial.number),
                "autoinit.state": state, "autoinit.reason": reason, "autoinit.baseline": baseline,
                "autoinit.study": self.alarm.study_name,
                "autoinit.probe_length": None if length is None else str(length),
                "autoinit.same_weights_as": None if TWIN_ATTR not in attrs else str(attrs[TWIN_ATTR])}
        name = f"trial-{trial.number}" + (f"-{baseline}" if baseline else "")
        if length is not None and self.first_length is not None and length != self.first_length:
            name += f"-{length}-steps"  # a lengthened round: its trial numbers start again
        run = self.client.create_run(self.experiment_id, start_time=_ms(trial.datetime_start),
                                     tags={t.key: t.value for t in _tags(tags)}, run_name=name)
        run_id = run.info.run_id
        try:
            self._fill(run_id, trial, status)
        except BaseException:
            self.abandoned.append(run_id)
            raise
        return run_id

    def _fill(self, run_id: str, trial: FrozenTrial, status: RunStatus) -> None:
        attrs = trial.user_attrs
        baseline = attrs.get("baseline")
        rules = rules_from_json(attrs["rules"]) if "rules" in attrs else {}
        flat = flatten_rules({g: r.to_dict(members=False) for g, r in rules.items()})
        values = {**flat, "lr": trial.params.get("lr", self.lr)}
        if baseline:
            values["baseline"] = baseline
        params, cut = param_entities(values)
        extra = [RunTag("autoinit.params_cut", "true")] if cut else []
        _send(self.client, run_id, metrics=self._metrics(trial), params=params, tags=extra)
        if cut:
            self.client.log_text(run_id, self._scheme_json(rules, baseline), SCHEME_ARTIFACT)
        self.client.set_terminated(run_id, RunStatus.to_string(status), _ms(trial.datetime_complete))

    def _metrics(self, trial: FrozenTrial) -> list[Metric]:
        ts = _ms(trial.datetime_complete)
        attrs = trial.user_attrs
        out = [Metric("probe_loss", float(v), ts, int(s)) for s, v in attrs.get("curve", ())
               if _finite(v)]
        train = attrs.get("train_loss", [])  # the core keeps every stride-th step's loss
        ran = attrs.get(PROBE_LENGTH_ATTR) if TWIN_ATTR in attrs else None  # its first's probe
        stride = thin_stride(ran or attrs.get("probe_steps", len(train)) - attrs.get("branch_steps", 0))
        every = max(1, math.ceil(len(train) / CHILD_RUN_POINTS))
        out += [Metric("train_loss", float(v), ts, i * stride + 1) for i, v in enumerate(train)
                if i % every == 0 and _finite(v)]
        for key, values in attrs.get("train_values", {}).items():  # a custom train_step's values
            out += [Metric(f"train/{key}", float(v), ts, i * stride + 1)
                    for i, v in enumerate(values) if i % every == 0 and _finite(v)]
        out += [Metric("rung_score", float(v), ts, int(s)) for s, v in attrs.get(RUNGS_ATTR, ())
                if _finite(v)]  # each rung's annealed score, at the rung's step
        if trial.state == TrialState.COMPLETE and _finite(trial.value):
            out.append(Metric("score", float(trial.value), ts, 0))
        for key in ("probe_steps", "screening_passes", "seconds"):
            if _finite(attrs.get(key)):
                out.append(Metric(key, float(attrs[key]), ts, 0))
        return out

    def _scheme_json(self, rules: Mapping[str, GroupRule], baseline: str | None) -> str:
        """The trial's full scheme (or, failing that, its group rules) as JSON."""
        plan = (self.plans or {}).get("layer" if baseline == "lsuv" else "group")
        with contextlib.suppress(Exception):
            return plan.scheme(dict(rules), self.seed).to_json()
        return json.dumps({"groups": {g: r.to_dict() for g, r in rules.items()}}, indent=2) + "\n"
