"""Data sets as in-memory tensors, split into train / validation / test.

Fitness is measured on the validation split, carved from the training data with a fixed
``split_seed``; the test split is touched only to report the best architecture.

Data sets, by name in :data:`DATASETS`: ``digits`` (scikit-learn's embedded 8x8 digits, no
download), ``mnist``, ``fashion_mnist`` and ``cifar10`` (torchvision, downloaded once into
``root``), ``npz`` (your own arrays in one ``.npz`` file) and ``synthetic`` (random tensors for
tests). A source is a function ``settings -> (x, y, x_test, y_test)`` of numpy arrays (the test
pair ``None`` when the source has none) registered with :func:`register_dataset`, saying what
kind of inputs it holds (``images``: ``(N, C, H, W)``) and whether its targets are class
``labels`` or real ``values``. Validation (finite inputs, integer labels in range, matching
lengths), splitting, normalisation and the tensors are shared, so a bad data set stops the run
with a message before any training. torch is imported only when a data set is loaded, so the
config reads the registry without it.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np

from genome.errors import EvonasError
from genome.registry import Registry

log = logging.getLogger(__name__)

DEFAULT_ROOT = "~/.cache/evonas/data"
MAX_CLASSES = 10_000
"""Class labels must lie in 0..MAX_CLASSES-1: a stray label of 10**6 must not build a model
with a million outputs."""
Arrays = tuple[np.ndarray, np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]


class DataError(EvonasError):
    """A data set cannot be loaded: unknown name, missing file, failed download."""


@dataclass(frozen=True)
class Source:
    """A registered data set: its loader, the kind of inputs it holds (a task's
    ``data_kind``), whether its targets are class ``labels`` or real ``values``, how its raw
    inputs were scaled and its class names (for model cards), and its training recipe's
    defaults."""

    name: str
    load: Callable[[Mapping[str, Any]], Arrays]
    kind: str = "images"
    targets: str = "labels"
    scaling: str = "as stored"
    recipe: tuple[tuple[str, Any], ...] = ()
    """The training recipe's defaults for this data set (evaluation keys such as
    ``random_crop``, ``flip``): what an evaluation that leaves them unset gets."""
    labels: Optional[tuple[str, ...]] = None
    """Class names by label, when known (for model cards)."""
    divisor: Optional[float] = None
    """Raw values are divided by this (``scaling``), when they are pixels of a known range."""
    splits: Optional[Callable[[Mapping[str, Any]], "Splits"]] = None
    """A source that cuts its own splits (contiguous signals in frames): ``load_dataset``
    returns ``splits(settings)`` instead of shuffling, splitting and standardising ``load``'s
    arrays."""


DATASETS = Registry("data set", DataError)
"""``data.dataset`` -> its :class:`Source`, in registration order."""


def register_dataset(name: str, kind: str = "images", targets: str = "labels",
                     scaling: str = "as stored", recipe: Optional[Mapping[str, Any]] = None,
                     labels: Optional[tuple[str, ...]] = None,
                     divisor: Optional[float] = None):
    """Decorator: register ``load(settings) -> (x, y, x_test, y_test)`` as data set ``name``,
    with the defaults of its training ``recipe`` (``{"random_crop": 4, "flip": True}``) and
    its class ``labels`` when known; raw values are divided by ``divisor`` (``scaling`` says so
    in words)."""
    def add(load: Callable[[Mapping[str, Any]], Arrays]) -> Callable:
        DATASETS.add(name, Source(name, load, kind, targets, scaling,
                                  tuple((recipe or {}).items()), labels, divisor))
        return load
    return add


def recipe_defaults(name: str) -> dict[str, Any]:
    """The training recipe's defaults of data set ``name`` (empty for an unknown name)."""
    source = DATASETS.get(name)
    return dict(source.recipe) if source is not None else {}


@dataclass(frozen=True)
class Splits:
    """Float32 inputs (batch first, channels second: ``(N, C, H, W)`` for images) and targets
    (int64 class labels, or float32 values) as torch tensors, for each split.
    ``num_classes`` is ``None`` for real-valued targets."""

    name: str
    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any
    x_test: Any
    y_test: Any
    num_classes: Optional[int]
    kind: str = "images"

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def example_shape(self) -> tuple[int, ...]:
        """One input's shape, without the batch: ``(C, H, W)`` for images."""
        return tuple(int(n) for n in self.x_train.shape[1:])

    def describe(self) -> str:
        shape = "x".join(map(str, self.example_shape))
        targets = (f"{self.num_classes} classes" if self.num_classes is not None else
                   f"targets {'x'.join(map(str, self.y_train.shape[1:])) or 'scalar'}")
        return (f"{self.name}: {len(self.y_train)} train / {len(self.y_val)} val / "
                f"{len(self.y_test)} test, {self.kind} {shape}, {targets}")


