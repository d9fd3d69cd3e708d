"""The zoo's models: small networks written the way users write them, each with its own data.

Every factory takes a width (the zoo builds the model at ``WIDTH`` and a narrower copy at
``NARROW`` for the transfer check) and builds in milliseconds on CPU. :data:`DATA` gives each
input kind a seeded, generated loader. ``scripts/zoo.py`` runs the checks on them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations
from torch.utils.data import DataLoader, TensorDataset

WIDTH, NARROW = 8, 4
VOCAB, SEQ, FEATURES, CLASSES = 16, 6, 6, 3


# ----------------------------------------------------------------------------------- data

def _loader(x: torch.Tensor, y: torch.Tensor) -> DataLoader:
    return DataLoader(TensorDataset(x, y), batch_size=16)


def vectors(seed: int = 0) -> DataLoader:
    """(64, FEATURES) floats, three classes from two coordinates."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, FEATURES, generator=g)
    return _loader(x, (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long())


def tokens(seed: int = 0) -> DataLoader:
    """(64, SEQ) token ids (0 is padding, at the end of every row), the class: the first token mod 3."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, VOCAB, (64, SEQ), generator=g)
    x[:, -2:] = 0
    return _loader(x, x[:, 0] % CLASSES)


def sequences(seed: int = 0) -> DataLoader:
    """(64, SEQ, FEATURES) floats, the class from the sign of the first step's sum."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, SEQ, FEATURES, generator=g)
    return _loader(x, (x[:, 0].sum(1) > 0).long())


def images(seed: int = 0) -> DataLoader:
    """(64, 1, 8, 8) images, the class from the mean of the top half."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 1, 8, 8, generator=g)
    return _loader(x, (x[:, :, :4].mean((1, 2, 3)) > 0).long())


def denoise(seed: int = 0) -> DataLoader:
    """(64, 1, 8, 8) noisy images and their clean versions (a regression target)."""
    g = torch.Generator().manual_seed(seed)
    clean = torch.linspace(-1, 1, 8).expand(64, 1, 8, 8) * torch.rand(64, 1, 1, 1, generator=g)
    return _loader(clean + 0.3 * torch.randn(64, 1, 8, 8, generator=g), clean.contiguous())


def latents(seed: int = 0) -> DataLoader:
    """(64, FEATURES) noise and (64, 1, 8, 8) target images in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(64, FEATURES, generator=g)
    return _loader(z, torch.tanh(z[:, :1, None, None] * torch.linspace(-1, 1, 8).expand(64, 1, 8, 8)))


# ----------------------------------------------------------------------------------- LLaMA

class RMSNorm(nn.Module):
    """A hand-written RMSNorm (a gain, no bias, no reset method), as LLaMA's reference code."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LlamaAttention(nn.Module):
    def __init__(self, dim: int, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (
            nn.Linear(dim, dim, bias=False) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (p(x).view(b, t, self.heads, d // self.heads).transpose(1, 2)
                   for p in (self.q_proj, self.k_proj, self.v_proj))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, d))


class SwiGLU(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, 2 * dim, bias=False)
        self.up_proj = nn.Linear(dim, 2 * dim, bias=False)
        self.down_proj = nn.Linear(2 * dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.input_layernorm, self.self_attn = RMSNorm(dim), LlamaAttention(dim)
        self.post_attention_layernorm, self.mlp = RMSNorm(dim), SwiGLU(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    """Two LLaMA blocks (pre-RMSNorm, q/k/v/o, SwiGLU), a final norm and an untied head."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, width)
        self.layers = nn.ModuleList(LlamaBlock(width) for _ in range(2))
        self.norm, self.lm_head = RMSNorm(width), nn.Linear(width, CLASSES, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed_tokens(x)
        for layer in self.layers:
            h = layer(h)
        return self.lm_head(self.norm(h)[:, -1])


# ----------------------------------------------------------------------------------- nanoGPT

class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int = 2) -> None:
        super().__init__()
        self.heads, self.c_attn, self.c_proj = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (a.view(b, t, self.heads, d // self.heads).transpose(1, 2) for a in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, d))


class GPTMLP(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.c_fc, self.gelu, self.c_proj = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class GPTBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(dim), CausalSelfAttention(dim)
        self.ln_2, self.mlp = nn.LayerNorm(dim), GPTMLP(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class NanoGPT(nn.Module):
    """nanoGPT's model: wte/wpe, blocks with a fused q/k/v ``c_attn``, ``lm_head`` tied to ``wte``."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(VOCAB, width), "wpe": nn.Embedding(SEQ, width),
            "h": nn.ModuleList(GPTBlock(width) for _ in range(2)), "ln_f": nn.LayerNorm(width)})
        self.lm_head = nn.Linear(width, VOCAB, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # nanoGPT's weight tying

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(x.shape[1], device=x.device)
        h = self.transformer.wte(x) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            h = block(h)
        return self.lm_head(self.transformer.ln_f(h))[:, -1, :CLASSES]


# ----------------------------------------------------------------------------------- torch.nn Transformers

class TorchEncoder(nn.Module):
    """``nn.TransformerEncoder``, pre-norm (``norm_first``), two layers, a final LayerNorm."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, width)
        layer = nn.TransformerEncoderLayer(width, 2, 2 * width, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(width),
                                         enable_nested_tensor=False)
        self.head = nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.enc(self.emb(x)).mean(1))


class TorchDecoder(nn.Module):
    """``nn.TransformerDecoder`` (post-norm), two layers, memory: the embedded tokens."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, width)
        layer = nn.TransformerDecoderLayer(width, 2, 2 * width, dropout=0.0, batch_first=True)
        self.dec = nn.TransformerDecoder(layer, 2)
        self.head = nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(x)
        return self.head(self.dec(h, h).mean(1))


class TorchSeq2Seq(nn.Module):
    """``nn.Transformer`` (one encoder and one decoder layer), source and target: the tokens."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, width)
        self.transformer = nn.Transformer(width, 2, 1, 1, 2 * width, dropout=0.0, batch_first=True)
        self.head = nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(x)
        return self.head(self.transformer(h, h).mean(1))


# ----------------------------------------------------------------------------------- MLP-Mixer, ConvNeXt

class MixerBlock(nn.Module):
    def __init__(self, tokens: int, dim: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.token_fc1, self.token_fc2 = nn.Linear(tokens, 2 * tokens), nn.Linear(2 * tokens, tokens)
        self.channel_fc1, self.channel_fc2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x).transpose(1, 2)
        x = x + self.token_fc2(F.gelu(self.token_fc1(y))).transpose(1, 2)
        return x + self.channel_fc2(F.gelu(self.channel_fc1(self.norm2(x))))


class Mixer(nn.Module):
    """MLP-Mixer on a sequence of feature vectors: a patch embedding, two mixer blocks."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.stem = nn.Linear(FEATURES, width)
        self.blocks = nn.Sequential(*(MixerBlock(SEQ, width) for _ in range(2)))
        self.norm, self.head = nn.LayerNorm(width), nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.blocks(self.stem(x))).mean(1))


class ConvNeXtBlock(nn.Module):
    """Depthwise 7x7 conv, channels-last LayerNorm, pointwise MLP, LayerScale ``gamma``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1, self.act, self.pwconv2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x).permute(0, 2, 3, 1))
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(y)))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, width, 2, stride=2)
        self.blocks = nn.Sequential(ConvNeXtBlock(width), ConvNeXtBlock(width))
        self.head = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


