"""A small DCGAN on scikit-learn's 8×8 digits: the worked example of a custom training loop.

The model holds a ``generator`` (noise ``(z, 1, 1)`` → transposed convolutions with BatchNorm and
ReLU → ``tanh`` 1×8×8 image) and a ``discriminator`` (strided convolutions with LeakyReLU(0.2) and
BatchNorm → one logit), as in Radford et al. (2016). It is trained by :func:`gan_train_step`
(one discriminator step, then one non-saturating generator step, each with its own Adam at
2e-4, betas (0.5, 0.999), built fresh by :func:`gan_state`) and scored by :func:`gan_score`, the
Fréchet distance between generated and held-out digits in the feature space of a small digits
classifier trained inside this module (seeded, cached; nothing is downloaded). A run
*collapses* (:func:`gan_report`) when its samples cover fewer than 8 of the 10 digit classes (a
class is covered when the classifier puts at least 2 % of 1,000 samples in it), or are not finite.

Example:
    >>> import torch
    >>> train, val = gan_data(batch_size=16)
    >>> x, y = next(iter(train))
    >>> tuple(x.shape), float(x.min()) >= -1, float(x.max()) <= 1
    ((16, 1, 8, 8), True, True)
    >>> gan = dcgan(z_dim=8, channels=8)
    >>> state = gan_state(gan)
    >>> values = gan_train_step(gan, (x, y), state)
    >>> sorted(values)
    ['d_loss', 'g_loss']
    >>> gan_score(gan, [(x, y)]) > 0
    True
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from autoinit.tasks._common import check_positive, check_split, loaders
from autoinit.tasks.digits import raw_digits

__all__ = ["DCGAN", "GAN_GROUPS", "dcgan", "digits_classifier", "frechet_distance", "gan_data",
           "gan_loss", "gan_report", "gan_score", "gan_state", "gan_train_step"]

# Two role groups, one per network: its convolutions, its output layer, its BatchNorms.
GAN_GROUPS = {
    "generator.hidden": r"generator\.(project|up)\.",
    "generator.output": r"generator\.out\.",
    "generator.norm": r"generator\.bn\d\.",
    "discriminator.hidden": r"discriminator\.conv\d\.",
    "discriminator.head": r"discriminator\.head\.",
    "discriminator.norm": r"discriminator\.bn\d\.",
}
LR, BETAS = 2e-4, (0.5, 0.999)
SCORE_SAMPLES = 500  # generated digits per score: the Fréchet distance's bias depends on it
_SCORE_SEED = 1234  # the score's noise: the same for every candidate and every evaluation
COVERED_SHARE = 0.02  # a class is covered when it gets at least 2 % of the samples
COLLAPSE_BELOW = 8  # a run covering fewer classes than this has collapsed


class DCGAN(nn.Module):
    """A generator and a discriminator; ``forward(z)`` is the discriminator's logit for ``G(z)``."""

    def __init__(self, z_dim: int, channels: int) -> None:
        super().__init__()
        check_positive(z_dim=z_dim, channels=channels)
        c = channels
        self.z_dim = z_dim
        self.generator = nn.Sequential(OrderedDict(
            project=nn.ConvTranspose2d(z_dim, 2 * c, 2, 1, 0, bias=False),  # 2x2
            bn1=nn.BatchNorm2d(2 * c), act1=nn.ReLU(),
            up=nn.ConvTranspose2d(2 * c, c, 4, 2, 1, bias=False),  # 4x4
            bn2=nn.BatchNorm2d(c), act2=nn.ReLU(),
            out=nn.ConvTranspose2d(c, 1, 4, 2, 1, bias=False), tanh=nn.Tanh(),  # 8x8
        ))
        self.discriminator = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(1, c, 4, 2, 1, bias=False), act1=nn.LeakyReLU(0.2),  # 4x4
            conv2=nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False),  # 2x2
            bn2=nn.BatchNorm2d(2 * c), act2=nn.LeakyReLU(0.2),
            head=nn.Conv2d(2 * c, 1, 2, 1, 0), flat=nn.Flatten(0),  # one logit per image
        ))

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = next(self.parameters()).device
        return torch.randn(n, self.z_dim, 1, 1, generator=generator).to(device)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.discriminator(self.generator(z))


def dcgan(z_dim: int = 16, channels: int = 32) -> DCGAN:
    """The DCGAN for 1×8×8 digits (``channels`` and twice as many in the widest layers)."""
    return DCGAN(z_dim, channels)


