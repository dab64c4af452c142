"""One table of op factories. Every factory has the same signature: ``(C_in, C_out, stride)``
and returns an ``nn.Module``; decoders look ops up by name and never build layers by hand."""
from __future__ import annotations

from typing import Callable

from torch import nn

OpFactory = Callable[[int, int, int], nn.Module]


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    """Convolution (no bias, 'same' padding), batch norm, ReLU: a Genetic-CNN node."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=False),
    )


OPS: dict[str, OpFactory] = {
    "conv_3x3": lambda c_in, c_out, stride: conv_bn_relu(c_in, c_out, stride, 3),
    "conv_1x1": lambda c_in, c_out, stride: conv_bn_relu(c_in, c_out, stride, 1),
}
