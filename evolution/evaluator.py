"""User evaluators: ``evaluation.evaluator: "package.module:function"`` replaces the built-in
trainer. The function receives the genome, and the evaluation settings if it takes a second
argument (with ``settings["params"]``, the ``{name: value}`` of a named choice space), and
returns a number (the value of the one objective) or a dict of metrics holding
every objective's metric.

The run imports and calls it once in the parent before the search starts, so a wrong path or a
wrong return type stops the run at once with a clear message instead of failing every
evaluation. Workers import it again by path (never by pickling it).
"""
from __future__ import annotations

import functools
import importlib
import inspect
import json
import numbers
import os
import sys
from typing import Any, Callable, Mapping, Sequence

from genome.errors import EvonasError


class EvaluatorError(EvonasError):
    """The configured evaluator cannot be imported or returned something unusable."""


@functools.lru_cache(maxsize=8)
def load_evaluator(path: str) -> Callable[..., Any]:
    """Import ``"package.module:function"``. The current directory is searched too (after
    the installed packages, so a user's ``training.py`` never shadows evonas), so a module
    beside the config works when evonas runs from there."""
    module_name, _, attr = path.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise EvaluatorError(f"cannot import evaluator {path!r}: {type(exc).__name__}: {exc}. "
                             f"Check evaluation.evaluator and that the module is importable "
                             f"from {os.getcwd()} or installed.") from exc
    func = getattr(module, attr, None)
    if not callable(func):
        raise EvaluatorError(f"evaluator {path!r}: module {module_name!r} has no function "
                             f"{attr!r}")
    return func


def _takes_settings(func: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def with_params(genome: Any, settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` plus ``params``: ``{name: value}`` of the genome's active dimensions when
    the space is a named choice space (``search.params``)."""
    settings = dict(settings)
    params = (settings.get("space") or {}).get("params")
    if params is not None:
        from genome.params import Space

        settings["params"] = Space.from_params(params).as_dict(genome.values)
    return settings


def call_evaluator(path: str, genome: Any, settings: Mapping[str, Any],
                   objectives: Sequence[str]) -> dict[str, Any]:
    """Call the evaluator at ``path`` and return its metrics as a dict.

    A number is the value of the one objective metric (``objectives`` names them); a dict
    must hold JSON values. Anything else, or a number when there are several objectives, is
    an :class:`EvaluatorError`. Whether the dict holds every objective is checked by the
    caller (:func:`evolution.objectives.values_of`).
    """
    func = load_evaluator(path)
    settings = with_params(genome, settings)
    value = func(genome, settings) if _takes_settings(func) else func(genome)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if len(objectives) != 1:
            raise EvaluatorError(f"evaluator {path!r} returned a single number, but the run "
                                 f"has {len(objectives)} objectives ({', '.join(objectives)}); "
                                 f"return a dict with a value for each")
        return {objectives[0]: float(value)}
    if not isinstance(value, Mapping):
        raise EvaluatorError(f"evaluator {path!r} must return a number or a dict of metrics "
                             f"with {', '.join(map(repr, objectives))}; it returned "
                             f"{type(value).__name__}: {str(value)[:80]}")
    metrics = dict(value)
    try:
        json.dumps(metrics, default=None)
    except (TypeError, ValueError) as exc:
        raise EvaluatorError(f"evaluator {path!r} returned metrics that are not JSON "
                             f"values: {exc}") from None
    return metrics
