"""A training state as data: stop training after some epochs, continue it later, anywhere.

A state holds everything that makes the continuation the same training as an uninterrupted
one: the weights and buffers of the trained module (``state_dict``), the optimizer's state
(momentum buffers, Adam moments, step counts, param groups), the learning-rate schedule, the
gradient scaler (fp16), the generators of batch order and augmentation, torch's global RNG
(dropout, drop path) and, on a GPU, the device's RNG, with the epoch reached and that epoch's
training loss. On the CPU a training stopped at epoch ``e`` and resumed reaches bitwise the
weights of one that never stopped.

Format: safetensors bytes, never a pickle. Tensors are named ``model.<state_dict key>``,
``optimizer.state.<param index>.<name>`` and ``rng.<name>`` (``torch``, ``cuda``, ``batches``,
``augment``; uint8 tensors). Everything else is one JSON document in the safetensors metadata
under the key ``evonas``: ``format``, ``version``, ``epoch``, ``train_loss``, the
``settings`` the state is bound to (epochs, batch size, optimizer, schedule, seed, number of
training examples), the device type, the optimizer's param groups and non-tensor state, the
scheduler's and scaler's state. Reading uses ``safetensors.torch.load`` and ``json.loads``
only.
"""
from __future__ import annotations

import json
import logging
import struct
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import torch
from torch import nn

from genome.errors import EvonasError

log = logging.getLogger(__name__)

FORMAT = "evonas-training-state"
VERSION = 1
METADATA_KEY = "evonas"


class CheckpointError(EvonasError):
    """A training state that cannot be resumed (damaged, foreign, made for another model or
    other settings), or a stop epoch that a training cannot reach."""


@dataclass
class TrainingParts:
    """The stateful pieces of one training, as :func:`training.trainer.train` builds them."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Optional[Any]                  # an lr_scheduler, or None
    scaler: Optional[Any]                     # a GradScaler (fp16), or None
    batches: torch.Generator                  # batch order (on the CPU)
    augment: Optional[torch.Generator]        # augmentation (on the training device), or None
    device: torch.device
    settings: Mapping[str, Any]               # what the state is bound to (see module doc)


@dataclass(frozen=True)
class Header:
    """What a state says of itself, read without loading its tensors."""

    epoch: int
    train_loss: float
    settings: dict[str, Any]
    device: str
    version: int


def _cpu(t: torch.Tensor) -> torch.Tensor:
    """A copy on the CPU with its own contiguous storage (safetensors refuses shared storage)."""
    return t.detach().to("cpu", copy=True).contiguous()


def save(parts: TrainingParts, epoch: int, train_loss: float) -> bytes:
    """The state of ``parts`` after ``epoch`` epochs (``train_loss``: that epoch's mean loss)
    as safetensors bytes. Every tensor is copied; ``parts`` is not changed."""
    from safetensors.torch import save as save_tensors

    tensors = {f"model.{k}": _cpu(v) for k, v in parts.model.state_dict().items()}
    optimizer = parts.optimizer.state_dict()
    state: dict[str, dict[str, Any]] = {}
    for index, values in optimizer["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.state.{index}.{name}"] = _cpu(value)
            else:
                state.setdefault(str(index), {})[name] = value
    tensors["rng.torch"] = _cpu(torch.get_rng_state())
    tensors["rng.batches"] = _cpu(parts.batches.get_state())
    if parts.augment is not None:
        tensors["rng.augment"] = _cpu(parts.augment.get_state())
    if parts.device.type == "cuda":
        tensors["rng.cuda"] = _cpu(torch.cuda.get_rng_state(parts.device))
    doc = {"format": FORMAT, "version": VERSION, "epoch": int(epoch),
           "train_loss": float(train_loss), "settings": dict(parts.settings),
           "device": parts.device.type,
           "optimizer": {"param_groups": optimizer["param_groups"], "state": state},
           "scheduler": parts.scheduler.state_dict() if parts.scheduler is not None else None,
           "scaler": parts.scaler.state_dict() if parts.scaler is not None else None}
    return save_tensors(tensors, metadata={METADATA_KEY: json.dumps(doc)})


def _metadata(blob: Any) -> dict[str, Any]:
    """The JSON document of a state, checked for format and version."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise CheckpointError(f"a training state is bytes, got {type(blob).__name__}")
    blob = bytes(blob)
    try:
        (length,) = struct.unpack("<Q", blob[:8])
        if not 0 < length <= len(blob) - 8:
            raise ValueError(f"header of {length} bytes in {len(blob)} bytes")
        header = json.loads(blob[8:8 + length])
        doc = json.loads(header["__metadata__"][METADATA_KEY])
        if not isinstance(doc, dict):
            raise ValueError("its metadata is not a JSON object")
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"not an evonas training state ({len(blob)} bytes; "
                              f"{exc.__class__.__name__}: {exc}): expected safetensors bytes "
                              f"with '{METADATA_KEY}' metadata, as train(keep_state=...) makes "
                              f"them") from None
    if doc.get("format") != FORMAT:
        raise CheckpointError(f"not an evonas training state: format {doc.get('format')!r}, "
                              f"expected {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise CheckpointError(f"training state version {doc.get('version')!r} cannot be "
                              f"read by this evonas (it reads version {VERSION}); train again "
                              f"from the start")
    return doc


