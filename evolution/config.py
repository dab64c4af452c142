"""The run configuration: a typed tree, validated once at load.

Unknown keys and bad values are :class:`ConfigError` naming the key, the value and what is
allowed. The README's "Config reference" documents every key below; keep the two in step.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union, get_args, get_origin

import yaml
from pydantic import (BaseModel, ConfigDict, Discriminator, Field, StrictBool, StrictFloat,
                      StrictInt, StrictStr, Tag, ValidationError, field_validator,
                      model_validator)

from genome.cell import KNOWN_OPS, NASNET_OPS
from genome.choice import check_choices
from genome.errors import EvonasError, GenomeError


DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "npz", "synthetic")
DEFAULT_ROOT = "~/.cache/evonas/data"
"""Data set names and download cache, as ``training.data`` knows them (a test keeps the two in
step); spelled out here so that reading a config does not import torch."""


class ConfigError(EvonasError):
    """The configuration file is missing, unreadable, or has unknown keys or bad values."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BinarySearch(_Section):
    """Genetic-CNN binary strings (Xie & Yuille 2017)."""

    encoding: Literal["binary"] = "binary"
    stages: list[int] = Field([3, 4], min_length=1,
                              description="Genetic-CNN nodes per stage K_1..K_S (each >= 2)")
    channels: list[int] = Field([16, 32], min_length=1,
                                description="convolution width of each stage")

    @model_validator(mode="after")
    def _check(self) -> "BinarySearch":
        if any(k < 2 for k in self.stages):
            raise ValueError(f"search.stages: every stage needs at least 2 nodes, got {self.stages}")
        if any(c < 1 for c in self.channels):
            raise ValueError(f"search.channels: widths must be positive, got {self.channels}")
        if len(self.channels) != len(self.stages):
            raise ValueError(f"search.channels has {len(self.channels)} entries {self.channels} but "
                             f"search.stages has {len(self.stages)} {self.stages}: give one width "
                             f"per stage")
        return self

    def space(self) -> dict[str, Any]:
        """The decoder's settings (without the data set's in_channels / num_classes)."""
        return {"channels": list(self.channels)}


class CellMutation(_Section):
    """Relative weights of the mutations of Real et al. 2019."""

    hidden_state: float = Field(0.5, ge=0)
    op: float = Field(0.5, ge=0)
    identity: float = Field(0.0, ge=0, le=1, description="probability of no change")

    @model_validator(mode="after")
    def _check(self) -> "CellMutation":
        if self.hidden_state + self.op <= 0:
            raise ValueError("search.mutation: hidden_state and op weights cannot both be 0")
        return self


class CellSearch(_Section):
    """AmoebaNet / NASNet cells (Real et al. 2019; Zoph et al. 2018)."""

    encoding: Literal["cell"] = "cell"
    blocks: int = Field(5, ge=1, description="blocks per cell B")
    ops: list[str] = Field(list(NASNET_OPS), min_length=2, description="op vocabulary")
    cells_per_stack: int = Field(2, ge=1, description="normal cells per stack N")
    filters: int = Field(16, ge=1, description="channels of the first stack F")
    stem_multiplier: int = Field(3, ge=1)
    auxiliary: bool = False
    drop_path: float = Field(0.0, ge=0, lt=1)
    mutation: CellMutation = CellMutation()

    @model_validator(mode="after")
    def _check(self) -> "CellSearch":
        unknown = [op for op in self.ops if op not in KNOWN_OPS]
        if unknown:
            raise ValueError(f"search.ops: unknown ops {unknown}; known: {sorted(KNOWN_OPS)}")
        if len(set(self.ops)) != len(self.ops):
            raise ValueError(f"search.ops lists an op twice: {self.ops}")
        return self

    def space(self) -> dict[str, Any]:
        return {"cells_per_stack": self.cells_per_stack, "filters": self.filters,
                "stem_multiplier": self.stem_multiplier, "auxiliary": self.auxiliary,
                "drop_path": self.drop_path}


class ChoiceSearch(_Section):
    """A vector of categorical choices that you define (also tabular benchmarks)."""

    encoding: Literal["choice"] = "choice"
    choices: list[list[Union[StrictBool, StrictInt, StrictFloat, StrictStr]]] = Field(
        min_length=1, description="allowed values per position")

    @model_validator(mode="after")
    def _check(self) -> "ChoiceSearch":
        try:
            check_choices(self.choices)
        except GenomeError as exc:
            raise ValueError(f"search.choices: {exc}") from None
        return self

    def space(self) -> dict[str, Any]:
        return {"choices": [list(c) for c in self.choices]}


