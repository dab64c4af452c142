"""Training settings searched beside the architecture (``evaluation.lr: {log_uniform: ...}``):
the config's short form, its checks, and the searched values reaching the trainer and the
exported model's settings."""
from __future__ import annotations

import json

import pytest
import torch

from evolution import run
from evolution.config import ConfigError, config_from_dict
from evolution.journal import read_journal
from genome import TunedGenome, genome_from_dict


def test_a_range_in_evaluation_becomes_a_tuned_search_and_round_trips(tiny):
    config = config_from_dict({**tiny, "evaluation": {
        "epochs": 1, "lr": {"log_uniform": [1e-3, 0.3]}, "optimizer": ["sgd", "adam"]}})
    assert config.search.encoding == "tuned"
    assert config.search.arch.encoding == "binary"
    assert config.search.architecture == tiny["search"]
    assert config.search.settings == {"lr": {"log_uniform": [1e-3, 0.3]},
                                      "optimizer": ["sgd", "adam"]}
    assert config_from_dict(config.to_dict()) == config
    assert config.model_space() == config.search.arch.decoder_space()


@pytest.mark.parametrize("evaluation, message", [
    ({"lr": {"uniform": [0, 0.1]}}, "evaluation.lr: the searched uniform 0..0.1 can give 0.0"),
    ({"epochs": {"uniform": [1, 3]}}, "evaluation.epochs: .* valid integer"),
    ({"optimizer": ["sgd", "lbfgs"]}, "evaluation.optimizer: .* 'lbfgs'"),
])
def test_searched_values_must_be_values_the_setting_accepts(tiny, evaluation, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({**tiny, "evaluation": evaluation})


def test_the_searched_lr_reaches_the_trainer_and_the_exported_settings(tiny, monkeypatch,
                                                                       one_thread):
    seen = []
    sgd = torch.optim.SGD

    def spy(params, lr, **kw):
        seen.append(lr)
        return sgd(params, lr=lr, **kw)

    monkeypatch.setattr(torch.optim, "SGD", spy)
    config = config_from_dict({**tiny, "strategy": {"name": "random", "evaluations": 4},
                               "evaluation": {"epochs": 1, "batch_size": 16,
                                              "lr": {"log_uniform": [1e-3, 0.3]}}})
    summary = run(config)
    asks = [e for e in read_journal(summary.run_dir) if e["event"] == "ask"]
    lrs = [genome_from_dict(a["genome"]).values["lr"] for a in asks]
    assert len(set(lrs)) == 4 and all(1e-3 <= lr <= 0.3 for lr in lrs)
    assert seen[:4] == lrs  # each evaluation's optimizer got its genome's lr
    best = genome_from_dict(summary.best["genome"])
    assert isinstance(best, TunedGenome) and seen[4] == best.values["lr"]  # the final training
    settings = json.loads((summary.run_dir / "best" / "settings.json").read_text())
    assert settings["evaluation"]["lr"] == best.values["lr"] != config.evaluation.lr
    import evonas

    model = evonas.load_model(summary.run_dir / "best")
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 3)


def test_the_report_lists_the_searched_settings_and_the_best_ones(tiny, one_thread):
    from evolution.report import report_run

    config = config_from_dict({**tiny, "strategy": {"name": "random", "evaluations": 2},
                               "evaluation": {"epochs": 1, "optimizer": ["sgd", "adam"]}})
    summary = run(config)
    report_run(summary.run_dir)
    text = (summary.run_dir / "report" / "report.md").read_text()
    best = genome_from_dict(summary.best["genome"]).values["optimizer"]
    assert "searched settings: optimizer: sgd|adam" in text
    assert f"| best parameters | optimizer '{best}' |" in text


def test_searched_settings_with_a_condition_round_trip_through_export(tiny, one_thread):
    from evolution.export import export_run
    import evonas

    config = config_from_dict({**tiny, "strategy": {"name": "random", "evaluations": 3},
                               "evaluation": {"epochs": 1, "batch_size": 16,
                                              "optimizer": ["sgd", "adam"],
                                              "momentum": {"uniform": [0.5, 0.95],
                                                           "when": {"optimizer": "sgd"}}}})
    summary = run(config)
    best = genome_from_dict(summary.best["genome"])
    assert ("momentum" in best.values) == (best.values["optimizer"] == "sgd")
    second = [r for r in evonas.RunRecord(summary.run_dir).best(2)][-1]
    folders = export_run(summary.run_dir, top=2, formats=("weights",))
    assert len(folders) == 2
    for folder, result in zip(folders, [summary.best, second]):
        genome = genome_from_dict(result["genome"])
        exported = json.loads((folder / "genome.json").read_text())
        assert genome_from_dict(exported.get("genome", exported)) == genome
        settings = json.loads((folder / "settings.json").read_text())["evaluation"]
        assert {k: settings[k] for k in genome.values} == genome.values
        assert evonas.load_model(folder)(torch.zeros(1, 1, 8, 8)).shape == (1, 3)


@pytest.mark.parametrize("architecture", [
    {"encoding": "choice", "params": {"op": ["a", "b"], "n": {"int": [1, 9]}}},
    {"encoding": "cell", "blocks": 2, "cells_per_stack": 1, "filters": 4},
])
def test_tuned_genomes_of_every_architecture_parse_from_their_text(tiny, architecture):
    import random

    from genome import get_encoding, parse_genome

    config = config_from_dict({**tiny, "search": architecture, "evaluation": {
        "evaluator": "m:f", "objective": "s", "lr": {"log_uniform": [1e-3, 0.3]}}})
    rng = random.Random(0)
    for _ in range(10):
        genome = get_encoding("tuned").random(config.search, rng)
        assert parse_genome(genome.to_string()) == genome
        assert parse_genome(genome.genome.to_string()) == genome.genome