def header(blob: bytes) -> Header:
    """The epoch, loss, settings and device of a state, without loading its tensors; raises
    :class:`CheckpointError` for bytes that are not a state."""
    doc = _metadata(blob)
    try:
        return Header(int(doc["epoch"]), float(doc["train_loss"]), dict(doc["settings"]),
                      str(doc["device"]), int(doc["version"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"damaged training state: its metadata lacks {exc}") from None


def read(blob: bytes) -> tuple[Header, dict[str, Any], dict[str, torch.Tensor]]:
    """``(header, metadata, tensors)`` of a state (tensors on the CPU)."""
    from safetensors.torch import load as load_tensors

    head = header(blob)
    try:
        tensors = load_tensors(bytes(blob))
    except Exception as exc:  # safetensors raises its own error type for damaged bytes
        raise CheckpointError(f"damaged training state ({len(blob)} bytes): {exc}") from None
    return head, _metadata(blob), tensors


def _check_settings(saved: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    differ = sorted(k for k in {*saved, *current} if saved.get(k) != current.get(k))
    if differ:
        was = ", ".join(f"{k}={saved.get(k)!r}" for k in differ)
        now = ", ".join(f"{k}={current.get(k)!r}" for k in differ)
        raise CheckpointError(f"the training state was made with {was}; this training has "
                              f"{now}: resume with the settings it was made with, or train "
                              f"from the start")


def _load_model(model: nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    saved = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(saved)), sorted(set(saved) - set(own))
    shapes = sorted(k for k in set(own) & set(saved) if own[k].shape != saved[k].shape)
    if missing or unexpected or shapes:
        parts = [f"{what} {names[:3]}{' ...' if len(names) > 3 else ''}"
                 for what, names in (("missing", missing), ("unexpected", unexpected),
                                     ("other shapes for", shapes)) if names]
        raise CheckpointError(f"the training state does not fit this model ({'; '.join(parts)})"
                              f": it was made for another architecture")
    model.load_state_dict(saved)


def _load_optimizer(optimizer: torch.optim.Optimizer, doc: Mapping[str, Any],
                    tensors: Mapping[str, torch.Tensor]) -> None:
    fresh = optimizer.state_dict()["param_groups"]
    saved = doc["param_groups"]
    if len(saved) != len(fresh) or any(len(a["params"]) != len(b["params"])
                                       for a, b in zip(saved, fresh)):
        raise CheckpointError("the training state's optimizer has other parameter groups than "
                              "this model's: it was made for another architecture")
    # JSON turns tuples (Adam's betas) into lists: give each value the fresh group's type
    groups = [{k: tuple(v) if isinstance(f.get(k), tuple) else v for k, v in g.items()}
              for g, f in zip(saved, fresh)]
    state: dict[int, dict[str, Any]] = {int(i): dict(v) for i, v in doc["state"].items()}
    for key, value in tensors.items():
        if key.startswith("optimizer.state."):
            index, _, name = key[len("optimizer.state."):].partition(".")
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def restore(blob: bytes, parts: TrainingParts) -> Header:
    """Load the state ``blob`` into ``parts`` (freshly built for the same model and settings)
    and torch's RNG; return its header (``epoch`` is where training continues).

    Raises :class:`CheckpointError` when ``blob`` is not a state, was made for another model or
    other settings. A state made on another kind of device (CPU vs GPU) resumes with a fresh
    augmentation generator seeded from the seed and the epoch: the same training, but not
    bitwise the uninterrupted one."""
    head, doc, tensors = read(blob)
    _check_settings(head.settings, parts.settings)
    try:
        _load_model(parts.model, tensors)
        _load_optimizer(parts.optimizer, doc["optimizer"], tensors)
        if parts.scheduler is not None:
            parts.scheduler.load_state_dict(doc["scheduler"])
        if parts.scaler is not None and doc.get("scaler"):
            parts.scaler.load_state_dict(doc["scaler"])
        torch.set_rng_state(tensors["rng.torch"])
        parts.batches.set_state(tensors["rng.batches"])
        same_device = head.device == parts.device.type
        if parts.augment is not None:
            if same_device and "rng.augment" in tensors:
                parts.augment.set_state(tensors["rng.augment"])
            else:
                from training.augment import augmentation_generator

                log.info("training state made on %s resumes on %s: augmentation draws from a "
                         "fresh generator", head.device, parts.device.type)
                parts.augment.set_state(augmentation_generator(
                    int(head.settings.get("seed", 0)) * 1_000_003 + head.epoch,
                    parts.device).get_state())
        if same_device and parts.device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], parts.device)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(f"damaged training state: {exc.__class__.__name__}: "
                              f"{text}") from None
    return head
