"""Complex baseband I/Q data sets (PA input x, PA output y), cut into frames.

Data sets (``data.dataset``), all of kind ``iq``:

``synthetic_pa``
    a band-limited random signal through a memory-polynomial PA (Ding et al. 2004: odd
    orders k <= 5, memory q <= 2) plus a little noise; needs nothing installed.
``opendpd``
    OpenDPD's measured data set ``data.signal.name`` (``APA_200MHz_b``), read from the
    installed ``opendpd`` package (the optional extra ``evonas[dpd]``): its
    ``datasets/<name>/`` folder of CSVs where the package has one, else the capture it ships
    in ``arena_assets/`` with the spec of its calibration file. Nothing is downloaded.
``iq``
    your own pairs at ``data.path``: a ``.npz`` with ``x_train, y_train, x_val, y_val, x_test,
    y_test`` (or only ``x, y``, split 60/20/20 in time), each ``(N, 2)`` I/Q or complex
    ``(N,)``; or a folder in OpenDPD's layout, ``{train,val,test}_{input,output}.csv`` (header
    ``I,Q``) with an optional ``spec.json``.

Splits are contiguous in time (never shuffled: neighbouring frames overlap). The training
split is cut into frames of ``frame_length`` samples every ``stride`` samples; validation
and test into back-to-back frames (stride = ``frame_length``), so the frames of a split laid
end to end are its signal, which the metrics need. Samples are not standardised: a PA's
nonlinearity depends on the absolute amplitude.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
from pydantic import Field

from genome.section import Section
from training.data import DATASETS, DataError, Source, Splits

log = logging.getLogger(__name__)

EXTRA = "pip install 'evonas[dpd]'  (or: pip install opendpd)"
DEFAULT_PA_MODEL = "iqa*1|gru12|nogmp|res"
"""The PA model fitted before a DPD search when ``data.signal.pa_model`` names none."""


class SignalDataConfig(Section):
    """``data.signal``: how I/Q data sets are framed and measured, and the frozen PA model a
    DPD task trains through."""

    name: str = Field("APA_200MHz_b", min_length=1, max_length=100,
                      description="the OpenDPD data set (data.dataset: opendpd)")
    frame_length: int = Field(50, ge=1, le=100_000)
    stride: int = Field(1, ge=1, le=100_000)
    samples: int = Field(6000, ge=64, le=10_000_000, description="synthetic_pa: samples")
    sample_rate_hz: Optional[float] = Field(None, gt=0)
    bandwidth_hz: Optional[float] = Field(None, gt=0)
    nperseg: Optional[int] = Field(None, ge=8)
    pa_model: str = Field(DEFAULT_PA_MODEL, min_length=1, description=(
        "dpd: the PA model, a signal genome fitted first (pa_epochs, pa_lr, pa_seed), an "
        "export folder of a trained one, or opendpd: the PA model OpenDPD publishes for "
        "data set `name`"))
    pa_epochs: int = Field(20, ge=1)
    pa_lr: float = Field(5e-3, gt=0)
    pa_seed: int = 0


@dataclass(frozen=True)
class SignalSplits(Splits):
    """Frames ``(N, T, 2)`` of x (inputs) and y (targets) per split, plus the spectrum ``spec``
    (``sample_rate_hz``, ``bandwidth_hz``, ``nperseg``), the DPD gain G = max|y| / max|x| on
    train, and the settings they were loaded with."""

    spec: dict = field(default_factory=dict)
    gain: float = 1.0
    settings_json: str = "{}"

    def frozen_pa(self) -> Any:
        """The PA model a DPD trains through (fitted or loaded once per process), in eval mode
        with its parameters frozen."""
        return _frozen_pa(self.settings_json)


def _signal(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {**SignalDataConfig().model_dump(), **(settings.get("signal") or {})}


# --------------------------------------------------------------------------- sources
def _iq(a: Any, what: str) -> np.ndarray:
    """``(N, 2)`` float64 from ``(N, 2)`` I/Q or complex ``(N,)``."""
    a = np.asarray(a)
    if np.iscomplexobj(a) and a.ndim == 1:
        a = np.stack([a.real, a.imag], axis=1)
    if a.ndim != 2 or a.shape[1] != 2 or a.dtype.kind not in "biuf":
        raise DataError(f"{what}: expected I/Q samples of shape (N, 2) or complex (N,), got "
                        f"shape {a.shape} and dtype {a.dtype}")
    if not np.isfinite(a).all():
        raise DataError(f"{what}: {int((~np.isfinite(a)).sum())} values are NaN or infinite")
    return a.astype(np.float64)


def _contiguous(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """60/20/20 in time."""
    n = len(x)
    a, b = int(0.6 * n), int(0.8 * n)
    return {"x_train": x[:a], "y_train": y[:a], "x_val": x[a:b], "y_val": y[a:b],
            "x_test": x[b:], "y_test": y[b:]}


# Ding et al. (2004), "A robust digital baseband predistorter constructed using memory
# polynomials" (also Morgan et al. 2006): a_kq for k = 1, 3, 5 (rows) and q = 0, 1, 2 (columns).
DING = np.array([[1.0513 + 0.0904j, -0.0680 - 0.0023j, 0.0289 - 0.0054j],
                 [-0.0542 - 0.2900j, 0.2234 + 0.2317j, -0.0621 - 0.0932j],
                 [-0.9657 - 0.7028j, -0.2451 - 0.3735j, 0.1229 + 0.1508j]])
"""``DING[i, q]``: the coefficient of x(n-q)|x(n-q)|^(2i)."""


def memory_polynomial_pa(x: np.ndarray, coefficients: np.ndarray = DING) -> np.ndarray:
    """y(n) = sum_i sum_q a[i, q] x(n-q) |x(n-q)|^(2i) (odd orders 2i+1), complex ``x``."""
    y = np.zeros_like(x)
    for q in range(coefficients.shape[1]):
        xq = np.concatenate([np.zeros(q, dtype=x.dtype), x[:len(x) - q]])
        for i in range(coefficients.shape[0]):
            y = y + coefficients[i, q] * xq * np.abs(xq) ** (2 * i)
    return y


def _synthetic_pa(settings: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict]:
    s = _signal(settings)
    spec = {"sample_rate_hz": 800e6, "bandwidth_hz": 160e6, "nperseg": 256}
    rng = np.random.default_rng(int(settings.get("split_seed", 0)))
    n = int(s["samples"])
    white = rng.normal(size=n) + 1j * rng.normal(size=n)
    f = np.fft.fftfreq(n, d=1 / spec["sample_rate_hz"])
    spectrum = np.fft.fft(white)
    spectrum[np.abs(f) >= spec["bandwidth_hz"] / 2] = 0
    x = np.fft.ifft(spectrum)
    x = 0.7 * x / np.abs(x).max()  # peak 0.7: about 2 dB of compression at the peaks
    y = memory_polynomial_pa(x) + 1e-3 * (rng.normal(size=n) + 1j * rng.normal(size=n))
    pair = lambda z: np.stack([z.real, z.imag], axis=1)  # noqa: E731
    return _contiguous(pair(x), pair(y)), spec


def opendpd_root() -> Path:
    """The installed ``opendpd`` package's folder (found, not imported)."""
    found = importlib.util.find_spec("opendpd")
    if found is None or not found.submodule_search_locations:
        raise DataError(f"data set 'opendpd' reads OpenDPD's measurements from the installed "
                        f"opendpd package, which is not installed; install the optional extra: "
                        f"{EXTRA}")
    return Path(list(found.submodule_search_locations)[0])


