"""Trained genomes out of a run: the run's ``best/``, ``evonas export``, a genome alone.

A trained genome has one on-disk form, the export folder of :mod:`training.export`
(``genome.json``, ``settings.json``, ``model.safetensors``, a model card, and optionally
TorchScript and ONNX), and one way to be trained, :func:`train_result`:

- at the end of a run, the best genome is retrained with its evaluation seed and the workers'
  thread count (the search's numbers again on the same machine, plus the test accuracy) and
  written to ``RUN_DIR/best/`` by :func:`save_best` (weights only);
- ``RUN_DIR/export/`` holds ``index.json`` (one entry per rank: genome, key, evaluation index,
  seed, values, metrics) and ``1/``, ``2/``, ... one export folder per rank of
  :meth:`RunRecord.best`, each retrained the same way (rank 1 reuses ``best/`` when it holds
  that result's weights), or with ``retrain_epochs=E`` trained from scratch on training +
  validation data for E epochs (search with a short proxy, then train the winner fully);
- :func:`export_genome` writes an untrained model of any genome with a config's decoder.

Every folder is built beside its target and moved into place at the end: a failed or
interrupted export leaves the previous one untouched.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Union

from evolution.config import Config, load_config
from evolution.journal import JOURNAL, RunDirectoryError, write_json
from evolution.objectives import Objectives
from evolution.record import BEST, RunRecord
from evolution.tuning import training_settings
from genome import GenomeError, genome_from_dict, load_genome
from training.export import (FORMATS, ExportError, check_formats, export_model, input_spec,
                             replace_dir)

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]
INDEX_FORMAT = "evonas-export-index"

__all__ = ["FORMATS", "ExportError", "export_genome", "export_run", "parse_genome",
           "ranked_results", "save_best", "train_result"]


# ------------------------------------------------------------------------------- checks
def _record(run_dir: Path) -> RunRecord:
    """The run's :class:`RunRecord`, its config validated; problems as :class:`ExportError`."""
    try:
        record = RunRecord(run_dir)
        record.config  # noqa: B018 - loads and validates config.yaml
    except RunDirectoryError as exc:
        raise ExportError(str(exc)) from None
    return record


def check_trainable(config: Config, what: str) -> None:
    """An :class:`ExportError` unless the built-in trainer can build and train the config's
    genomes (no evaluator, and a decoder for the encoding)."""
    from genome import ENCODINGS

    encoding = config.search.encoding
    decodable = [name for name, e in ENCODINGS.items() if e.decoder]
    if config.evaluation.evaluator:
        raise ExportError(
            f"{what} uses the evaluator {config.evaluation.evaluator!r}, which scores genomes "
            f"without building a model, so there is nothing to export. Export needs the "
            f"built-in trainer (evaluation.evaluator unset)"
            + ("" if encoding not in decodable else
               "; to get a model of one of its genomes anyway, use evonas export --genome "
               "GENOME --config CONFIG --out DIR with a config that sets no evaluator"))
    if encoding not in decodable:
        raise ExportError(f"{what} searches {encoding} genomes, which evonas cannot decode into "
                          f"a model; export works for {', '.join(decodable)} genomes")


