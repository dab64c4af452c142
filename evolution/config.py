"""The run configuration: a typed tree, validated once at load.

Unknown keys and bad values are :class:`ConfigError` naming the key, the value and what is
allowed. The README's "Config reference" documents every key below; keep the two in step.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union, get_args, get_origin

import yaml
from pydantic import (BaseModel, Discriminator, Field, Tag, ValidationError, field_validator,
                      model_validator)

from evolution.fidelity import RULES
from evolution.pool import BACKENDS
from evolution.strategies import STRATEGIES
from evolution.tuning import check_settings, fold_settings
from genome import ENCODINGS
from genome.errors import EvonasError
from genome.section import Section as _Section
from training.data import DATASETS, DEFAULT_ROOT, MAX_CLASSES
from training.signal_data import SignalDataConfig
from training.tasks import TASKS


MAX_WORKERS = 256
"""More worker processes than this is a typo (1000 workers spawn 1000 torch processes)."""


class ConfigError(EvonasError):
    """The configuration file is missing, unreadable, or has unknown keys or bad values."""


def _tagged(field: str, default: str, *models: type[BaseModel]) -> Any:
    """A union of config sections told apart by ``field``, which defaults to ``default``."""
    def tag(value: Any) -> Any:
        return value.get(field, default) if isinstance(value, dict) else getattr(value, field, None)
    tag.__name__ = field  # pydantic names the discriminator after it in errors
    return Annotated[Union[tuple(Annotated[m, Tag(m.model_fields[field].default)]
                                 for m in models)], Discriminator(tag)]


SearchConfig = _tagged("encoding", "binary", *(e.search for e in ENCODINGS.values()))
StrategyConfig = _tagged("name", "genetic", *(s.Config for s in STRATEGIES.values()))
TaskConfig = _tagged("name", "classification", *(t.Config for t in TASKS.values()))


class SyntheticConfig(_Section):
    samples: int = Field(256, ge=8, le=1_000_000)
    num_classes: int = Field(4, ge=2, le=MAX_CLASSES)
    image_size: int = Field(8, ge=1, le=1024)
    channels: int = Field(1, ge=1, le=64)


class DataConfig(_Section):
    dataset: Literal[tuple(DATASETS)] = "digits"  # type: ignore[valid-type]
    root: str = DEFAULT_ROOT
    path: Optional[str] = None
    val_fraction: float = Field(0.2, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    train_size: Optional[int] = Field(None, ge=1)
    split_seed: int = 0
    normalize: bool = True
    synthetic: SyntheticConfig = SyntheticConfig()
    signal: SignalDataConfig = SignalDataConfig()

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
    random_crop: Optional[int] = Field(
        None, ge=0, le=64, description="pad images by this many pixels and crop back at a "
        "random offset (null: the data set's default: cifar10 4, mnist, fashion_mnist 2, else 0)")
    flip: Optional[bool] = Field(None, description="mirror images left-right at random (null: "
                                 "the data set's default: cifar10, fashion_mnist)")
    cutout: int = Field(0, ge=0, le=1024, description="zero a random square of this side")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    amp: Literal["auto", "off", "bf16", "fp16"] = Field(
        "auto", description="mixed precision: auto (bf16 on a GPU that has it, else fp16 with a "
        "gradient scaler; off on the CPU) | off | bf16 | fp16")
    channels_last: Optional[bool] = Field(None, description="channels-last memory format "
                                          "(null: on a GPU for convolutional models)")
    compile: bool = Field(False, description="torch.compile the training forward pass")
    check_every: Optional[int] = Field(None, ge=1, description="training steps between NaN "
                                       "checks of the loss (null: 1 on the CPU, 50 on a GPU)")
    latency_batch_size: int = Field(1, ge=1, description="batch of latency_ms (measured when "
                                    "an objective or constraint names it) and of the card's")
    latency_seconds: float = Field(0.2, gt=0, le=60, description="time spent measuring latency "
                                   "(torch.utils.benchmark blocked_autorange)")


class PoolConfig(_Section):
    """Where evaluations run and what happens when one goes wrong (see ``evolution.pool``)."""

    backend: Literal[tuple(BACKENDS)] = "local"  # type: ignore[valid-type]
    workers: int = Field(2, ge=1, le=MAX_WORKERS,
                         description="CPU worker processes (local pool, LocalCluster)")
    threads_per_worker: int = Field(1, ge=1, le=256,
                                    description="torch CPU threads in each worker")
    devices: Union[Literal["auto", "cpu"], list[str]] = Field(
        "auto", description="auto (every visible CUDA GPU, else CPU workers) | cpu | "
                            "[cuda:0, cuda:1, ...]")
    slots_per_gpu: int = Field(1, ge=1, le=64, description="evaluations at a time on each GPU")
    max_tasks_per_worker: Optional[int] = Field(
        None, ge=1, description="replace a worker after this many evaluations (null: never)")
    timeout: Optional[float] = Field(None, gt=0, description="seconds one evaluation may run")
    start_timeout: float = Field(300.0, gt=0, description="seconds a worker may take to start "
                                 "(import torch) before it is replaced")
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
        if self.backend != "dask":
            for key in ("address", "gpu_resources"):
                if getattr(self, key):
                    raise ValueError(f"pool.{key} is for backend dask; pool.backend is "
                                     f"{self.backend!r}")
        BACKENDS[self.backend].check_config(self)
        return self


class ObjectiveConfig(_Section):
    """One objective: a metric the evaluation reports, and whether to maximise or minimise it."""

    metric: str = Field(min_length=1, max_length=100)
    direction: Literal["max", "min"] = "max"
    reference: Optional[float] = Field(
        None, description="hypervolume reference value (several objectives); default: just "
                          "worse than the worst of the first generation or window")


class ConstraintConfig(_Section):
    """Bounds on one metric: ``{max: 50000}``, ``{min: 0.9}`` or both."""

    min: Optional[float] = None
    max: Optional[float] = None

    @model_validator(mode="after")
    def _check(self) -> "ConstraintConfig":
        if self.min is None and self.max is None:
            raise ValueError("a constraint needs a bound: give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"a constraint's min ({self.min:g}) is above its max "
                             f"({self.max:g}): nothing could satisfy it")
        return self


class ProposalConfig(_Section):
    """How every strategy's children are proposed (see ``evolution.strategies.proposal``)."""

    repeats: bool = Field(False, description="propose architectures already evaluated or in "
                          "flight, as the papers do (they are free cache hits)")
    attempts: int = Field(50, ge=1, le=10_000, description="extra mutations tried to turn a "
                          "repeated child into an unseen one before proposing the repeat")
    max_asks: Optional[int] = Field(None, ge=1, description="most evaluations, cache hits "
                                    "included, before the run ends; default 2 x the budget")
    surrogate: bool = Field(False, description="rank several candidate children with a model "
                            "fitted on every result so far and propose the best")
    candidates: int = Field(16, ge=2, le=1024, description="candidate children per proposal "
                            "with the surrogate")
    exploration: float = Field(0.1, ge=0, le=1, description="probability the surrogate "
                               "proposes a random candidate instead of the best ranked")


