"""The NASNet / AmoebaNet cell decoder and its op table.

timm style: every op of ``KNOWN_OPS`` and every genome below goes through the same checks
(output shape for even and odd sizes, no NaN, finite gradients, eval mode); then the network
structure (concat rule, widths, strides, preprocessing), the auxiliary head, drop-path, the
published AmoebaNet-A parameter count, TorchScript, space validation and a scoring run.
"""
from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

import training
from genome import GenomeError
from genome.cell import AMOEBANET_A, KNOWN_OPS, NASNET_A, CellGenome
from training.decode import CellNet, drop_path
from training.ops import OPS, FactorizedReduce

from training import trainer


pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------------- helpers
def random_cell(rng: random.Random, blocks: int) -> tuple:
    """``blocks`` random blocks over every known op (independent of ``CellGenome.random``)."""
    ops = sorted(KNOWN_OPS)
    return tuple((rng.randrange(2 + i), rng.choice(ops), rng.randrange(2 + i), rng.choice(ops))
                 for i in range(blocks))


def random_genome(seed: int, normal_blocks: int, reduction_blocks: int | None = None):
    rng = random.Random(seed)
    return CellGenome(random_cell(rng, normal_blocks),
                      random_cell(rng, normal_blocks if reduction_blocks is None
                                  else reduction_blocks))


def space(**changes) -> dict:
    return {"in_channels": 1, "num_classes": 3, "cells_per_stack": 1, "filters": 4, **changes}


def n_params(model: nn.Module, *, auxiliary: bool = True) -> int:
    return sum(p.numel() for name, p in model.named_parameters()
               if auxiliary or "auxiliary" not in name)


GENOMES = [
    pytest.param(AMOEBANET_A, id="amoebanet_a"),
    pytest.param(NASNET_A, id="nasnet_a"),
    *(pytest.param(random_genome(b, b), id=f"random_B{b}") for b in (1, 2, 3, 5, 7)),
    pytest.param(random_genome(11, 2, 4), id="random_B2_B4"),
]


# ------------------------------------------------------------------------------------- ops
def test_op_table_covers_known_ops():
    assert KNOWN_OPS <= set(OPS)
    assert {"gcnn_conv_3x3", "gcnn_conv_1x1"} <= set(OPS)


@pytest.mark.parametrize("size", [8, 7])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("c_in, c_out", [(4, 4), (4, 6), (6, 3)])
@pytest.mark.parametrize("name", sorted(KNOWN_OPS))
def test_op_forward_backward(name, c_in, c_out, stride, size):
    torch.manual_seed(0)
    op = OPS[name](c_in, c_out, stride)
    x = torch.randn(2, c_in, size, size, requires_grad=True)
    out = op(x)
    side = math.ceil(size / stride)
    assert out.shape == (2, c_out, side, side)
    assert torch.isfinite(out).all()
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    for pname, p in op.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient for {pname}"
    op.eval()
    with torch.no_grad():
        assert torch.isfinite(op(x)).all()


def test_identity_op_kinds():
    x = torch.randn(2, 4, 7, 7)
    same = OPS["identity"](4, 4, 1)
    assert isinstance(same, nn.Identity)
    assert torch.equal(same(x), x)
    assert isinstance(OPS["identity"](4, 4, 2), FactorizedReduce)
    assert isinstance(OPS["identity"](4, 8, 2), FactorizedReduce)
    assert not isinstance(OPS["identity"](4, 8, 1), nn.Identity)
    # Pools get a projection only when the width changes.
    assert not any(isinstance(m, nn.Conv2d) for m in OPS["max_pool_3x3"](4, 4, 2).modules())
    assert sum(isinstance(m, nn.Conv2d) for m in OPS["avg_pool_3x3"](4, 6, 1).modules()) == 1


