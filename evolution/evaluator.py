"""User evaluators: ``evaluation.evaluator: "package.module:function"`` replaces the built-in
trainer. The function receives the genome, and the evaluation settings if it takes a second
argument (with ``settings["params"]``, the ``{name: value}`` of a named choice space), and
returns a number (the value of the one objective) or a dict of metrics holding
every objective's metric.

Workers import it by path (a module's function is never pickled); nothing calls it in the run's
own process beforehand: the run's first evaluations are the check, and while nothing has
succeeded a wrong path or a wrong return type stops the run with a clear message (see
``evolution.loop``) instead of failing every evaluation. A Python callable given to
:func:`evonas.search` travels to the workers serialised by dill (:func:`ship`). Under
multi-fidelity the evaluator runs once per rung, with ``settings["epochs"]`` the epoch to
train to, ``settings["start_epoch"]`` where the candidate stopped, and
``settings["report"](epoch, metrics)`` to record its learning curve (see ``evolution.worker``).
"""
from __future__ import annotations

import functools
import importlib
import inspect
import json
import numbers
import os
import sys
import base64
import hashlib
import re
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

from genome.errors import EvonasError


class EvaluatorError(EvonasError):
    """The configured evaluator cannot be imported or returned something unusable."""


# --------------------------------------------------------------------------- shipped callables
CALLABLE = "callable"
"""The module part of ``evaluation.evaluator`` for a callable given to :func:`evonas.search`:
``callable:objective`` (``callable:lambda`` for a lambda)."""
_SHIPPED: ContextVar[Mapping[str, str]] = ContextVar("evonas_shipped", default={})
"""``callable:name`` -> the function serialised by dill (base64), while its search runs, in
the context (thread) that runs it: two searches in two threads never see each other's."""
LARGE_BYTES = 1 << 20
"""A shipped function this large travels with every evaluation: worth a warning."""


def callable_path(func: Callable[..., Any]) -> str:
    """``callable:NAME`` for ``func``: its name, ``lambda`` for a lambda."""
    name = getattr(func, "__name__", None) or type(func).__name__
    name = re.sub(r"\W", "", name) or "objective"
    return f"{CALLABLE}:{name if not name[0].isdigit() else '_' + name}"


def _unpicklable(func: Callable[..., Any]) -> list[str]:
    """What ``func`` refers to (closure cells, globals, defaults) that dill cannot serialise,
    each as ``name (type)``."""
    import dill

    try:
        captured = inspect.getclosurevars(func)
        named = {**captured.nonlocals, **captured.globals}
    except TypeError:  # not a Python function: a callable object
        named = dict(getattr(func, "__dict__", {}))
    named.update({f"default {k}": v for k, v in
                  zip(getattr(getattr(func, "__code__", None), "co_varnames", ()),
                      getattr(func, "__defaults__", None) or ())})
    bad = []
    for name, value in named.items():
        try:
            dill.dumps(value, recurse=True)
        except Exception:
            bad.append(f"{name} ({type(value).__module__}.{type(value).__qualname__})")
    return bad


def ship(func: Callable[..., Any]) -> str:
    """``func`` serialised for worker processes (dill, with what it refers to by value when it
    lives in ``__main__`` or a notebook), as base64 text. An :class:`EvaluatorError` names
    what it captured that cannot be sent."""
    import dill

    if not callable(func):
        raise EvaluatorError(f"objective must be a function or a 'module:function' path, got "
                             f"{type(func).__name__}")
    try:
        data = dill.dumps(func, recurse=True)
        dill.loads(data)
    except Exception as exc:
        culprits = _unpicklable(func)
        what = (f"it captures {', '.join(culprits)}, which cannot be sent to another process"
                if culprits else f"{type(exc).__name__}: {exc}")
        raise EvaluatorError(
            f"the objective {getattr(func, '__qualname__', func)!r} cannot be shipped to the "
            f"worker processes: {what}. Create such objects inside the function (once per "
            f"worker, e.g. with functools.lru_cache), or give a 'module:function' path") from None
    if len(data) > LARGE_BYTES:
        import logging

        logging.getLogger(__name__).warning(
            "the objective serialises to %.1f MiB (what it captures), sent with every "
            "evaluation; load large data inside the function instead", len(data) / 2**20)
    return base64.b64encode(data).decode("ascii")