def ranked_results(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The run's successful results, one per distinct architecture, best first
    (:meth:`RunRecord.best`): each the ``result`` event of the evaluation that trained it, whose
    ``seed`` reproduces its metrics."""
    return RunRecord(run_dir).best()


def _no_success(record: RunRecord) -> ExportError:
    counts = record.counts()["statuses"]
    found = (", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
             if counts else "no evaluation has finished yet")
    return ExportError(f"run {record.path} has no successful evaluation ({found}), so there is "
                       f"no model to export; the messages of failed evaluations are in "
                       f"{record.path / JOURNAL}")


def _latency_settings(config: Config) -> dict[str, Any]:
    """How :func:`export_model` measures latency for the card: as ``latency_ms`` is measured
    in the search (batch, seconds), on the CPU."""
    return {"latency_batch_size": config.evaluation.latency_batch_size,
            "latency_seconds": config.evaluation.latency_seconds}


# ------------------------------------------------------------------------------- training
def train_result(config: Config, result: Mapping[str, Any], splits: Any, space: Mapping[str, Any],
                 epochs: Optional[int] = None):
    """Train the genome of ``result`` with its evaluation seed, the run's evaluation settings
    and the workers' thread count (``pool.threads_per_worker``): as in the search (``epochs``
    None: on the training split, measured on validation and test), or from scratch for
    ``epochs`` on training + validation data (test metrics only). Returns ``(model, metrics,
    training)``, ``training`` saying how (for the model card)."""
    import torch

    from training.trainer import score

    evaluation = training_settings(config.evaluation.model_dump(mode="json"), result["genome"])
    genome = genome_from_dict(result["genome"])
    training = {"trained": True, "seed": result["seed"],
                "threads": config.pool.threads_per_worker,
                "epochs": epochs if epochs is not None else evaluation["epochs"],
                "data": "train" if epochs is None else "train+val",
                "weights": "retrained for this export"}
    threads = torch.get_num_threads()
    torch.set_num_threads(config.pool.threads_per_worker)  # as in the workers: same numbers
    try:
        metrics, model = score(genome, space, splits,
                               evaluation if epochs is None else {**evaluation, "epochs": epochs},
                               result["seed"], with_test=True, task=config.task.name,
                               train_on_val=epochs is not None)
    except Exception as exc:  # NaN loss, out of memory: say which genome
        raise ExportError(f"retraining {genome} (evaluation {result['index']}) failed: "
                          f"{type(exc).__name__}: {exc}"
                          + ("; try fewer epochs or a lower evaluation.lr" if epochs else "")) \
            from exc
    finally:
        torch.set_num_threads(threads)
    if epochs is None:
        training["reproduced"] = _reproduced(config, metrics, result)
        if not training["reproduced"]:
            log.warning("retraining %s does not give the search's metrics (%s, not %s): a "
                        "different machine, torch version or thread count", genome,
                        _primary(config, metrics), _primary(config, result["metrics"]))
    return model.cpu(), metrics, training


def _primary(config: Config, metrics: Mapping[str, Any]) -> Any:
    from training.tasks import get_task

    return metrics.get(f"val_{get_task(config.task.name).primary}")


def _reproduced(config: Config, metrics: Mapping[str, Any], result: Mapping[str, Any]) -> bool:
    """Whether retraining gave the search's validation metric exactly."""
    return _primary(config, metrics) == _primary(config, result["metrics"])


def _info(config: Config, record_name: str, run_dir: Path, rank: int, result: Mapping[str, Any],
          metrics: Mapping[str, Any], training: Mapping[str, Any],
          spec: Mapping[str, Any]) -> dict[str, Any]:
    """What ``settings.json`` says about a trained result of a run."""
    return {"source": {"kind": "run", "run": record_name, "run_dir": str(run_dir),
                       "rank": rank, "index": result["index"], "key": result["key"],
                       "seed": result["seed"], "values": result["values"],
                       "objectives": [str(o) for o in Objectives.from_config(config)]},
            "metrics": dict(metrics), "search_metrics": result["metrics"],
            "training": dict(training), "input": dict(spec),
            "evaluation": training_settings(config.evaluation.model_dump(mode="json"),
                                            result["genome"]),
            "data": config.data.model_dump(mode="json")}


def save_best(run_dir: Path, config: Config, best: Mapping[str, Any]) -> dict[str, Any]:
    """Retrain the run's best result (:func:`train_result`) and write it to ``run_dir/best/``
    as an export folder with the weights; return its metrics (test accuracy included)."""
    spec, splits = input_spec(config.data.model_dump(mode="json"), config.task.name)
    space = config.model_space(splits)
    model, metrics, training = train_result(config, best, splits, space)
    genome = genome_from_dict(best["genome"])
    export_model(model, genome, space, run_dir / BEST, input_shape=spec["shape"],
                 formats=("weights",),
                 info=_info(config, config.name, run_dir, 1, best, metrics, training, spec),
                 **_latency_settings(config))
    return metrics