def gan_data(batch_size: int = 64, seed: int = 0, split: str = "val") -> tuple[DataLoader, DataLoader]:
    """``(train, val)`` loaders of digits as 1×8×8 images in [-1, 1] with their labels, or
    ``(train, test)``; the split is :mod:`autoinit.tasks.digits`'s."""
    check_split(split)
    parts = raw_digits()

    def images(part: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = parts[part]
        return (x / 8.0 - 1.0).reshape(-1, 1, 8, 8), y

    return loaders(images("train"), images(split), batch_size, seed)


def gan_state(model: DCGAN) -> dict[str, torch.optim.Optimizer]:
    """Fresh optimizers, one per network (Adam 2e-4, betas (0.5, 0.999) as in DCGAN)."""
    return {"d": torch.optim.Adam(model.discriminator.parameters(), lr=LR, betas=BETAS),
            "g": torch.optim.Adam(model.generator.parameters(), lr=LR, betas=BETAS)}


def gan_train_step(model: DCGAN, batch: Any, state: dict) -> dict[str, float]:
    """One discriminator step on real and generated digits, then one generator step
    (non-saturating loss); the two losses."""
    real = batch[0]
    n = len(real)
    ones, zeros = torch.ones(n, device=real.device), torch.zeros(n, device=real.device)
    fake = model.generator(model.noise(n))
    state["d"].zero_grad(set_to_none=True)
    d_loss = (F.binary_cross_entropy_with_logits(model.discriminator(real), ones)
              + F.binary_cross_entropy_with_logits(model.discriminator(fake.detach()), zeros))
    d_loss.backward()
    state["d"].step()
    state["g"].zero_grad(set_to_none=True)
    g_loss = F.binary_cross_entropy_with_logits(model.discriminator(fake), ones)
    g_loss.backward()
    state["g"].step()
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}


def gan_loss(model: DCGAN, batch: Any) -> torch.Tensor:
    """The discriminator's loss on a real batch and as many generated digits: one forward pass
    through both networks (what autoinit's screening pass and LSUV baseline run)."""
    real = batch[0]
    n = len(real)
    ones, zeros = torch.ones(n, device=real.device), torch.zeros(n, device=real.device)
    fake = model.generator(model.noise(n))
    return (F.binary_cross_entropy_with_logits(model.discriminator(real), ones)
            + F.binary_cross_entropy_with_logits(model.discriminator(fake), zeros))


# ----------------------------------------------------------------------------- the score

class _Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(),
                                      nn.Linear(128, 64), nn.ReLU())
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@lru_cache(maxsize=1)
def digits_classifier() -> _Classifier:
    """A small MLP trained once on the training digits (in [-1, 1]) from fixed seeds, without
    touching the caller's global RNG state."""
    x, y = gan_data(batch_size=64)[0].dataset.tensors
    with torch.random.fork_rng(devices=[]), torch.enable_grad():  # also when called under no_grad
        torch.manual_seed(0)
        net = _Classifier()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(0)
        for _ in range(40):  # epochs
            for idx in torch.randperm(len(x), generator=g).split(64):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(x[idx]), y[idx]).backward()
                opt.step()
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature rows (as in FID):
    ``|mu_a - mu_b|² + tr(S_a + S_b - 2 (S_a^½ S_b S_a^½)^½)``, in float64."""
    a, b = a.double(), b.double()
    s_a, s_b = torch.cov(a.T), torch.cov(b.T)
    values, vectors = torch.linalg.eigh(s_a)
    root_a = vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(root_a @ s_b @ root_a).clamp_min(0).sqrt().sum()
    value = (a.mean(0) - b.mean(0)).square().sum() + s_a.trace() + s_b.trace() - 2 * cross
    return max(float(value), 0.0)


@torch.no_grad()
def _samples(model: DCGAN, n: int) -> torch.Tensor:
    z = model.noise(n, torch.Generator().manual_seed(_SCORE_SEED))
    return model.generator(z).float().cpu()


def gan_score(model: DCGAN, val_batches: Sequence[Any]) -> float:
    """Fréchet distance (lower is better) between :data:`SCORE_SAMPLES` generated digits and the
    held-out digits, in the features of :func:`digits_classifier`; infinite for non-finite
    samples."""
    fake = _samples(model, SCORE_SAMPLES)
    if not bool(torch.isfinite(fake).all()):
        return float("inf")
    real = torch.cat([b[0] for b in val_batches]).float().cpu()
    net = digits_classifier()
    return frechet_distance(net.features(fake), net.features(real))


def gan_report(model: DCGAN, val_batches: Sequence[Any], n: int = 1000) -> dict[str, Any]:
    """The score, the classes the samples cover, and whether the run collapsed."""
    fake = _samples(model, n)
    if not bool(torch.isfinite(fake).all()):
        return {"fd": None, "classes_covered": 0, "collapsed": True}
    shares = torch.bincount(digits_classifier()(fake).argmax(1), minlength=10).float() / n
    covered = int((shares >= COVERED_SHARE).sum())
    return {"fd": gan_score(model, val_batches), "classes_covered": covered,
            "class_shares": [round(float(s), 3) for s in shares],
            "collapsed": covered < COLLAPSE_BELOW}