# ----------------------------------------------------------------------------------- sources
@register_dataset("digits", scaling="pixel / 16", labels=tuple(str(d) for d in range(10)),
                  divisor=16.0)
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


# Defaults of the training recipe: shifts of a few pixels for 28x28 and 32x32 images;
# flips where a mirrored image is still of its class (clothes, CIFAR's objects), never digits.
_TORCHVISION = {
    "mnist": ({"random_crop": 2}, tuple(str(d) for d in range(10))),
    "fashion_mnist": ({"random_crop": 2, "flip": True},
                      ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                       "Sneaker", "Bag", "Ankle boot")),
    "cifar10": ({"random_crop": 4, "flip": True},
                ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck")),
}
for _name, (_recipe, _labels) in _TORCHVISION.items():
    register_dataset(_name, scaling="pixel / 255", recipe=_recipe, labels=_labels,
                     divisor=255.0)(
        functools.partial(_torchvision, _name))


def _npz_member(archive: zipfile.ZipFile, name: str, path: Path) -> np.ndarray:
    """One array of an ``.npz`` file, refusing what would not be plain numbers of a size the
    file can hold (an object array, a header claiming more elements than are stored)."""
    info = archive.getinfo(f"{name}.npy")
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
            shape, _, dtype = (np.lib.format.read_array_header_1_0(member) if version == (1, 0)
                               else np.lib.format.read_array_header_2_0(member))
        except ValueError as exc:
            raise DataError(f"{path}: array {name!r} is not a valid .npy member ({exc})") \
                from None
        if dtype.hasobject:
            raise DataError(f"{path}: array {name!r} holds Python objects (dtype object); "
                            f"save numbers only (e.g. x.astype(np.float32))")
        count = int(np.prod(shape, dtype=np.float64))
        if count * dtype.itemsize > info.file_size:
            raise DataError(f"{path}: array {name!r} claims shape {shape} ({count:,} "
                            f"elements) but the file holds {info.file_size:,} bytes for it; "
                            f"it is damaged")
    with archive.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


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
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path} is not a .npz file ({exc}); save it with np.savez(path, "
                        f"x_train=..., y_train=...)") from None
    with archive:
        files = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
        missing = {"x_train", "y_train"} - set(files)
        if ("x_test" in files) != ("y_test" in files):
            missing |= {"x_test", "y_test"} - set(files)
        if missing:
            raise DataError(f"{path} lacks arrays {sorted(missing)}; it has {sorted(files)} "
                            f"(give x_train, y_train and optionally both x_test and y_test)")
        arrays = [_npz_member(archive, k, path) if k in files else None
                  for k in ("x_train", "y_train", "x_test", "y_test")]
    out: list[Optional[np.ndarray]] = []
    for x, y in (arrays[:2], arrays[2:]):
        if x is None or y is None:
            out += [None, None]
            continue
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or len(x) != len(y):
            raise DataError(f"{path}: images must be (N, H, W) or (N, C, H, W) with one label "
                            f"each, got x {x.shape} and y {np.shape(y)}")
        out += [x, y]
    return tuple(out)  # type: ignore[return-value]


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


# ----------------------------------------------------------------------------------- devices
_TENSORS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
_ON_DEVICE: dict[str, tuple[Splits, Splits]] = {}
"""device -> (the data set as loaded, its copy there): one per device in a process."""


def on_device(data: Splits, device: str) -> Splits:
    """``data`` with every split on ``device``: copied once per process and reused by every
    later evaluation of the same data set (a GPU worker moves its data once, not per
    evaluation). The CPU gets ``data`` itself. One data set is held per device: another
    replaces it."""
    import torch

    if torch.device(device).type == "cpu":
        return data
    held = _ON_DEVICE.get(str(device))
    if held is None or held[0] is not data:
        moved = dataclasses.replace(data, **{k: getattr(data, k).to(device) for k in _TENSORS})
        held = _ON_DEVICE[str(device)] = (data, moved)
    return held[1]