# ----------------------------------------------------------------------------------- convolutional nets

class UNet(nn.Module):
    """One level of U-Net: conv, pool, conv, ``ConvTranspose2d`` up, concat skip, conv, 1x1 out."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.enc = nn.Conv2d(1, width, 3, padding=1)
        self.mid = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.dec = nn.Conv2d(2 * width, width, 3, padding=1)
        self.out = nn.Conv2d(width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = F.relu(self.enc(x))
        m = F.relu(self.mid(F.max_pool2d(e, 2)))
        d = F.relu(self.dec(torch.cat([self.up(m), e], 1)))
        return self.out(d)


class BasicBlock(nn.Module):
    """torchvision's ResNet basic block, with a 1x1 conv + BN downsample where the shape changes."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1, self.relu = nn.BatchNorm2d(planes), nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class BNResNet(nn.Module):
    """Stem, two basic blocks at ``width`` and one at ``2·width`` with stride 2 (downsample)."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)
        self.layer1 = nn.Sequential(BasicBlock(width, width), BasicBlock(width, width))
        self.layer2 = nn.Sequential(BasicBlock(width, 2 * width, 2))
        self.fc = nn.Linear(2 * width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.layer2(self.layer1(x)), 1), 1))


class PreActBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(dim), nn.Conv2d(dim, dim, 3, padding=1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(dim), nn.Conv2d(dim, dim, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        return x + self.conv2(F.relu(self.bn2(out)))


class PreActResNet(nn.Module):
    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, padding=1, bias=False)
        self.blocks = nn.Sequential(PreActBlock(width), PreActBlock(width))
        self.bn, self.head = nn.BatchNorm2d(width), nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.bn(self.blocks(self.stem(x)))).mean((2, 3)))


class DenseLayer(nn.Module):
    def __init__(self, inplanes: int, growth: int) -> None:
        super().__init__()
        self.norm, self.conv = nn.BatchNorm2d(inplanes), nn.Conv2d(inplanes, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv(F.relu(self.norm(x)))], 1)


class DenseNet(nn.Module):
    """A dense block of three layers (concatenated features), a 1x1 transition, a classifier."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        growth = width // 2
        self.stem = nn.Conv2d(1, width, 3, padding=1, bias=False)
        self.block = nn.Sequential(*(DenseLayer(width + i * growth, growth) for i in range(3)))
        self.transition = nn.Conv2d(width + 3 * growth, width, 1, bias=False)
        self.classifier = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.transition(self.block(self.stem(x))), 2)
        return self.classifier(F.relu(h).mean((2, 3)))


