"""Strict JSON for every file evonas writes: NaN and infinities have no JSON form, so they are
written as ``null``. In the lowest layer because ``training`` (export folders) and
``evolution`` (the run directory) both write such files."""
from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by ``None``, inside dicts, lists and tuples
    too (tuples become lists)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    """Strict JSON text of ``value`` (NaN and infinities as ``null``). Compact unless
    ``indent`` is given; the common case (nothing to replace) runs in the C encoder alone."""
    separators = (",", ":") if indent is None else None
    try:
        return json.dumps(value, allow_nan=False, indent=indent, separators=separators)
    except ValueError:  # a NaN or infinity somewhere: replace, then encode
        return json.dumps(finite(value), allow_nan=False, indent=indent, separators=separators)