def _read_csv(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path} does not exist; an I/Q folder holds "
                        f"{{train,val,test}}_{{input,output}}.csv with a header I,Q")
    try:
        return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except ValueError as exc:
        raise DataError(f"{path}: not a CSV of I,Q rows with a header ({exc})") from None


def _csv_folder(folder: Path) -> tuple[dict[str, np.ndarray], dict]:
    arrays = {f"{xy}_{split}": _read_csv(folder / f"{split}_{io}.csv")
              for split in ("train", "val", "test")
              for xy, io in (("x", "input"), ("y", "output"))}
    spec: dict[str, Any] = {}
    if (folder / "spec.json").is_file():
        raw = json.loads((folder / "spec.json").read_text(encoding="utf-8"))
        spec = {"sample_rate_hz": raw.get("input_signal_fs") or raw.get("sample_rate_hz"),
                "bandwidth_hz": raw.get("bw_main_ch") or raw.get("bandwidth_hz"),
                "nperseg": raw.get("nperseg")}
    return arrays, {k: v for k, v in spec.items() if v}


def _opendpd(settings: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict]:
    name = _signal(settings)["name"]
    root = opendpd_root()
    if (root / "datasets" / name).is_dir():
        return _csv_folder(root / "datasets" / name)
    known: dict[str, tuple[Path, dict]] = {}
    for calibration in sorted((root / "arena_assets").glob("calibration-*.json")):
        for entry in json.loads(calibration.read_text(encoding="utf-8")).values():
            if isinstance(entry, dict) and entry.get("dataset") \
                    and entry.get("source_capture_file"):
                known[entry["dataset"]] = (root / "arena_assets" / entry["source_capture_file"],
                                           entry.get("signal") or {})
    if name not in known:
        folders = [p.name for p in (root / "datasets").glob("*") if p.is_dir()]
        raise DataError(f"data.signal.name {name!r} is not in the installed opendpd package "
                        f"({root}); it holds "
                        f"{', '.join(sorted({*known, *folders})) or 'no data sets'}")
    path, signal = known[name]
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    spec = {k: signal.get(k) for k in ("sample_rate_hz", "bandwidth_hz", "nperseg")}
    return arrays, {k: v for k, v in spec.items() if v}


