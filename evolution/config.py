"""The run configuration: a typed tree, validated once at load.

Unknown keys and bad values are :class:`ConfigError` naming the key, the value and what is
allowed. The README's "Config reference" documents every key below; keep the two in step.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from genome.errors import EvonasError
from training.data import DATASETS, DEFAULT_ROOT


class ConfigError(EvonasError):
    """The configuration file is missing, unreadable, or has unknown keys or bad values."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SearchConfig(_Section):
    """What an architecture is: the encoding and its search space."""

    encoding: Literal["binary"] = Field("binary", description="genome encoding")
    stages: list[int] = Field([3, 4], min_length=1,
                              description="Genetic-CNN nodes per stage K_1..K_S (each >= 2)")
    channels: list[int] = Field([16, 32], min_length=1,
                                description="convolution width of each stage")

    @model_validator(mode="after")
    def _check(self) -> "SearchConfig":
        if any(k < 2 for k in self.stages):
            raise ValueError(f"search.stages: every stage needs at least 2 nodes, got {self.stages}")
        if any(c < 1 for c in self.channels):
            raise ValueError(f"search.channels: widths must be positive, got {self.channels}")
        if len(self.channels) != len(self.stages):
            raise ValueError(f"search.channels has {len(self.channels)} entries {self.channels} but "
                             f"search.stages has {len(self.stages)} {self.stages}: give one width "
                             f"per stage")
        return self


class GeneticConfig(_Section):
    """Genetic-CNN's generational algorithm (Xie & Yuille 2017)."""

    name: Literal["genetic"] = "genetic"
    population: int = Field(10, ge=2, description="individuals per generation N")
    generations: int = Field(5, ge=0, description="generations T after the initial one")
    p_crossover: float = Field(0.2, ge=0, le=1, description="probability a pair crosses, p_C")
    q_crossover: float = Field(0.2, ge=0, le=1, description="probability a stage swaps, q_C")
    p_mutation: float = Field(0.8, ge=0, le=1, description="probability an individual mutates")
    q_mutation: float = Field(0.1, ge=0, le=1, description="probability a bit flips, q_M")

    @property
    def budget(self) -> int:
        return self.population * (self.generations + 1)


class SyntheticConfig(_Section):
    samples: int = Field(256, ge=8)
    num_classes: int = Field(4, ge=2)
    image_size: int = Field(8, ge=1)
    channels: int = Field(1, ge=1)


class DataConfig(_Section):
    dataset: Literal[DATASETS] = "digits"  # type: ignore[valid-type]
    root: str = DEFAULT_ROOT
    path: Optional[str] = None
    val_fraction: float = Field(0.2, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    train_size: Optional[int] = Field(None, ge=1)
    split_seed: int = 0
    normalize: bool = True
    synthetic: SyntheticConfig = SyntheticConfig()

    @model_validator(mode="after")
    def _check(self) -> "DataConfig":
        if self.dataset == "npz" and not self.path:
            raise ValueError("data.path is required when data.dataset is 'npz'")
        return self


class EvaluationConfig(_Section):
    """How every candidate is trained and scored (the proxy task of the search)."""

    epochs: int = Field(5, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    eval_batch_size: int = Field(512, ge=1)


class PoolConfig(_Section):
    backend: Literal["serial", "local"] = "local"
    workers: int = Field(2, ge=1)
    threads_per_worker: int = Field(1, ge=1)


class Config(_Section):
    name: str = Field("search", min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    seed: int = 0
    runs_dir: str = "runs"
    search: SearchConfig = SearchConfig()
    strategy: GeneticConfig = GeneticConfig()
    data: DataConfig = DataConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    pool: PoolConfig = PoolConfig()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def replace(self, **changes: Any) -> "Config":
        """A validated copy with dotted keys changed: ``replace(**{"pool.workers": 1})``."""
        data = self.to_dict()
        for dotted, value in changes.items():
            node = data
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node[part]
            node[leaf] = value
        return config_from_dict(data)


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the section that ``loc`` (a pydantic error location) points into."""
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _describe(error: dict) -> str:
    loc = tuple(error["loc"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(Config, loc)
        return f"unknown key '{key}'; allowed here: {', '.join(allowed)}"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "value_error":
        return message
    return f"{key}: got {error['input']!r}: {message}"


def config_from_dict(data: Any, source: str = "config") -> Config:
    """Validate a plain dict (as read from YAML) into a :class:`Config`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, "
                          f"got {type(data).__name__}")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines = "\n".join(f"  - {_describe(e)}" for e in exc.errors())
        raise ConfigError(f"{source} is not a valid evonas config:\n{lines}") from None


def load_config(path: str | os.PathLike) -> Config:
    """Read and validate a YAML config. ``name`` defaults to the file's stem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if isinstance(data, dict):
        data.setdefault("name", path.stem)
    return config_from_dict(data, str(path))