def _reuse_best(run_dir: Path, result: Mapping[str, Any], space: Mapping[str, Any],
                config: Config):
    """``(model, metrics)`` from ``best/`` when it holds this result's weights, trained with
    the same space and evaluation settings; else ``None``."""
    from training.export import is_export, load_model

    folder = run_dir / BEST
    if not is_export(folder):
        return None
    settings = json.loads((folder / "settings.json").read_text(encoding="utf-8"))
    source = settings.get("source") or {}
    if not (source.get("key") == result["key"] and source.get("seed") == result["seed"]
            and settings.get("space") == dict(space)
            and settings.get("evaluation") == training_settings(
                config.evaluation.model_dump(mode="json"), result["genome"])
            and (settings.get("training") or {}).get("data") == "train"):
        return None
    try:
        return load_model(folder), dict(settings["metrics"])
    except ExportError as exc:  # unreadable or not this model's: retrain instead
        log.warning("cannot reuse %s (%s); retraining", folder, exc)
        return None


# ------------------------------------------------------------------------------- export_run
def export_run(run_dir: str | os.PathLike, *, top: int = 1, retrain_epochs: Optional[int] = None,
               formats: Iterable[str] | str = FORMATS,
               progress: Optional[Progress] = None, pareto: bool = False) -> list[Path]:
    """Export the ``top`` best distinct genomes of the run in ``run_dir`` to
    ``run_dir/export/<rank>/`` (rank 1 = best, :meth:`RunRecord.best`) and return those
    folders, best first. With ``pareto``, every member of the run's Pareto front instead
    (:meth:`RunRecord.front`, ranked the same way; ``top`` is ignored), each model card
    listing all its objective values.

    Each genome is retrained by :func:`train_result` (rank 1 reuses ``best/`` when it matches);
    with ``retrain_epochs`` each is trained from scratch on training + validation data for that
    many epochs instead. Fewer folders than ``top`` come back when the run has fewer distinct
    successful genomes. ``formats``: any of :data:`training.export.FORMATS`. ``progress``
    receives ``export_start``, ``export_train`` (before each training) and ``exported`` (after
    each folder) events. The previous ``export/`` folder is replaced as a whole once every rank
    is written.
    """
    import torch

    progress = progress or (lambda event: None)
    run_dir = Path(run_dir)
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ExportError(f"top must be a positive number of genomes, got {top!r}")
    if retrain_epochs is not None and (isinstance(retrain_epochs, bool) or
                                       not isinstance(retrain_epochs, int) or retrain_epochs < 1):
        raise ExportError(f"retrain_epochs must be a positive number of epochs, got "
                          f"{retrain_epochs!r}")
    formats = check_formats(formats)
    record = _record(run_dir)
    config = record.config
    check_trainable(config, f"run {run_dir}")
    ranked = record.front() if pareto else record.best()
    if not ranked:
        raise _no_success(record)
    chosen = ranked if pareto else ranked[:top]
    if not pareto and len(chosen) < top:
        log.warning("run %s has %d distinct successful genomes; exporting %d, not %d",
                    run_dir, len(ranked), len(chosen), top)
    spec, splits = input_spec(config.data.model_dump(mode="json"), config.task.name)
    space = config.model_space(splits)
    progress({"event": "export_start", "run_dir": str(run_dir), "ranks": len(chosen),
              "top": top, "retrain_epochs": retrain_epochs, "formats": list(formats)})
    entries: list[dict[str, Any]] = []

    def build(root: Path) -> None:
        for rank, result in enumerate(chosen, 1):
            genome = genome_from_dict(result["genome"])
            progress({"event": "export_train", "rank": rank, "genome": genome.to_string(),
                      "index": result["index"], "seed": result["seed"],
                      "epochs": retrain_epochs})
            reused = (_reuse_best(run_dir, result, space, config)
                      if retrain_epochs is None else None)
            if reused is not None:
                model, metrics = reused
                training = {"trained": True, "seed": result["seed"],
                            "threads": config.pool.threads_per_worker,
                            "epochs": config.evaluation.epochs, "data": "train",
                            "weights": "best/ (retrained by the run with this seed)",
                            "reproduced": _reproduced(config, metrics, result)}
            else:
                model, metrics, training = train_result(config, result, splits, space,
                                                        retrain_epochs)
            path = export_model(
                model, genome, space, root / str(rank), input_shape=spec["shape"],
                formats=formats,
                info=_info(config, config.name, run_dir, rank, result, metrics, training, spec),
                **_latency_settings(config))
            entries.append({"rank": rank, "path": str(rank), "genome": genome.to_string(),
                            "key": result["key"], "index": result["index"],
                            "seed": result["seed"], "values": result["values"],
                            "metrics": metrics, "training": training})
            latency = json.loads((path / "settings.json").read_text())["latency"]
            progress({"event": "exported", "rank": rank,
                      "path": str(run_dir / "export" / str(rank)), "genome": genome.to_string(),
                      "metrics": metrics, "latency_ms": latency["median_ms"]})
        write_json(root / "index.json", {
            "format": INDEX_FORMAT, "version": 2, "run_dir": str(run_dir),
            "objectives": [str(o) for o in record.objectives],
            "selection": "pareto front" if pareto else f"top {top}",
            "retrain_epochs": retrain_epochs, "formats": list(formats),
            "torch": torch.__version__, "ranks": entries})

    target = replace_dir(run_dir / "export", build, owned=_is_export_root)
    return [target / str(entry["rank"]) for entry in entries]


