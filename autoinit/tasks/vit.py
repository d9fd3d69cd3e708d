"""A small Vision Transformer (post-LN, no warmup) on the 8×8 digits.

The image is cut into ``patch``×``patch`` patches embedded by a strided convolution, a learned
class token and position embeddings are added, post-LN ``nn.TransformerEncoderLayer`` blocks
follow (``norm_first=False``), and a linear head reads the class token. Trained with Adam and no
learning-rate warmup, post-LN attention stacks are the setting where the initialization decides
whether training starts (Xiong et al. 2020; T-Fixup, Huang et al. 2020); ViT's own recipe zeroes
the head (Dosovitskiy et al. 2021).

Example:
    >>> import torch
    >>> net = tiny_vit(n_layers=1, d_model=16, n_heads=2, ff=16)
    >>> tuple(net(torch.zeros(3, 1, 8, 8)).shape), tuple(net.pos_embed.weight.shape)
    ((3, 10), (17, 16))
"""

from __future__ import annotations

import torch
from torch import nn

from autoinit.tasks._common import check_positive

__all__ = ["TinyViT", "tiny_vit"]


class TinyViT(nn.Module):
    """Patch embedding, class token, position embeddings, post-LN encoder layers, linear head."""

    def __init__(self, image: int, patch: int, in_channels: int, d_model: int, n_layers: int,
                 n_heads: int, ff: int, classes: int) -> None:
        super().__init__()
        check_positive(image=image, patch=patch, in_channels=in_channels, d_model=d_model,
                       n_layers=n_layers, n_heads=n_heads, ff=ff, classes=classes)
        if image % patch:
            raise ValueError(f"patch must divide the image size {image}, got {patch}")
        self.patch_embed = nn.Conv2d(in_channels, d_model, patch, stride=patch)
        # embeddings, so that every parameter has a layer kind initializers know
        self.cls_token = nn.Embedding(1, d_model)
        self.pos_embed = nn.Embedding((image // patch) ** 2 + 1, d_model)
        # independent layers (nn.TransformerEncoder would deep-copy one, so all start equal)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, n_heads, ff, 0.0, batch_first=True, norm_first=False)
            for _ in range(n_layers))
        self.head = nn.Linear(d_model, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.patch_embed(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.weight.expand(len(h), 1, -1)
        h = torch.cat([cls, h], dim=1) + self.pos_embed.weight
        for layer in self.layers:
            h = layer(h)
        return self.head(h[:, 0])


def tiny_vit(n_layers: int = 6, d_model: int = 64, n_heads: int = 4, ff: int = 128, patch: int = 2,
             image: int = 8, in_channels: int = 1, classes: int = 10) -> TinyViT:
    """A post-LN ViT for ``image``×``image`` inputs cut into ``patch``×``patch`` patches."""
    return TinyViT(image, patch, in_channels, d_model, n_layers, n_heads, ff, classes)
