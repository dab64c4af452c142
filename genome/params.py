"""The dimensions of a choice space: categorical values, integer and float ranges (linear or
log scale), each optionally conditional on earlier dimensions.

A space is an ordered tuple of :class:`Dim`; a genome holds one value per dimension, ``None``
where the dimension is inactive (its ``when`` condition does not hold). Dimensions are built
from their config form by :func:`make_dim`, which dispatches on the form's key through
:data:`KINDS`::

    [conv3x3, skip, pool]                   # categorical (a plain list)
    {values: [3, 5], when: {op: conv3x3}}   # categorical, only when op is conv3x3
    {int: [1, 8]}            {log_int: [8, 512]}
    {uniform: [0.0, 0.5]}    {log_uniform: [1e-4, 0.3]}

Float values are rounded to :data:`FLOAT_DIGITS` significant digits, so a value is its own
canonical form and survives JSON exactly. Every draw uses the ``random.Random`` passed in.
"""
from __future__ import annotations

import functools
import json
import math
import random
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping, Optional, Sequence

from genome.errors import GenomeError

Value = Any  # str | int | float | bool | None (inactive)
FLOAT_DIGITS = 6
"""Significant digits a float dimension keeps: 0.0123457, not 0.012345678901234."""
NEIGHBOUR_SCALE = 0.1
"""A numeric mutation moves by a normal step of this fraction of the (log) range."""


def _identity(value: Value) -> Any:
    """What makes a value itself, as JSON sees it (``1``, ``1.0`` and ``True`` differ): the
    type and value of a string, integer, boolean or ``None`` (the common cases, without encoding
    them), else the JSON text. Usable as a dictionary key."""
    if value is None or type(value) in (str, int, bool):
        return type(value), value
    return json.dumps(value)


def _same(a: Value, b: Value) -> bool:
    """Equal as JSON values (``1``, ``1.0`` and ``True`` differ)."""
    return _identity(a) == _identity(b)


@dataclass(frozen=True)
class Dim:
    """One dimension. ``when``: ``((name, (allowed values...)), ...)``, all must hold."""

    name: str
    when: tuple[tuple[str, tuple[Value, ...]], ...] = ()

    kind: ClassVar[str] = ""

    def sample(self, rng: random.Random) -> Value:
        raise NotImplementedError

    def neighbour(self, value: Value, rng: random.Random) -> Value:
        """A value different from ``value`` (``value`` itself when there is none)."""
        raise NotImplementedError

    def contains(self, value: Value) -> bool:
        raise NotImplementedError

    @property
    def variable(self) -> bool:
        """Whether the dimension has more than one value."""
        return True

    def spec(self) -> Any:
        """The config form (what :func:`make_dim` reads back)."""
        raise NotImplementedError

    def describe(self) -> str:
        """Short text for reports: ``int 1..8``, ``log_uniform 0.001..0.3``, ``a|b|c``."""
        raise NotImplementedError

    def active(self, named: Mapping[str, Value]) -> bool:
        return not self.when or all(any(_same(named.get(n), v) for v in allowed)
                                    for n, allowed in self.when)


@dataclass(frozen=True)
class Categorical(Dim):
    values: tuple[Value, ...] = ()

    kind: ClassVar[str] = "values"

    def sample(self, rng: random.Random) -> Value:
        return rng.choice(list(self.values))

    def neighbour(self, value: Value, rng: random.Random) -> Value:
        at = self.index(value)
        others = [v for i, v in enumerate(self.values) if i != at]
        return rng.choice(others) if others else value

    def contains(self, value: Value) -> bool:
        return self.index(value) is not None

    def index(self, value: Value) -> Optional[int]:
        """The position of ``value`` among the values (compared as :func:`_same` does),
        ``None`` if it is not one of them."""
        return self._positions.get(_identity(value))

    @functools.cached_property
    def _positions(self) -> dict[Any, int]:
        positions: dict[Any, int] = {}
        for i, v in enumerate(self.values):
            positions.setdefault(_identity(v), i)
        return positions

    @property
    def variable(self) -> bool:
        return len(self.values) > 1

    def spec(self) -> Any:
        return list(self.values)

    def describe(self) -> str:
        return "|".join(json.dumps(v) if not isinstance(v, str) else v for v in self.values)