def _is_export_root(path: Path) -> bool:
    try:
        return json.loads((path / "index.json").read_text())["format"] == INDEX_FORMAT
    except (OSError, ValueError, KeyError, TypeError):
        return False


# ------------------------------------------------------------------------------- export_genome
def parse_genome(genome: Union[str, os.PathLike, Mapping[str, Any]], encoding: str):
    """A genome of ``encoding`` from its text form, a dict, or a JSON file holding a genome
    dict or a document with a ``genome`` entry (an export's ``genome.json``); see
    :func:`genome.load_genome`. Any problem is an :class:`ExportError`."""
    try:
        return load_genome(genome, encoding)
    except GenomeError as exc:
        raise ExportError(str(exc)) from None


def export_genome(genome: Union[str, os.PathLike, Mapping[str, Any]],
                  config: Union[str, os.PathLike, Config], out_dir: str | os.PathLike,
                  formats: Iterable[str] | str = FORMATS, *, seed: int = 0) -> Path:
    """Build an **untrained** model of ``genome`` (text, dict or JSON file, see
    :func:`parse_genome`) with the decoder settings of ``config`` (a YAML file, a run
    directory holding ``config.yaml``, or a :class:`Config`) and export it to ``out_dir``.

    The input shape and number of classes come from loading the config's data set (no download
    for digits, npz and synthetic; MNIST, Fashion-MNIST and CIFAR-10 are downloaded once).
    Weights are the decoder's initialisation with torch seeded by ``seed``. The model card
    says it is untrained and gives no accuracies. Returns ``out_dir``.
    """
    from training import build_model
    from training.trainer import seed_everything

    formats = check_formats(formats)
    if not isinstance(config, Config):
        path = Path(config)
        if path.is_dir():
            path = path / "config.yaml"
        config = load_config(path)
        source = str(path)
    else:
        source = config.name
    check_trainable(config, f"config {source}")
    parsed = parse_genome(genome, config.search.encoding)
    data = config.data.model_dump(mode="json")
    spec, splits = input_spec(data, config.task.name)
    space = config.model_space(splits)
    seed_everything(seed)
    model = build_model(parsed, space)
    info = {"source": {"kind": "genome", "config": source},
            "training": {"trained": False, "seed": seed}, "metrics": {}, "input": spec,
            "evaluation": config.evaluation.model_dump(mode="json"), "data": data}
    return export_model(model, parsed, space, out_dir, input_shape=spec["shape"],
                        formats=formats, info=info,
                        **_latency_settings(config))