def _tagged(field: str, default: str, *models: type[BaseModel]) -> Any:
    """A union of config sections told apart by ``field``, which defaults to ``default``."""
    def tag(value: Any) -> Any:
        return value.get(field, default) if isinstance(value, dict) else getattr(value, field)
    tag.__name__ = field  # pydantic names the discriminator after it in errors
    return Annotated[Union[tuple(Annotated[m, Tag(m.model_fields[field].default)]
                                 for m in models)], Discriminator(tag)]


SearchConfig = _tagged("encoding", "binary", BinarySearch, CellSearch, ChoiceSearch)


class GeneticConfig(_Section):
    """Genetic-CNN's generational algorithm (Xie & Yuille 2017)."""

    name: Literal["genetic"] = "genetic"
    population: int = Field(10, ge=2, description="individuals per generation N")
    generations: int = Field(5, ge=0, description="generations T after the initial one")
    p_crossover: float = Field(0.2, ge=0, le=1, description="probability a pair crosses, p_C")
    q_crossover: float = Field(0.2, ge=0, le=1,
                               description="probability a stage / cell / position swaps, q_C")
    p_mutation: float = Field(0.8, ge=0, le=1, description="probability an individual mutates")
    q_mutation: float = Field(0.1, ge=0, le=1,
                              description="probability a bit / position changes, q_M")

    @property
    def budget(self) -> int:
        return self.population * (self.generations + 1)


class AgingConfig(_Section):
    """Aging (regularized) evolution (Real et al. 2019, Algorithm 1), steady-state."""

    name: Literal["aging"] = "aging"
    population: int = Field(20, ge=2, description="population size P")
    sample: int = Field(5, ge=1, description="tournament sample size S")
    cycles: int = Field(80, ge=0, description="children after the initial population")

    @model_validator(mode="after")
    def _check(self) -> "AgingConfig":
        if self.sample > self.population:
            raise ValueError(f"strategy.sample ({self.sample}) cannot exceed "
                             f"strategy.population ({self.population})")
        return self

    @property
    def budget(self) -> int:
        return self.population + self.cycles


class RandomConfig(_Section):
    """Random search: the baseline every comparison needs."""

    name: Literal["random"] = "random"
    evaluations: int = Field(100, ge=1, description="genomes drawn and evaluated")

    @property
    def budget(self) -> int:
        return self.evaluations


StrategyConfig = _tagged("name", "genetic", GeneticConfig, AgingConfig, RandomConfig)


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

    evaluator: Optional[str] = Field(
        None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="'package.module:function' replacing the built-in trainer")
    objective: str = Field("val_accuracy", min_length=1,
                           description="metric to maximise (key of the evaluator's dict)")
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    eval_batch_size: int = Field(512, ge=1)
    auxiliary_weight: float = Field(0.4, ge=0, description="weight of a cell model's auxiliary "
                                    "head loss (search.auxiliary)")


