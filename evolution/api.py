"""The Python way in: :func:`search` with a config (object, dict or YAML path) and an objective
that may be any callable (a function, a lambda, a closure), shipped to the workers.

    summary = evonas.search({"search": {"encoding": "choice", "params": {...}},
                             "strategy": {"name": "aging", "cycles": 50},
                             "evaluation": {"objective": "score"}},
                            objective=lambda genome, settings: score(settings["params"]))

Workers are spawned processes (or Dask workers). The objective travels to them serialised by
dill (what it refers to in ``__main__`` or a notebook by value), so neither a notebook nor a
script without an ``if __name__ == "__main__":`` guard is a problem: while the search runs, the
spawned workers are told not to re-run the main script.
"""
from __future__ import annotations

import os
import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Union

from evolution.config import Config, ConfigError, config_from_dict, load_config, parse_yaml
from evolution.evaluator import shipping
from evolution.journal import CONFIG

ConfigLike = Union[Config, Mapping[str, Any], str, os.PathLike]
Objective = Union[Callable[..., Any], str]


def as_config(config: ConfigLike, objective: Optional[Objective] = None) -> Config:
    """A :class:`Config` from itself, a dict (as YAML would give) or a YAML file path, with
    ``objective`` as its evaluator: a ``module:function`` path as is, a callable as
    ``callable:NAME`` (resolved by :func:`evolution.evaluator.shipping`)."""
    from evolution.evaluator import callable_path

    if isinstance(config, (str, os.PathLike)):
        if objective is None:
            return load_config(config)
        path = Path(config)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {str(path)!r}: {exc}") from None
        data = parse_yaml(text, str(path))
        config = {"name": path.stem, **data} if isinstance(data, dict) else data
    if isinstance(config, Config):
        config = config.to_dict()
    if not isinstance(config, Mapping):
        raise ConfigError(f"expected a Config, a dict or the path of a YAML config, got "
                          f"{type(config).__name__}")
    data = dict(config)
    if objective is not None:
        path = objective if isinstance(objective, str) else callable_path(objective)
        data["evaluation"] = {**(data.get("evaluation") or {}), "evaluator": path}
    return config_from_dict(data)


@contextmanager
def no_main_reimport() -> Iterator[None]:
    """While open, processes spawned from here do not re-run the main script (``spawn`` would
    otherwise import it again, and a script without an ``if __name__ == "__main__":`` guard
    would start its search again in every worker). What the workers need of ``__main__``
    travels by value with the objective."""
    main = sys.modules.get("__main__")
    saved = {k: getattr(main, k) for k in ("__spec__", "__file__") if hasattr(main, k)}
    if main is not None and getattr(main, "__file__", None) is not None:
        main.__spec__ = None
        del main.__file__
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(main, key, value)


def search(config: ConfigLike, objective: Optional[Objective] = None, *,
           name: Optional[str] = None, workers: Optional[int] = None,
           resume: bool = False, callbacks: Any = (),
           progress: Optional[Callable[[dict[str, Any]], None]] = None) -> Any:
    """Run the search ``config`` describes and return its :class:`~evolution.loop.RunSummary`.

    ``config``: a :class:`Config`, a dict, a YAML path, or a run directory (which is then
    continued, as ``evonas resume``). ``objective``: what scores a genome, in place of the
    built-in trainer: a function ``f(genome)`` or ``f(genome, settings)`` returning a number or
    a dict of metrics, or a ``"module:function"`` path. A callable may be a lambda or a closure;
    it is sent to every worker (an :class:`~evolution.evaluator.EvaluatorError` says what it
    captured when it cannot be). ``callbacks``: objects or functions called per result and per
    generation / window (see :mod:`evolution.callbacks`). ``resume``: continue the run
    directory ``runs_dir/name`` when it exists. Other arguments as :func:`evolution.loop.run`.
    """
    from evolution.callbacks import as_progress
    from evolution.loop import resume as resume_run, run

    target = Path(config) if isinstance(config, (str, os.PathLike)) else None
    is_run_dir = target is not None and target.is_dir() and (target / CONFIG).exists()
    with ExitStack() as stack:
        stack.enter_context(no_main_reimport())
        if objective is not None and not isinstance(objective, str):
            path = None
            if is_run_dir:  # ship under the name the run was started with
                from evolution.journal import frozen_config

                path = (frozen_config(target).get("evaluation") or {}).get("evaluator")
            stack.enter_context(shipping(objective, path))
        on_event = as_progress(callbacks, progress)
        if is_run_dir:
            return resume_run(target, workers=workers, progress=on_event)
        cfg = as_config(config, objective)
        return run(cfg, name=name, workers=workers, progress=on_event, resume=resume)
