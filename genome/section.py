"""The base of every config section: unknown keys are errors, values are frozen.

It lives in the lowest layer so that encodings (here), strategies and the run config
(``evolution``) declare their sections the same way; ``evolution.config`` assembles them.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A validated, frozen part of the config. Subclasses declare typed fields with defaults;
    a ``model_validator`` raises ``ValueError`` with a message naming the key. NaN and
    infinities are refused in every float field (``lr: .inf`` is an error, not a run)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def _private(self, name: str) -> Any:
        """A private attribute (``PrivateAttr``) read directly: pydantic's own lookup of one
        takes microseconds (a failed attribute lookup on its descriptor), too slow for what
        operators read per call, such as a space's dimensions."""
        return self.__pydantic_private__[name]
