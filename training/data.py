"""Data sets as in-memory tensors, split into train / validation / test.

Fitness is measured on the validation split, carved from the training data with a fixed
``split_seed``; the test split is touched only to report the best architecture.

Data sets, by name in :data:`DATASETS`: ``digits`` (scikit-learn's embedded 8x8 digits, no
download), ``mnist``, ``fashion_mnist`` and ``cifar10`` (torchvision, downloaded once into
``root``), ``npz`` (your own arrays in one ``.npz`` file) and ``synthetic`` (random tensors for
tests). A source is a function ``settings -> (x, y, x_test, y_test)`` of numpy arrays (the test
pair ``None`` when the source has none) registered with :func:`register_dataset`; splitting,
normalisation and the tensors are shared. torch is imported only when a data set is loaded, so
the config reads the registry without it.
"""
from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from typing import Callable, Optional

import numpy as np

from genome.errors import EvonasError
from genome.registry import Registry

log = logging.getLogger(__name__)

DEFAULT_ROOT = "~/.cache/evonas/data"
Arrays = tuple[np.ndarray, np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]


class DataError(EvonasError):
    """A data set cannot be loaded: unknown name, missing file, failed download."""


@dataclass(frozen=True)
class Source:
    """A registered data set: its loader and the kind of data it holds (a task's
    ``data_kind``)."""

    name: str
    load: Callable[[Mapping[str, Any]], Arrays]
    kind: str = "images"


DATASETS = Registry("data set", DataError)
"""``data.dataset`` -> its :class:`Source`, in registration order."""


def register_dataset(name: str, kind: str = "images"):
    """Decorator: register ``load(settings) -> (x, y, x_test, y_test)`` as data set ``name``."""
    def add(load: Callable[[Mapping[str, Any]], Arrays]) -> Callable:
        DATASETS.add(name, Source(name, load, kind))
        return load
    return add


@dataclass(frozen=True)
class Splits:
    """Float32 images ``(N, C, H, W)`` and int64 labels (torch tensors) for each split."""

    name: str
    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any
    x_test: Any
    y_test: Any
    num_classes: int

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.x_train.shape[2]), int(self.x_train.shape[3])

    def describe(self) -> str:
        return (f"{self.name}: {len(self.y_train)} train / {len(self.y_val)} val / "
                f"{len(self.y_test)} test, {self.in_channels}x{self.image_size[0]}x"
                f"{self.image_size[1]}, {self.num_classes} classes")


# ----------------------------------------------------------------------------------- sources
@register_dataset("digits")
def _digits(settings: Mapping[str, Any]) -> Arrays:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None] / 16.0
    return x, bunch.target.astype(np.int64), None, None


def _torchvision(name: str, settings: Mapping[str, Any]) -> Arrays:
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST,
           "fashion_mnist": torchvision.datasets.FashionMNIST,
           "cifar10": torchvision.datasets.CIFAR10}[name]
    root = Path(os.path.expanduser(str(settings.get("root") or DEFAULT_ROOT)))
    arrays = []
    for train in (True, False):
        try:
            ds = cls(str(root), train=train, download=False)
        except RuntimeError:
            log.info("downloading %s into %s", name, root)
            try:
                root.mkdir(parents=True, exist_ok=True)
                ds = cls(str(root), train=train, download=True)
            except Exception as exc:  # URLError, HTTPError, OSError, RuntimeError ...
                raise DataError(
                    f"could not download data set {name!r} into {root}: {exc}. Connect to the "
                    f"internet once, or copy the torchvision files for {name!r} into {root} "
                    f"(set data.root to use another folder).") from exc
        x = np.asarray(ds.data)
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)  # NHW or NHWC -> NCHW
        arrays += [x.astype(np.float32) / 255.0, np.asarray(ds.targets, dtype=np.int64)]
    return tuple(arrays)


for _name in ("mnist", "fashion_mnist", "cifar10"):
    register_dataset(_name)(functools.partial(_torchvision, _name))