@dataclass(frozen=True)
class Range(Dim):
    """A numeric range ``[low, high]``, both included; ``log``: drawn and moved in log space."""

    low: float = 0.0
    high: float = 1.0
    log: bool = False

    integer: ClassVar[bool] = False

    def _to(self, x: float) -> float:
        return math.log(x) if self.log else x

    def position(self, value: float) -> float:
        """Where ``value`` lies in the range, 0 (low) to 1 (high), on its (log) scale."""
        span = self._to(self.high) - self._to(self.low)
        return (self._to(value) - self._to(self.low)) / span if span else 0.0

    def _from(self, u: float) -> Value:
        x = math.exp(u) if self.log else u
        if self.integer:
            return int(min(self.high, max(self.low, round(x))))
        x = min(self.high, max(self.low, x))
        return float(f"{x:.{FLOAT_DIGITS}g}")

    def sample(self, rng: random.Random) -> Value:
        lo, hi = self._to(self.low), self._to(self.high)
        if self.integer and not self.log:
            return rng.randint(int(self.low), int(self.high))
        if self.integer:  # log-uniform over the integers: widen by half a step each side
            lo, hi = math.log(self.low - 0.4999), math.log(self.high + 0.4999)
        return self._from(rng.uniform(lo, hi))

    def neighbour(self, value: Value, rng: random.Random) -> Value:
        if not self.variable:
            return value
        if self.integer and self.high - self.low < 10:
            return rng.choice([v for v in range(int(self.low), int(self.high) + 1)
                               if v != value])
        sigma = NEIGHBOUR_SCALE * (self._to(self.high) - self._to(self.low))
        for _ in range(20):
            moved = self._from(self._to(value) + rng.gauss(0.0, sigma))
            if not _same(moved, value):
                return moved
        return self.sample(rng) if not _same(value, self.low) else self._from(self._to(self.high))

    def contains(self, value: Value) -> bool:
        kind = int if self.integer else float
        return (type(value) is kind and self.low <= value <= self.high
                and (self.integer or _same(value, self._from(self._to(value)))))

    @property
    def variable(self) -> bool:
        return self.high > self.low

    def spec(self) -> Any:
        return {self.kind: [self.low, self.high]}

    def describe(self) -> str:
        return f"{self.kind} {self.low:g}..{self.high:g}"


@dataclass(frozen=True)
class IntRange(Range):
    integer: ClassVar[bool] = True
    kind: ClassVar[str] = "int"


@dataclass(frozen=True)
class LogIntRange(IntRange):
    log: bool = True
    kind: ClassVar[str] = "log_int"


@dataclass(frozen=True)
class FloatRange(Range):
    kind: ClassVar[str] = "uniform"


@dataclass(frozen=True)
class LogFloatRange(FloatRange):
    log: bool = True
    kind: ClassVar[str] = "log_uniform"


