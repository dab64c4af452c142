"""A decoded genome as files people can use anywhere, and back again.

An export folder holds:

``genome.json``
    the genome (its dict form, text form and canonical key)
``settings.json``
    the decoder space, what the model expects as input (shape, normalisation), the evaluation
    settings, how the weights were trained, metrics, latency and the checks the export ran
``model.safetensors`` (format ``weights``)
    the ``state_dict`` as safetensors: tensors only, no code
``model.pt2`` (format ``pt2``)
    the eval-mode model as a ``torch.export`` program with a dynamic batch dimension; loads
    with ``torch.export.load`` and needs only torch
``model.onnx`` (format ``onnx``)
    the eval-mode model in ONNX (input ``input``, output ``logits``, dynamic batch) from
    torch's ``dynamo=True`` exporter; the TorchScript-based exporter only when that fails,
    and then ``settings.json`` and the card say why
``model.ts`` (format ``torchscript``, legacy)
    the eval-mode model traced with ``torch.jit.trace``, kept while torch ships TorchScript
    (deprecated since torch 2.9: its warnings are shown, not hidden)
``README.md``
    a model card: genome, accuracies, parameters, FLOPs, CPU latency (median and spread,
    threads, hardware), how to load it

The pt2, ONNX and TorchScript files are inference graphs of the eval-mode model: a cell model with an
auxiliary head returns logits only (the head is used in training only; its weights are still in
``model.safetensors``). :func:`load_model` rebuilds the model through the decoder and reads the
weights with safetensors (or ``torch.load(weights_only=True)``): loading never runs code from
the folder. Every file is checked after it is written (weights reloaded, pt2 and TorchScript
reloaded, ONNX run in onnxruntime, each at two batch sizes) and the export fails if an output
differs.

A folder is written in a temporary sibling and moved into place, so an interrupted export
leaves the previous one (or nothing), never a half-written folder.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import torch
from torch import nn

from genome import genome_from_dict, get_encoding
from genome.errors import EvonasError
from genome.jsonable import finite
from training.data import DATASETS, load_dataset, normalization_axes
from training.decode import build_model
from training.folders import replace_dir as _replace_dir
from training.tasks import get_task
from training.measures import DEFAULT_LATENCY_SECONDS, count_flops, measure_latency

log = logging.getLogger(__name__)

FORMATS = ("weights", "pt2", "onnx", "torchscript")
FILES = {"weights": "model.safetensors", "pt2": "model.pt2", "onnx": "model.onnx",
         "torchscript": "model.ts"}
EXPORT_FORMAT = "evonas-export"
EXPORT_VERSION = 1
ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "logits"
ONNX_INSTALL = ("pip install onnx onnxruntime onnxscript` (from a checkout of evonas: "
                "`.venv/bin/pip install -e '.[export]'`)")

# An exported graph may differ from the eager model by float rounding only.
TORCHSCRIPT_TOLERANCE = PT2_TOLERANCE = 1e-5
ONNX_TOLERANCE = 1e-4


class ExportError(EvonasError):
    """An export cannot be made or loaded: unknown format, missing package, unknown or unusable
    run directory, a folder that is not an export."""


# ------------------------------------------------------------------------------- formats
def check_formats(formats: Iterable[str] | str) -> tuple[str, ...]:
    """``formats`` validated, without repeats, in the order of :data:`FORMATS`. ONNX needs
    the ``onnx`` and ``onnxruntime`` packages: their absence is an error here, before any work.
    """
    if isinstance(formats, str):
        formats = (formats,)
    given = list(formats)
    unknown = [f for f in given if f not in FORMATS]
    if unknown:
        raise ExportError(f"unknown export format{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(map(repr, unknown))}; valid formats: {', '.join(FORMATS)}")
    if not given:
        raise ExportError(f"no export format given; choose one or more of {', '.join(FORMATS)}")
    if "onnx" in given:
        require_onnx()
    return tuple(f for f in FORMATS if f in given)


def require_onnx() -> None:
    """Raise :class:`ExportError` saying what to install when onnx or onnxruntime is missing."""
    missing = []
    for name in ("onnx", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ExportError(
            f"the onnx format needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: run `{ONNX_INSTALL}, or "
            f"leave onnx out of the formats (e.g. --formats weights torchscript)")


# ------------------------------------------------------------------------------- input
def input_spec(data: Mapping[str, Any],
               task: str = "classification") -> tuple[dict[str, Any], Any]:
    """What a model trained on the data set ``data`` (the ``data`` section of a config) for
    ``task`` expects: ``(spec, splits)`` where ``spec`` has the input ``shape`` (C, H, W), its
    layout, ``num_classes``, how raw values were scaled (``scaling`` in words, ``divisor``),
    the per-channel ``normalize`` mean and std that evonas applied (``None`` without
    normalisation) and the class ``labels`` when known; ``splits`` is the loaded
    :class:`training.Splits`."""
    splits = load_dataset(data)
    spec: dict[str, Any] = {
        "dataset": splits.name, "task": task, "layout": get_task(task).layout,
        "dtype": "float32", "shape": list(splits.example_shape),
        "num_classes": splits.num_classes, "scaling": DATASETS[splits.name].scaling,
        "divisor": DATASETS[splits.name].divisor, "normalize": None,
        "labels": (list(DATASETS[splits.name].labels)
                   if DATASETS[splits.name].labels is not None else None)}
    if data.get("normalize", True):
        # The same statistics load_dataset used: the raw training split's mean and std.
        raw = load_dataset({**data, "normalize": False}).x_train.numpy()
        axes = normalization_axes(raw)
        spec["normalize"] = {"mean": raw.mean(axis=axes).tolist(),
                             "std": (raw.std(axis=axes) + 1e-6).tolist()}
    return spec, splits


# ------------------------------------------------------------------------------- measuring
def inference_parameters(model: nn.Module) -> int:
    """Parameters of the eval-mode model (without a cell model's auxiliary head)."""
    return sum(p.numel() for name, p in model.named_parameters()
               if not name.startswith("auxiliary_head."))


# ------------------------------------------------------------------------------- writing
def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(finite(data), indent=2, allow_nan=False) + "\n",
                    encoding="utf-8")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{path.parent} has no {path.name}; give a folder written by evonas "
                          f"export (genome.json, settings.json, model.safetensors)") from None
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read {path}: {exc}") from None


