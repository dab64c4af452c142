"""One table of op factories. Every factory has the same signature: ``(C_in, C_out, stride)``
and returns an ``nn.Module``; decoders look ops up by name and never build layers by hand.

Two families share the table:

* Cell ops (every name in :data:`genome.cell.KNOWN_OPS`), NASNet/DARTS style: ReLU, then
  convolution(s), then batch norm, as in the DARTS reference ``cnn/operations.py``. Their names
  are the ones cell genomes carry, so they own the plain names ``conv_3x3`` and ``conv_1x1``.
* The Genetic-CNN node, convolution-BN-ReLU (Xie & Yuille 2017), named ``gcnn_conv_3x3`` (and
  ``gcnn_conv_1x1``): a genome's op names are keys into this one table, and a cell's
  ``conv_3x3`` is a different layer ordering (pre-activation) from a Genetic-CNN node.

Spatial contract of every op: stride 1 keeps ``H x W``; stride 2 gives
``ceil(H / 2) x ceil(W / 2)``, odd sizes included (7x7 -> 4x4), so the states a cell adds always
agree in size.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

OpFactory = Callable[[int, int, int], nn.Module]


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    """Convolution (no bias, 'same' padding), batch norm, ReLU: a Genetic-CNN node."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=False),
    )


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution (no bias, padding ``(kernel - 1) // 2``), batch norm."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class FactorizedReduce(nn.Module):
    """Halve the spatial size without losing every other pixel: ReLU, then two 1x1 stride-2
    convolutions, one on the input and one on the input shifted by one pixel down and right,
    concatenated (``C_out // 2`` and ``C_out - C_out // 2`` channels), then batch norm.

    The input is zero-padded by one row and column before the shift, so both paths give
    ``ceil(H / 2) x ceil(W / 2)`` for odd sizes too (on even sizes this is exactly DARTS')."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def sep_conv(c_in: int, c_out: int, stride: int, kernel: int) -> nn.Sequential:
    """DARTS ``SepConv``: (ReLU, depthwise ``kernel``, pointwise 1x1, BN) twice; the first
    depthwise conv carries the stride, the second pointwise conv changes the width."""
    pad = kernel // 2
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=pad, groups=c_in, bias=False),
        nn.Conv2d(c_in, c_in, 1, bias=False),
        nn.BatchNorm2d(c_in),
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_in, kernel, stride=1, padding=pad, groups=c_in, bias=False),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
    )


def dil_sep_conv(c_in: int, c_out: int, stride: int, kernel: int,
                 dilation: int = 2) -> nn.Sequential:
    """DARTS ``DilConv``: ReLU, dilated depthwise ``kernel``, pointwise 1x1, BN (applied once)."""
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=dilation * (kernel - 1) // 2,
                  dilation=dilation, groups=c_in, bias=False),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
    )


def conv_1x7_7x1(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    """DARTS ``conv_7x1_1x7``: ReLU, 1x7 conv (stride along W), 7x1 conv (stride along H), BN."""
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_out, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
        nn.Conv2d(c_out, c_out, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
        nn.BatchNorm2d(c_out),
    )


def identity(c_in: int, c_out: int, stride: int) -> nn.Module:
    """``nn.Identity`` when shape is kept; :class:`FactorizedReduce` at stride 2; a 1x1
    ReLU-conv-BN projection when only the width changes."""
    if stride != 1:
        return FactorizedReduce(c_in, c_out)
    if c_in != c_out:
        return ReLUConvBN(c_in, c_out, 1)
    return nn.Identity()


def pool(kind: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """3x3 pooling (average excludes the padding); a 1x1 ReLU-conv-BN follows only when the
    width changes."""
    layer: nn.Module = (
        nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False) if kind == "avg"
        else nn.MaxPool2d(3, stride=stride, padding=1))
    if c_in == c_out:
        return layer
    return nn.Sequential(layer, ReLUConvBN(c_in, c_out, 1))


OPS: dict[str, OpFactory] = {
    # Genetic-CNN nodes (conv-BN-ReLU).
    "gcnn_conv_3x3": lambda c_in, c_out, stride: conv_bn_relu(c_in, c_out, stride, 3),
    "gcnn_conv_1x1": lambda c_in, c_out, stride: conv_bn_relu(c_in, c_out, stride, 1),
    # Cell ops (ReLU-conv-BN), the names of genome.cell.KNOWN_OPS.
    "identity": identity,
    "sep_conv_3x3": lambda c_in, c_out, stride: sep_conv(c_in, c_out, stride, 3),
    "sep_conv_5x5": lambda c_in, c_out, stride: sep_conv(c_in, c_out, stride, 5),
    "sep_conv_7x7": lambda c_in, c_out, stride: sep_conv(c_in, c_out, stride, 7),
    "dil_sep_conv_3x3": lambda c_in, c_out, stride: dil_sep_conv(c_in, c_out, stride, 3),
    "dil_sep_conv_5x5": lambda c_in, c_out, stride: dil_sep_conv(c_in, c_out, stride, 5),
    "avg_pool_3x3": lambda c_in, c_out, stride: pool("avg", c_in, c_out, stride),
    "max_pool_3x3": lambda c_in, c_out, stride: pool("max", c_in, c_out, stride),
    "conv_1x7_7x1": conv_1x7_7x1,
    "conv_1x1": lambda c_in, c_out, stride: ReLUConvBN(c_in, c_out, 1, stride),
    "conv_3x3": lambda c_in, c_out, stride: ReLUConvBN(c_in, c_out, 3, stride),
}
