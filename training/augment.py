"""Data augmentation for image batches: random crop with padding, horizontal flip, cutout.

Each is one batched tensor operation on the batch's own device (no per-example Python loop),
drawing from a :class:`torch.Generator` on that device that the trainer seeds from the
evaluation seed, so the same (settings, seed) gives the same augmented batches. An
augmentation is a function ``(x, amount, generator) -> x`` registered with
:func:`register_augmentation` under the evaluation key that turns it on; :class:`Augment`
applies the enabled ones in registration order. The defaults depend on the data set (a digit
flipped is another digit, a 8x8 image has no border to spare): see ``recipe`` of each data set
in :mod:`training.data`. Nothing here runs when every amount is off, so results without
augmentation are exactly those of a trainer that has none.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import torch
import torch.nn.functional as F

from genome.errors import EvonasError
from genome.registry import Registry

Augmentation = Callable[[torch.Tensor, Any, torch.Generator], torch.Tensor]


class AugmentError(EvonasError):
    """An unknown augmentation."""


AUGMENTATIONS = Registry("augmentation", AugmentError)
"""Evaluation key (``random_crop``, ``flip``, ``cutout``) -> ``fn(x, amount, generator)``."""


def register_augmentation(key: str):
    def add(fn: Augmentation) -> Augmentation:
        AUGMENTATIONS.add(key, fn)
        return fn
    return add


@register_augmentation("random_crop")
def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Pad each image of ``x`` (N, C, H, W) by ``padding`` zeros on every side and cut an
    H x W window at a random offset per image (zeros are the mean of standardised data)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator, device=x.device)
    rows = (dy + torch.arange(h, device=x.device))[:, :, None]     # (N, H, 1)
    cols = (dx + torch.arange(w, device=x.device))[:, None, :]     # (N, 1, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


@register_augmentation("flip")
def flip(x: torch.Tensor, on: bool, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    mask = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(3), x)


@register_augmentation("cutout")
def cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square per image, centred at a random pixel and clipped at
    the border (DeVries & Taylor, 2017)."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n, 1, 1, 1), generator=generator, device=x.device)
    cx = torch.randint(0, w, (n, 1, 1, 1), generator=generator, device=x.device)
    ys = torch.arange(h, device=x.device)[None, None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, None, :]
    half = size // 2
    inside = ((ys >= cy - half) & (ys < cy - half + size)
              & (xs >= cx - half) & (xs < cx - half + size))
    return x.masked_fill(inside, 0.0)


@dataclass(frozen=True)
class Augment:
    """The enabled augmentations with their amounts, applied in registration order."""

    steps: tuple[tuple[str, Any], ...]

    @classmethod
    def from_settings(cls, evaluation: Mapping[str, Any],
                      defaults: Optional[Mapping[str, Any]] = None) -> "Augment":
        """From the evaluation settings; a key that is absent or ``None`` takes the data set's
        default (``defaults``), and a false or zero amount is off."""
        defaults = defaults or {}
        steps = []
        for key in AUGMENTATIONS:
            amount = evaluation.get(key)
            if amount is None:
                amount = defaults.get(key)
            if amount:
                steps.append((key, amount))
        return cls(tuple(steps))

    def __bool__(self) -> bool:
        return bool(self.steps)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for key, amount in self.steps:
            x = AUGMENTATIONS[key](x, amount, generator)
        return x

    def describe(self) -> str:
        return ", ".join(f"{k} {v}" if v is not True else k for k, v in self.steps) or "none"


def augmentation_generator(seed: int, device: torch.device | str) -> torch.Generator:
    """The generator of an evaluation's augmentations: on ``device``, seeded from the
    evaluation ``seed`` (a stream apart from the batch order, which uses ``seed`` itself)."""
    return torch.Generator(device=device).manual_seed((seed * 0x9E3779B1 + 0x5EED) % 2**63)
