"""Every registry entry through the same checks (timm's way): encodings, decoders, strategies,
pool backends, tasks and data sets. A new entry is covered here without a test of its own;
where a check needs a small setting per entry (a tiny search space), a missing one fails."""
from __future__ import annotations

import json
import math
import random

import pytest
import torch
from torch import nn

from evolution.config import config_from_dict
from evolution.objectives import Objectives
from evolution.pool import BACKENDS, Pool
from evolution.strategies import STRATEGIES
from genome import ENCODINGS, genome_from_dict, get_encoding, load_genome, parse_genome
from training.data import DATASETS
from training.decode import build_model
from training.export import export_model, load_model
from training.tasks import TASKS

TINY_SPACES = {  # the smallest interesting search section of each encoding
    "binary": {"encoding": "binary", "stages": [3, 4], "channels": [4, 6]},
    "cell": {"encoding": "cell", "blocks": 3, "cells_per_stack": 1, "filters": 4,
             "ops": ["identity", "sep_conv_3x3", "max_pool_3x3", "avg_pool_3x3"]},
    "choice": {"encoding": "choice", "choices": [["a", "b", "c"], [1, 2], [True, False]]},
    "tuned": {"encoding": "tuned",
              "architecture": {"encoding": "binary", "stages": [2, 3], "channels": [4, 6]},
              "settings": {"lr": {"log_uniform": [0.01, 0.1]}, "optimizer": ["sgd", "adam"],
                           "momentum": {"uniform": [0.5, 0.9], "when": {"optimizer": "sgd"}}}},
    "signal": {"encoding": "signal", "widths": [3, 4], "memory": [1, 2], "gmp_degrees": [3],
               "gmp_memory": [2], "max_depth": 2, "min_depth": 0},
}


def image_io(channels: int, size: int):
    """An image classifier's example: (space entries, input, output shape, loss, task)."""
    return ({"in_channels": channels, "num_classes": 5}, torch.randn(3, channels, size, size),
            (3, 5), lambda out: nn.functional.cross_entropy(out, torch.tensor([0, 1, 4])),
            "classification")


def signal_io(channels: int, size: int):
    """A signal model's example: I/Q frames of ``size`` samples in and out (``channels``
    stands for a second frame length)."""
    length = size + channels
    return ({}, torch.randn(3, length, 2), (3, length, 2), lambda out: (out ** 2).mean(), "pa")


IO = {"signal": signal_io}  # what each decoder's models take; image classifiers otherwise


def space_of(name: str):
    assert name in TINY_SPACES, f"add a tiny search space for encoding {name!r} to TINY_SPACES"
    return config_from_dict({"search": TINY_SPACES[name],
                             "evaluation": {"evaluator": "x:y"}}).search


def genomes(name: str, n: int = 12, seed: int = 0) -> list:
    rng = random.Random(seed)
    return [get_encoding(name).random(space_of(name), rng) for _ in range(n)]


# --------------------------------------------------------------------------- encodings
@pytest.mark.parametrize("name", list(ENCODINGS))
def test_encoding_forms_round_trip_and_keys_are_canonical(name):
    encoding = get_encoding(name)
    assert encoding.name == name and encoding.genome.encoding == name
    assert encoding.search.model_fields["encoding"].default == name
    for genome in genomes(name):
        text = genome.to_string()
        assert encoding.claims(text)
        assert encoding.parse(text) == genome == parse_genome(text)
        assert genome_from_dict(json.loads(json.dumps(genome.to_dict()))) == genome
        assert load_genome(genome.to_dict()) == genome == load_genome(text, name)
        assert hash(genome) == hash(encoding.parse(text))
        assert encoding.parse(genome.key()).key() == genome.key()  # the key is a genome


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_encoding_operators_share_one_shape_and_never_change_arguments(name):
    encoding, space = get_encoding(name), space_of(name)
    rng = random.Random(1)
    population = genomes(name, 20, seed=2)
    for a, b in zip(population, population[1:]):
        before = (a.to_dict(), b.to_dict())
        child = encoding.mutate(a, space, rng, p_m=1.0, q_m=0.5)
        one = encoding.mutate_one(a, space, rng)
        c, d = encoding.crossover(a, b, space, rng, p_c=1.0, q_c=0.5)
        assert (a.to_dict(), b.to_dict()) == before
        for g in (child, one, c, d):
            assert isinstance(g, encoding.genome)
            assert encoding.parse(g.to_string()) == g
        assert encoding.mutate(a, space, rng, p_m=0.0, q_m=1.0) == a
        assert encoding.crossover(a, b, space, rng, p_c=0.0, q_c=1.0) == (a, b)
    # the same generator state gives the same children
    one = [encoding.mutate_one(g, space, random.Random(5)) for g in population]
    two = [encoding.mutate_one(g, space, random.Random(5)) for g in population]
    assert one == two


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:FutureWarning")
@pytest.mark.parametrize("channels, size", [(1, 8), (3, 11)])
@pytest.mark.parametrize("name", [n for n, e in ENCODINGS.items() if e.decoder])
def test_decoded_models_forward_backward_trace_and_export(name, channels, size, tmp_path):
    extra, x, out_shape, loss, task = IO.get(name, image_io)(channels, size)
    space = {**space_of(name).decoder_space(), **extra}
    for i, genome in enumerate(genomes(name, 3, seed=3)):
        torch.manual_seed(i)
        model = build_model(genome, space)
        out = model(x)
        assert out.shape == out_shape and torch.isfinite(out).all()
        loss(out).backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        # a cell genome may leave a cell unread (a reduction reading only state 0): its
        # parameters get no gradient, which is the architecture's, not the decoder's, doing
        assert grads and all(torch.isfinite(g).all() for g in grads)
        model.eval()
        with torch.no_grad():
            traced = torch.jit.trace(model, x)
            for shape in [(1, *x.shape[1:]), (4, *(n + 3 for n in x.shape[1:-1]), x.shape[-1])
                          if name in IO else (4, channels, size + 3, size + 3)]:
                y = torch.randn(*shape)
                assert (traced(y) - model(y)).abs().max() <= 1e-5
            folder = export_model(model, genome, space, tmp_path / f"{name}{i}",
                                  input_shape=tuple(x.shape[1:]), formats=("weights",),
                                  info={"input": {"task": task}},
                                  latency_runs=1,
                                  latency_batch_size=2)
            assert torch.equal(load_model(folder)(x), model(x))