def test_ops_are_relu_conv_bn():
    """Cell ops start with ReLU and end with batch norm (DARTS order); Genetic-CNN nodes are
    conv-BN-ReLU."""
    for name in ("sep_conv_3x3", "dil_sep_conv_5x5", "conv_1x7_7x1", "conv_1x1", "conv_3x3"):
        layers = list(OPS[name](4, 4, 1).children())
        assert isinstance(layers[0], nn.ReLU) and isinstance(layers[-1], nn.BatchNorm2d), name
    layers = list(OPS["gcnn_conv_3x3"](4, 4, 1).children())
    assert [type(m) for m in layers] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]


@pytest.mark.parametrize("stride", [1, 2])
def test_avg_pool_excludes_padding(stride):
    """A constant image stays constant at the borders too (``count_include_pad=False``)."""
    out = OPS["avg_pool_3x3"](2, 2, stride)(torch.ones(1, 2, 7, 7))
    torch.testing.assert_close(out, torch.ones_like(out))


def test_sep_conv_applies_the_separable_conv_twice():
    convs = [m for m in OPS["sep_conv_5x5"](4, 6, 2).modules() if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size, c.groups, c.stride) for c in convs] == [
        ((5, 5), 4, (2, 2)), ((1, 1), 1, (1, 1)), ((5, 5), 4, (1, 1)), ((1, 1), 1, (1, 1))]
    assert convs[-1].out_channels == 6
    dil = [m for m in OPS["dil_sep_conv_3x3"](4, 4, 1).modules() if isinstance(m, nn.Conv2d)]
    assert dil[0].dilation == (2, 2) and len(dil) == 2


@pytest.mark.parametrize("h, w", [(7, 7), (5, 9), (1, 1), (3, 4), (8, 8)])
@pytest.mark.parametrize("c_out", [6, 5])
def test_factorized_reduce_sizes(h, w, c_out):
    torch.manual_seed(0)
    fr = FactorizedReduce(3, c_out)
    x = torch.randn(2, 3, h, w, requires_grad=True)
    out = fr(x)
    assert out.shape == (2, c_out, math.ceil(h / 2), math.ceil(w / 2))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_factorized_reduce_matches_darts_on_even_sizes():
    """On even sizes the padded shift equals DARTS' ``x[:, :, 1:, 1:]``; both paths are used."""
    torch.manual_seed(0)
    fr = FactorizedReduce(3, 6).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        r = torch.relu(x)
        expected = fr.bn(torch.cat([fr.conv_1(r), fr.conv_2(r[:, :, 1:, 1:])], dim=1))
        torch.testing.assert_close(fr(x), expected)
        assert not torch.allclose(fr.conv_1(r), fr.conv_2(r[:, :, 1:, 1:]))


# ---------------------------------------------------------------------------------- models
def check_forward_backward(model: nn.Module, x: torch.Tensor, num_classes: int,
                           every_parameter: bool):
    model.train()
    out = model(x)
    assert isinstance(out, torch.Tensor)
    assert out.shape == (x.shape[0], num_classes)
    assert torch.isfinite(out).all()
    nn.functional.cross_entropy(out, torch.arange(x.shape[0]) % num_classes).backward()
    assert model.classifier.weight.grad is not None
    for name, p in model.named_parameters():
        if every_parameter:
            assert p.grad is not None, f"no gradient for {name}"
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), f"non-finite gradient for {name}"
    model.eval()
    with torch.no_grad():
        out_eval = model(x)
    assert out_eval.shape == (x.shape[0], num_classes)
    assert torch.isfinite(out_eval).all()


@pytest.mark.parametrize("size", [8, 11])
@pytest.mark.parametrize("genome", GENOMES)
def test_cell_model_forward_backward_1ch(genome, size):
    torch.manual_seed(0)
    model = training.build_model(genome, space(filters=6))
    assert isinstance(model, CellNet)
    # The fixtures read both cell inputs in every cell, so every parameter must learn.
    every = genome in (AMOEBANET_A, NASNET_A)
    check_forward_backward(model, torch.randn(3, 1, size, size), 3, every)