def is_export(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder written by :func:`export_model`."""
    try:
        settings = json.loads((Path(path) / "settings.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(settings, dict) and settings.get("format") == EXPORT_FORMAT


def replace_dir(target: Path, build, *, owned) -> Path:
    """:func:`training.folders.replace_dir` with export errors."""
    return _replace_dir(target, build, owned=owned, error=ExportError)


def _max_diff(a: torch.Tensor, b: Any) -> float:
    return float((a - torch.as_tensor(b)).abs().max())


def _check(name: str, diff: float, tolerance: float, reference: torch.Tensor) -> None:
    scale = max(1.0, float(reference.abs().max()))
    if not diff <= tolerance * scale:
        raise ExportError(f"the {name} export differs from the PyTorch model by {diff:.3g} "
                          f"(allowed {tolerance * scale:.3g}), so nothing was exported. Report "
                          f"this with the genome: an op may not export faithfully")


def _batch_dim() -> Any:
    return torch.export.Dim("batch")


def _export_onnx(model: nn.Module, example: torch.Tensor, path: Path, *,
                 dynamo: bool = True) -> dict[str, Any]:
    """Write ``model`` (eval mode) to ``path`` as ONNX with a dynamic batch dimension.

    ``dynamo=True`` (the default: ``torch.export``, needs onnxscript) is torch's exporter;
    ``dynamo=False`` the TorchScript-based one (opset 17), deprecated by torch, which
    :func:`export_model` uses only when the first fails. Warnings are the user's to see."""
    if dynamo:
        torch.onnx.export(model, (example,), str(path), dynamo=True, verbose=False,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_shapes=({0: _batch_dim()},), external_data=False)
    else:
        torch.onnx.export(model, (example,), str(path), dynamo=False,
                          opset_version=ONNX_OPSET, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    return {"opset": opset, "exporter": "dynamo" if dynamo else "torchscript",
            "input": INPUT_NAME, "output": OUTPUT_NAME, "dynamic_axes": {"batch": 0}}


def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> dict[str, Any]:
    """ONNX from the ``dynamo=True`` exporter; from the TorchScript-based one only when that
    fails (saying why in the returned ``fallback``)."""
    try:
        return _export_onnx(model, example, path)
    except Exception as first:
        reason = f"{type(first).__name__}: {first}".splitlines()[0][:300]
        log.warning("torch.onnx's dynamo exporter failed (%s); using the TorchScript-based "
                    "exporter", reason)
        try:
            info = _export_onnx(model, example, path, dynamo=False)
        except Exception as second:
            raise ExportError(f"ONNX export failed with both exporters: {reason}; "
                              f"{type(second).__name__}: {second}") from second
        return {**info, "fallback": reason}


def _write_pt2(model: nn.Module, example: torch.Tensor, path: Path,
               genome_doc: Mapping[str, Any]) -> Any:
    """Write ``model`` (eval mode) as a ``torch.export`` program with a dynamic batch; return
    the program as loaded back from ``path``."""
    program = torch.export.export(model, (example,), dynamic_shapes=({0: _batch_dim()},))
    torch.export.save(program, str(path), extra_files={"evonas.json": json.dumps(genome_doc)})
    return torch.export.load(str(path)).module()


def _inputs(input_shape: tuple[int, ...], batch: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, *input_shape, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def _write_files(directory: Path, model: nn.Module, genome: Any, space: Mapping[str, Any],
                 input_shape: tuple[int, ...], formats: tuple[str, ...],
                 info: Mapping[str, Any], latency: Mapping[str, Any]) -> None:
    genome_doc = {"encoding": genome.encoding, "genome": genome.to_dict(),
                  "string": genome.to_string(), "key": genome.key()}
    _write_json(directory / "genome.json", genome_doc)
    example = _inputs(input_shape, 2, 0)                     # traced with a batch of 2
    probes = [_inputs(input_shape, 1, 1), _inputs(input_shape, 3, 2)]  # checked at 1 and 3
    references = [model(x) for x in probes]
    checks: dict[str, Any] = {"batch_sizes": [1, 3]}
    onnx_info = None

    if "weights" in formats:
        from safetensors.torch import load_file, save_file

        path = directory / FILES["weights"]
        state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(path), metadata={"format": EXPORT_FORMAT,
                                              "genome": genome.to_string()})
        rebuilt = build_model(genome, space)
        rebuilt.load_state_dict(load_file(str(path)))
        rebuilt.eval()
        diff = max(_max_diff(rebuilt(x), ref) for x, ref in zip(probes, references))
        _check("weights (reloaded through the decoder)", diff, 1e-6, references[0])
        checks["weights_max_abs_diff"] = diff

    if "pt2" in formats:
        loaded = _write_pt2(model, example, directory / FILES["pt2"], genome_doc)
        diff = max(_max_diff(loaded(x), ref) for x, ref in zip(probes, references))
        _check("torch.export (pt2)", diff, PT2_TOLERANCE, references[0])
        checks["pt2_max_abs_diff"] = diff

    if "torchscript" in formats:  # legacy: torch marks jit.trace / jit.load deprecated
        path = directory / FILES["torchscript"]
        traced = torch.jit.trace(model, (example,), check_trace=False)  # checked below
        torch.jit.save(traced, str(path), _extra_files={"evonas.json": json.dumps(genome_doc)})
        loaded = torch.jit.load(str(path))
        diff = max(_max_diff(loaded(x), ref) for x, ref in zip(probes, references))
        _check("TorchScript", diff, TORCHSCRIPT_TOLERANCE, references[0])
        checks["torchscript_max_abs_diff"] = diff

    if "onnx" in formats:
        import onnxruntime

        path = directory / FILES["onnx"]
        onnx_info = _write_onnx(model, example, path)
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        diff = max(_max_diff(ref, session.run(None, {INPUT_NAME: x.numpy()})[0])
                   for x, ref in zip(probes, references))
        _check("ONNX", diff, ONNX_TOLERANCE, references[0])
        checks["onnx_max_abs_diff"] = diff

    total = sum(p.numel() for p in model.parameters())
    params = inference_parameters(model)
    task = get_task(info.get("input", {}).get("task", "classification"))
    settings = {
        "format": EXPORT_FORMAT, "version": EXPORT_VERSION,
        "genome": genome_doc["string"], "space": dict(space),
        "input": {"shape": list(input_shape), "layout": task.layout, "dtype": "float32",
                  "name": INPUT_NAME},
        "output": task.output_meaning(space),
        "files": {f: FILES[f] for f in formats},
        "parameters": params, "auxiliary_parameters": total - params,
        "flops": count_flops(model, tuple(input_shape)),
        "latency": measure_latency(model, tuple(input_shape), **latency),
        "onnx": onnx_info, "checks": checks, "torch": torch.__version__,
    }
    for key, value in info.items():
        if key == "input":
            settings["input"] = {**settings["input"], **value}
        else:
            settings.setdefault(key, value)
    _write_json(directory / "settings.json", settings)
    (directory / "README.md").write_text(model_card(genome_doc, settings), encoding="utf-8")


def export_model(model: nn.Module, genome: Any, space: Mapping[str, Any],
                 out_dir: str | os.PathLike, *, input_shape: Iterable[int],
                 formats: Iterable[str] | str = FORMATS, info: Optional[Mapping[str, Any]] = None,
                 latency_batch_size: int = 1,
                 latency_seconds: float = DEFAULT_LATENCY_SECONDS,
                 latency_runs: Optional[int] = None) -> Path:
    """Write ``model`` (decoded from ``genome`` with ``space``, which includes ``in_channels``
    and ``num_classes``) to the export folder ``out_dir`` and return its path.

    ``input_shape`` is one example's (C, H, W). ``formats`` picks among :data:`FORMATS`;
    ``genome.json``, ``settings.json`` and ``README.md`` are always written. ``info`` adds
    entries to ``settings.json`` that the model card reads: ``metrics`` (``val_accuracy``,
    ``test_accuracy``, ...), ``search_metrics``, ``training`` (``trained``, ``epochs``,
    ``data``, ``seed``, ...), ``source``, ``input`` (``dataset``, ``normalize``),
    ``evaluation``, ``data``. The model is put in eval mode (and left there); its weights are
    not changed. ``out_dir`` is replaced if it is an earlier export; any other non-empty folder
    is an error. Latency is measured on the CPU for a batch of ``latency_batch_size`` with
    ``torch.utils.benchmark`` for ``latency_seconds`` (or exactly ``latency_runs`` single
    calls), see :func:`training.measures.measure_latency`.
    """
    formats = check_formats(formats)
    input_shape = tuple(int(n) for n in input_shape)
    model.eval()
    return replace_dir(Path(out_dir), lambda tmp: _write_files(
        tmp, model, genome, space, input_shape, formats, dict(info or {}),
        {"batch_size": latency_batch_size, "min_run_time": latency_seconds,
         "runs": latency_runs, "device": "cpu"}), owned=is_export)


# ------------------------------------------------------------------------------- loading
MAX_PARAMETERS = 2_000_000_000
""":func:`load_model` refuses a model larger than this (8 GB of float32) unless told more."""


def load_model(export_dir: str | os.PathLike, *,
               max_parameters: int = MAX_PARAMETERS) -> nn.Module:
    """Rebuild the model of an export folder through the decoder and load its weights; return
    it in eval mode (call ``.train()`` to fine-tune it).

    Reads ``genome.json``, the decoder space in ``settings.json`` and ``model.safetensors``:
    the one layout of a trained genome, whether an export folder or a run's ``best/``. Nothing
    in the folder is executed, and the model is sized before it is built: the decoder refuses
    settings beyond its bounds, and a model over ``max_parameters`` is refused.
    """
    directory = Path(export_dir)
    if not directory.is_dir():
        raise ExportError(f"{directory} is not a folder; give an export folder (with "
                          f"genome.json, settings.json and model.safetensors), e.g. "
                          f"runs/<name>/export/1 or runs/<name>/best")
    genome_doc = _read_json(directory / "genome.json")
    settings = _read_json(directory / "settings.json")
    space = settings.get("space") if isinstance(settings, dict) else None
    if not isinstance(genome_doc, dict) or "genome" not in genome_doc or not space:
        raise ExportError(f"{directory} lacks the genome or its decoder space; give a folder "
                          f"written by evonas export")
    genome = genome_from_dict(genome_doc["genome"])
    with torch.device("meta"):  # sized first, without allocating: the folder may be untrusted
        size = sum(p.numel() for p in build_model(genome, space).parameters())
    if size > max_parameters:
        raise ExportError(f"{directory} describes a model of {size:,} parameters, more than "
                          f"max_parameters={max_parameters:,}; pass a larger max_parameters "
                          f"if you trust this folder")
    model = build_model(genome, space)
    if not (directory / FILES["weights"]).exists():
        raise ExportError(f"{directory} has no weights ({FILES['weights']}); export again "
                          f"with the 'weights' format")
    from safetensors.torch import load_file

    state = load_file(str(directory / FILES["weights"]))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ExportError(f"the weights in {directory} do not fit the genome's model: {exc}") \
            from None
    return model.eval()


# ------------------------------------------------------------------------------- model card
def _fmt(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "n/a"


def _numbers(values: Iterable[float]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def _latency(latency: Mapping[str, Any]) -> str:
    """``0.123 ms per batch of 1 (median; IQR 0.004 ms over 250 runs of 40 calls, ...)``."""
    threads = latency["threads"]
    return (f"{latency['median_ms']:.3g} ms per batch of {latency['batch_size']} (median; "
            f"interquartile range {latency.get('iqr_ms', float('nan')):.2g} ms over "
            f"{latency['runs']} runs of {latency.get('calls_per_run', 1)} call"
            f"{'s' if latency.get('calls_per_run', 1) != 1 else ''}; "
            f"{latency.get('method', 'perf_counter')}; {threads} thread"
            f"{'s' if threads != 1 else ''}, {latency.get('hardware', latency.get('cpu'))}, "
            f"torch {latency['torch']}, eager PyTorch)")


def preprocessing(inp: Mapping[str, Any]) -> list[str]:
    """Python lines (numpy only) that define ``x``, the model's float32 input, from ``raw``
    inputs as the data set stores them: this model's scaling and standardisation."""
    shape = [int(n) for n in inp["shape"]]
    dims = ", ".join(map(str, [2, *shape]))
    divisor = inp.get("divisor")
    lines = ["import numpy as np", ""]
    if divisor:
        top = int(divisor)
        lines += [f"# raw: a batch as `{inp.get('dataset')}` stores it, (batch, "
                  f"{', '.join(map(str, shape))}), values 0..{top}",
                  "# (images as (batch, H, W, C): raw = raw.transpose(0, 3, 1, 2); "
                  "one channel as (batch, H, W): raw = raw[:, None])",
                  f"raw = np.random.default_rng(0).integers(0, {top + 1}, size=({dims}))",
                  f"x = raw.astype(np.float32) / {divisor:g}"]
    else:
        lines += [f"# raw: a batch scaled as the training data (`{inp.get('dataset')}`, "
                  f"{inp.get('scaling', 'as stored')}), shape (batch, "
                  f"{', '.join(map(str, shape))})",
                  f"raw = np.random.default_rng(0).normal(size=({dims}))",
                  "x = raw.astype(np.float32)"]
    norm = inp.get("normalize")
    if norm:
        per_channel = "(1, -1" + ", 1" * (len(shape) - 1) + ")"
        lines += [f"mean = np.array({[float(v) for v in norm['mean']]!r}, "
                  f"dtype=np.float32).reshape{per_channel}",
                  f"std = np.array({[float(v) for v in norm['std']]!r}, "
                  f"dtype=np.float32).reshape{per_channel}",
                  "x = (x - mean) / std            # standardised as in training"]
    return lines


def model_card(genome_doc: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    """The ``README.md`` of an export folder, from its ``genome.json`` and ``settings.json``."""
    metrics = settings.get("metrics") or {}
    search = settings.get("search_metrics") or {}
    training = settings.get("training") or {}
    source = settings.get("source") or {}
    inp = settings["input"]
    trained = training.get("trained", False)
    retrained = training.get("data") == "train+val"
    kind = get_encoding(genome_doc["encoding"]).title
    task = get_task(inp.get("task", "classification"))
    primary = task.primary  # the metric the card's first rows show, e.g. accuracy

    lines = [f"# {kind} model `{genome_doc['string']}`", ""]
    if source.get("kind") == "run":
        lines += [f"Rank {source['rank']} of run `{source['run']}` (evaluation "
                  f"{source['index']}, seed {source['seed']}), exported by evonas.", ""]
    elif source.get("kind") == "genome":
        lines += ["Built from the genome alone by evonas: **untrained** (random initialisation, "
                  f"seed {training.get('seed')}). Nothing is measured.", ""]

    val_key, test_key = f"val_{primary}", f"test_{primary}"
    if not trained:
        val, test = "not measured (untrained)", "not measured (untrained)"
    elif retrained:
        val = (f"not meaningful: retrained on training + validation data (during the search: "
               f"{_fmt(search.get(val_key))})")
        test = f"{_fmt(metrics.get(test_key))} (after retraining)"
    else:
        val = _fmt(metrics.get(val_key))
        if val_key in search:
            val += f" (during the search: {_fmt(search[val_key])})"
        test = _fmt(metrics.get(test_key))
    latency = settings["latency"]
    params = f"{settings['parameters']:,}"
    if settings.get("auxiliary_parameters"):
        params += (f" (plus {settings['auxiliary_parameters']:,} in the auxiliary head, used in "
                   f"training only)")
    rows = [("genome", f"`{genome_doc['string']}`"), ("canonical key", f"`{genome_doc['key']}`"),
            (f"validation {primary}", val), (f"test {primary}", test), ("parameters", params),
            ("FLOPs per example", f"{settings['flops']:,}"),
            ("CPU latency", _latency(latency))]
    if trained:  # the task's other metrics (a signal model's ACLR and EVM), test split
        rows[4:4] = [(f"test {m}", _fmt(metrics.get(f"test_{m}")))
                     for m in task.split_metrics if m not in (primary, "loss")
                     and metrics.get(f"test_{m}") is not None]
    if source.get("objectives") and source.get("values"):  # as the search measured them
        rows.append(("objectives (search)", ", ".join(
            f"{o} = {v:.6g}" for o, v in zip(source["objectives"], source["values"]))))
    lines += ["| | |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows] + [""]

    if trained:
        epochs = training.get("epochs")
        on = "training + validation data" if retrained else "the training split"
        lines += ["## Training", "",
                  f"Trained from scratch for {epochs} epoch{'s' if epochs != 1 else ''} on {on} "
                  f"of `{inp.get('dataset')}` with seed {training.get('seed')} and "
                  f"{training.get('threads')} CPU thread(s); the evaluation settings are in "
                  f"`settings.json` (`evaluation`). "
                  + (f"The search used a shorter proxy; validation {primary} is not "
                     f"meaningful after training on the validation data." if retrained else
                     "These are the search's settings and seed, so the numbers match the "
                     "search's on the same machine and thread count.")
                  + (" The test split was used once, to measure this model."), ""]

    shape = "x".join(str(n) for n in inp["shape"])
    lines += ["## Input and output", "",
              f"Input `{INPUT_NAME}`: float32, shape (batch, {', '.join(map(str, inp['shape']))})"
              f" ({shape} {task.data_kind}, {task.layout}) as evonas loads the data set "
              f"`{inp.get('dataset')}` ({inp.get('scaling', 'as stored')})"]
    norm = inp.get("normalize")
    if norm:
        lines[-1] += (f", then standardised per channel: `(x - mean) / std` with mean "
                      f"{_numbers(norm['mean'])} and std {_numbers(norm['std'])} (exact values in "
                      f"`settings.json`, `input.normalize`).")
    else:
        lines[-1] += ", not standardised."
    output = settings["output"]
    lines += ["", f"Output `{output['name']}`: shape ({', '.join(map(str, output['shape']))}), "
                  f"{output['meaning']}; the batch size is free.", ""]
    labels = inp.get("labels")
    if labels:
        lines += ["Classes: " + ", ".join(f"{i} `{name}`" for i, name in enumerate(labels)) + ".",
                  ""]

    files = settings["files"]
    lines += ["## Preprocessing", "",
              "From raw inputs to `x`, the model's input, with numpy alone (this model's "
              "scaling and standardisation; replace the stand-in `raw` with your data):", "",
              "```python", *preprocessing(inp), "```", ""]
    lines += ["## Load it", "", "Each snippet takes the `x` above; none needs evonas.", ""]
    labelled = ([f"labels = {list(labels)!r}",
                 "print([labels[i] for i in logits.argmax(1)])   # the predicted classes"]
                if labels else [])
    if "pt2" in files:
        lines += ["`torch.export` program (needs only torch; inference graph, eval mode, "
                  "any batch size):", "",
                  "```python", "import torch", "",
                  f'model = torch.export.load("{files["pt2"]}").module()',
                  "logits = model(torch.from_numpy(x))", *labelled, "```", ""]
    if "onnx" in files:
        onnx_info = settings.get("onnx") or {}
        exporter = ("torch.onnx's dynamo exporter" if onnx_info.get("exporter") == "dynamo"
                    else "torch.onnx's legacy TorchScript-based exporter")
        lines += [f"ONNX (opset {onnx_info.get('opset')}, dynamic batch, from {exporter}) with "
                  f"onnxruntime:", ""]
        if onnx_info.get("fallback"):
            lines[-2] = lines[-2][:-1] + (f" The dynamo exporter failed on this model "
                                          f"({onnx_info['fallback']}), so the legacy exporter "
                                          f"wrote this file.")
        lines += ["```python", "import onnxruntime", "",
                  f'session = onnxruntime.InferenceSession("{files["onnx"]}")',
                  f'logits = session.run(None, {{"{INPUT_NAME}": x}})[0]', "```", ""]
    if "torchscript" in files:
        lines += ["TorchScript (legacy: torch deprecates TorchScript and `torch.jit.load` warns "
                  "so; prefer the pt2 file):", "",
                  "```python", "import torch", "",
                  f'model = torch.jit.load("{files["torchscript"]}")',
                  "logits = model(torch.from_numpy(x))", "```", ""]
    if "weights" in files:
        lines += ["With evonas: the decoder's `nn.Module` with these weights, in eval mode "
                  "(call `.train()` to fine-tune):", "",
                  "```python", "from training import load_model", "",
                  'model = load_model("path/to/this/folder")', "```", "",
                  f"`{files['weights']}` holds the `state_dict` (safetensors); `load_model` "
                  "rebuilds the model from `genome.json` and `settings.json` (`space`) and "
                  "executes nothing from the folder.", ""]

    lines += ["## Files", "", "| file | content |", "| --- | --- |",
              "| `genome.json` | the genome: dict form, text form, canonical key |",
              "| `settings.json` | decoder space, input, evaluation settings, training, metrics, "
              "latency, export checks |"]
    described = {"weights": "weights (`state_dict`, safetensors)",
                 "pt2": "`torch.export` program, eval mode, dynamic batch dimension",
                 "onnx": "ONNX, eval mode, dynamic batch dimension",
                 "torchscript": "TorchScript, traced in eval mode (legacy)"}
    lines += [f"| `{name}` | {described[f]} |" for f, name in files.items()]
    lines += ["| `README.md` | this card |", ""]
    return "\n".join(lines)
