"""How every strategy's children become proposals: no repeats, and an optional surrogate.

:func:`~evolution.strategies.base.make_toolbox` decorates the toolbox's ``random_genome``,
``mutate_one`` and ``mutate`` (DEAP's ``Toolbox.decorate``) with one :class:`Proposer`, so every
strategy and encoding gets both without knowing of them:

* **No repeats** (``proposal.repeats: false``, the default). A child whose canonical key was
  already evaluated, is in flight, or was proposed in the same batch is mutated again
  (``mutate_one``, accumulating, at most ``proposal.attempts`` times); a random genome is drawn
  again. If every attempt lands on a known architecture (the space, or the neighbourhood, is
  exhausted) the last one is proposed anyway: the run loop answers it from its cache, free, and
  ``proposal.max_asks`` ends a run that only repeats.
* **Surrogate** (``proposal.surrogate: true``). Once enough results exist, every proposal draws
  ``proposal.candidates`` distinct unseen children from the same operator call and proposes the
  one a model fitted on every result so far ranks best (:mod:`evolution.surrogate`); with
  probability ``proposal.exploration`` a uniformly drawn candidate instead.

A strategy driven without a run loop (no history attached) proposes unfiltered. All randomness
comes from the strategy's ``rng``; the model is a pure function of the results
so far and the run seed, rebuilt from the run loop's cache (never pickled), so proposals are
reproducible and replay exactly on resume.
"""
from __future__ import annotations

import functools
import logging
import random
from typing import Any, Callable, Optional, Protocol

log = logging.getLogger(__name__)


class History(Protocol):
    """What the run loop tells a proposer: which canonical keys are evaluated or in flight, and
    the trained results so far, finished or pruned, in the order they were trained (see
    :data:`evolution.surrogate.Observation`)."""

    def known(self, key: str) -> bool: ...

    def observations(self) -> list[tuple[dict[str, Any], float, float]]: ...


class Proposer:
    """No-repeat and surrogate filtering of one strategy's operator outputs.

    ``pending`` holds the keys proposed but not yet handed to the run loop (a generation bred
    at once); the loop calls :meth:`handed` when it records an ask, after which it knows the
    key itself."""

    def __init__(self, encoding: Any, space: Any, rng: random.Random):
        self.encoding, self.space, self.rng = encoding, space, rng
        self.history: Optional[History] = None  # without a run loop: nothing is filtered
        self.repeats = False
        self.attempts = 50
        self.surrogate: Optional[Any] = None
        self.candidates = 1
        self.exploration = 0.0
        self.pending: set[str] = set()

    def configure(self, proposal: Any, seed: int, history: Optional[History]) -> None:
        """Apply the config's ``proposal`` section and attach the run loop's history."""
        from evolution.surrogate import Surrogate

        self.repeats, self.attempts = proposal.repeats, proposal.attempts
        if history is not None:
            self.history = history
        if proposal.surrogate:
            self.surrogate = Surrogate(self.encoding, self.space, seed)
            self.candidates, self.exploration = proposal.candidates, proposal.exploration

    def handed(self, key: str) -> None:
        self.pending.discard(key)

    def known(self, key: str) -> bool:
        return self.history is not None and (key in self.pending or self.history.known(key))

    def observations(self) -> list[tuple[dict[str, Any], float, float]]:
        return self.history.observations() if self.history is not None else []

    # ------------------------------------------------------------------------ decoration
    def decorator(self, draw_again: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """A ``Toolbox.decorate`` decorator: the operator's output made an unseen proposal.
        ``draw_again``: repeat the operator itself (random genomes) instead of mutating."""
        def decorate(operator: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(operator)
            def proposed(*args: Any, **kwargs: Any) -> Any:
                return self.propose(lambda: operator(*args, **kwargs), draw_again)
            return proposed
        return decorate

    def propose(self, draw: Callable[[], Any], draw_again: bool) -> Any:
        """One proposal from ``draw`` (an operator call), claimed as pending."""
        model = self.surrogate.model(self.observations()) if self.surrogate else None
        if model is None:
            child = self.fresh(draw(), draw if draw_again else None)
        else:
            child = self._ranked(draw, draw_again, model)
        if self.history is not None:
            self.pending.add(child.key())
        return child

    def fresh(self, child: Any, redraw: Optional[Callable[[], Any]] = None,
              exclude: frozenset[str] = frozenset()) -> Any:
        """``child``, or (no repeats) an unseen variation of it: mutated again (or drawn
        again), at most ``attempts`` times; the last try when all are known."""
        if self.repeats or self.history is None:
            return child
        tries = 0
        while tries < self.attempts and (child.key() in exclude or self.known(child.key())):
            child = redraw() if redraw else self.encoding.mutate_one(child, self.space, self.rng)
            tries += 1
        return child

    def _ranked(self, draw: Callable[[], Any], draw_again: bool, model: Any) -> Any:
        """The surrogate's pick among up to ``candidates`` distinct unseen children."""
        from genome.rng import lend

        children: dict[str, Any] = {}
        with lend(self.rng):  # once for the batch: the operators' own lends then cost nothing
            for _ in range(self.candidates):
                first = draw()
                child = self.fresh(first, draw if draw_again else None, frozenset(children))
                key = child.key()
                if key in children or self.known(key):
                    if not children:
                        return child  # exhausted: the repeat (a free cache hit)
                    break
                children[key] = child
        pool = list(children.values())
        if len(pool) > 1 and self.rng.random() < self.exploration:
            return self.rng.choice(pool)
        scores = self.surrogate.score(model, pool)
        return pool[max(range(len(pool)), key=lambda i: (scores[i], -i))]