def _user_iq(settings: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict]:
    if not settings.get("path"):
        raise DataError("data set 'iq' needs data.path: a .npz with x_train, y_train, x_val, "
                        "y_val, x_test, y_test (or x, y) of I/Q samples, or a folder of "
                        "{train,val,test}_{input,output}.csv")
    path = Path(os.path.expanduser(str(settings["path"])))
    if path.is_dir():
        return _csv_folder(path)
    if not path.is_file():
        raise DataError(f"data.path {str(path)!r} does not exist; give a .npz file or a folder "
                        f"of {{train,val,test}}_{{input,output}}.csv")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a .npz file of I/Q arrays ({exc})") from None
    if {"x", "y"} <= set(arrays) and "x_train" not in arrays:
        x, y = _iq(arrays["x"], f"{path}: x"), _iq(arrays["y"], f"{path}: y")
        if len(x) != len(y):
            raise DataError(f"{path}: x has {len(x)} samples, y {len(y)}")
        return _contiguous(x, y), {}
    return arrays, {}


# --------------------------------------------------------------------------- frames
def frames(a: np.ndarray, length: int, stride: int) -> np.ndarray:
    """``(N, 2)`` -> ``(F, length, 2)``: windows starting every ``stride`` samples (a last
    partial window is dropped)."""
    if len(a) < length:
        return np.zeros((0, length, 2), dtype=np.float32)
    starts = np.arange(0, len(a) - length + 1, stride)
    return np.stack([a[s:s + length] for s in starts]).astype(np.float32)


def _prepare(name: str, reader: Any, settings: Mapping[str, Any]) -> SignalSplits:
    import torch

    if settings.get("normalize", True):
        raise DataError(f"data set {name!r} holds I/Q signals, which evonas does not "
                        f"standardise (a PA's nonlinearity depends on the absolute amplitude); "
                        f"set data.normalize: false")
    s = _signal(settings)
    arrays, spec = reader(settings)
    needed = [f"{xy}_{split}" for split in ("train", "val", "test") for xy in "xy"]
    missing = [k for k in needed if k not in arrays]
    if missing:
        raise DataError(f"data set {name!r} lacks {', '.join(missing)}; it has "
                        f"{', '.join(sorted(arrays))}")
    signals = {k: _iq(arrays[k], f"data set {name!r}: {k}") for k in needed}
    for split in ("train", "val", "test"):
        if len(signals[f"x_{split}"]) != len(signals[f"y_{split}"]):
            raise DataError(f"data set {name!r}: x_{split} has {len(signals[f'x_{split}'])} "
                            f"samples, y_{split} {len(signals[f'y_{split}'])}")
    spec = {"sample_rate_hz": 983.04e6, "bandwidth_hz": 200e6, "nperseg": 2048, **spec,
            **{k: s[k] for k in ("sample_rate_hz", "bandwidth_hz", "nperseg") if s[k]}}
    if spec["bandwidth_hz"] * 1.5 > spec["sample_rate_hz"] / 2:
        raise DataError(f"data set {name!r}: the adjacent channel (up to 1.5 x bandwidth "
                        f"{spec['bandwidth_hz']:g} Hz) lies outside the sampled band "
                        f"(+-{spec['sample_rate_hz'] / 2:g} Hz); check data.signal")
    t, stride = int(s["frame_length"]), int(s["stride"])
    cut = {"train": stride}
    out = {}
    for split in ("train", "val", "test"):
        for xy in "xy":
            out[f"{xy}_{split}"] = frames(signals[f"{xy}_{split}"], t, cut.get(split, t))
        if not len(out[f"x_{split}"]):
            raise DataError(f"data set {name!r}: the {split} split has "
                            f"{len(signals[f'x_{split}'])} samples, fewer than one frame of "
                            f"data.signal.frame_length={t}")
    cap = settings.get("train_size")
    if cap is not None:  # the first frames: a shorter stretch of the training signal
        out["x_train"], out["y_train"] = out["x_train"][:int(cap)], out["y_train"][:int(cap)]
    x, y = signals["x_train"], signals["y_train"]
    gain = float(np.abs(y[:, 0] + 1j * y[:, 1]).max() / np.abs(x[:, 0] + 1j * x[:, 1]).max())
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()}
    splits = SignalSplits(name, tensors["x_train"], tensors["y_train"], tensors["x_val"],
                          tensors["y_val"], tensors["x_test"], tensors["y_test"], None, "iq",
                          spec=spec, gain=gain,
                          settings_json=json.dumps(dict(settings), sort_keys=True, default=str))
    log.info("loaded %s; %d samples per frame, gain %.4f", splits.describe(), t, gain)
    return splits


