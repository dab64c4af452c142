"""Training settings searched beside the architecture: the config's short form, its checks, and
the settings an evaluation trains with.

``evaluation: {lr: {log_uniform: [1.0e-3, 0.3]}, epochs: [2, 4]}`` (a range or a list of values in
place of a setting) becomes ``search: {encoding: tuned, architecture: <search>, settings: {lr:
..., epochs: ...}}`` (:mod:`genome.tuned`); each searched value must be one the setting accepts.
"""
from __future__ import annotations

import random
from typing import Any, Mapping

from genome import genome_from_dict, get_encoding
from genome.params import Categorical

NOT_SEARCHED = ("evaluator",)
"""Evaluation keys that cannot be searched."""


def fold_settings(data: Any) -> Any:
    """The config dict ``data`` with every ``evaluation`` value that is a range (a mapping) or a
    list of values moved into a ``tuned`` search section."""
    evaluation = data.get("evaluation") if isinstance(data, dict) else None
    if not isinstance(evaluation, dict):
        return data
    searched = {k: v for k, v in evaluation.items()
                if isinstance(v, (dict, list)) and k not in NOT_SEARCHED}
    if not searched:
        return data
    search = data.get("search", {})
    if isinstance(search, dict) and search.get("encoding") == "tuned":
        raise ValueError(f"evaluation: {', '.join(searched)} are searched ranges, and search "
                         f"is already tuned; list every searched setting in search.settings")
    return {**data, "evaluation": {k: v for k, v in evaluation.items() if k not in searched},
            "search": {"encoding": "tuned", "architecture": search, "settings": searched}}


def check_settings(search: Any, evaluation_model: type) -> None:
    """A ``ValueError`` naming the setting unless every value the tuned ``search`` can draw is
    one ``evaluation_model`` (the ``evaluation`` section) accepts."""
    if getattr(search, "encoding", None) != "tuned":
        return
    fields = [f for f in evaluation_model.model_fields if f not in NOT_SEARCHED]
    for dim in search.space.dims:
        if dim.name not in fields:
            raise ValueError(f"search.settings: {dim.name!r} is not a training setting that "
                             f"can be searched; allowed: {', '.join(fields)}")
        probes = (list(dim.values) if isinstance(dim, Categorical)
                  else [dim.low, dim.high, dim.sample(random.Random(0))])
        for value in probes:
            try:
                evaluation_model.model_validate({dim.name: value})
            except ValueError as exc:
                first = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
                raise ValueError(f"evaluation.{dim.name}: the searched {dim.describe()} can "
                                 f"give {value!r}, which the setting refuses: {first}") from None


def training_settings(evaluation: Mapping[str, Any], genome: Mapping[str, Any]) -> dict[str, Any]:
    """The evaluation settings the genome (its dict form) is trained with: ``evaluation`` with
    the values a tuned genome searched in place of the configured ones."""
    _, searched = split(genome_from_dict(genome))
    return {**evaluation, **searched}


def split(genome: Any) -> tuple[Any, dict[str, Any]]:
    """The architecture and the settings of ``genome`` (see :meth:`genome.Encoding.split`)."""
    return get_encoding(genome.encoding).split(genome)


def build_model(genome: Any, space: Mapping[str, Any]) -> Any:
    """The decoder of tuned genomes: the architecture's model (settings are the trainer's)."""
    from training.decode import build_model as decode

    return decode(split(genome)[0], space)
