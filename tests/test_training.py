"""The ``training`` package: decoder, data sets, scorer.

Every decoder setting goes through the same checks (timm style): forward shape, no NaN, a
gradient for every parameter, TorchScript trace. The decoded graph is checked against edges read
from the genome's bits here, independently of ``BinaryGenome.stage_graph``.
"""
from __future__ import annotations

import random
import re
import struct
import urllib.error
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import training
from genome import BinaryGenome, EvonasError, GenomeError
from training.data import DATASETS, DataError

from training.tasks import get_task


@pytest.fixture(autouse=True)
def one_thread_and_fresh_cache():
    """Single-threaded torch (reproducible numbers, no oversubscription on 2 cores) and an empty
    data cache, restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    training.data._load_cached.cache_clear()
    yield
    training.data._load_cached.cache_clear()
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- genome helpers
def stage_edges(k: int, bits) -> list[tuple[int, int]]:
    """Edges v_i -> v_j of one stage, read in the paper's bit order (v1,v2), (v1,v3), (v2,v3),
    (v1,v4), ... without using the library's index helpers."""
    edges, position = [], 0
    for j in range(2, k + 1):
        for i in range(1, j):
            if bits[position]:
                edges.append((i, j))
            position += 1
    assert position == len(bits)
    return edges


def kept_nodes(k: int, bits) -> set[int]:
    return {v for edge in stage_edges(k, bits) for v in edge}


def expected_convs(genome: BinaryGenome) -> int:
    """Per stage: the input node, one conv per kept node, the output node."""
    return sum(2 + len(kept_nodes(k, b)) for k, b in zip(genome.stages, genome.bits))


def expected_params(genome: BinaryGenome, channels, in_channels: int, num_classes: int) -> int:
    """3x3 convs without bias, BatchNorm (weight + bias) after each, then a linear head."""
    total, c_in = 0, in_channels
    for k, bits, c in zip(genome.stages, genome.bits, channels):
        kept = len(kept_nodes(k, bits))
        total += 9 * c_in * c + (kept + 1) * 9 * c * c + (kept + 2) * 2 * c
        c_in = c
    return total + c_in * num_classes + num_classes


