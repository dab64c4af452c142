"""Genome -> ``nn.Module``. Pure: no I/O, no printing, no global state.

``space`` is a plain mapping with what the genome alone does not say: ``in_channels``,
``num_classes`` and, for Genetic-CNN genomes, ``channels`` (one width per stage).
"""
from __future__ import annotations

from typing import Any, Mapping

import networkx as nx
import torch
from torch import nn

from genome import BinaryGenome, GenomeError
from training.ops import OPS


class GeneticStage(nn.Module):
    """One Genetic-CNN stage: the default input node (a conv from ``c_in`` to ``c``), one
    conv3x3-BN-ReLU per kept node applied to the sum of its inputs, and the default output node
    (a conv on the sum of the nodes without successors)."""

    def __init__(self, graph: nx.DiGraph, c_in: int, c: int):
        super().__init__()
        order = list(nx.topological_sort(graph))
        self.source, self.sink = order[0], order[-1]
        self.plan = [(str(v), [str(u) for u in sorted(graph.predecessors(v))]) for v in order[1:]]
        self.nodes = nn.ModuleDict({str(self.source): OPS["conv_3x3"](c_in, c, 1)})
        for v in order[1:]:
            self.nodes[str(v)] = OPS["conv_3x3"](c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = {str(self.source): self.nodes[str(self.source)](x)}
        for name, inputs in self.plan:
            total = outputs[inputs[0]]
            for other in inputs[1:]:
                total = total + outputs[other]
            outputs[name] = self.nodes[name](total)
        return outputs[str(self.sink)]


class GeneticNet(nn.Module):
    """Stages separated by 2x2 max-pooling, then global average pooling and a linear classifier.
    Pooling uses ``ceil_mode`` so any input of at least 1x1 works for any number of stages."""

    def __init__(self, genome: BinaryGenome, channels: list[int], in_channels: int,
                 num_classes: int):
        super().__init__()
        stages, c_in = [], in_channels
        for s, c in enumerate(channels):
            stages.append(GeneticStage(genome.stage_graph(s), c_in, c))
            c_in = c
        self.stages = nn.ModuleList(stages)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for s, stage in enumerate(self.stages):
            if s:
                x = self.pool(x)
            x = stage(x)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _positive_int(space: Mapping[str, Any], name: str) -> int:
    value = space.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GenomeError(f"space[{name!r}] must be a positive integer, got {value!r}")
    return value


def build_model(genome: Any, space: Mapping[str, Any]) -> nn.Module:
    """Decode ``genome`` into a fresh, randomly initialised ``nn.Module``.

    ``space`` needs ``in_channels`` and ``num_classes``; a :class:`BinaryGenome` also needs
    ``channels`` with one positive width per stage. Weights come from torch's global RNG, so
    seed it first for a reproducible model.
    """
    in_channels = _positive_int(space, "in_channels")
    num_classes = _positive_int(space, "num_classes")
    if isinstance(genome, BinaryGenome):
        channels = list(space.get("channels") or [])
        if len(channels) != len(genome.stages) or any(
                isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in channels):
            raise GenomeError(
                f"space['channels'] must list one positive width per stage: genome {genome} "
                f"has {len(genome.stages)} stages, got channels={space.get('channels')!r}")
        return GeneticNet(genome, channels, in_channels, num_classes)
    raise GenomeError(f"no decoder for genome of type {type(genome).__name__}")
