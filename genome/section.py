"""The base of every config section: unknown keys are errors, values are frozen.

It lives in the lowest layer so that encodings (here), strategies and the run config
(``evolution``) declare their sections the same way; ``evolution.config`` assembles them.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A validated, frozen part of the config. Subclasses declare typed fields with defaults;
    a ``model_validator`` raises ``ValueError`` with a message naming the key. NaN and
    infinities are refused in every float field (``lr: .inf`` is an error, not a run)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