class PoolConfig(_Section):
    """Where evaluations run and what happens when one goes wrong (see ``evolution.pool``)."""

    backend: Literal["serial", "local", "dask"] = "local"
    workers: int = Field(2, ge=1, description="CPU worker processes (local pool, LocalCluster)")
    threads_per_worker: int = Field(1, ge=1, description="torch CPU threads in each worker")
    devices: Union[Literal["auto", "cpu"], list[str]] = Field(
        "auto", description="auto (every visible CUDA GPU, else CPU workers) | cpu | "
                            "[cuda:0, cuda:1, ...]")
    slots_per_gpu: int = Field(1, ge=1, description="evaluations at a time on each GPU")
    max_tasks_per_worker: Optional[int] = Field(
        None, ge=1, description="replace a worker after this many evaluations (null: never)")
    timeout: Optional[float] = Field(None, gt=0, description="seconds one evaluation may run")
    max_retries: int = Field(1, ge=0, description="re-runs of an evaluation whose worker died")
    memory_limit_mb: Optional[int] = Field(None, ge=1, description="memory one worker may hold")
    address: Optional[str] = Field(None, min_length=1,
                                   description="Dask scheduler, e.g. tcp://10.0.0.1:8786")
    gpu_resources: bool = Field(False, description="Dask: every task needs resource GPU=1")

    @field_validator("devices", mode="before")
    @classmethod
    def _devices(cls, value: Any) -> Any:
        """``auto``, ``cpu``, one GPU ``cuda:N``, or a list of distinct GPUs."""
        import re

        allowed = "allowed: auto, cpu, or GPUs like [cuda:0, cuda:1]"
        given = value
        if isinstance(value, str) and value not in ("auto", "cpu"):
            value = [value]  # one GPU
        if isinstance(value, list):
            bad = [d for d in value if not (isinstance(d, str) and re.fullmatch(r"cuda:\d+", d))]
            if bad or not value:
                raise ValueError(f"pool.devices: got {given!r}; {allowed} (a list names "
                                 f"GPUs only)")
            if len(set(value)) != len(value):
                raise ValueError(f"pool.devices names a GPU twice: {value}; use "
                                 f"pool.slots_per_gpu for more evaluations per GPU")
        elif value not in ("auto", "cpu"):
            raise ValueError(f"pool.devices: got {value!r}; {allowed}")
        return value

    @model_validator(mode="after")
    def _check(self) -> "PoolConfig":
        if self.backend == "serial":  # one evaluation at a time in this process
            for key in ("timeout", "memory_limit_mb", "max_tasks_per_worker"):
                if getattr(self, key) is not None:
                    raise ValueError(f"pool.{key} needs worker processes (backend local or "
                                     f"dask); backend serial evaluates in the run's own "
                                     f"process, which cannot be stopped or limited")
        if self.backend != "dask":
            for key in ("address", "gpu_resources"):
                if getattr(self, key):
                    raise ValueError(f"pool.{key} is for backend dask; pool.backend is "
                                     f"{self.backend!r}")
        else:
            if self.max_tasks_per_worker is not None:
                raise ValueError("pool.max_tasks_per_worker is for the local pool; Dask "
                                 "workers are recycled with `dask worker --lifetime`")
            if self.memory_limit_mb is not None and self.address:
                raise ValueError("pool.memory_limit_mb cannot limit the workers of an "
                                 "existing Dask cluster (pool.address); start them with "
                                 "`dask worker --memory-limit`")
        return self


class Config(_Section):
    name: str = Field("search", min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    seed: int = 0
    runs_dir: str = "runs"
    deterministic: bool = Field(False, description="apply results in proposal order")
    snapshot_every: int = Field(10, ge=1, description="results between snapshots")
    search: SearchConfig = BinarySearch()
    strategy: StrategyConfig = GeneticConfig()
    data: DataConfig = DataConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    pool: PoolConfig = PoolConfig()

    @model_validator(mode="after")
    def _check(self) -> "Config":
        if not self.evaluation.evaluator and self.evaluation.objective != "val_accuracy":
            raise ValueError(f"evaluation.objective is {self.evaluation.objective!r}, but the "
                             f"built-in trainer maximises 'val_accuracy'; other objectives need "
                             f"an evaluation.evaluator")
        return self

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


def _walk(loc: tuple) -> tuple[tuple, list[str]]:
    """A pydantic error location without the tags of tagged unions (``search.cell.blocks`` ->
    ``search.blocks``), and the field names of the section the location points into."""
    model: Any = Config
    path: list = []
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        path.append(part)
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        members = [get_args(m)[0] if get_origin(m) is Annotated else m
                   for m in get_args(annotation)]
        options = {m.model_fields[d].default: m for m in members
                   for d in ("encoding", "name") if d in getattr(m, "model_fields", {})}
        if options and parts and parts[0] in options:
            model = options[parts.pop(0)]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif parts:
            return tuple(path + parts), []
    return tuple(path), list(model.model_fields)


def _describe(error: dict) -> str:
    loc, allowed = _walk(tuple(error["loc"])[:-1])
    loc = loc + tuple(error["loc"])[-1:]
    key = ".".join(str(p) for p in loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"unknown key '{key}'; allowed here: {', '.join(allowed)}"
    if error["type"] == "missing":
        return f"{key}: required"
    if error["type"] == "union_tag_invalid":
        tag = error["ctx"]["discriminator"].strip("'()")
        return (f"{key}.{tag}: got {error['ctx']['tag']!r}; allowed: "
                f"{error['ctx']['expected_tags']}")
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
