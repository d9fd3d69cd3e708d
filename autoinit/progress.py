"""The live view of a search: a progress bar in a terminal or a notebook, plain lines elsewhere.

In a terminal (or Jupyter) a rich bar shows the trials done out of ``n_trials``, trials pruned,
the best probe score, the elapsed time and an estimate of the time left; the selection round has
a bar of its own. In a pipe, a log file or CI it prints one line per finished trial and per
selection probe, and a ``still running`` line whenever 25 s pass without one, so a log never
stays silent for long.

Example:
    >>> import optuna
    >>> study = optuna.create_study()
    >>> with SearchProgress(1, live=False) as progress:  # doctest: +ELLIPSIS
    ...     study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1, callbacks=[progress])
    trial   1/1  #0   search           score ...
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import optuna
from optuna.trial import TrialState

from autoinit.errors import FAILURE
from autoinit.twins import TWIN_ATTR

__all__ = ["SearchProgress", "progress_wanted"]

QUIET_SECONDS = 25.0  # in plain mode, a line at least this often
REASON_WIDTH = 52  # the most characters of a trial's reason a progress line shows
_DONE = (TrialState.COMPLETE, TrialState.PRUNED)


def progress_wanted(progress: bool | None) -> bool:
    """``progress`` as given; ``None``: on in a terminal or a notebook."""
    if progress is not None:
        return progress
    from rich.console import Console

    console = Console()
    return console.is_terminal or console.is_jupyter


class SearchProgress:
    """Optuna callback ``progress(study, frozen_trial)`` and context manager showing a search.

    Args:
        total: the trials the study should hold (``n_trials``; ``None``: no total).
        timeout: the search's timeout in seconds, which caps the time-left estimate.
        already: finished trials the study held before this run (a resumed study).
        live: a rich bar; ``None``: when stdout is a terminal or a notebook.
        out: where plain lines go (default ``sys.stdout``).
    """

    def __init__(self, total: int | None, timeout: float | None = None, already: int = 0,
                 live: bool | None = None, out: Callable[[str], None] | None = None) -> None:
        self.total, self.timeout, self.already = total, timeout, already
        self.start = time.perf_counter()
        self.live = live
        self._out = out
        self._seen: set[int] = set()
        self._bar: Any = None
        self._trials: Any = None
        self._selection: Any = None
        self._state = "starting"
        self._last_line = time.perf_counter()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> SearchProgress:
        from rich.console import Console

        console = Console()
        if self.live is None:
            self.live = console.is_terminal or console.is_jupyter
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                TextColumn("{task.fields[left]}"), console=console)
            self._trials = self._bar.add_task("trials", total=self.total, completed=self.already,
                                              info="pruned 0  best -", left="")
            self._bar.start()
        else:
            self._heartbeat = threading.Thread(target=self._beat, name="autoinit-progress",
                                               daemon=True)
            self._heartbeat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
        if self._bar is not None:
            self._bar.stop()

    # ---------------------------------------------------------------- events

    def resume(self, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        """The study held ``trials`` before this run: counted, not shown again."""
        with self._lock:
            finished = [t for t in trials if t.state.is_finished()]
            self._seen.update(t.number for t in finished)
            self.already = sum(t.state in _DONE for t in finished)
            if self._bar is not None:
                self._bar.update(self._trials, completed=self.already)

    def restart(self) -> None:
        """A new study follows (the probes were lengthened): its trials are counted afresh."""
        with self._lock:
            self._seen.clear()
            self.already = 0

    def note(self, text: str) -> None:
        """A line of its own (above the bar when there is one)."""
        with self._lock:
            if self._bar is not None:
                self._bar.console.print(text, markup=False, highlight=False)
            else:
                self._echo(text)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.refresh(study.get_trials(deepcopy=False))

    def refresh(self, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        """Report the trials that finished since the last call."""
        with self._lock:
            finished = [t for t in trials if t.state.is_finished()]
            new = [t for t in finished if t.number not in self._seen]
            self._seen.update(t.number for t in new)
            counts = Counter(t.state for t in finished)
            done = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
            values = [t.value for t in finished if t.state == TrialState.COMPLETE]
            best = f"{min(values):.4f}" if values else "-"
            left = self._left(done)
            self._state = f"{done} trials finished, best {best}"
            if self._bar is not None:
                self._bar.update(self._trials, completed=done, left=left,
                                 info=f"pruned {counts[TrialState.PRUNED]}  best {best}")
                return
            # several trials may arrive at once (polled from worker processes): number them
            shown = done - sum(t.state in _DONE for t in new)
            of = f"/{self.total}" if self.total is not None else ""
            for t in sorted(new, key=lambda t: t.number):
                shown += t.state in _DONE
                self._echo(f"trial {shown:>3}{of}  #{t.number:<3} {_label(t):<16} "
                           f"{_outcome(t):<24} best {best}  pruned {counts[TrialState.PRUNED]}  "
                           f"{_clock(self._elapsed())} {left}".rstrip())

    def selection(self, done: int, total: int, name: str, score: float | None) -> None:
        """The selection round: ``done`` of its ``total`` probes finished (``done=0``: it starts)."""
        with self._lock:
            self._state = f"selection round, {done}/{total} probes"
            if self._bar is not None:
                if self._selection is None:
                    self._bar.update(self._trials, left="")
                    self._selection = self._bar.add_task("selection round", total=total,
                                                         info="", left="")
                self._bar.update(self._selection, completed=done,
                                 info=f"{name} {score:.4f}" if score is not None else "")
                return
            if done == 0:
                self._echo(f"selection round: re-running the best candidates with fresh seeds "
                           f"({total} probes)")
            else:
                shown = f"score {score:.4f}" if score is not None else ""
                self._echo(f"selection {done:>2}/{total}  {name:<22} {shown}  "
                           f"{_clock(self._elapsed())}")

    # ---------------------------------------------------------------- helpers

    def _echo(self, text: str) -> None:
        self._last_line = time.perf_counter()
        if self._out is not None:
            self._out(text)
        else:
            print(text, file=sys.stdout, flush=True)

    def _beat(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                if time.perf_counter() - self._last_line >= QUIET_SECONDS:
                    self._echo(f"still running: {self._state}  {_clock(self._elapsed())}")

    def _elapsed(self) -> float:
        return time.perf_counter() - self.start

    def _left(self, done: int) -> str:
        ran, elapsed = done - self.already, self._elapsed()
        if self.total is None or done >= self.total or ran <= 0:
            return ""
        left = elapsed / ran * (self.total - done)
        if self.timeout is not None:
            left = min(left, max(self.timeout - elapsed, 0.0))
        return f"~{_clock(left)} left"

    @contextmanager
    def polling(self, study: optuna.Study, active: bool, every: float = 1.0) -> Iterator[None]:
        """While the block runs, read ``study``'s trials every ``every`` seconds (worker
        processes run the callbacks in their own process, out of sight)."""
        if not active:
            yield
            return
        stop = threading.Event()

        def poll() -> None:
            with suppress(Exception):  # progress is best effort
                self.refresh(study.get_trials(deepcopy=False))

        def run() -> None:
            while not stop.wait(every):
                poll()

        thread = threading.Thread(target=run, name="autoinit-poll", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)
            poll()


def _label(trial: optuna.trial.FrozenTrial) -> str:
    return str(trial.user_attrs.get("baseline") or "search")


def _outcome(trial: optuna.trial.FrozenTrial) -> str:
    if trial.state == TrialState.COMPLETE:
        twin = trial.user_attrs.get(TWIN_ATTR)  # the same weights as an earlier trial
        return f"score {trial.value:.4f}" + ("" if twin is None else f" (= #{twin})")
    return short_reason(trial.user_attrs.get(FAILURE) or trial.state.name.lower())


def short_reason(reason: str, width: int = REASON_WIDTH) -> str:
    """A trial's reason for a progress line: its first clause (``", ..."`` marks those left
    out), cut at a word boundary with ``"..."`` when still longer than ``width``.

    >>> short_reason("screened out: 0: exploding_activation, 2: exploding_gradient")
    'screened out: 0: exploding_activation, ...'
    >>> short_reason("ValueError: the loss returned a tensor of shape (64, 10), not a scalar", 40)
    'ValueError: the loss returned a ...'
    """
    text = " ".join(reason.split())
    if len(text) <= width:
        return text
    first, comma, _ = text.partition(", ")
    if comma and len(first) + 5 <= width and first.count("(") == first.count(")"):
        return f"{first}, ..."
    cut = text[: width - 3].rsplit(" ", 1)[0] if " " in text[: width - 3] else text[: width - 4]
    return f"{cut.rstrip(' ,;:')} ..."


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"
