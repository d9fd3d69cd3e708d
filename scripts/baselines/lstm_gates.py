"""Gate-bias initializations for LSTMs, written from the papers: forget-gate bias 1, chrono.

* **Forget-gate bias 1** (Gers, Schmidhuber & Cummins 2000; Jozefowicz, Zaremba & Sutskever,
  "An Empirical Exploration of Recurrent Network Architectures", ICML 2015): the forget gate's
  bias starts at 1 so the cell keeps its memory early in training; everything else as it was.
* **Chrono** (Tallec & Ollivier, "Can recurrent neural networks warp time?", ICLR 2018):
  ``b_f ~ log(U(1, T_max - 1))`` and ``b_i = -b_f``, the other biases 0, so the units' memory
  spans cover the task's range of dependencies. ``T_max`` is the training sequences' length
  (the second dimension of the first batch, ``batch_first``).

PyTorch's LSTM adds two bias vectors (``bias_ih`` and ``bias_hh``) in the gate order input,
forget, cell, output; the rule's value goes into ``bias_ih`` and ``bias_hh``'s part is set to 0,
so their sum is the paper's bias. Depends on torch only.

Example:
    >>> import torch, torch.nn as nn
    >>> net = nn.Sequential(nn.LSTM(3, 4, batch_first=True))
    >>> init_forget_bias(net, seed=0)["lstms"]
    1
    >>> net[0].bias_ih_l0[4:8].tolist(), net[0].bias_hh_l0[4:8].tolist()
    ([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0])
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import LossFn, Timer, check_batches, local_rng, model_input, not_applicable

__all__ = ["init_chrono", "init_forget_bias"]


def _lstm_biases(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """``(bias_ih, bias_hh, hidden)`` of every layer and direction of every ``nn.LSTM``."""
    out = []
    for module in model.modules():
        if isinstance(module, nn.LSTM) and module.bias:
            for name, p in module.named_parameters():
                if name.startswith("bias_ih"):
                    out.append((p, getattr(module, name.replace("bias_ih", "bias_hh")),
                                module.hidden_size))
    return out


def init_forget_bias(model: nn.Module, batches: list | None = None, loss_fn: LossFn | None = None, *,
                     seed: int, budget: int | None = None) -> dict:
    """Forget-gate bias 1 in every ``nn.LSTM``, the rest of the model unchanged; data-free."""
    timer = Timer()
    biases = _lstm_biases(model)
    if not biases:
        return not_applicable("forget_bias", "no nn.LSTM with biases")
    with torch.no_grad():
        for b_ih, b_hh, h in biases:
            b_ih[h:2 * h].fill_(1.0)
            b_hh[h:2 * h].zero_()
    return {"method": "forget_bias", "applies": True, "lstms": len(biases), "wall_s": timer.seconds}


def init_chrono(model: nn.Module, batches: list, loss_fn: LossFn | None = None, *, seed: int,
                budget: int | None = None) -> dict:
    """Chrono init of every ``nn.LSTM``'s gate biases, ``T_max`` = the batches' sequence length."""
    timer = Timer()
    biases = _lstm_biases(model)
    if not biases:
        return not_applicable("chrono", "no nn.LSTM with biases")
    check_batches(batches)
    x = model_input(batches[0])
    t_max = int(x.shape[1]) if x.dim() >= 2 else 0
    if t_max < 3:
        return not_applicable("chrono", f"needs sequences of at least 3 steps, got shape {tuple(x.shape)}")
    with local_rng(seed), torch.no_grad():
        for b_ih, b_hh, h in biases:
            b_f = torch.log(torch.empty(h).uniform_(1.0, t_max - 1.0))
            b_ih.zero_()
            b_hh.zero_()
            b_ih[h:2 * h] = b_f
            b_ih[:h] = -b_f
    return {"method": "chrono", "applies": True, "lstms": len(biases), "t_max": t_max,
            "wall_s": timer.seconds}
