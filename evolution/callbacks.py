"""Callbacks: your code called as the search goes, for logging (TensorBoard, MLflow, a
progress bar) or for stopping by hand.

A callback is a function, called with every event the run journals (a dict with ``"event"``:
``start``, ``result``, ``generation`` / ``window``, ``final_training``), or an object with any
of the methods below; :func:`as_progress` dispatches by event name through :data:`HOOKS`.
Results carry the run's counts and ``best`` so far (the first objective's best value).
Callbacks run in the run's own process, after the event is journalled; an exception in one
stops the run (it can be resumed), so a logging callback should not raise.

TensorBoard (``pip install tensorboard``; torch ships the writer)::

    from torch.utils.tensorboard import SummaryWriter

    class TensorBoard(evonas.Callback):
        def __init__(self, logdir):
            self.writer = SummaryWriter(logdir)

        def on_result(self, event):
            if event["status"] == "ok":
                self.writer.add_scalar("value", event["values"][0], event["index"])
            self.writer.add_scalar("best", event["best"] or float("nan"), event["index"])

        def on_window(self, event):  # a generation (genetic, nsga) or window (aging, random)
            step = event.get("generation", event.get("evaluations"))
        self.writer.add_scalar("window best", event["best"], step)
            self.writer.flush()

    evonas.search("digits.yaml", callbacks=[TensorBoard("runs/tb")])

MLflow (``pip install mlflow``)::

    import mlflow

    with mlflow.start_run():
        evonas.search(config, callbacks=[lambda e: e["event"] == "result" and e["status"] == "ok"
                                         and mlflow.log_metric("value", e["values"][0],
                                                               step=e["index"])])
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

Progress = Callable[[dict[str, Any]], None]


class Callback:
    """Override what you need; each receives the journalled event (do not change it)."""

    def on_start(self, event: dict[str, Any]) -> None:
        """The run started (or resumed): ``run_dir``, ``budget``, ``workers``, ``done``."""

    def on_result(self, event: dict[str, Any]) -> None:
        """One evaluation applied: ``index``, ``status``, ``values`` (ok), ``metrics``,
        ``genome``, ``key``, ``cached``, plus the run's counts and ``best`` so far."""

    def on_rung(self, event: dict[str, Any]) -> None:
        """Multi-fidelity: a candidate was promoted at a rung (``index``, ``rung`` epochs,
        ``values`` there, ``curve``, ``message``); a pruned one arrives as a result."""

    def on_window(self, event: dict[str, Any]) -> None:
        """A generation (``event["event"] == "generation"``) or window ended: its values,
        ``failures`` and ``infeasible`` since the previous one (and the front's size and
        hypervolume with several objectives)."""

    def on_final_training(self, event: dict[str, Any]) -> None:
        """The best genome is being retrained (built-in trainer only)."""


HOOKS = {"start": "on_start", "result": "on_result", "rung": "on_rung",
         "generation": "on_window", "window": "on_window", "final_training": "on_final_training"}
"""Event name -> the :class:`Callback` method that receives it."""


def as_progress(callbacks: Any = (), progress: Optional[Progress] = None) -> Optional[Progress]:
    """One progress function calling ``progress`` and every callback (a :class:`Callback`
    or any object with some of its methods, or a function taking every event)."""
    if callbacks is None or callable(callbacks) or not isinstance(callbacks, Iterable):
        callbacks = [] if callbacks is None else [callbacks]
    handlers = ([progress] if progress else []) + list(callbacks)
    if not handlers:
        return None

    def dispatch(event: dict[str, Any]) -> None:
        hook = HOOKS.get(event.get("event", ""))
        for handler in handlers:
            method = getattr(handler, hook, None) if hook else None
            if method is not None:
                method(event)
            elif callable(handler) and not isinstance(handler, Callback):
                handler(event)
    return dispatch