def zeros(stages) -> BinaryGenome:
    return BinaryGenome(tuple(stages), tuple((0,) * (k * (k - 1) // 2) for k in stages))


def ones(stages) -> BinaryGenome:
    return BinaryGenome(tuple(stages), tuple((1,) * (k * (k - 1) // 2) for k in stages))


def genomes_for(stages, count: int = 3, seed: int = 0) -> list[tuple[str, BinaryGenome]]:
    """The all-zero genome, the all-ones genome and ``count`` random ones (fixed seed)."""
    rng = random.Random(seed)
    out = [("zeros", zeros(stages)), ("ones", ones(stages))]
    out += [(f"random{i}", BinaryGenome.random(stages, rng)) for i in range(count)]
    return out


def space(channels, in_channels: int, num_classes: int) -> dict:
    return {"channels": list(channels), "in_channels": in_channels, "num_classes": num_classes}


def n_convs(model: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d) for m in model.modules())


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# (stages, channels per stage, num_classes)
SETTINGS = [
    ((2,), (8,), 10),
    ((3, 4), (4, 8), 3),
    ((3, 4, 5), (4, 6, 8), 5),
    ((5, 5), (8, 4), 2),
]

DECODER_CASES = [
    pytest.param(stages, channels, classes, genome, id=f"{'-'.join(map(str, stages))}-{name}")
    for stages, channels, classes in SETTINGS
    for name, genome in genomes_for(stages, seed=sum(stages))
]


# ----------------------------------------------------------------------------------- decoder
# Forward, backward, tracing and export of decoded models: tests/test_contracts.py, for every
# encoding with a decoder. What follows is particular to Genetic-CNN's decoding rules.
@pytest.mark.parametrize("size", [1, 2, 3])
def test_tiny_inputs_work_for_deep_genomes(size):
    """The decoder promises any input of at least 1x1 works for any number of stages."""
    torch.manual_seed(0)
    genome = ones((3, 4, 5))
    model = training.build_model(genome, space((4, 4, 4), 1, 3))
    out = model(torch.randn(2, 1, size, size))
    assert out.shape == (2, 3)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("stages, channels, num_classes, genome", DECODER_CASES)
def test_conv_and_parameter_count_match_genome(stages, channels, num_classes, genome):
    model = training.build_model(genome, space(channels, 3, num_classes))
    assert n_convs(model) == expected_convs(genome)
    assert n_params(model) == expected_params(genome, channels, 3, num_classes)


def test_isolated_nodes_are_dropped():
    chain = BinaryGenome.from_string("1-01-001")     # v1 -> v2 -> v3 -> v4
    isolated = BinaryGenome.from_string("1-00-000")  # v1 -> v2; v3, v4 isolated
    empty = BinaryGenome.from_string("0-00-000")     # input -> output
    convs = {g: n_convs(training.build_model(g, space([4], 1, 2)))
             for g in (chain, isolated, empty)}
    assert convs == {chain: 6, isolated: 4, empty: 2}


@pytest.mark.parametrize("stages, channels, num_classes, genome", DECODER_CASES)
def test_node_inputs_follow_genome_edges(stages, channels, num_classes, genome):
    """Hook every node of every stage: node v's input is the sum of its predecessors' outputs
    (the input node's output when it has none), and the output node's input is the sum of the
    kept nodes without successors (the input node's output when no node is kept)."""
    torch.manual_seed(0)
    model = training.build_model(genome, space(channels, 1, num_classes)).eval()
    seen: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    for s, stage in enumerate(model.stages):
        for v, node in stage.nodes.items():
            handles.append(node.register_forward_hook(
                lambda mod, inp, out, key=(s, int(v)): seen.__setitem__(key, (inp[0], out))))
    with torch.no_grad():
        model(torch.randn(2, 1, 8, 8))
    for h in handles:
        h.remove()

    for s, (k, bits) in enumerate(zip(genome.stages, genome.bits)):
        edges = stage_edges(k, bits)
        kept = kept_nodes(k, bits)
        assert {v for (t, v) in seen if t == s} == {0, k + 1} | kept, f"stage {s} nodes"
        output_of = {v: seen[(s, v)][1] for v in {0} | kept}
        for v in kept:
            preds = [u for u, w in edges if w == v] or [0]
            expected = sum(output_of[u] for u in preds)
            torch.testing.assert_close(seen[(s, v)][0], expected, msg=f"stage {s} node {v}")
        sinks = [v for v in kept if not any(u == v for u, _ in edges)] or [0]
        torch.testing.assert_close(seen[(s, k + 1)][0], sum(output_of[v] for v in sinks),
                                   msg=f"stage {s} output node")


def test_same_key_same_parameter_count():
    rng = random.Random(7)
    by_key: dict[str, set[BinaryGenome]] = {}
    for _ in range(300):
        g = BinaryGenome.random((4, 4), rng)
        by_key.setdefault(g.key(), set()).add(g)
    groups = [gs for gs in by_key.values() if len(gs) > 1]
    assert len(groups) >= 5, "the sample should hold several genomes sharing a key"
    for group in groups:
        counts = {(n_params(m), n_convs(m)) for m in
                  (training.build_model(g, space((4, 6), 1, 3)) for g in group)}
        assert len(counts) == 1, f"{sorted(map(str, group))}: {counts}"
    # A hand-made pair: the single edge v1->v2 and the single edge v3->v4 are the same network.
    a, b = BinaryGenome.from_string("1-00-000"), BinaryGenome.from_string("0-00-001")
    assert a.key() == b.key()
    assert n_params(training.build_model(a, space([5], 2, 4))) == \
        n_params(training.build_model(b, space([5], 2, 4)))


# ----------------------------------------------------------------------------- build errors
GOOD_SPACE = {"channels": [4, 4], "in_channels": 1, "num_classes": 3}
TWO_STAGES = BinaryGenome.from_string("1-01_1-01-001")


@pytest.mark.parametrize("channels", [[4], [4, 4, 4], [], None, [4, 0], [4, -1], [4, 2.0],
                                      [4, True], [4, "4"]])
def test_build_model_rejects_bad_channels(channels):
    bad = {**GOOD_SPACE, "channels": channels}
    with pytest.raises(GenomeError, match="channels"):
        training.build_model(TWO_STAGES, bad)


def test_build_model_rejects_missing_channels():
    bad = {k: v for k, v in GOOD_SPACE.items() if k != "channels"}
    with pytest.raises(GenomeError, match="channels"):
        training.build_model(TWO_STAGES, bad)


@pytest.mark.parametrize("key", ["in_channels", "num_classes"])
@pytest.mark.parametrize("value", ["missing", None, 0, -2, 1.5, 3.0, "3", True])
def test_build_model_rejects_bad_sizes(key, value):
    bad = dict(GOOD_SPACE)
    if value == "missing":
        del bad[key]
    else:
        bad[key] = value
    with pytest.raises(GenomeError, match=key):
        training.build_model(TWO_STAGES, bad)


@pytest.mark.parametrize("genome", ["1-01_1-01-001", {"encoding": "binary", "code": "1"},
                                    object(), None])
def test_build_model_rejects_unknown_genome_type(genome):
    with pytest.raises(GenomeError, match="no decoder"):
        training.build_model(genome, GOOD_SPACE)


def test_genome_error_is_an_evonas_error():
    with pytest.raises(EvonasError):
        training.build_model(TWO_STAGES, {**GOOD_SPACE, "channels": [4]})


# ------------------------------------------------------------------------------------- data
def rows(x: torch.Tensor, y: torch.Tensor) -> Counter:
    """Multiset of (image bytes, label), to compare splits regardless of order."""
    xs = x.numpy()
    return Counter((xs[i].tobytes(), int(y[i])) for i in range(len(y)))


def digits_raw():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return torch.from_numpy(bunch.images.astype(np.float32)[:, None] / 16.0), \
        torch.from_numpy(bunch.target.astype(np.int64))


def test_digits_shapes_types_and_split_sizes():
    d = training.load_dataset({"dataset": "digits"})
    assert d.name == "digits"
    assert d.num_classes == 10
    assert d.in_channels == 1 and d.example_shape == (1, 8, 8)
    for x, y in [(d.x_train, d.y_train), (d.x_val, d.y_val), (d.x_test, d.y_test)]:
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == (1, 8, 8) and x.shape[0] == y.shape[0] > 0
        assert y.min() >= 0 and y.max() <= 9
    assert set(d.y_train.tolist()) == set(range(10))
    n_train, n_val, n_test = len(d.y_train), len(d.y_val), len(d.y_test)
    assert n_train + n_val + n_test == 1797
    assert n_test / 1797 == pytest.approx(0.2, abs=0.005)
    assert n_val / (n_train + n_val) == pytest.approx(0.2, abs=0.005)
    assert f"{n_train} train / {n_val} val / {n_test} test" in d.describe()


def test_digits_splits_partition_the_data():
    d = training.load_dataset({"dataset": "digits", "normalize": False})
    x, y = digits_raw()
    parts = [rows(d.x_train, d.y_train), rows(d.x_val, d.y_val), rows(d.x_test, d.y_test)]
    assert parts[0] + parts[1] + parts[2] == rows(x, y)
    assert float(d.x_train.min()) >= 0.0 and float(d.x_train.max()) <= 1.0


def test_digits_split_seed():
    first = training.load_dataset({"dataset": "digits", "split_seed": 3})
    training.data._load_cached.cache_clear()
    again = training.load_dataset({"dataset": "digits", "split_seed": 3})
    assert first is not again
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name
    other = training.load_dataset({"dataset": "digits", "split_seed": 4})
    assert len(other.y_test) == len(first.y_test)
    assert not torch.equal(other.y_test, first.y_test)
    assert not torch.equal(other.x_val, first.x_val)


def test_digits_train_size_caps_training_split():
    full = training.load_dataset({"dataset": "digits", "normalize": False})
    capped = training.load_dataset({"dataset": "digits", "normalize": False, "train_size": 100})
    assert len(capped.y_train) == 100
    assert rows(capped.x_train, capped.y_train) - rows(full.x_train, full.y_train) == Counter()
    assert torch.equal(capped.x_val, full.x_val) and torch.equal(capped.y_test, full.y_test)
    bigger = training.load_dataset({"dataset": "digits", "train_size": 10**6})
    assert len(bigger.y_train) == len(full.y_train)


def test_digits_normalize_uses_training_statistics():
    raw = training.load_dataset({"dataset": "digits", "normalize": False})
    d = training.load_dataset({"dataset": "digits", "normalize": True})
    assert abs(float(d.x_train.mean())) < 1e-4
    assert float(d.x_train.std()) == pytest.approx(1.0, abs=1e-3)
    mean, std = raw.x_train.mean(), raw.x_train.std(correction=0)
    torch.testing.assert_close(d.x_val, (raw.x_val - mean) / std, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(d.x_test, (raw.x_test - mean) / std, atol=1e-4, rtol=1e-4)
    assert torch.equal(d.y_val, raw.y_val)


def test_normalize_is_per_channel():
    d = training.load_dataset({"dataset": "synthetic", "synthetic": {
        "samples": 64, "num_classes": 3, "image_size": 10, "channels": 3}})
    mean = d.x_train.mean(dim=(0, 2, 3))
    std = d.x_train.std(dim=(0, 2, 3), correction=0)
    torch.testing.assert_close(mean, torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(std, torch.ones(3), atol=1e-3, rtol=0)


def test_synthetic_shapes():
    d = training.load_dataset({"dataset": "synthetic", "synthetic": {
        "samples": 64, "num_classes": 3, "image_size": 10, "channels": 3}})
    assert d.num_classes == 3
    assert d.in_channels == 3 and d.example_shape == (3, 10, 10)
    for x, y in [(d.x_train, d.y_train), (d.x_val, d.y_val), (d.x_test, d.y_test)]:
        assert x.shape[1:] == (3, 10, 10) and x.dtype == torch.float32
        assert y.dtype == torch.int64 and 0 <= int(y.min()) and int(y.max()) <= 2
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 64


def test_results_are_cached_per_settings():
    settings = {"dataset": "synthetic", "synthetic": {"samples": 32}}
    assert training.load_dataset(settings) is training.load_dataset(dict(settings))
    assert training.load_dataset({**settings, "split_seed": 1}) is not \
        training.load_dataset(settings)


def write_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def test_npz_train_only(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(40, 6, 7)).astype(np.uint8)
    y = np.arange(40) % 4
    path = write_npz(tmp_path / "mine.npz", x_train=x, y_train=y)
    d = training.load_dataset({"dataset": "npz", "path": str(path), "normalize": False})
    assert d.name == "npz" and d.num_classes == 4
    assert d.x_train.shape[1:] == (1, 6, 7) and d.x_train.dtype == torch.float32
    assert d.y_train.dtype == torch.int64
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 40
    assert len(d.y_test) == 8  # test_fraction 0.2 carved from the 40
    expected = rows(torch.from_numpy(x[:, None].astype(np.float32)), torch.from_numpy(y))
    got = rows(d.x_train, d.y_train) + rows(d.x_val, d.y_val) + rows(d.x_test, d.y_test)
    assert got == expected


def test_npz_with_test_arrays_and_channels(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 2, 5, 5)).astype(np.float32)
    y = np.arange(30) % 3
    x_test = rng.normal(size=(12, 2, 5, 5)).astype(np.float32)
    y_test = np.arange(12) % 5
    path = write_npz(tmp_path / "mine.npz", x_train=x, y_train=y, x_test=x_test, y_test=y_test)
    d = training.load_dataset({"dataset": "npz", "path": str(path), "normalize": False})
    assert d.in_channels == 2 and d.example_shape == (2, 5, 5)
    assert torch.equal(d.x_test, torch.from_numpy(x_test))
    assert torch.equal(d.y_test, torch.from_numpy(y_test))
    assert len(d.y_train) + len(d.y_val) == 30
    assert d.num_classes == 5  # the largest label over train and test, plus one


def test_npz_missing_file(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(DataError) as info:
        training.load_dataset({"dataset": "npz", "path": str(missing)})
    assert str(missing) in str(info.value)


def test_npz_missing_arrays(tmp_path):
    path = write_npz(tmp_path / "half.npz", x_train=np.zeros((4, 3, 3)), labels=np.zeros(4))
    with pytest.raises(DataError) as info:
        training.load_dataset({"dataset": "npz", "path": str(path)})
    message = str(info.value)
    assert str(path) in message and "['y_train']" in message


@pytest.mark.parametrize("settings", [{"dataset": "npz"}, {"dataset": "npz", "path": ""},
                                      {"dataset": "npz", "path": None}])
def test_npz_without_path(settings):
    with pytest.raises(DataError, match="path"):
        training.load_dataset(settings)


def test_npz_bad_shapes(tmp_path):
    path = write_npz(tmp_path / "bad.npz", x_train=np.zeros((4, 3)), y_train=np.zeros(4))
    with pytest.raises(DataError, match=r"\(N, H, W\)"):
        training.load_dataset({"dataset": "npz", "path": str(path)})


@pytest.mark.parametrize("name", ["imagenet", "MNIST", None, ""])
def test_unknown_dataset_lists_choices(name):
    with pytest.raises(DataError) as info:
        training.load_dataset({"dataset": name})
    message = str(info.value)
    assert repr(name) in message
    for choice in DATASETS:
        assert choice in message


def test_empty_split_is_an_error():
    with pytest.raises(DataError, match="empty split"):
        training.load_dataset({"dataset": "digits", "train_size": 0})


def test_data_error_is_an_evonas_error():
    assert issubclass(DataError, EvonasError)
    assert training.DataError is DataError


TORCHVISION = {"mnist": torchvision.datasets.MNIST,
               "fashion_mnist": torchvision.datasets.FashionMNIST,
               "cifar10": torchvision.datasets.CIFAR10}


def offline(*args, **kwargs):
    raise urllib.error.URLError("offline")


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_torchvision_offline_names_dataset_and_folder(name, tmp_path, monkeypatch):
    monkeypatch.setattr(TORCHVISION[name], "download", offline)
    root = tmp_path / "fresh"
    with pytest.raises(DataError) as info:
        training.load_dataset({"dataset": name, "root": str(root)})
    message = str(info.value)
    assert repr(name) in message
    assert str(root) in message
    assert isinstance(info.value.__cause__, urllib.error.URLError)


def test_mnist_offline_through_torchvision_download(tmp_path, monkeypatch):
    """torchvision's own download turns per-mirror URLErrors into a RuntimeError; that too
    becomes a DataError naming the data set and the folder."""
    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", offline)
    with pytest.raises(DataError) as info:
        training.load_dataset({"dataset": "mnist", "root": str(tmp_path)})
    assert "'mnist'" in str(info.value) and str(tmp_path) in str(info.value)


def write_idx(raw: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """MNIST's IDX format: big-endian magic 2051 (uint8, 3 dims) / 2049 (uint8, 1 dim)."""
    n, h, w = images.shape
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_torchvision_idx_files_load_without_download(name, folder, tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("the files are there; nothing should be downloaded")

    monkeypatch.setattr(TORCHVISION[name], "download", no_download)
    rng = np.random.default_rng(5)
    train_x = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    train_x[0, 0, 0], train_x[0, 0, 1] = 0, 255
    train_y = np.arange(50) % 10
    test_x = rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    test_y = (np.arange(20) * 3) % 10
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    write_idx(raw, "train", train_x, train_y)
    write_idx(raw, "t10k", test_x, test_y)

    d = training.load_dataset({"dataset": name, "root": str(tmp_path), "normalize": False})
    assert d.name == name and d.num_classes == 10
    assert d.x_train.shape == (40, 1, 28, 28) and d.x_val.shape == (10, 1, 28, 28)
    assert d.x_test.shape == (20, 1, 28, 28)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    scaled = lambda a: torch.from_numpy(a[:, None].astype(np.float32) / 255.0)  # noqa: E731
    torch.testing.assert_close(d.x_test, scaled(test_x), atol=0, rtol=0)
    assert torch.equal(d.y_test, torch.from_numpy(test_y.astype(np.int64)))
    assert rows(d.x_train, d.y_train) + rows(d.x_val, d.y_val) == \
        rows(scaled(train_x), torch.from_numpy(train_y))
    assert 0.0 <= float(d.x_train.min()) and float(d.x_train.max()) <= 1.0
    assert float(torch.cat([d.x_train, d.x_val]).max()) == 1.0

    normalized = training.load_dataset({"dataset": name, "root": str(tmp_path)})
    assert abs(float(normalized.x_train.mean())) < 1e-4
    assert normalized.x_test.shape == (20, 1, 28, 28)


# ----------------------------------------------------------------------------------- scorer
SMALL = {"dataset": "synthetic",
         "synthetic": {"samples": 64, "num_classes": 3, "image_size": 8, "channels": 1}}
QUICK = {"epochs": 2, "batch_size": 16, "lr": 0.05}
CHAIN = BinaryGenome.from_string("1-01")  # one stage: input, v1 -> v2 -> v3, output


@pytest.fixture
def small_data():
    return training.load_dataset(SMALL)


def test_score_metrics(small_data):
    metrics, model = training.score(CHAIN, {"channels": [4]}, small_data, QUICK, seed=0)
    assert set(metrics) == {"val_accuracy", "val_loss", "train_loss", "params", "flops",
                            "train_seconds"}
    assert 0.0 <= metrics["val_accuracy"] <= 1.0
    assert np.isfinite(metrics["val_loss"]) and metrics["val_loss"] >= 0
    assert np.isfinite(metrics["train_loss"]) and metrics["train_loss"] > 0
    assert metrics["train_seconds"] >= 0
    built = training.build_model(CHAIN, {"channels": [4], "in_channels": 1, "num_classes": 3})
    assert metrics["params"] == n_params(built) == n_params(model)
    # The returned model is the trained one: evaluating it again gives the reported numbers.
    measured = get_task("classification").measure(model, small_data.x_val, small_data.y_val, 512)
    assert measured["accuracy"] == metrics["val_accuracy"]
    assert measured["loss"] == pytest.approx(metrics["val_loss"], rel=1e-5)


def test_score_with_test(small_data):
    metrics, _ = training.score(CHAIN, {"channels": [4]}, small_data, QUICK, seed=0,
                                with_test=True)
    assert {"test_accuracy", "test_loss"} <= set(metrics)
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert np.isfinite(metrics["test_loss"])


def test_flops_per_example(small_data):
    """Per example: 2 * MACs of every 3x3 conv (8x8 input, no bias) plus the linear head."""
    def flops(c):
        convs = 2 * 64 * 9 * (1 * c + 4 * c * c)  # input node, v1..v3, output node
        return convs + 2 * c * 3

    narrow, _ = training.score(CHAIN, {"channels": [4]}, small_data, {**QUICK, "epochs": 1}, 0)
    wide, _ = training.score(CHAIN, {"channels": [8]}, small_data, {**QUICK, "epochs": 1}, 0)
    assert narrow["flops"] == flops(4) > 0
    assert wide["flops"] == flops(8) > narrow["flops"]
    assert wide["params"] > narrow["params"]


def test_score_is_reproducible(small_data):
    genome = BinaryGenome.from_string("1-11_1-01-001")
    first, model_a = training.score(genome, {"channels": [4, 6]}, small_data, QUICK, seed=11)
    second, model_b = training.score(genome, {"channels": [4, 6]}, small_data, QUICK, seed=11)
    del first["train_seconds"], second["train_seconds"]
    assert first == second
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(a, b), name
    other, _ = training.score(genome, {"channels": [4, 6]}, small_data, QUICK, seed=12)
    assert other["train_loss"] != first["train_loss"]


def test_score_learns_a_learnable_task():
    data = training.load_dataset({"dataset": "synthetic", "synthetic": {
        "samples": 256, "num_classes": 4, "image_size": 8, "channels": 1}})
    metrics, _ = training.score(CHAIN, {"channels": [8]}, data,
                                {"epochs": 10, "batch_size": 32, "lr": 0.1}, seed=0)
    assert metrics["val_accuracy"] >= 0.6  # chance is 0.25


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_score_other_optimizers(small_data, optimizer):
    metrics, _ = training.score(CHAIN, {"channels": [4]}, small_data,
                                {**QUICK, "optimizer": optimizer, "lr": 0.01,
                                 "schedule": "none"}, seed=0)
    assert np.isfinite(metrics["train_loss"])


def test_huge_learning_rate_raises_non_finite_loss(small_data):
    with pytest.raises(training.NonFiniteLoss, match="loss became"):
        training.score(CHAIN, {"channels": [4]}, small_data,
                       {"epochs": 5, "batch_size": 16, "optimizer": "sgd", "lr": 1e6}, seed=0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_loss_is_detected_at_once(small_data, monkeypatch, bad):
    real = nn.functional.cross_entropy
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs) * bad

    monkeypatch.setattr(nn.functional, "cross_entropy", broken)
    with pytest.raises(training.NonFiniteLoss, match="epoch 1") as info:
        training.score(CHAIN, {"channels": [4]}, small_data, QUICK, seed=0)
    assert isinstance(info.value, EvonasError)
    assert len(calls) == 1  # raised on the first bad batch


def test_divergence_on_the_last_step_is_not_a_fitness(small_data):
    """One full batch, one epoch, a huge step: the only training loss seen is finite, but the
    updated model's validation loss is NaN. Its val_accuracy (the fitness) is then meaningless
    (argmax of NaN logits), so the evaluation must fail rather than report a number."""
    settings = {"epochs": 1, "batch_size": 1000, "optimizer": "sgd", "lr": 1e6}
    with pytest.raises(training.NonFiniteLoss):
        metrics, _ = training.score(CHAIN, {"channels": [4]}, small_data, settings, seed=0)
        assert np.isfinite(metrics["val_loss"]), metrics  # what the scorer returns today


def test_unknown_optimizer(small_data):
    with pytest.raises(EvonasError, match="'lbfgs'"):
        training.score(CHAIN, {"channels": [4]}, small_data, {**QUICK, "optimizer": "lbfgs"}, 0)


# ------------------------------------------------------------------------- data checked at load
@pytest.mark.parametrize("change, message", [
    (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 77, np.nan, x), y),
     "1 training input value(s) are NaN or infinite (the first in example 1)"),
    (lambda x, y: (x, np.where(np.arange(len(y)) == 4, -1, y)), "range from -1 to 2"),
    (lambda x, y: (x, np.stack([y, y], 1)), "one integer per example, shape (N,)"),
    (lambda x, y: (x, y + 0.5), "must be integers"),
    (lambda x, y: (x, np.where(np.arange(len(y)) == 0, 10**6, y)), "at most 10,000"),
    (lambda x, y: (x, y.astype(str)), "must be integers"),
    (lambda x, y: (x[:10], y), "with one label each, got x (10, 1, 8, 8) and y (20,)"),
])
def test_bad_data_stops_before_any_training(tmp_path, change, message):
    x, y = change(np.zeros((20, 1, 8, 8), np.float32), np.arange(20) % 3)
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=x, y_train=y)
    with pytest.raises(DataError, match=re.escape(message)):
        training.load_dataset({"dataset": "npz", "path": str(path)})


def test_integral_float_labels_are_labels(tmp_path):
    x = np.random.default_rng(0).normal(size=(30, 1, 4, 4)).astype(np.float32)
    path = tmp_path / "floats.npz"
    np.savez(path, x_train=x, y_train=(np.arange(30) % 3).astype(np.float64))
    data = training.load_dataset({"dataset": "npz", "path": str(path)})
    assert data.y_train.dtype == torch.int64 and data.num_classes == 3


def test_npz_files_that_are_not_plain_arrays_are_refused(tmp_path):
    objects = tmp_path / "objects.npz"
    np.savez(objects, x_train=np.array([{"a": 1}] * 3, dtype=object), y_train=np.arange(3))
    with pytest.raises(DataError, match="holds Python objects"):
        training.load_dataset({"dataset": "npz", "path": str(objects)})
    text = tmp_path / "text.npz"
    text.write_text("x_train,y_train\n1,2\n")
    with pytest.raises(DataError, match="is not a .npz file"):
        training.load_dataset({"dataset": "npz", "path": str(text)})
    # a header claiming 10**15 elements for a few bytes of data
    liar = tmp_path / "liar.npz"
    np.savez(liar, x_train=np.zeros((2, 1, 2, 2), np.float32), y_train=np.arange(2))
    import zipfile
    with zipfile.ZipFile(liar) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["x_train.npy"] = members["x_train.npy"].replace(b"(2, 1, 2, 2)",
                                                            b"(10000000, 1, 100000, 1000)")
    with zipfile.ZipFile(liar, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(DataError, match="claims shape"):
        training.load_dataset({"dataset": "npz", "path": str(liar)})