class FidelityConfig(_Section):
    """Multi-fidelity search (see ``evolution.fidelity``): candidates train in steps and a rule
    stops the poor ones at a rung."""

    rule: Literal[tuple(RULES)] = Field("none", description="none (every candidate trains "
                                        "evaluation.epochs) | asha | median")
    min_epochs: int = Field(1, ge=1, description="the first rung")
    eta: int = Field(3, ge=2, le=100, description="rung k is min_epochs * eta**k; asha keeps "
                     "the top 1/eta at each")
    max_epochs: Optional[int] = Field(None, ge=1, description="the top rung: what a candidate "
                                      "that is never stopped trains (evaluation.epochs)")
    min_reports: int = Field(3, ge=1, description="median: results at a rung before it stops "
                             "any")
    budget_epochs: Optional[int] = Field(None, ge=1, description="start no candidate once "
                                         "this many epochs are trained in all")


class Config(_Section):
    name: str = Field("search", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$",
                      description="the run directory's name: letters, digits, . _ -")
    seed: int = 0
    runs_dir: str = "runs"
    deterministic: bool = Field(False, description="apply results in proposal order")
    snapshot_every: int = Field(10, ge=1, description="results between snapshots (and at least "
                                "5% of the architectures evaluated so far)")
    search: SearchConfig = ENCODINGS["binary"].search()
    strategy: StrategyConfig = STRATEGIES["genetic"].Config()
    task: TaskConfig = TASKS["classification"].Config()
    objectives: list[ObjectiveConfig] = Field(
        [ObjectiveConfig(metric="val_accuracy")], min_length=1,
        description="metrics to optimise, in order; `evaluation.objective: M` is short for "
                    "[{metric: M, direction: max}]; default: the task's headline validation "
                    "metric")
    constraints: dict[str, ConstraintConfig] = Field(
        {}, max_length=64, description="hard bounds on metrics, {metric: {min, max}}; a "
                                       "result that breaks one is infeasible")
    data: DataConfig = DataConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    pool: PoolConfig = PoolConfig()
    proposal: ProposalConfig = ProposalConfig()
    fidelity: FidelityConfig = FidelityConfig()

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        """``evaluation.objective: M`` (one metric to maximise) becomes ``objectives``; with
        neither, the objective is the task's headline validation metric in its direction
        (``val_accuracy``, max, for classification)."""
        evaluation = data.get("evaluation") if isinstance(data, dict) else None
        if isinstance(evaluation, dict) and "objective" in evaluation:
            evaluation = dict(evaluation)
            metric = evaluation.pop("objective")
            if "objectives" in data:
                raise ValueError("give the objectives once: either evaluation.objective (one "
                                 "metric to maximise) or objectives (a list of {metric, "
                                 "direction})")
            data = {**data, "evaluation": evaluation,
                    "objectives": [{"metric": metric, "direction": "max"}]}
        task = data.get("task") if isinstance(data, dict) else None
        name = task.get("name") if isinstance(task, dict) else None
        if isinstance(data, dict) and "objectives" not in data and name in TASKS:
            primary = f"val_{TASKS[name].primary}"  # no objectives: the task's headline metric
            data = {**data, "objectives": [{"metric": primary,
                                            "direction": TASKS[name].directions[primary]}]}
        data = _top_rung(data)
        return fold_settings(data)  # evaluation.lr: {log_uniform: [...]} -> search: tuned

    @model_validator(mode="after")
    def _check(self) -> "Config":
        if set(self.name) == {"."}:
            raise ValueError(f"name {self.name!r} would point outside runs_dir; give the run a "
                             f"name with a letter or digit")
        metrics = [o.metric for o in self.objectives]
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"objectives names a metric twice: {metrics}")
        task = TASKS[self.task.name]
        if not self.evaluation.evaluator:
            for key, names in (("objectives", metrics), ("constraints", list(self.constraints))):
                unknown = [m for m in names if m not in task.metrics]
                if unknown:
                    raise ValueError(f"{key}: the built-in trainer ({task.title}) reports "
                                     f"{', '.join(task.metrics)}; "
                                     f"{', '.join(map(repr, unknown))} need an "
                                     f"evaluation.evaluator that returns them")
            kind = DATASETS[self.data.dataset].kind
            if kind != task.data_kind:
                raise ValueError(f"data.dataset {self.data.dataset!r} holds {kind}, but task "
                                 f"{task.name!r} trains on {task.data_kind}")
        check_settings(self.search, EvaluationConfig)
        fidelity = self.fidelity
        if RULES[fidelity.rule].stops and fidelity.min_epochs >= self.evaluation.epochs:
            raise ValueError(f"fidelity.min_epochs ({fidelity.min_epochs}) must be below the "
                             f"top rung, evaluation.epochs ({self.evaluation.epochs}), for "
                             f"rule {fidelity.rule!r} to stop anything")
        searched = ([d.name for d in self.search.space.dims]
                    if getattr(self.search, "encoding", None) == "tuned" else [])
        if RULES[fidelity.rule].stops and "epochs" in searched:
            raise ValueError(f"fidelity.rule {fidelity.rule!r} decides how long candidates "
                             f"train; it cannot be used with evaluation.epochs searched")
        strategy = STRATEGIES[self.strategy.name]
        if len(metrics) > 1 and not strategy.multi_objective:
            several = [n for n, s in STRATEGIES.items() if s.multi_objective]
            raise ValueError(f"strategy {strategy.name!r} optimises one objective, but "
                             f"objectives lists {len(metrics)} ({', '.join(metrics)}); keep one, "
                             f"or use a strategy for several: {', '.join(several)}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def model_space(self, data: Any = None) -> dict[str, Any]:
        """The decoder's settings for this run: what the genome does not say, plus what the
        task needs of the loaded data set ``data`` (``in_channels``, ``num_classes``)."""
        space = self.search.decoder_space()
        if data is not None:
            space.update(TASKS[self.task.name].decoder_space(data))
        return space

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


def _top_rung(data: Any) -> Any:
    """``fidelity.max_epochs`` is the top rung, ``evaluation.epochs``: given, it sets it (and
    must agree with an ``evaluation.epochs`` also given)."""
    fidelity = data.get("fidelity") if isinstance(data, dict) else None
    top = fidelity.get("max_epochs") if isinstance(fidelity, dict) else None
    if top is None:
        return data
    evaluation = data.get("evaluation") or {}
    if not isinstance(evaluation, dict):
        return data
    if evaluation.get("epochs", top) != top:
        raise ValueError(f"fidelity.max_epochs ({top!r}) and evaluation.epochs "
                         f"({evaluation['epochs']!r}) both give the epochs of a full training; "
                         f"give one")
    return {**data, "evaluation": {**evaluation, "epochs": top}}


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


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: input goes into messages bounded."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"<deeply nested {type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 5] + " ...)"


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
        return (f"{key}.{tag}: got {shown(error['ctx']['tag'])}; allowed: "
                f"{error['ctx']['expected_tags']}")
    if error["type"] == "union_tag_not_found":  # `search: binary` for `search: {encoding: ..}`
        tag = error["ctx"]["discriminator"].strip("'()")
        return (f"{key}: got {shown(error['input'])}; expected a section of keys, such as "
                f"{key}: {{{tag}: ..., ...}}")
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "value_error":
        return message
    return f"{key}: got {shown(error['input'])}: {message}"


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


MAX_CONFIG_BYTES = 1 << 20
"""A config file is at most 1 MiB (a search space of thousands of positions fits easily)."""
MAX_YAML_NODES = 200_000
"""YAML anchors and aliases are welcome (a choice space repeating one list of ops); what they
expand to is bounded, so a few hundred bytes cannot unfold into gigabytes."""


def _expanded_size(node: Any, memo: dict[int, int]) -> int:
    """Nodes ``node`` stands for once every alias is expanded (linear in the distinct nodes)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = 1  # a node that contains itself (a recursive alias) counts once
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[id(node)] = size
    return size


def parse_yaml(text: str, source: str) -> Any:
    """YAML ``text`` as plain data (``yaml.SafeLoader``), refusing documents that expand to
    more than :data:`MAX_YAML_NODES` nodes."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_YAML_NODES:
            raise ConfigError(f"{source}: its anchors and aliases expand to {size:,} YAML "
                              f"nodes, more than the {MAX_YAML_NODES:,} a config may hold; "
                              f"write the values out, or reuse fewer")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {shown(str(exc), 400)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to be a config") from None
    finally:
        loader.dispose()


def load_config(path: str | os.PathLike) -> Config:
    """Read and validate a YAML config. ``name`` defaults to the file's stem."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path} is {size:,} bytes; a config file is at most "
                              f"{MAX_CONFIG_BYTES:,} bytes. Is it the right file?")
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start} is 0x{raw[exc.start]:02x})"
                          f"; save it as UTF-8, or check that it is a config file") from None
    if "\x00" in text:
        raise ConfigError(f"{path} holds NUL bytes: it is not a text file")
    data = parse_yaml(text, str(path))
    if isinstance(data, dict):
        data.setdefault("name", path.stem)
    return config_from_dict(data, str(path))
