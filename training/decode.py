"""Genome -> ``nn.Module``. Pure: no I/O, no printing, no global state.

``space`` is a plain mapping with what the genome alone does not say. Every genome needs
``in_channels`` and ``num_classes``. A Genetic-CNN :class:`BinaryGenome` needs ``channels``
(one width per stage). A :class:`CellGenome` (NASNet / AmoebaNet) reads, all optional:

``cells_per_stack`` (N, default 2)
    normal cells in each of the three stacks; a reduction cell sits between stacks.
``filters`` (F, default 16)
    width of the cells of the first stack, doubled at each reduction cell.
``stem_multiplier`` (default 3)
    the stem's 3x3 conv has ``stem_multiplier * F`` channels.
``auxiliary`` (default ``False``)
    add an auxiliary classifier after the second reduction cell (DARTS ``AuxiliaryHeadCIFAR``).
    The model then returns ``(logits, aux_logits)`` **in training mode only**; in eval mode it
    always returns ``logits``.
``drop_path`` (default 0.0)
    in training mode, each op output that is not an identity is zeroed per example with this
    probability and scaled by ``1 / keep_prob`` (DARTS). The model keeps it in its
    ``drop_path_prob`` attribute, which trainers may change (anneal) between steps.
Other keys are ignored, so a search space's own entries may be passed through.
"""
from __future__ import annotations

import importlib
import math
from typing import Any, Mapping

import networkx as nx
import torch
from torch import nn

from genome import ENCODINGS, BinaryGenome, GenomeError
from genome.cell import CellGenome
from training.ops import OPS, FactorizedReduce, ReLUConvBN


class GeneticStage(nn.Module):
    """One Genetic-CNN stage: the default input node (a conv from ``c_in`` to ``c``), one
    conv3x3-BN-ReLU per kept node applied to the sum of its inputs, and the default output node
    (a conv on the sum of the nodes without successors)."""

    def __init__(self, graph: nx.DiGraph, c_in: int, c: int):
        super().__init__()
        order = list(nx.topological_sort(graph))
        self.source, self.sink = order[0], order[-1]
        self.plan = [(str(v), [str(u) for u in sorted(graph.predecessors(v))]) for v in order[1:]]
        self.nodes = nn.ModuleDict({str(self.source): OPS["gcnn_conv_3x3"](c_in, c, 1)})
        for v in order[1:]:
            self.nodes[str(v)] = OPS["gcnn_conv_3x3"](c, c, 1)

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


