"""``anyinit`` 0.4.0 (PyPI): scale every layer so activation statistics hold across depth.

Two entry points: ``init_anyinit_analytic`` propagates the moments of each activation through a
``torch.fx`` graph of the model without running it (the batch only feeds a validation pass), and
``init_anyinit_empirical`` measures the real batch layer by layer (a graph-aware LSUV). Both
redraw the weights from a seeded NumPy generator, then set one scale per layer.

anyinit leaves recurrent layers at the framework's default ("recurrence over time is not
modeled"), so RNN/LSTM/GRU models are refused here; so is any model on which anyinit raises (the
model is then restored to what it was).

Example:
    >>> import torch, torch.nn as nn
    >>> net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    >>> batches = [(torch.randn(64, 8, generator=torch.Generator().manual_seed(0)), None)]
    >>> init_anyinit_analytic(net, batches, None, seed=0)["layers_scaled"]
    2
"""

from __future__ import annotations

from torch import nn

from ._common import (
    LossFn,
    Timer,
    check_batches,
    local_rng,
    model_input,
    not_applicable,
    recurrent_modules,
    restore_on_error,
)

__all__ = ["init_anyinit_analytic", "init_anyinit_empirical"]


def init_anyinit_analytic(model: nn.Module, batches: list, loss_fn: LossFn | None = None, *, seed: int,
                          budget: int | None = None) -> dict:
    """anyinit's analytic mode (data-free moment propagation); ``budget`` is not used."""
    return _anyinit(model, batches, seed, "analytic")


def init_anyinit_empirical(model: nn.Module, batches: list, loss_fn: LossFn | None = None, *, seed: int,
                           budget: int | None = None) -> dict:
    """anyinit's empirical mode on the first batch's input; ``budget`` is not used."""
    return _anyinit(model, batches, seed, "empirical")


def _anyinit(model: nn.Module, batches: list, seed: int, mode: str) -> dict:
    method = f"anyinit_{mode}"
    check_batches(batches)
    rnns = recurrent_modules(model)
    if rnns:
        return not_applicable(method, f"anyinit 0.4.0 does not model recurrence over time: the recurrent "
                                      f"modules {rnns} would keep PyTorch's default")
    try:
        import anyinit
    except ImportError as exc:  # pragma: no cover - depends on the environment
        return not_applicable(method, f"package not installable here: {exc}")
    x = model_input(batches[0])
    timer = Timer()
    try:
        with local_rng(seed), restore_on_error(model):
            report = anyinit.initialize(model, mode, x, seed=seed)
    except Exception as exc:  # noqa: BLE001 - any failure of the package means "does not apply"
        return not_applicable(method, f"anyinit raised {type(exc).__name__}: {exc}")
    return {"method": method, "applies": True, "layers_scaled": len(report.layers),
            "unscaled": [name for name, _ in report.unscaled], "warnings": len(report.warnings),
            "solver_passes": report.iterations, "converged": report.converged, "wall_s": timer.seconds}
