"""LSUV (Mishkin & Matas, ICLR 2016) through the PyPI package ``lsuv`` 0.3.0.

``lsuv.lsuv_with_singlebatch`` first sets every Conv/Linear weight to a random orthonormal matrix
(biases 0), then, layer by layer in forward order, rescales the weight until the layer's output
has standard deviation 1 (within 0.1, at most ``max_attempts`` rescalings per layer) on one
batch. It covers Conv1d/2d/3d, ConvTranspose, Linear and MultiheadAttention only: an RNN, LSTM or
GRU would keep PyTorch's default recurrent weights, so such models are refused here.

The package draws its orthonormal matrices from the global RNG; the call runs under a local seed,
so the caller's RNG state is left as it was.

Example:
    >>> import torch, torch.nn as nn
    >>> net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    >>> batches = [(torch.randn(64, 8, generator=torch.Generator().manual_seed(0)), None)]
    >>> init_lsuv(net, batches, None, seed=0)["applies"]
    True
"""

from __future__ import annotations

import contextlib
import io

from torch import nn

from ._common import (
    LossFn,
    Timer,
    check_batches,
    check_budget,
    local_rng,
    model_input,
    not_applicable,
    recurrent_modules,
    restore_on_error,
)

__all__ = ["init_lsuv"]

_METHOD = "lsuv"
DEFAULT_MAX_ATTEMPTS = 10  # the package's default


def init_lsuv(model: nn.Module, batches: list, loss_fn: LossFn | None = None, *, seed: int,
              budget: int | None = None, needed_std: float = 1.0, std_tol: float = 0.1) -> dict:
    """LSUV on the first batch's input; ``budget`` is the package's ``max_attempts`` per layer.

    ``loss_fn`` is not used (LSUV looks at activations only).
    """
    max_attempts = check_budget(budget, DEFAULT_MAX_ATTEMPTS)
    check_batches(batches)
    rnns = recurrent_modules(model)
    if rnns:
        return not_applicable(_METHOD, f"lsuv 0.3.0 covers Conv/Linear/MultiheadAttention only; the "
                                       f"recurrent modules {rnns} would keep PyTorch's default")
    try:
        import lsuv
        from lsuv.lsuvinit import is_relevant_layer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        return not_applicable(_METHOD, f"package not installable here: {exc}")
    layers = sum(1 for m in model.modules() if is_relevant_layer(m))
    if not layers:
        return not_applicable(_METHOD, "no Conv/Linear/MultiheadAttention layer in the model")
    x = model_input(batches[0])
    param = next(model.parameters())
    forwards = [0]
    hook = model.register_forward_hook(lambda *_: forwards.__setitem__(0, forwards[0] + 1))
    timer = Timer()
    try:
        with local_rng(seed), restore_on_error(model), contextlib.redirect_stdout(io.StringIO()):
            lsuv.lsuv_with_singlebatch(model, x.to(param.device), needed_std=needed_std, std_tol=std_tol,
                                       max_attempts=max_attempts, verbose=False, device=param.device)
    finally:
        hook.remove()
    return {"method": _METHOD, "applies": True, "layers": layers, "forward_passes": forwards[0],
            "max_attempts": max_attempts, "batch_size": int(x.shape[0]), "wall_s": timer.seconds}