@pytest.mark.parametrize("genome", [AMOEBANET_A, random_genome(5, 5)], ids=["amoebanet_a", "B5"])
def test_cell_model_forward_backward_3ch_32(genome):
    torch.manual_seed(0)
    model = training.build_model(genome, space(in_channels=3, num_classes=10))
    check_forward_backward(model, torch.randn(2, 3, 32, 32), 10, genome is AMOEBANET_A)


@pytest.mark.parametrize("genome", GENOMES)
def test_cells_concat_unread_states_and_reduce(genome):
    """Each cell's output has ``len(outputs(kind)) * C`` channels, C = F, 2F, 4F per stack;
    reduction cells halve the size; the cell after a reduction factor-reduces state 0."""
    f, n = 4, 2
    model = training.build_model(genome, space(filters=f, cells_per_stack=n))
    kinds = ["normal"] * n + ["reduction"] + ["normal"] * n + ["reduction"] + ["normal"] * n
    widths = [f] * n + [2 * f] * (n + 1) + [4 * f] * (n + 1)
    sides = [8] * n + [4] * (n + 1) + [2] * (n + 1)
    assert len(model.cells) == len(kinds)
    seen = []
    hooks = [cell.register_forward_hook(lambda m, i, o: seen.append(o.shape))
             for cell in model.cells]
    with torch.no_grad():
        model.eval()(torch.randn(2, 1, 8, 8))
    for h in hooks:
        h.remove()
    for i, (cell, kind, c, side) in enumerate(zip(model.cells, kinds, widths, sides)):
        assert cell.reduction == (kind == "reduction")
        assert cell.c == c
        assert cell.concat == genome.outputs(kind)
        assert seen[i] == (2, len(genome.outputs(kind)) * c, side, side), f"cell {i} ({kind})"
        after_reduction = i > 0 and model.cells[i - 1].reduction
        if "0" in cell.preprocess:
            assert isinstance(cell.preprocess["0"], FactorizedReduce) == after_reduction
        strides = [op_stride(op) for op in cell.ops]
        assert strides == [2 if kind == "reduction" and inp < 2 else 1 for inp in cell.inputs]
    assert model.classifier.in_features == len(genome.outputs("normal")) * 4 * f


def op_stride(op: nn.Module) -> int:
    if isinstance(op, nn.Identity):
        return 1
    if isinstance(op, FactorizedReduce):
        return 2
    first = next(m for m in op.modules() if isinstance(m, (nn.Conv2d, nn.AvgPool2d,
                                                            nn.MaxPool2d)))
    stride = first.stride
    return max(stride) if isinstance(stride, tuple) else stride


def test_concat_multiplier_differs_between_cell_types():
    """NASNet-A concatenates 5 states in the normal cell and 3 in the reduction cell."""
    assert len(NASNET_A.outputs("normal")) == 5 and len(NASNET_A.outputs("reduction")) == 3
    model = training.build_model(NASNET_A, space(filters=4))
    assert [c.c_out for c in model.cells] == [5 * 4, 3 * 8, 5 * 8, 3 * 16, 5 * 16]
    # The next cells' preprocessing reads those widths.
    assert model.cells[2].preprocess["1"][1].in_channels == 3 * 8
    assert model.cells[2].preprocess["0"].conv_1.in_channels == 5 * 4


def test_unread_cell_inputs_are_not_preprocessed():
    genome = CellGenome([(1, "sep_conv_3x3", 1, "identity")], [(0, "max_pool_3x3", 0, "identity")])
    model = training.build_model(genome, space())
    assert set(model.cells[0].preprocess) == {"1"}
    assert set(model.cells[1].preprocess) == {"0"}