@register_dataset("npz")
def _npz(settings: Mapping[str, Any]) -> Arrays:
    path = settings.get("path")
    if not path:
        raise DataError("data set 'npz' needs data.path: a .npz file with x_train and y_train "
                        "(and optionally x_test, y_test)")
    path = Path(os.path.expanduser(str(path)))
    if not path.is_file():
        raise DataError(f"data.path {str(path)!r} does not exist; give a .npz file with arrays "
                        f"x_train, y_train (and optionally x_test, y_test)")
    with np.load(path, allow_pickle=False) as f:
        missing = {"x_train", "y_train"} - set(f.files)
        if ("x_test" in f.files) != ("y_test" in f.files):
            missing |= {"x_test", "y_test"} - set(f.files)
        if missing:
            raise DataError(f"{path} lacks arrays {sorted(missing)}; it has {sorted(f.files)} "
                            f"(give x_train, y_train and optionally both x_test and y_test)")
        arrays = [f[k] if k in f.files else None for k in ("x_train", "y_train", "x_test", "y_test")]
    out = []
    for x, y in (arrays[:2], arrays[2:]):
        if x is None or y is None:
            out += [None, None]
            continue
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or len(x) != len(y):
            raise DataError(f"{path}: images must be (N, H, W) or (N, C, H, W) with one label "
                            f"each, got x {x.shape} and y {np.shape(y)}")
        out += [x, np.asarray(y, dtype=np.int64)]
    return tuple(out)


@register_dataset("synthetic")
def _synthetic(settings: Mapping[str, Any]) -> Arrays:
    """Learnable random data: each class is a fixed random pattern plus noise."""
    spec = {"samples": 256, "num_classes": 4, "image_size": 8, "channels": 1,
            **(settings.get("synthetic") or {})}
    n, classes = int(spec["samples"]), int(spec["num_classes"])
    size, channels = int(spec["image_size"]), int(spec["channels"])
    rng = np.random.default_rng(int(settings.get("split_seed", 0)))
    patterns = rng.normal(size=(classes, channels, size, size)).astype(np.float32)
    y = rng.integers(0, classes, size=n)
    x = patterns[y] + 0.5 * rng.normal(size=(n, channels, size, size)).astype(np.float32)
    return x.astype(np.float32), y.astype(np.int64), None, None


# ----------------------------------------------------------------------------------- splits
def _split(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    cut = int(round(n * fraction))
    return order[cut:], order[:cut]


def load_dataset(settings: Mapping[str, Any]) -> Splits:
    """Load the data set named by ``settings["dataset"]`` and split it.

    Settings (all but ``dataset`` optional): ``root`` download cache, ``path`` for ``npz``,
    ``val_fraction`` (0.2) of the training data held out for fitness, ``test_fraction`` (0.2)
    held out as test set when the source has none, ``train_size`` cap on training examples,
    ``split_seed`` (0) for the splits, ``normalize`` (true) to standardise by the training mean
    and std per channel, ``synthetic`` (``samples``, ``num_classes``, ``image_size``,
    ``channels``) for the synthetic set. Results are cached per process, keyed by the settings.
    """
    return _load_cached(json.dumps(dict(settings), sort_keys=True, default=str))


@functools.lru_cache(maxsize=4)
def _load_cached(settings_json: str) -> Splits:
    import torch

    settings = json.loads(settings_json)
    name = settings.get("dataset")
    if not isinstance(name, str) or name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    x, y, x_test, y_test = DATASETS[name].load(settings)

    rng = np.random.default_rng(int(settings.get("split_seed", 0)))
    if x_test is None:
        keep, held = _split(len(y), float(settings.get("test_fraction", 0.2)), rng)
        x, y, x_test, y_test = x[keep], y[keep], x[held], y[held]
    train, val = _split(len(y), float(settings.get("val_fraction", 0.2)), rng)
    cap = settings.get("train_size")
    if cap is not None:
        train = train[:int(cap)]
    if len(train) == 0 or len(val) == 0 or len(y_test) == 0:
        raise DataError(f"data set {name!r} with {len(y)} training examples leaves an empty "
                        f"split (train {len(train)}, val {len(val)}, test {len(y_test)}); "
                        f"adjust val_fraction, test_fraction or train_size")
    x_train, x_val = x[train], x[val]
    if settings.get("normalize", True):
        mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
        std = x_train.std(axis=(0, 2, 3), keepdims=True) + 1e-6
        x_train, x_val, x_test = ((a - mean) / std for a in (x_train, x_val, x_test))
    num_classes = int(max(y.max(), y_test.max())) + 1
    if name == "synthetic":
        num_classes = max(num_classes, int((settings.get("synthetic") or {}).get("num_classes", 4)))
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    splits = Splits(name, t(x_train.astype(np.float32)), t(y[train]),
                    t(x_val.astype(np.float32)), t(y[val]),
                    t(np.asarray(x_test, dtype=np.float32)), t(y_test), num_classes)
    log.info("loaded %s", splits.describe())
    return splits