def drop_path(x: torch.Tensor, p: float) -> torch.Tensor:
    """Zero whole examples of ``x`` with probability ``p`` and scale the rest by ``1 / (1 - p)``
    (DARTS' ``drop_path``; draws from torch's global RNG)."""
    keep = 1.0 - p
    mask = torch.empty(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x / keep * mask


class Cell(nn.Module):
    """One NASNet cell. States 0 and 1 (the outputs of the cell before last and of the last
    cell) are brought to ``c`` channels: a 1x1 ReLU-conv-BN, or :class:`FactorizedReduce` for
    state 0 when the last cell was a reduction cell (state 0 is then twice as large). Only the
    states some block reads are preprocessed. Each block adds its two ops; ops reading states
    0/1 of a reduction cell have stride 2. The output concatenates ``concat`` (the block states
    no block reads), so it has ``len(concat) * c`` channels (``c_out``)."""

    def __init__(self, blocks: tuple[tuple[int, str, int, str], ...], concat: tuple[int, ...],
                 c_prev_prev: int, c_prev: int, c: int, reduction: bool, reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        self.concat = tuple(concat)
        self.c = c
        self.c_out = len(self.concat) * c
        read = {b[0] for b in blocks} | {b[2] for b in blocks}
        self.preprocess = nn.ModuleDict()
        if 0 in read:
            self.preprocess["0"] = (FactorizedReduce(c_prev_prev, c) if reduction_prev
                                    else ReLUConvBN(c_prev_prev, c, 1))
        if 1 in read:
            self.preprocess["1"] = ReLUConvBN(c_prev, c, 1)
        self.inputs = [inp for b in blocks for inp in (b[0], b[2])]
        self.ops = nn.ModuleList(
            OPS[op](c, c, 2 if reduction and inp < 2 else 1)
            for b in blocks for inp, op in ((b[0], b[1]), (b[2], b[3])))
        self.droppable = [not isinstance(op, nn.Identity) for op in self.ops]

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        # A state no block reads keeps its raw tensor as a placeholder; it is never used.
        states = [self.preprocess["0"](s0) if "0" in self.preprocess else s0,
                  self.preprocess["1"](s1) if "1" in self.preprocess else s1]
        for i in range(0, len(self.ops), 2):
            pair = []
            for j in (i, i + 1):
                h = self.ops[j](states[self.inputs[j]])
                if self.training and drop_prob > 0.0 and self.droppable[j]:
                    h = drop_path(h, drop_prob)
                pair.append(h)
            states.append(pair[0] + pair[1])
        return torch.cat([states[k] for k in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS ``AuxiliaryHeadCIFAR``: ReLU, average pool to 2x2, 1x1 conv (128), BN, ReLU,
    2x2 conv (768), BN, ReLU, linear. DARTS pools with a 5x5 window at stride 3, which assumes
    an 8x8 input; an adaptive pool to 2x2 gives the same parameters for any input size."""

    def __init__(self, c_in: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(c_in, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class CellNet(nn.Module):
    """NASNet / AmoebaNet network (the structure of DARTS' ``NetworkCIFAR``): a 3x3 conv + BN
    stem with ``stem_multiplier * filters`` channels; three stacks of ``cells_per_stack`` normal
    cells with a reduction cell between stacks (width ``filters``, doubled at each reduction);
    global average pooling; a linear classifier. Each cell reads the outputs of the two cells
    before it (the stem's output stands in for both at the start).

    ``forward`` returns logits, or ``(logits, aux_logits)`` in training mode when built with an
    auxiliary head (which then reads the output of the second reduction cell).
    ``drop_path_prob`` may be changed at any time; it acts in training mode only."""

    def __init__(self, genome: CellGenome, in_channels: int, num_classes: int,
                 cells_per_stack: int, filters: int, stem_multiplier: int, auxiliary: bool,
                 drop_path_prob: float):
        super().__init__()
        self.drop_path_prob = drop_path_prob
        c_stem = stem_multiplier * filters
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_stem))
        c_prev_prev, c_prev, c = c_stem, c_stem, filters
        concat = {name: genome.outputs(name) for name in ("normal", "reduction")}
        cells: list[Cell] = []
        reduction_prev = False
        self.aux_index = -1
        for stack in range(3):
            kinds = ["normal"] * cells_per_stack
            if stack:
                kinds.insert(0, "reduction")
            for kind in kinds:
                reduction = kind == "reduction"
                if reduction:
                    c *= 2
                cell = Cell(genome.cell(kind), concat[kind], c_prev_prev, c_prev, c, reduction,
                            reduction_prev)
                cells.append(cell)
                if reduction and stack == 2:
                    self.aux_index = len(cells) - 1
                reduction_prev = reduction
                c_prev_prev, c_prev = c_prev, cell.c_out
        self.cells = nn.ModuleList(cells)
        self.auxiliary_head = (AuxiliaryHead(cells[self.aux_index].c_out, num_classes)
                               if auxiliary else None)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor):
        s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_index and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(s1, 1), 1))
        if aux is not None:
            return logits, aux
        return logits


_MISSING = object()


LIMITS = {"in_channels": 4096, "num_classes": 10_000, "channels": 4096, "filters": 1024,
          "cells_per_stack": 32, "stem_multiplier": 16}
"""Upper bounds of the decoder settings: a space read from an untrusted ``settings.json`` must
not size a model of terabytes."""


def _positive_int(space: Mapping[str, Any], name: str, default: Any = _MISSING) -> int:
    value = space.get(name) if default is _MISSING else space.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GenomeError(f"space[{name!r}] must be a positive integer, got {value!r}")
    if value > LIMITS.get(name, value):
        raise GenomeError(f"space[{name!r}] is {value:,}; at most {LIMITS[name]:,}")
    return value


def genetic_net(genome: BinaryGenome, space: Mapping[str, Any]) -> GeneticNet:
    in_channels = _positive_int(space, "in_channels")
    num_classes = _positive_int(space, "num_classes")
    channels = list(space.get("channels") or [])
    if len(channels) != len(genome.stages) or any(
            isinstance(c, bool) or not isinstance(c, int) or not 1 <= c <= LIMITS["channels"]
            for c in channels):
        raise GenomeError(
            f"space['channels'] must list one width (1 to {LIMITS['channels']}) per stage: "
            f"genome {genome} "
            f"has {len(genome.stages)} stages, got channels={space.get('channels')!r}")
    return GeneticNet(genome, channels, in_channels, num_classes)


def cell_net(genome: CellGenome, space: Mapping[str, Any]) -> CellNet:
    in_channels = _positive_int(space, "in_channels")
    num_classes = _positive_int(space, "num_classes")
    cells_per_stack = _positive_int(space, "cells_per_stack", 2)
    filters = _positive_int(space, "filters", 16)
    stem_multiplier = _positive_int(space, "stem_multiplier", 3)
    auxiliary = space.get("auxiliary", False)
    if not isinstance(auxiliary, bool):
        raise GenomeError(f"space['auxiliary'] must be true or false, got {auxiliary!r}")
    p = space.get("drop_path", 0.0)
    if (isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p)
            or not 0.0 <= p < 1.0):
        raise GenomeError(f"space['drop_path'] must be a probability in [0, 1), got {p!r}")
    missing = sorted(genome.ops - set(OPS))
    if missing:
        raise GenomeError(f"genome {genome} uses ops {missing} that training.ops.OPS cannot "
                          f"build; add a factory for each to OPS")
    return CellNet(genome, in_channels, num_classes, cells_per_stack, filters, stem_multiplier,
                   auxiliary, float(p))


def build_model(genome: Any, space: Mapping[str, Any]) -> nn.Module:
    """Decode ``genome`` into a fresh, randomly initialised ``nn.Module``, through the decoder
    its encoding names (:attr:`genome.Encoding.decoder`).

    ``space`` needs ``in_channels`` and ``num_classes``; a :class:`BinaryGenome` also needs
    ``channels`` with one positive width per stage; a :class:`CellGenome` reads the optional
    keys listed in the module docstring. Weights come from torch's global RNG, so seed it first
    for a reproducible model.
    """
    name = getattr(genome, "encoding", None)
    path = ENCODINGS[name].decoder if isinstance(name, str) and name in ENCODINGS else None
    if path is None:
        decodable = [n for n, e in ENCODINGS.items() if e.decoder]
        raise GenomeError(f"no decoder for genome of type {type(genome).__name__}"
                          + (f" (encoding {name!r})" if isinstance(name, str) else "")
                          + f"; decoders exist for {', '.join(decodable)}. Score such genomes "
                          f"with an evaluation.evaluator, or name a decoder in the encoding's "
                          f"registration (Encoding.decoder)")
    module, _, function = path.partition(":")
    return getattr(importlib.import_module(module), function)(genome, space)