# ------------------------------------------------------------------- auxiliary and drop-path
@pytest.mark.parametrize("size", [8, 32])
def test_auxiliary_head_in_training_mode_only(size):
    torch.manual_seed(0)
    model = training.build_model(AMOEBANET_A, space(auxiliary=True, num_classes=5))
    x = torch.randn(2, 1, size, size)
    out = model.train()(x)
    assert isinstance(out, tuple) and len(out) == 2
    logits, aux = out
    assert logits.shape == aux.shape == (2, 5)
    (logits.sum() + aux.sum()).backward()
    assert model.auxiliary_head.classifier.weight.grad is not None
    assert model.auxiliary_head.features[2].in_channels == model.cells[model.aux_index].c_out
    assert model.cells[model.aux_index].reduction and model.aux_index == 3
    out = model.eval()(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5)
    plain = training.build_model(AMOEBANET_A, space())
    assert plain.auxiliary_head is None
    assert isinstance(plain.train()(x), torch.Tensor)


def test_drop_path_function():
    torch.manual_seed(0)
    x = torch.rand(400, 2, 3, 3) + 1.0
    y = drop_path(x, 0.25)
    kept = (y != 0).flatten(1).all(1)
    dropped = (y == 0).flatten(1).all(1)
    assert bool((kept | dropped).all())  # whole examples are dropped
    torch.testing.assert_close(y[kept], x[kept] / 0.75)
    assert 0.15 < dropped.float().mean().item() < 0.35


def test_drop_path_random_in_training_only():
    torch.manual_seed(0)
    model = training.build_model(AMOEBANET_A, space(drop_path=0.5))
    assert model.drop_path_prob == 0.5
    x = torch.randn(4, 1, 8, 8)
    model.train()
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(2)
    b = model(x)
    assert not torch.allclose(a, b)
    model.eval()
    torch.manual_seed(1)
    c = model(x)
    torch.manual_seed(2)
    d = model(x)
    assert torch.equal(c, d)
    # Trainers may anneal it: at 0 training mode is deterministic again.
    model.drop_path_prob = 0.0
    model.train()
    torch.manual_seed(1)
    e = model(x)
    torch.manual_seed(2)
    assert torch.equal(e, model(x))


def test_no_drop_path_is_deterministic_in_training():
    torch.manual_seed(0)
    model = training.build_model(random_genome(3, 3), space())
    assert model.drop_path_prob == 0.0
    x = torch.randn(4, 1, 8, 8)
    model.train()
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(2)
    assert torch.equal(a, model(x))


def test_identity_ops_are_not_dropped():
    model = training.build_model(AMOEBANET_A, space())
    for cell in model.cells:
        assert cell.droppable == [not isinstance(op, nn.Identity) for op in cell.ops]
    normal = model.cells[0]
    assert normal.droppable.count(False) == 2  # AmoebaNet-A's normal cell has two identities
    assert all(model.cells[1].droppable)       # in a reduction cell they factor-reduce


# -------------------------------------------------------------------- published parameters
def test_amoebanet_a_parameter_count():
    """Real et al. 2019 report 3.2M parameters for AmoebaNet-A (N=6, F=36) on CIFAR-10. As in
    DARTS (``count_parameters_in_MB`` skips 'auxiliary'), the count excludes the auxiliary
    head, which is only used for training."""
    torch.manual_seed(0)
    model = training.build_model(AMOEBANET_A, {"in_channels": 3, "num_classes": 10,
                                               "cells_per_stack": 6, "filters": 36,
                                               "auxiliary": True})
    total, without_aux = n_params(model), n_params(model, auxiliary=False)
    print(f"\nAmoebaNet-A N=6 F=36: {without_aux:,} parameters without the auxiliary head, "
          f"{total:,} with it (paper: 3.2M)")
    assert abs(without_aux - 3.2e6) / 3.2e6 < 0.10
    c_aux = 3 * 4 * 36  # three 4F-channel states concatenated by the second reduction cell
    assert total - without_aux == (c_aux * 128 + 2 * 128 + 128 * 768 * 4 + 2 * 768
                                   + 768 * 10 + 10)
    assert len(model.cells) == 20 and model.aux_index == 13


