"""A decoded genome as files people can use anywhere, and back again.

An export folder holds:

``genome.json``
    the genome (its dict form, text form and canonical key)
``settings.json``
    the decoder space, what the model expects as input (shape, normalisation), the evaluation
    settings, how the weights were trained, metrics, latency and the checks the export ran
``model.safetensors`` (format ``weights``)
    the ``state_dict`` as safetensors: tensors only, no code
``model.ts`` (format ``torchscript``)
    the eval-mode model traced with ``torch.jit.trace``; needs only torch to load
``model.onnx`` (format ``onnx``)
    the eval-mode model in ONNX (opset 17, input ``input``, output ``logits``, dynamic batch)
``README.md``
    a model card: genome, accuracies, parameters, FLOPs, CPU latency, how to load it

TorchScript and ONNX files are inference graphs of the eval-mode model: a cell model with an
auxiliary head returns logits only (the head is used in training only; its weights are still in
``model.safetensors``). :func:`load_model` rebuilds the model through the decoder and reads the
weights with safetensors (or ``torch.load(weights_only=True)``): loading never runs code from
the folder. Every file is checked after it is written (weights reloaded, TorchScript reloaded,
ONNX run in onnxruntime at two batch sizes) and the export fails if an output differs.

A folder is written in a temporary sibling and moved into place, so an interrupted export
leaves the previous one (or nothing), never a half-written folder.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import time
import warnings
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
from training.trainer import count_flops

log = logging.getLogger(__name__)

FORMATS = ("weights", "torchscript", "onnx")
FILES = {"weights": "model.safetensors", "torchscript": "model.ts", "onnx": "model.onnx"}
EXPORT_FORMAT = "evonas-export"
EXPORT_VERSION = 1
ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "logits"
ONNX_INSTALL = ("pip install onnx onnxruntime onnxscript` (from a checkout of evonas: "
                "`.venv/bin/pip install -e '.[export]'`)")

# An exported graph may differ from the eager model by float rounding only.
TORCHSCRIPT_TOLERANCE = 1e-5
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
    layout, ``num_classes`` and the per-channel ``normalize`` mean and std that evonas applied
    (``None`` without normalisation), and ``splits`` is the loaded :class:`training.Splits`."""
    splits = load_dataset(data)
    spec: dict[str, Any] = {
        "dataset": splits.name, "task": task, "layout": get_task(task).layout,
        "dtype": "float32", "shape": list(splits.example_shape),
        "num_classes": splits.num_classes, "scaling": DATASETS[splits.name].scaling,
        "normalize": None}
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


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@torch.no_grad()
def measure_latency(model: nn.Module, input_shape: tuple[int, ...], batch_size: int, *,
                    runs: int = 5, warmup: int = 1) -> dict[str, Any]:
    """CPU wall time of one forward pass of the eval-mode ``model`` on a batch of
    ``batch_size`` random inputs: the median of ``runs`` timed passes after ``warmup`` untimed
    ones, in milliseconds, with torch's current thread count (recorded)."""
    was_training = model.training
    model.eval()
    x = torch.randn(batch_size, *input_shape, generator=torch.Generator().manual_seed(0))
    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    model.train(was_training)
    return {"median_ms": statistics.median(times) * 1000.0, "batch_size": batch_size,
            "runs": runs, "threads": torch.get_num_threads(), "cpu": _cpu_name(),
            "torch": torch.__version__}


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