# --------------------------------------------------------------------------- strategies
@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_runs_every_encoding_to_its_budget_and_resumes_from_its_state(
        name, encoding, tiny):
    strategy_cls = STRATEGIES[name]
    fields = strategy_cls.Config.model_fields
    small = {"name": name, **{k: 4 for k in ("population",) if k in fields},
             **({"sample": 2} if "sample" in fields else {}),
             strategy_cls.budget_key: 6}
    config = config_from_dict({**tiny, "search": TINY_SPACES[encoding], "strategy": small,
                               "evaluation": {"evaluator": "x:y", "objective": "score"}})
    objectives = Objectives.from_config(config)

    def value(genome):  # every third fails
        h = sum(map(ord, genome.key())) % 7
        return None if h % 3 == 0 else (h / 7,)

    def drive(strategy, stop=None):
        told = []
        while not strategy.done and (stop is None or len(told) < stop):
            asks = strategy.ask(2)
            assert asks, "a strategy with nothing in flight must ask"
            for ask in asks:
                strategy.tell(ask.ticket, value(ask.genome))
                told.append(ask.genome)
        return told

    full = drive(strategy_cls(get_encoding(encoding), config.search, config.strategy,
                              objectives, random.Random(9)))
    assert len(full) == config.strategy.budget
    half = strategy_cls(get_encoding(encoding), config.search, config.strategy, objectives,
                        random.Random(9))
    first = drive(half, stop=4)
    state = json.loads(json.dumps(half.state_dict()))  # plain JSON, no objects
    again = strategy_cls(get_encoding(encoding), config.search, config.strategy, objectives,
                         random.Random(0))
    again.load_state_dict(state)
    assert first + drive(again) == full


# --------------------------------------------------------------------------- pools, tasks, data
@pytest.mark.parametrize("name", list(BACKENDS))
def test_every_pool_backend_implements_the_interface(name):
    cls = BACKENDS[name]
    assert issubclass(cls, Pool) and cls.name == name
    assert not getattr(cls, "__abstractmethods__", None), cls.__abstractmethods__
    config = config_from_dict({"pool": {"backend": name}})
    cls.check_config(config.pool)  # the defaults are valid for every backend


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_declares_its_metrics_and_a_data_set_it_trains_on(name):
    task = TASKS[name]
    assert set(task.metrics) <= set(task.directions)
    assert all(d in ("max", "min") for d in task.directions.values())
    assert any(source.kind == task.data_kind for source in DATASETS.values())
    config = config_from_dict({"task": {"name": name}, "data": {"dataset": next(
        n for n, s in DATASETS.items() if s.kind == task.data_kind)}})
    assert config.task.name == name


@pytest.mark.parametrize("name", [n for n, s in DATASETS.items()
                                  if n in ("digits", "synthetic")])
def test_embedded_data_sets_load_as_tensors_of_their_kind(name):
    from training import load_dataset

    data = load_dataset({"dataset": name})
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.x_train.ndim == 4 and math.isfinite(float(data.x_train.abs().max()))
    assert int(data.y_train.max()) < data.num_classes
