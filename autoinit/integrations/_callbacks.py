"""What the trainer callbacks (Lightning, Hugging Face) share: the options they hand to ``fit``.

Example:
    >>> options = SearchOptions(only=r"head\\.", n_trials=8)
    >>> options.only, options.exclude, options.fit_options, options.result
    ('head\\\\.', None, {'n_trials': 8}, None)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["SearchOptions"]


class SearchOptions:
    """``only``/``exclude`` (regular expressions on parameter names) and ``fit``'s other options;
    the search's :class:`~autoinit.result.FitResult` lands in :attr:`result`."""

    def __init__(self, *, only: Iterable[str] | str | None = None,
                 exclude: Iterable[str] | str | None = None, **fit_options: Any) -> None:
        self.only = only
        self.exclude = exclude
        self.fit_options = fit_options
        self.result = None