def _export_onnx(model: nn.Module, example: torch.Tensor, path: Path, *,
                 dynamo: bool = False) -> dict[str, Any]:
    """Write ``model`` (eval mode) to ``path`` as ONNX with a dynamic batch dimension.

    The TorchScript-based exporter (``dynamo=False``, opset 17) is fast and needs only torch;
    torch marks it deprecated, so ``dynamo=True`` (``torch.export``, needs onnxscript) is the
    fallback :func:`export_model` uses when it fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' deprecation and constant-folding notes
        if dynamo:
            torch.onnx.export(model, (example,), str(path), dynamo=True, verbose=False,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_shapes=({0: torch.export.Dim("batch")},),
                              external_data=False)
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
    try:
        return _export_onnx(model, example, path)
    except Exception as first:
        try:
            import onnxscript  # noqa: F401
        except ImportError:
            raise ExportError(f"ONNX export failed: {type(first).__name__}: {first}") from first
        log.warning("the TorchScript-based ONNX exporter failed (%s); trying torch.export", first)
        try:
            return _export_onnx(model, example, path, dynamo=True)
        except Exception as second:
            raise ExportError(f"ONNX export failed with both exporters: {first}; {second}") \
                from second


def _inputs(input_shape: tuple[int, ...], batch: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, *input_shape, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def _write_files(directory: Path, model: nn.Module, genome: Any, space: Mapping[str, Any],
                 input_shape: tuple[int, ...], formats: tuple[str, ...],
                 info: Mapping[str, Any], latency_batch_size: int,
                 latency_runs: int) -> None:
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

    if "torchscript" in formats:
        path = directory / FILES["torchscript"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.trace is marked deprecated in torch 2.9+
            traced = torch.jit.trace(model, (example,), check_trace=False)  # checked below
            torch.jit.save(traced, str(path),
                           _extra_files={"evonas.json": json.dumps(genome_doc)})
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
        "latency": measure_latency(model, tuple(input_shape), latency_batch_size,
                                   runs=latency_runs),
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
                 latency_batch_size: int = 512, latency_runs: int = 5) -> Path:
    """Write ``model`` (decoded from ``genome`` with ``space``, which includes ``in_channels``
    and ``num_classes``) to the export folder ``out_dir`` and return its path.

    ``input_shape`` is one example's (C, H, W). ``formats`` picks among :data:`FORMATS`;
    ``genome.json``, ``settings.json`` and ``README.md`` are always written. ``info`` adds
    entries to ``settings.json`` that the model card reads: ``metrics`` (``val_accuracy``,
    ``test_accuracy``, ...), ``search_metrics``, ``training`` (``trained``, ``epochs``,
    ``data``, ``seed``, ...), ``source``, ``input`` (``dataset``, ``normalize``),
    ``evaluation``, ``data``. The model is put in eval mode (and left there); its weights are
    not changed. ``out_dir`` is replaced if it is an earlier export; any other non-empty folder
    is an error.
    """
    formats = check_formats(formats)
    input_shape = tuple(int(n) for n in input_shape)
    model.eval()
    return replace_dir(Path(out_dir), lambda tmp: _write_files(
        tmp, model, genome, space, input_shape, formats, dict(info or {}), latency_batch_size,
        latency_runs), owned=is_export)


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
            ("CPU latency", f"{latency['median_ms']:.2f} ms per batch of "
                            f"{latency['batch_size']} (median of {latency['runs']} runs, "
                            f"{latency['threads']} thread{'s' if latency['threads'] > 1 else ''}, "
                            f"{latency['cpu']}, torch {latency['torch']}, eager PyTorch)")]
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

    files = settings["files"]
    lines += ["## Load it", ""]
    if "torchscript" in files:
        lines += ["TorchScript (needs only torch, not evonas; inference graph, eval mode):", "",
                  "```python", "import torch", "",
                  f'model = torch.jit.load("{files["torchscript"]}")',
                  "logits = model(x)          # x: float32 tensor (batch, "
                  f"{', '.join(map(str, inp['shape']))})", "```", ""]
    if "onnx" in files:
        onnx_info = settings.get("onnx") or {}
        lines += [f"ONNX (opset {onnx_info.get('opset')}, dynamic batch) with onnxruntime:", "",
                  "```python", "import onnxruntime", "",
                  f'session = onnxruntime.InferenceSession("{files["onnx"]}")',
                  f'logits = session.run(None, {{"{INPUT_NAME}": x}})[0]   # x: float32 numpy '
                  f"array", "```", ""]
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
                 "torchscript": "TorchScript, traced in eval mode",
                 "onnx": "ONNX, eval mode, dynamic batch dimension"}
    lines += [f"| `{name}` | {described[f]} |" for f, name in files.items()]
    lines += ["| `README.md` | this card |", ""]
    return "\n".join(lines)
