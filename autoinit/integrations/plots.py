"""Plots of a search, drawn with matplotlib's Agg canvas (no pyplot, no global backend change).

Each function takes plain records (curves, :class:`~autoinit.diagnose.Diagnosis`, trial points,
importances) and returns a :class:`matplotlib.figure.Figure`; :func:`save_png` writes one. The
measurements are made elsewhere (``diagnose``, the Optuna study); this module only draws.

Example:
    >>> import tempfile, pathlib
    >>> fig = probe_curves({"xavier_normal": [(2, 0.7), (4, 0.6)], "search #7": [(2, 0.6), (4, 0.5)]},
    ...                    chosen="search #7")
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "curves.png"
    >>> save_png(fig, path).read_bytes()[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from autoinit.diagnose import Diagnosis

__all__ = ["TrialPoint", "optimization_history", "param_importances", "probe_curves", "save_png",
           "signal_profile"]

# (trial number, value or None, kind): kind is "baseline", "search" or "pruned"
TrialPoint = tuple[int, float | None, str]

_CHOSEN = "#d62728"
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf"]  # tab10 without the chosen scheme's red


def _figure(width: float = 7.5, height: float = 4.2) -> Figure:
    fig = Figure(figsize=(width, height), layout="tight")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG file and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi)
    return path


def probe_curves(curves: Mapping[str, Sequence[tuple[int, float]]], chosen: str,
                 title: str = "Probe curves: baselines vs the chosen scheme") -> Figure:
    """Held-out loss along the probe, one line per candidate; ``chosen`` drawn thick and red."""
    fig = _figure()
    ax = fig.add_subplot()
    others = iter(_PALETTE * (1 + len(curves) // len(_PALETTE)))
    for name, curve in curves.items():
        points = [(s, v) for s, v in curve if v is not None and math.isfinite(v)]
        if not points:
            continue
        steps, values = zip(*points, strict=True)
        if name == chosen:
            ax.plot(steps, values, color=_CHOSEN, linewidth=2.6, marker="o", label=f"{name} (chosen)",
                    zorder=3)
        else:
            ax.plot(steps, values, color=next(others), linewidth=1.2, marker=".", alpha=0.85,
                    label=name)
    ax.set_xlabel("probe step")
    ax.set_ylabel("held-out loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def signal_profile(default: Diagnosis, chosen: Diagnosis, chosen_label: str = "chosen scheme"
                   ) -> Figure:
    """Per-layer activation std and weight-gradient RMS under PyTorch's default and ``chosen``."""
    fig = _figure(9.0, 4.2)
    names = [r.name for r in default.records]
    for i, (field, label) in enumerate((("act_std", "activation std"),
                                        ("grad_rms", "weight gradient RMS"))):
        ax = fig.add_subplot(1, 2, i + 1)
        for diag, name, style in ((default, "PyTorch default", {"color": "#7f7f7f"}),
                                  (chosen, chosen_label, {"color": _CHOSEN, "linewidth": 2})):
            by_name = {r.name: getattr(r, field) for r in diag.records}
            ys = [by_name.get(n, math.nan) for n in names]
            ax.plot(range(len(names)), [y if y > 0 else math.nan for y in ys], marker="o",
                    label=name, **style)
        ax.set_yscale("log")
        ax.set_xticks(range(len(names)), names, rotation=60 if len(names) > 6 else 0, fontsize=7)
        ax.set_xlabel("layer (execution order)")
        ax.set_title(label)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return fig


def optimization_history(points: Sequence[TrialPoint], title: str = "Optimization history"
                         ) -> Figure:
    """Each trial's score by trial number (baselines, searched, pruned) and the best so far."""
    fig = _figure()
    ax = fig.add_subplot()
    styles = {"baseline": {"marker": "s", "color": "#1f77b4"},
              "search": {"marker": "o", "color": "#2ca02c"},
              "pruned": {"marker": "x", "color": "#999999"}}
    for kind, style in styles.items():
        xs = [n for n, v, k in points if k == kind and v is not None and math.isfinite(v)]
        ys = [v for n, v, k in points if k == kind and v is not None and math.isfinite(v)]
        if xs:
            ax.scatter(xs, ys, label=kind if kind != "pruned" else "pruned (last reported)", **style)
    best, steps, bests = math.inf, [], []
    for n, v, k in sorted(points):
        if k in ("baseline", "search") and v is not None and v < best:
            best = v
        if math.isfinite(best):
            steps.append(n)
            bests.append(best)
    if steps:
        ax.step(steps, bests, where="post", color=_CHOSEN, label="best so far")
    values = [v for _, v, _ in points if v is not None and math.isfinite(v)]
    if values and min(values) > 0 and max(values) > 10 * min(values):
        ax.set_yscale("log")  # a few diverging trials would flatten the rest
    ax.set_xlabel("trial")
    ax.set_ylabel("probe score (held-out loss)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def param_importances(importances: Mapping[str, float], title: str = "Parameter importances (fANOVA)"
                      ) -> Figure:
    """A horizontal bar per search parameter, the most important on top."""
    items = sorted(importances.items(), key=lambda kv: kv[1])[-20:]
    fig = _figure(7.5, max(2.5, 0.35 * len(items) + 1.2))
    ax = fig.add_subplot()
    ax.barh([k for k, _ in items], [v for _, v in items], color="#1f77b4")
    ax.set_xlabel("importance")
    ax.set_title(title)
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(alpha=0.3, axis="x")
    return fig