# --------------------------------------------------------------------------- the frozen PA
@functools.lru_cache(maxsize=2)
def _frozen_pa(settings_json: str) -> Any:
    from training.data import load_dataset

    settings = json.loads(settings_json)
    s = _signal(settings)
    spec = s["pa_model"]
    if spec == "opendpd":
        model = opendpd_pa_model(s["name"])
    elif os.path.isdir(os.path.expanduser(spec)):
        from training.export import load_model

        model = load_model(os.path.expanduser(spec))
    else:
        model = fit_pa_model(spec, load_dataset(settings), epochs=int(s["pa_epochs"]),
                             lr=float(s["pa_lr"]), seed=int(s["pa_seed"]))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def opendpd_pa_model(name: str) -> Any:
    """The frozen PA model OpenDPD publishes for its data set ``name`` (the TRes-GRU "teacher"
    its DPD benchmark trains through), from the installed package."""
    import torch

    from training.signal_decode import TResGRU

    root = opendpd_root()
    for calibration in sorted((root / "arena_assets").glob("calibration-*.json")):
        for entry in json.loads(calibration.read_text(encoding="utf-8")).values():
            teacher = entry.get("teacher") if isinstance(entry, dict) else None
            if entry.get("dataset") == name and teacher and teacher.get("file"):
                with np.load(root / "arena_assets" / teacher["file"], allow_pickle=False) as z:
                    state = {k.removeprefix("backbone."): torch.from_numpy(z[k]) for k in z.files}
                model = TResGRU(int(state["rnn.weight_hh_l0"].shape[1]))
                model.load_state_dict(state)
                log.info("OpenDPD's PA model for %s: %s (published test NMSE %.2f dB)", name,
                         teacher["file"], teacher.get("pa_test_nmse_db", float("nan")))
                return model.eval()
    raise DataError(f"the installed opendpd package ({root}) publishes no PA model for "
                    f"{name!r}; fit one instead (data.signal.pa_model: a signal genome)")


def fit_pa_model(genome: Any, data: SignalSplits, *, epochs: int, lr: float, seed: int,
                 batch_size: int = 64) -> Any:
    """Step one of the DPD protocol: train the signal model ``genome`` (a genome or its text)
    on ``data``'s input -> output with AdamW and a cosine schedule; returns it in eval mode and
    logs its validation NMSE."""
    from genome import load_genome
    from training.decode import build_model
    from training.tasks import get_task
    from training.trainer import seed_everything, train

    genome = load_genome(genome, "signal")
    seed_everything(seed)
    model = build_model(genome, {})
    task = get_task("pa")
    train(model, data.x_train, data.y_train,
          {"epochs": epochs, "batch_size": batch_size, "optimizer": "adamw", "lr": lr,
           "weight_decay": 0.0, "schedule": "cosine"}, seed, task)
    measured = task.measure(task.attach(model, data), data.x_val, data.y_val, 512)
    log.info("PA model %s: validation NMSE %.2f dB", genome, measured["nmse_db"])
    return model.eval()


for _name, _reader in (("synthetic_pa", _synthetic_pa), ("opendpd", _opendpd),
                       ("iq", _user_iq)):
    DATASETS.add(_name, Source(_name, lambda settings, r=_reader: r(settings), kind="iq",
                               targets="values", scaling="as measured (not standardised)",
                               splits=functools.partial(_prepare, _name, _reader)))
