"""IRNN, written from the paper: a ReLU RNN whose recurrent matrix starts at the identity.

Le, Jaitly & Hinton, "A Simple Way to Initialize Recurrent Networks of Rectified Linear Units"
(2015): in every ReLU ``nn.RNN`` the hidden-to-hidden matrix is the identity and the biases are
zero, and the model's other weights (input-to-hidden, the readout) are drawn from a Gaussian of
mean 0 and standard deviation 0.001, their biases zero (a norm's gain, no weight matrix of the
paper's, stays as it is). So at the start the state adds up its
inputs and neither grows nor decays. autoinit's ``irnn`` preset differs: it keeps PyTorch's
default for the non-recurrent weights. Depends on torch only.

Example:
    >>> import torch, torch.nn as nn
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.rnn, self.head = nn.RNN(1, 4, nonlinearity="relu"), nn.Linear(4, 2)
    >>> net = Net()
    >>> init_irnn(net, seed=0)["rnns"], bool(torch.equal(net.rnn.weight_hh_l0, torch.eye(4)))
    (1, True)
    >>> float(net.head.weight.detach().std()) < 0.01, float(net.rnn.bias_ih_l0.detach().abs().sum())
    (True, 0.0)
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import LossFn, Timer, local_rng, not_applicable

__all__ = ["init_irnn"]

STD = 0.001  # the paper's standard deviation of the non-recurrent weights


def init_irnn(model: nn.Module, batches: list | None = None, loss_fn: LossFn | None = None, *,
              seed: int, budget: int | None = None) -> dict:
    """IRNN on every ReLU ``nn.RNN`` of ``model``; data-free. Applies only where every
    recurrent layer is a ReLU ``nn.RNN`` (the paper's rule is for rectified units)."""
    timer = Timer()
    rnns = [m for m in model.modules() if isinstance(m, nn.RNNBase)]
    if not rnns or any(not isinstance(m, nn.RNN) or m.nonlinearity != "relu" for m in rnns):
        return not_applicable("irnn", "needs ReLU nn.RNN layers and no other recurrent ones")
    recurrent = {id(p) for m in rnns for name, p in m.named_parameters()
                 if name.startswith("weight_hh")}
    with local_rng(seed), torch.no_grad():
        for name, p in model.named_parameters():
            if id(p) in recurrent:
                p.copy_(torch.eye(p.shape[0], p.shape[1]))
            elif name.rsplit(".", 1)[-1].startswith("bias"):
                p.zero_()
            elif p.dim() >= 2:  # a norm's gain is no weight of the paper's: left as it is
                p.normal_(0.0, STD)
    return {"method": "irnn", "applies": True, "rnns": len(rnns), "wall_s": timer.seconds}
