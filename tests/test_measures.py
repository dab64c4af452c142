"""Architecture measures: latency through torch.utils.benchmark, measured on demand.

``latency_ms`` is measured only when an objective or a constraint names it, on the
evaluation's own device, before training (so a constraint on it refuses an architecture
untrained), and measuring it changes none of the other numbers.
"""
from __future__ import annotations

import pytest
import torch

import training
from conftest import TINY
from evolution.config import ConfigError, config_from_dict
from evolution.worker import evaluate_task, make_task
from genome import BinaryGenome
from training.measures import MEASURES, architecture_metrics, measure_latency
from training.tasks import get_task

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"dataset": "synthetic",
         "synthetic": {"samples": 64, "num_classes": 3, "image_size": 8, "channels": 1}}
QUICK = {"epochs": 1, "batch_size": 16, "lr": 0.05, "latency_seconds": 0.02}
CHAIN = BinaryGenome.from_string("1-01")
SPACE = {"channels": [4]}


def test_latency_states_median_spread_threads_and_hardware():
    model = training.build_model(CHAIN, {**SPACE, "in_channels": 1, "num_classes": 3}).train()
    measured = measure_latency(model, (1, 8, 8), 2, min_run_time=0.02)
    assert measured["median_ms"] > 0 and measured["iqr_ms"] >= 0 and measured["runs"] >= 1
    assert measured["threads"] == torch.get_num_threads() == 1
    assert measured["device"] == "cpu" and measured["hardware"]
    assert "blocked_autorange" in measured["method"] and measured["batch_size"] == 2
    assert model.training  # its mode is restored
    fixed = measure_latency(model, (1, 8, 8), 1, runs=3)
    assert fixed["runs"] == 3 and "timeit" in fixed["method"]


def test_every_task_lists_every_measure_and_latency_is_on_demand():
    for task in ("classification",):
        assert set(architecture_metrics(on_demand=False)) | set(
            architecture_metrics(on_demand=True)) <= set(get_task(task).metrics)
    assert MEASURES["latency"].on_demand and not MEASURES["params"].on_demand
    assert get_task("classification").directions["latency_ms"] == "min"


def test_latency_is_measured_only_when_asked_and_changes_nothing_else():
    data = training.load_dataset(SMALL)
    plain, _ = training.score(CHAIN, SPACE, data, QUICK, seed=1)
    seen: dict = {}
    timed, _ = training.score(CHAIN, SPACE, data, QUICK, seed=1, measure={"latency_ms"},
                              before_training=seen.update)
    assert "latency_ms" not in plain
    assert timed["latency_ms"] > 0 and timed["latency_iqr_ms"] >= 0
    assert timed["latency_threads"] == 1
    assert {"params", "flops", "latency_ms"} <= set(seen)  # the constraint hook sees latency
    for key in ("val_loss", "val_accuracy", "train_loss", "params", "flops"):
        assert timed[key] == plain[key]  # bit-identical: latency leaves the RNG alone


def test_latency_in_objectives_and_constraints_of_the_built_in_trainer():
    config = config_from_dict({**TINY, "strategy": {"name": "random", "evaluations": 2},
                               "objectives": [{"metric": "val_accuracy", "direction": "max"},
                                              {"metric": "latency_ms", "direction": "min"}],
                               "constraints": {"latency_iqr_ms": {"max": 100.0}}})
    assert [o.metric for o in config.objectives][1] == "latency_ms"
    with pytest.raises(ConfigError, match="latency_median"):
        config_from_dict({**TINY, "constraints": {"latency_median": {"max": 1.0}}})


def test_a_latency_constraint_refuses_an_architecture_before_training(monkeypatch):
    import training.trainer

    trained = []
    monkeypatch.setattr(training.trainer, "train", lambda *a, **k: trained.append(1) or 0.0)
    config = config_from_dict({**TINY, "constraints": {"latency_ms": {"max": 1e-6}},
                               "evaluation": {**TINY["evaluation"], "latency_seconds": 0.02}})
    task = make_task(config, config.search.decoder_space(), index=0, seed=5,
                     genome=BinaryGenome.from_string("1_1-01").to_dict())
    result = evaluate_task(task)
    assert result["status"] == "infeasible" and result["precheck"]
    assert result["metrics"]["latency_ms"] > 1e-6 and "latency_ms" in result["message"]
    assert not trained


def test_a_params_bound_refuses_an_architecture_before_its_latency_is_timed(monkeypatch):
    import training.measures

    timed = []
    monkeypatch.setattr(training.measures, "measure_latency",
                        lambda *a, **k: timed.append(1) or {})
    config = config_from_dict({**TINY, "constraints": {"params": {"max": 10},
                                                       "latency_ms": {"max": 100.0}}})
    task = make_task(config, config.search.decoder_space(), index=0, seed=5,
                     genome=BinaryGenome.from_string("1_1-01").to_dict())
    result = evaluate_task(task)
    assert result["status"] == "infeasible" and result["precheck"]
    assert "params" in result["violations"] and "latency_ms" not in result["metrics"]
    assert not timed