class GroupedResNeXt(nn.Module):
    """Residual blocks of a grouped 3x3 conv (4 groups) and a 1x1 conv."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, padding=1)
        self.grouped = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1, groups=4) for _ in range(2))
        self.point = nn.ModuleList(nn.Conv2d(width, width, 1) for _ in range(2))
        self.head = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.stem(x))
        for g, p in zip(self.grouped, self.point, strict=True):
            h = F.relu(h + p(F.relu(g(h))))
        return self.head(h.mean((2, 3)))


class Generator(nn.Module):
    """A DCGAN-style generator: a linear projection, two transposed convs, BN, tanh output."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.width = width
        self.project = nn.Linear(FEATURES, 2 * width * 2 * 2)
        self.net = nn.Sequential(
            nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(z).view(-1, 2 * self.width, 2, 2))


# ----------------------------------------------------------------------------------- recurrent nets

class BiLSTM(nn.Module):
    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, width, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(2 * width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0][:, -1])


class SeqFirstGRU(nn.Module):
    """``nn.GRU`` with ``batch_first=False``: the model puts time first itself."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.gru, self.head = nn.GRU(FEATURES, width), nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x.transpose(0, 1))
        return self.head(out[-1])


class ReluRNN(nn.Module):
    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.rnn = nn.RNN(FEATURES, width, nonlinearity="relu", batch_first=True)
        self.head = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


class CellLoop(nn.Module):
    """An ``nn.LSTMCell`` under an ``nn.GRUCell``, stepped in a Python loop."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.width = width
        self.lstm_cell, self.gru_cell = nn.LSTMCell(FEATURES, width), nn.GRUCell(width, width)
        self.head = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = c = g = x.new_zeros(x.shape[0], self.width)
        for t in range(x.shape[1]):
            h, c = self.lstm_cell(x[:, t], (h, c))
            g = self.gru_cell(h, g)
        return self.head(g)


# ----------------------------------------------------------------------------------- odd layers

class MLPBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(F.relu(self.fc1(x)))


class Gated(nn.Module):
    """Residual MLP blocks, each run only where the data says so (``if h.mean() > 0``): the
    forward does not fx-trace."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.stem = nn.Linear(FEATURES, width)
        self.blocks = nn.ModuleList(MLPBlock(width) for _ in range(2))
        self.head = nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.stem(x))
        for block in self.blocks:
            if h.mean() > 0:  # data-dependent control flow
                h = block(h)
        return self.head(h)


class Lazy(nn.Module):
    """``nn.LazyLinear`` layers: shapes known after the first batch."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(width), nn.ReLU(), nn.LazyLinear(width), nn.ReLU(),
                                 nn.LazyLinear(CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Normalized(nn.Module):
    """``parametrizations.weight_norm`` and ``spectral_norm`` on two layers of an MLP."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.fc1 = parametrizations.weight_norm(nn.Linear(FEATURES, width))
        self.fc2 = parametrizations.spectral_norm(nn.Linear(width, width))
        self.head = nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.fc2(F.relu(self.fc1(x)))))


class PaddedBag(nn.Module):
    """``nn.Embedding(padding_idx=0)``, a masked mean over the tokens, a linear classifier."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, width, padding_idx=0)
        self.fc, self.head = nn.Linear(width, width), nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = (x != 0).unsqueeze(-1).float()
        pooled = (self.emb(x) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.head(torch.tanh(self.fc(pooled)))


class BilinearNet(nn.Module):
    """``nn.Bilinear`` joining the two halves of the input."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        half = FEATURES // 2
        self.bilinear, self.head = nn.Bilinear(half, half, width), nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return self.head(F.relu(self.bilinear(a, b)))


class MyLinear(nn.Module):
    """A hand-written linear layer: raw ``nn.Parameter`` s used with ``F.linear``."""

    def __init__(self, fan_in: int, fan_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(fan_out, fan_in))
        self.bias = nn.Parameter(torch.empty(fan_out))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        nn.init.uniform_(self.bias, -self.weight.shape[1] ** -0.5, self.weight.shape[1] ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class RawParams(nn.Module):
    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.fc1, self.fc2 = MyLinear(FEATURES, width), MyLinear(width, width)
        self.out = MyLinear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.fc2(F.relu(self.fc1(x)))))


class FrozenBackbone(nn.Module):
    """A frozen MLP backbone (``requires_grad_(False)``) under a trainable two-layer head."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU())
        self.backbone.requires_grad_(False)
        self.neck, self.head = nn.Linear(16, width), nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.neck(self.backbone(x))))


