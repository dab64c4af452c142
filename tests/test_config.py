"""Config loading: defaults, the shipped example, and errors that name key, value and choices."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from evolution import ConfigError, load_config
from evolution.config import Config, config_from_dict
from training.tasks import TASKS

REPO = Path(__file__).resolve().parents[1]


def test_shipped_configs_validate():
    configs = sorted((REPO / "runs").glob("*.yaml"))
    assert configs, "runs/ should hold example configs"
    for path in configs:
        config = load_config(path)
        assert config.name == path.stem


def test_default_config_matches_make_run():
    make = (REPO / "Makefile").read_text()
    default = re.search(r"^CONFIG \?= (\S+)$", make, re.M).group(1)
    assert default == "runs/digits-pareto.yaml"
    config = load_config(REPO / default)
    assert config.data.dataset == "digits"  # embedded: no download
    assert config.search.encoding == "binary"
    assert config.pool.workers == 2
    assert config.strategy.name == "nsga2"
    assert [(o.metric, o.direction) for o in config.objectives] == [("val_accuracy", "max"),
                                                                    ("params", "min")]
    assert all(o.reference is not None for o in config.objectives)  # seeds compare on one scale
    assert config.strategy.budget == config.strategy.population * (config.strategy.generations + 1)


def test_empty_config_takes_defaults_and_file_name(write_config):
    config = load_config(write_config({}, "my-search.yaml"))
    assert config.name == "my-search"
    assert config == config_from_dict({"name": "my-search"})
    assert config.search.stages == [3, 4]


def test_round_trip_through_dict(tiny):
    config = config_from_dict(tiny)
    assert config_from_dict(config.to_dict()) == config


def test_replace_validates():
    config = Config()
    assert config.replace(**{"pool.workers": 3}).pool.workers == 3
    with pytest.raises(ConfigError, match="pool.workers"):
        config.replace(**{"pool.workers": 0})


@pytest.mark.parametrize("data, expected", [
    ({"strategy": {"populaton": 3}}, ["unknown key 'strategy.populaton'", "population"]),
    ({"bogus": 1}, ["unknown key 'bogus'", "strategy", "evaluation"]),
    ({"data": {"synthetic": {"size": 3}}}, ["unknown key 'data.synthetic.size'", "image_size"]),
    ({"pool": {"workers": 0}}, ["pool.workers", "got 0", "greater than or equal to 1"]),
    ({"pool": {"backend": "mpi"}}, ["pool.backend", "'mpi'", "'serial'", "'local'"]),
    ({"data": {"dataset": "imagenet"}}, ["data.dataset", "'imagenet'", "'digits'", "'cifar10'"]),
    ({"strategy": {"p_mutation": 1.5}}, ["strategy.p_mutation", "1.5", "less than or equal to 1"]),
    ({"search": {"stages": [3, 1], "channels": [8, 8]}}, ["search.stages", "at least 2 nodes"]),
    ({"search": {"stages": [3, 4], "channels": [8]}}, ["search.channels", "one width per stage"]),
    ({"evaluation": {"optimizer": "lbfgs"}}, ["evaluation.optimizer", "'lbfgs'", "'adam'"]),
    ({"evaluation": {"lr": -1}}, ["evaluation.lr", "-1"]),
    ({"data": {"dataset": "npz"}}, ["data.path is required"]),
    ({"name": "has space"}, ["name", "'has space'"]),
    ({"search": "binary"}, ["search: got 'binary'", "search: {encoding:"]),
    ({"strategy": 3}, ["strategy: got 3", "strategy: {name:"]),
    ({"task": "classification"}, ["task: got 'classification'", "task: {name:"]),
])
def test_bad_values_name_key_value_and_choices(data, expected):
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    for text in expected:
        assert text in str(info.value)


def test_the_default_objective_is_the_tasks_headline_metric(monkeypatch):
    assert [o.model_dump() for o in config_from_dict({}).objectives] == [
        {"metric": "val_accuracy", "direction": "max", "reference": None}]
    task = TASKS["classification"]  # a task whose headline metric is minimised
    monkeypatch.setattr(task, "primary", "loss", raising=False)
    config = config_from_dict({"task": {"name": "classification"}})
    assert [(o.metric, o.direction) for o in config.objectives] == [("val_loss", "min")]
    given = config_from_dict({"objectives": [{"metric": "val_accuracy"}]})
    assert [(o.metric, o.direction) for o in given.objectives] == [("val_accuracy", "max")]
    short = config_from_dict({"evaluation": {"objective": "score", "evaluator": "m:f"}})
    assert [(o.metric, o.direction) for o in short.objectives] == [("score", "max")]
    assert config_from_dict(config.to_dict()) == config  # explicit once frozen


def test_several_errors_reported_together():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"pool": {"workers": 0}, "evaluation": {"epochs": 0}})
    assert "pool.workers" in str(info.value) and "evaluation.epochs" in str(info.value)


def test_file_errors(tmp_path, write_config):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("search: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad_yaml)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(listed)


def test_config_knows_the_data_sets_training_knows():
    import training.data
    from evolution import config

    assert config.DATASETS == training.data.DATASETS
    assert config.DEFAULT_ROOT == training.data.DEFAULT_ROOT
