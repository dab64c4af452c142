"""Strict JSON for every file evonas writes: NaN and infinities have no JSON form, so they are
written as ``null``. In the lowest layer because ``training`` (export folders) and
``evolution`` (the run directory) both write such files."""
from __future__ import annotations

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