class SharedBlock(nn.Module):
    """ALBERT-style sharing: one residual MLP block applied three times."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.stem = nn.Linear(FEATURES, width)
        self.fc1, self.fc2 = nn.Linear(width, width), nn.Linear(width, width)
        self.head = nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.stem(x))
        for _ in range(3):
            h = h + self.fc2(F.relu(self.fc1(h)))
        return self.head(h)


class TiedHeadFirst(nn.Module):
    """An output layer registered before the embedding it is tied to (``emb.weight = head.weight``)."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.head = nn.Linear(width, VOCAB, bias=False)
        self.emb, self.fc = nn.Embedding(VOCAB, width), nn.Linear(width, width)
        self.emb.weight = self.head.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.fc(self.emb(x).mean(1))))[:, :CLASSES]


class CrossAttention(nn.Module):
    """``nn.MultiheadAttention`` with ``kdim``/``vdim`` of its own (separate q, k, v weights)."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.emb, self.context = nn.Embedding(VOCAB, width), nn.Linear(width, width // 2)
        self.attn = nn.MultiheadAttention(width, 2, kdim=width // 2, vdim=width // 2, batch_first=True)
        self.head = nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(x)
        kv = self.context(h)
        return self.head((h + self.attn(h, kv, kv)[0]).mean(1))


class Float64(nn.Module):
    """An MLP in double precision (``.double()``), fed float32 batches it casts."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(FEATURES, width), nn.Tanh(), nn.Linear(width, CLASSES)).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.double())


class BitFit(nn.Module):
    """Every weight frozen, the biases trained (BitFit)."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.fc, self.head = nn.Linear(FEATURES, width), nn.Linear(width, CLASSES)
        for name, p in self.named_parameters():
            p.requires_grad_(name.endswith("bias"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.fc(x)))


class SparseBag(nn.Module):
    """``nn.EmbeddingBag(sparse=True, padding_idx=0)``: sparse gradients (Adam refuses them)."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(VOCAB, width, mode="mean", sparse=True, padding_idx=0)
        self.head = nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.bag(x))


# ----------------------------------------------------------------------------------- weights used by hand

class TiedMatmulLM(nn.Module):
    """Pre-norm residual MLP blocks over an embedding; the logits ``h @ wte.weight.t()``: no
    output layer of its own (the readout is the embedding)."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.wte = nn.Embedding(VOCAB, width)
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(2))
        self.fc = nn.ModuleList(nn.Linear(width, 2 * width) for _ in range(2))
        self.proj = nn.ModuleList(nn.Linear(2 * width, width) for _ in range(2))
        self.ln_f = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.wte(x)
        for norm, fc, proj in zip(self.norms, self.fc, self.proj, strict=True):
            h = h + proj(F.gelu(fc(norm(h))))
        return (self.ln_f(h) @ self.wte.weight.t()).mean(1)[:, :CLASSES]


class MaskedParent(nn.Module):
    """MADE-style masks written in the parent: ``F.linear(x, fc.weight * mask, fc.bias)``."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.fc, self.head = nn.Linear(FEATURES, width), nn.Linear(width, CLASSES)
        self.register_buffer("mask", torch.ones(width, FEATURES).tril())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(F.linear(x, self.fc.weight * self.mask, self.fc.bias)))


class TiedAutoencoder(nn.Module):
    """A denoising autoencoder whose decoder is the encoder transposed (``enc.weight.t()``)."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.enc, self.dec_bias = nn.Linear(64, width), nn.Parameter(torch.zeros(64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = torch.sigmoid(self.enc(x.flatten(1)))
        return F.linear(code, self.enc.weight.t(), self.dec_bias).view_as(x)