def test_nasnet_a_decodes_and_trains_at_published_size():
    torch.manual_seed(0)
    model = training.build_model(NASNET_A, {"in_channels": 3, "num_classes": 10,
                                            "cells_per_stack": 6, "filters": 32})
    assert 2.5e6 < n_params(model) < 4.0e6
    out = model(torch.randn(2, 3, 8, 8))
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_defaults():
    model = training.build_model(AMOEBANET_A, {"in_channels": 3, "num_classes": 10})
    assert len(model.cells) == 3 * 2 + 2
    assert model.stem[0].out_channels == 3 * 16 and model.cells[0].c == 16
    assert model.auxiliary_head is None and model.drop_path_prob == 0.0
    wide = training.build_model(AMOEBANET_A, space(stem_multiplier=2))
    assert wide.stem[0].out_channels == 2 * 4


# ------------------------------------------------------------------------------ torchscript
@pytest.mark.filterwarnings("ignore:`torch.jit.trace:FutureWarning")
@pytest.mark.parametrize("genome", [AMOEBANET_A, random_genome(7, 3)], ids=["amoebanet_a", "B3"])
def test_torchscript_trace_matches_eager(genome):
    torch.manual_seed(1)
    model = training.build_model(genome, space(in_channels=3, auxiliary=True,
                                                drop_path=0.3)).eval()
    traced = torch.jit.trace(model, torch.randn(2, 3, 11, 11))
    for shape in [(2, 3, 11, 11), (3, 3, 16, 16)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            diff = (traced(x) - model(x)).abs().max().item()
        assert diff <= 1e-5


# ----------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("key, value", [
    ("cells_per_stack", 0), ("cells_per_stack", -1), ("cells_per_stack", 1.5),
    ("cells_per_stack", True), ("cells_per_stack", "2"), ("cells_per_stack", None),
    ("filters", -1), ("filters", 0), ("filters", 8.0), ("filters", None),
    ("stem_multiplier", 0), ("stem_multiplier", 2.5),
    ("auxiliary", "yes"), ("auxiliary", 1), ("auxiliary", None),
    ("drop_path", -0.1), ("drop_path", 1.0), ("drop_path", 1.5), ("drop_path", "0.1"),
    ("drop_path", True), ("drop_path", float("nan")), ("drop_path", None),
    ("in_channels", 0), ("num_classes", None),
])
def test_bad_space_values(key, value):
    with pytest.raises(GenomeError, match=key):
        training.build_model(AMOEBANET_A, space(**{key: value}))


# ---------------------------------------------------------------------------------- scoring
SYNTHETIC = {"dataset": "synthetic",
             "synthetic": {"samples": 64, "num_classes": 3, "image_size": 8, "channels": 1}}


@pytest.mark.parametrize("auxiliary", [False, True])
def test_score_cell_genome(auxiliary):
    data = training.load_dataset(SYNTHETIC)
    cell_space = {"cells_per_stack": 1, "filters": 4, "auxiliary": auxiliary, "drop_path": 0.1}
    settings = {"epochs": 1, "batch_size": 16}
    metrics, model = training.score(AMOEBANET_A, cell_space, data, settings, seed=3)
    assert 0.0 <= metrics["val_accuracy"] <= 1.0
    assert math.isfinite(metrics["val_loss"]) and math.isfinite(metrics["train_loss"])
    assert metrics["params"] == n_params(model) and metrics["flops"] > 0
    assert (model.auxiliary_head is not None) == auxiliary
    again, _ = training.score(AMOEBANET_A, cell_space, data, settings, seed=3)
    assert again["val_loss"] == metrics["val_loss"]


def test_auxiliary_loss_is_weighted_into_training():
    data = training.load_dataset(SYNTHETIC)
    losses = []
    for weight in (0.0, 0.4):
        trainer.seed_everything(0)
        model = training.build_model(AMOEBANET_A, space(auxiliary=True))
        losses.append(trainer.train(model, data.x_train, data.y_train,
                                         {"epochs": 1, "batch_size": 16,
                                          "auxiliary_weight": weight}, seed=0))
    # The reported loss includes 0.4 * the auxiliary cross-entropy (about 0.4 * ln 3).
    assert math.isfinite(losses[0]) and losses[1] - losses[0] > 0.2