# ----------------------------------------------------------------------------------- splits
def _split(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    cut = int(round(n * fraction))
    return order[cut:], order[:cut]


def _inputs(name: str, split: str, x: Any, kind: str) -> np.ndarray:
    """``x`` as float32, checked: numbers, batch first, finite."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise DataError(f"data set {name!r}: the {split} inputs are of dtype {x.dtype}, not "
                        f"numbers")
    x = x.astype(np.float32, copy=False)
    if kind == "images" and x.ndim != 4:
        raise DataError(f"data set {name!r}: {split} images must be (N, C, H, W), got shape "
                        f"{x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.argwhere(bad)[0][0])
        raise DataError(f"data set {name!r}: {int(bad.sum()):,} {split} input value(s) are "
                        f"NaN or infinite (the first in example {first}); every evaluation "
                        f"would fail. Clean the data (e.g. np.nan_to_num) and run again")
    return x


def _targets(name: str, split: str, y: Any, n: int, targets: str) -> np.ndarray:
    """``y`` checked against ``n`` inputs: integer class labels 0..MAX_CLASSES-1 (one per
    example), or finite real values."""
    y = np.asarray(y)
    if len(y) != n:
        raise DataError(f"data set {name!r}: {n} {split} inputs but {len(y)} targets")
    if targets != "labels":
        if y.dtype.kind not in "biuf" or not np.isfinite(y.astype(np.float64)).all():
            raise DataError(f"data set {name!r}: {split} targets must be finite numbers")
        return y.astype(np.float32)
    if y.ndim != 1:
        raise DataError(f"data set {name!r}: {split} labels must be one integer per example, "
                        f"shape (N,), got {y.shape}")
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)  # whole numbers stored as floats
    if y.dtype.kind not in "biu":
        shown = ", ".join(map(str, y[:3].tolist()))
        raise DataError(f"data set {name!r}: {split} labels must be integers (class indices "
                        f"0..C-1), got dtype {y.dtype} ({shown}, ...)")
    y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= MAX_CLASSES):
        raise DataError(f"data set {name!r}: {split} labels must lie in 0..C-1 with C at most "
                        f"{MAX_CLASSES:,}; they range from {y.min()} to {y.max()}")
    return y


def load_dataset(settings: Mapping[str, Any]) -> Splits:
    """Load the data set named by ``settings["dataset"]``, check it, and split it.

    Settings (all but ``dataset`` optional): ``root`` download cache, ``path`` for ``npz``,
    ``val_fraction`` (0.2) of the training data held out for fitness, ``test_fraction`` (0.2)
    held out as test set when the source has none, ``train_size`` cap on training examples,
    ``split_seed`` (0) for the splits, ``normalize`` (true) to standardise by the training mean
    and std per channel, ``synthetic`` (``samples``, ``num_classes``, ``image_size``,
    ``channels``) for the synthetic set. Results are cached per process, keyed by the settings.
    A :class:`DataError` names what is wrong with the data (NaN inputs, labels that are not
    integers in range, mismatched lengths) before any training.
    """
    return _load_cached(json.dumps(dict(settings), sort_keys=True, default=str))


def normalization_axes(x: np.ndarray) -> tuple[int, ...]:
    """The axes statistics are taken over: every axis but the channels (axis 1)."""
    return (0, *range(2, x.ndim))


@functools.lru_cache(maxsize=4)
def _load_cached(settings_json: str) -> Splits:
    import torch

    settings = json.loads(settings_json)
    name = settings.get("dataset")
    if not isinstance(name, str) or name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    source = DATASETS[name]
    if source.splits is not None:
        return source.splits(settings)
    x, y, x_test, y_test = source.load(settings)
    x = _inputs(name, "training", x, source.kind)
    y = _targets(name, "training", y, len(x), source.targets)
    if x_test is not None:
        x_test = _inputs(name, "test", x_test, source.kind)
        y_test = _targets(name, "test", y_test, len(x_test), source.targets)
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(f"data set {name!r}: test inputs have shape {x_test.shape[1:]}, "
                            f"training inputs {x.shape[1:]}")

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
        axes = normalization_axes(x_train)
        mean = x_train.mean(axis=axes, keepdims=True)
        std = x_train.std(axis=axes, keepdims=True) + 1e-6
        x_train, x_val, x_test = ((a - mean) / std for a in (x_train, x_val, x_test))
    num_classes = None
    if source.targets == "labels":
        num_classes = int(max(y.max(), y_test.max())) + 1
        if name == "synthetic":
            num_classes = max(num_classes,
                              int((settings.get("synthetic") or {}).get("num_classes", 4)))
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    splits = Splits(name, t(x_train.astype(np.float32)), t(y[train]),
                    t(x_val.astype(np.float32)), t(y[val]),
                    t(np.asarray(x_test, dtype=np.float32)), t(y_test), num_classes,
                    source.kind)
    log.info("loaded %s", splits.describe())
    return splits
