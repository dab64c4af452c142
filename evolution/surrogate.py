"""A cheap model of the landscape, fitted on every result so far, that ranks candidate children.

Features per encoding (a registry: a new encoding adds one function): a choice genome is one-hot
per position, a Genetic-CNN genome its connection bits, a cell genome one-hot ops and input
indices per block of both cells. The model is scikit-learn's ``ExtraTreesRegressor``; a
candidate scores its trees' mean plus half their spread (optimism where the trees disagree).

The model is a pure function of the results so far and the run seed: it is fitted on the first
``m(n)`` results (in the order they were trained), where ``m(n)`` is the largest refit point not
above ``n`` (every result up to :data:`STEP_UNTIL`, then every :data:`GROWTH` x more), with a
seed derived from (run seed, ``m``); beyond :data:`ROWS` results each tree learns from
:data:`ROWS` of them drawn at random. So a resumed run, which rebuilds it from its journal,
proposes what an uninterrupted one proposes, and refits are rare and bounded in cost once
results are many (the engine's overhead per evaluation stays small). Fitting time is logged and
kept in :attr:`Surrogate.fit_seconds`.
"""
from __future__ import annotations

import hashlib
import logging
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np

from genome.registry import Registry

log = logging.getLogger(__name__)

MIN_RESULTS = 8
"""No model below this many ok results: proposals are the strategy's own."""
STEP_UNTIL = 100
"""Refit after every new result up to this many."""
GROWTH = 1.25
"""Beyond :data:`STEP_UNTIL`, refit when the results have grown by this factor."""
TREES = 24
ROWS = 512
"""Beyond this many results each tree learns from this many drawn from all of them (with
replacement, as a random forest's trees do), so that a refit's cost stops growing with the run;
up to it, every tree learns from every result."""
OPTIMISM = 0.5
"""Score = mean + OPTIMISM x standard deviation over the trees."""

Observation = tuple[dict[str, Any], float, float]
"""A trained result the model learns from: the genome dict, the first objective turned so that
larger is better, and how many rungs of a multi-fidelity rule it fell short of the top (0 for a
finished result; a pruned one's value is its value at the rung where it stopped)."""

Features = Callable[[Any], list[float]]
FEATURES = Registry("surrogate feature map")
"""``search.encoding`` -> ``features(space) -> (genome -> list of floats)``: the feature map
of one space (fixed length), prepared once per run (a proposal maps dozens of genomes)."""


def _choice(space: Any) -> Features:
    """One-hot per categorical dimension, the position (0..1, on its scale) per range, -1 for
    a range a condition switched off (a switched-off categorical is all zeros)."""
    from genome.params import Categorical

    layout: list[tuple[int, Any, bool]] = []  # per dimension: first column, dim, categorical
    width = 0
    for dim in space.space.dims:
        categorical = isinstance(dim, Categorical)
        layout.append((width, dim, categorical))
        width += len(dim.values) if categorical else 1

    def features(genome: Any) -> list[float]:
        out = [0.0] * width
        for value, (column, dim, categorical) in zip(genome.values, layout):
            if categorical:
                at = dim.index(value)
                if at is not None:
                    out[column + at] = 1.0
            else:
                out[column] = -1.0 if value is None else dim.position(value)
        return out
    return features


def _binary(space: Any) -> Features:
    return lambda genome: [float(b) for stage in genome.bits for b in stage]


def _cell(space: Any) -> Features:
    ops = list(space.ops)

    def features(genome: Any) -> list[float]:
        out: list[float] = []
        for blocks in (genome.normal, genome.reduction):
            for in_a, op_a, in_b, op_b in blocks:
                for state, op in ((in_a, op_a), (in_b, op_b)):
                    out.append(float(state))
                    out.extend(1.0 if op == o else 0.0 for o in ops)
        return out
    return features


FEATURES.add("choice", _choice)
FEATURES.add("binary", _binary)
FEATURES.add("cell", _cell)