@contextmanager
def shipping(func: Callable[..., Any], path: Optional[str] = None) -> Iterator[str]:
    """Make ``func`` this process's evaluator ``path`` (default ``callable:NAME``; the path
    it yields): tasks made meanwhile (:func:`shipped_for`) carry it to the workers."""
    path = path or callable_path(func)
    token = _SHIPPED.set({**_SHIPPED.get(), path: ship(func)})
    try:
        yield path
    finally:
        _SHIPPED.reset(token)


def check_resolvable(path: str) -> None:
    """Before a run starts: an :class:`EvaluatorError` saying how to continue when ``path`` is a
    callable's (``callable:NAME``) that this process is not shipping, or an ask/tell run's
    (``tell:user``). Module paths are not imported here: the first evaluations check them."""
    if path.partition(":")[0] in (CALLABLE, "tell") and shipped_for(path) is None:
        load_evaluator(path)  # raises, with the way to continue


def shipped_for(path: Optional[str]) -> Optional[str]:
    """The serialised function of evaluator ``path`` when it is a shipped callable."""
    return _SHIPPED.get().get(path) if path else None


@functools.lru_cache(maxsize=4)
def _unship(digest: str, blob: str) -> Callable[..., Any]:
    import dill

    try:
        return dill.loads(base64.b64decode(blob))
    except Exception as exc:
        raise EvaluatorError(f"the objective could not be rebuilt in this worker: "
                             f"{type(exc).__name__}: {exc}. A function from a module must be "
                             f"importable here; defining it in the script or notebook sends it "
                             f"by value") from None


def unship(blob: str) -> Callable[..., Any]:
    """The function :func:`ship` serialised (rebuilt once per worker)."""
    return _unship(hashlib.sha256(blob.encode()).hexdigest(), blob)


@functools.lru_cache(maxsize=8)
def load_evaluator(path: str) -> Callable[..., Any]:
    """Import ``"package.module:function"``. The current directory is searched too (after
    the installed packages, so a user's ``training.py`` never shadows evonas), so a module
    beside the config works when evonas runs from there."""
    module_name, _, attr = path.partition(":")
    if module_name == "tell":
        raise EvaluatorError(f"this run is driven by ask/tell from Python (evaluator {path!r}); "
                             f"continue it with evonas.open_run(RUN_DIR)")
    if module_name == CALLABLE:
        raise EvaluatorError(f"this run's evaluator {path!r} is a Python callable given to "
                             f"evonas.search(..., objective=fn); it is not importable, so "
                             f"continue the run from Python: evonas.search(RUN_DIR, "
                             f"objective=fn)")
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
                   objectives: Sequence[str], shipped: Optional[str] = None) -> dict[str, Any]:
    """Call the evaluator at ``path`` and return its metrics as a dict.

    A number is the value of the one objective metric (``objectives`` names them); a dict
    must hold JSON values. Anything else, or a number when there are several objectives, is
    an :class:`EvaluatorError`. Whether the dict holds every objective is checked by the
    caller (:func:`evolution.objectives.values_of`). ``shipped``: the function serialised by
    :func:`ship` (a callable given to :func:`evonas.search`), used instead of importing
    ``path``.
    """
    func = unship(shipped) if shipped is not None else load_evaluator(path)
    settings = with_params(genome, settings)
    value = func(genome, settings) if _takes_settings(func) else func(genome)
    return normalise(value, objectives, f"evaluator {path!r}")


def normalise(value: Any, objectives: Sequence[str], what: str) -> dict[str, Any]:
    """``value`` (what an evaluation returned) as a dict of metrics: a number is the value of
    the one objective; a dict must hold JSON values. An :class:`EvaluatorError` names
    ``what`` returned it otherwise."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if len(objectives) != 1:
            raise EvaluatorError(f"{what} returned a single number, but the run "
                                 f"has {len(objectives)} objectives ({', '.join(objectives)}); "
                                 f"return a dict with a value for each")
        return {objectives[0]: float(value)}
    if not isinstance(value, Mapping):
        raise EvaluatorError(f"{what} must return a number or a dict of metrics "
                             f"with {', '.join(map(repr, objectives))}; it returned "
                             f"{type(value).__name__}: {str(value)[:80]}")
    metrics = dict(value)
    try:
        json.dumps(metrics, default=None)
    except (TypeError, ValueError) as exc:
        raise EvaluatorError(f"{what} returned metrics that are not JSON "
                             f"values: {exc}") from None
    return metrics