def _scalars(name: str, values: Any) -> tuple[Value, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise GenomeError(f"{name}: a non-empty list of values, got {values!r}")
    if any(not isinstance(v, (str, int, float, bool)) for v in values):
        raise GenomeError(f"{name}: values must be strings, numbers or booleans, got {values!r}")
    if len(set(map(json.dumps, values))) != len(values):
        raise GenomeError(f"{name} lists a value twice: {values!r}")
    return tuple(values)


def _categorical(name: str, arg: Any, when: tuple) -> Dim:
    return Categorical(name, when, _scalars(name, arg))


def _range(cls: type[Range]) -> Callable[[str, Any, tuple], Dim]:
    def build(name: str, arg: Any, when: tuple) -> Dim:
        numbers = (int,) if cls.integer else (int, float)
        if (not isinstance(arg, Sequence) or len(arg) != 2
                or any(isinstance(x, bool) or not isinstance(x, numbers) for x in arg)):
            kind = "integers" if cls.integer else "numbers"
            raise GenomeError(f"{name}: {{{cls.kind}: [low, high]}} takes two {kind}, "
                              f"got {arg!r}")
        low, high = arg
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise GenomeError(f"{name}: {cls.kind} needs finite low <= high, got {list(arg)}")
        if cls.log and low <= 0:
            raise GenomeError(f"{name}: {cls.kind} needs low > 0 (log scale), got {low!r}")
        cast = int if cls.integer else float
        return cls(name, when, cast(low), cast(high))
    return build


KINDS: dict[str, Callable[[str, Any, tuple], Dim]] = {
    "values": _categorical,
    "int": _range(IntRange),
    "log_int": _range(LogIntRange),
    "uniform": _range(FloatRange),
    "log_uniform": _range(LogFloatRange),
}
"""A dimension's config key -> its builder ``(name, argument, when) -> Dim``."""


def make_dim(name: str, spec: Any, earlier: Sequence[Dim] = ()) -> Dim:
    """The dimension ``name`` of config form ``spec``; ``when`` may only name ``earlier``
    dimensions (and values they can take)."""
    if isinstance(spec, list):
        spec = {"values": spec}
    if not isinstance(spec, Mapping):
        raise GenomeError(f"{name}: a list of values or one of {{{', '.join(KINDS)}: ...}}, "
                          f"got {spec!r}")
    spec = dict(spec)
    raw_when = spec.pop("when", {})
    kinds = [k for k in spec if k in KINDS]
    unknown = [k for k in spec if k not in KINDS]
    if unknown or len(kinds) != 1:
        raise GenomeError(f"{name}: give exactly one of {', '.join(KINDS)} (and optionally "
                          f"when), got keys {list(spec) + (['when'] if raw_when else [])}")
    if not isinstance(raw_when, Mapping):
        raise GenomeError(f"{name}: when is a mapping {{other: value or [values]}}, "
                          f"got {raw_when!r}")
    by_name = {d.name: d for d in earlier}
    when = []
    for other, allowed in raw_when.items():
        if other not in by_name:
            raise GenomeError(f"{name}: when names {other!r}, which is not a dimension defined "
                              f"before it ({', '.join(by_name) or 'none'})")
        allowed = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        bad = [v for v in allowed if not by_name[other].contains(v)]
        if bad or not allowed:
            raise GenomeError(f"{name}: when {other}: {bad or allowed!r} is not a value "
                              f"{other} can take ({by_name[other].describe()})")
        when.append((other, allowed))
    return KINDS[kinds[0]](name, spec[kinds[0]], tuple(when))


def dim_spec(dim: Dim) -> Any:
    """The config form of ``dim``, ``when`` included (the inverse of :func:`make_dim`)."""
    spec = dim.spec()
    if not dim.when:
        return spec
    spec = spec if isinstance(spec, dict) else {"values": spec}
    return {**spec, "when": {n: list(v) if len(v) > 1 else v[0] for n, v in dim.when}}


@dataclass(frozen=True)
class Space:
    """An ordered tuple of dimensions; ``named`` is false for a positional space (the
    ``choices`` list form, whose dimensions are named ``0``, ``1``, ...)."""

    dims: tuple[Dim, ...]
    named: bool = True

    @functools.cached_property
    def conditional(self) -> bool:
        """Whether some dimension exists only under a condition."""
        return any(dim.when for dim in self.dims)

    @functools.cached_property
    def varying(self) -> tuple[int, ...]:
        """The positions of the dimensions with more than one value."""
        return tuple(i for i, dim in enumerate(self.dims) if dim.variable)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "Space":
        """Build from ``{name: spec}`` (config order); errors are :class:`GenomeError`."""
        if not isinstance(params, Mapping) or not params:
            raise GenomeError(f"params is a non-empty mapping {{name: spec}}, got {params!r}")
        dims: list[Dim] = []
        for name, spec in params.items():
            dims.append(make_dim(str(name), spec, dims))
        return cls(tuple(dims))

    @classmethod
    def from_choices(cls, choices: Sequence[Sequence[Value]]) -> "Space":
        """The positional form: a list of value lists, all categorical and unconditional."""
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence) or not choices:
            raise GenomeError(f"a choice space is a non-empty list of positions, each a list "
                              f"of values; got {choices!r}")
        return cls(tuple(Categorical(str(i), (), _scalars(f"position {i}", values))
                         for i, values in enumerate(choices)), named=False)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dims]

    def label(self, i: int) -> str:
        return repr(self.dims[i].name) if self.named else f"position {i}"

    def repair(self, values: Sequence[Value], rng: random.Random) -> tuple[Value, ...]:
        """``values`` with every inactive dimension ``None`` and every active one that is
        ``None`` drawn (in order, so conditions see the repaired earlier values)."""
        if not self.conditional:
            return tuple(dim.sample(rng) if value is None else value
                         for dim, value in zip(self.dims, values))
        named: dict[str, Value] = {}
        out = []
        for dim, value in zip(self.dims, values):
            if not dim.active(named):
                value = None
            elif value is None:
                value = dim.sample(rng)
            named[dim.name] = value
            out.append(value)
        return tuple(out)

    def random(self, rng: random.Random) -> tuple[Value, ...]:
        return self.repair([None] * len(self.dims), rng)

    def check(self, values: Sequence[Value]) -> None:
        """A :class:`GenomeError` unless ``values`` fit (length, ranges, conditions)."""
        if len(values) != len(self.dims):
            raise GenomeError(f"{len(values)} values for a space of {len(self.dims)} "
                              f"dimensions")
        named: dict[str, Value] = {}
        for i, (dim, value) in enumerate(zip(self.dims, values)):
            if not dim.active(named):
                if value is not None:
                    raise GenomeError(f"{self.label(i)} is {value!r} but inactive (it exists "
                                      f"only when {dict(dim.when)}); it must be null")
            elif not dim.contains(value):
                raise GenomeError(f"{self.label(i)} is {value!r}; allowed: {dim.describe()}")
            named[dim.name] = value
        return None

    def as_dict(self, values: Sequence[Value]) -> dict[str, Value]:
        """``{name: value}`` of the active dimensions."""
        return {d.name: v for d, v in zip(self.dims, values) if v is not None}

    def describe(self) -> list[str]:
        """One line per dimension, for reports."""
        return [f"{d.name}: {d.describe()}" + (f" (when {dict(d.when)})" if d.when else "")
                for d in self.dims]


def as_space(space: Any) -> Space:
    """A :class:`Space` from itself or from the positional ``choices`` list form."""
    return space if isinstance(space, Space) else Space.from_choices(space)