def targets(observations: Sequence[Observation]) -> np.ndarray:
    """What the model regresses: the value, less (rungs short) x the values' range, so that a
    pruned candidate ranks below every finished one and below those pruned at a higher rung, as
    strategies rank them (see :mod:`evolution.fidelity`); without pruned results, the values.
    Learning from the pruned candidates gives the model most of a multi-fidelity run's results
    (with ``eta`` 3, eight in nine candidates stop at a rung)."""
    values = np.array([v for _, v, _ in observations], dtype=np.float64)
    short = np.array([s for _, _, s in observations], dtype=np.float64)
    spread = float(values.max() - values.min()) if len(values) else 0.0
    return values - short * (spread or 1.0)


def refit_point(n: int) -> int:
    """The number of results the model in force at ``n`` results was fitted on (0: none)."""
    if n < MIN_RESULTS:
        return 0
    if n <= STEP_UNTIL:
        return n
    point = STEP_UNTIL
    while True:
        following = max(point + 1, int(point * GROWTH))
        if following > n:
            return point
        point = following


class Surrogate:
    """The model for one run: ``model(observations)`` (``None`` before enough results),
    ``score(model, genomes)``."""

    def __init__(self, encoding: Any, space: Any, seed: int):
        self.seed = seed
        prepare = FEATURES.get(encoding.name)
        self.features: Optional[Features] = prepare(space) if prepare is not None else None
        if self.features is None:
            log.warning("no surrogate features for encoding %r; proposals are not ranked",
                        encoding.name)
        self._rows: list[list[float]] = []  # features of the observations so far (a memo)
        self._model: Optional[tuple[int, Fitted]] = None
        self.fits = 0
        self.fit_seconds = 0.0

    def model(self, observations: Sequence[Observation]) -> Optional["Fitted"]:
        """The fitted model in force with these results (in training order: a list that only
        grows), or ``None``."""
        if self.features is None:
            return None
        m = refit_point(len(observations))
        if m == 0:
            return None
        if self._model is not None and self._model[0] == m:
            return self._model[1]
        from sklearn.ensemble import ExtraTreesRegressor

        started = time.perf_counter()
        from genome import genome_from_dict

        for genome, _, _ in observations[len(self._rows):m]:
            self._rows.append(self.features(genome_from_dict(genome)))
        x = np.array(self._rows[:m], dtype=np.float32)
        y = targets(observations[:m])
        digest = hashlib.sha256(f"evonas-surrogate:{self.seed}:{m}".encode()).digest()
        sampled = m > ROWS
        forest = ExtraTreesRegressor(n_estimators=TREES, min_samples_leaf=1, n_jobs=1,
                                     bootstrap=sampled, max_samples=ROWS if sampled else None,
                                     random_state=int.from_bytes(digest[:4], "big"))
        forest.fit(x, y)
        fitted = Fitted(forest)
        self._model = (m, fitted)
        seconds = time.perf_counter() - started
        self.fits += 1
        self.fit_seconds += seconds
        log.debug("surrogate fitted on %d results in %.1f ms", m, 1000 * seconds)
        return fitted

    def score(self, model: "Fitted", genomes: Sequence[Any]) -> list[float]:
        """Mean + :data:`OPTIMISM` x spread of the trees' predictions, per genome."""
        x = np.array([self.features(g) for g in genomes], dtype=np.float32)
        trees = np.stack([leaves[tree.apply(x)] for tree, leaves in model.trees])
        return list(trees.mean(axis=0) + OPTIMISM * trees.std(axis=0))


class Fitted:
    """A fitted forest as scoring reads it: each tree's structure and its leaves' values (what
    ``predict`` computes per tree, without its checks and threads: a proposal scores a dozen
    candidates, where those would cost more than the trees)."""

    def __init__(self, forest: Any):
        self.forest = forest
        self.trees = [(t.tree_, t.tree_.value[:, 0, 0].copy()) for t in forest.estimators_]
