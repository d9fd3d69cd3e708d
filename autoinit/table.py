"""Fixed-width text tables for the terminal and for MLflow text artifacts.

Example:
    >>> print("\\n".join(text_table([("method", "loss"), ("orthogonal", "0.21")])))
    method      loss
    ----------  ----
    orthogonal  0.21
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["text_table"]


def text_table(rows: Sequence[Sequence[str]]) -> list[str]:
    """The lines of ``rows`` (the first is the header) in left-aligned columns two spaces apart,
    a line of dashes under the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines
