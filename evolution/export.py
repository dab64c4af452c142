"""Export from a run directory (the best K genomes, retrained) or from a genome alone.

``RUN_DIR/export/``
    ``index.json``  one entry per rank: genome, key, evaluation index, seed, fitness, metrics
    ``1/``, ``2/``, ... one export folder per rank (rank 1 = best), see :mod:`training.export`

The search keeps no weights but the best's, so each exported genome is retrained: with its
evaluation seed, the run's frozen ``config.yaml`` and the workers' thread count
(``pool.threads_per_worker``), which gives the search's numbers again on the same machine, plus
the test accuracy. The best genome's weights in ``best/`` are reused when they match (same
key, seed, space and settings). With ``retrain_epochs=E`` every exported genome is instead
trained from scratch on training + validation data for E epochs (search with a short proxy,
then train the winner fully) and measured on the test split.

The whole ``export/`` folder is built beside the run and moved into place at the end: a failed
or interrupted export leaves the previous one untouched.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Union

from evolution.config import Config, load_config
from evolution.journal import JOURNAL, read_journal, write_json
from genome import BinaryGenome, CellGenome, GenomeError, genome_from_dict
from training.export import FORMATS, ExportError, check_formats, export_model, input_spec

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]
INDEX_FORMAT = "evonas-export-index"

__all__ = ["FORMATS", "ExportError", "export_genome", "export_run", "parse_genome",
           "ranked_results"]


# ------------------------------------------------------------------------------- run directory
def _run_config(run_dir: Path) -> Config:
    if not run_dir.is_dir():
        raise ExportError(f"run directory {str(run_dir)!r} does not exist; give the folder "
                          f"`evonas run` created, e.g. runs/<name>")
    missing = [name for name in ("config.yaml", JOURNAL) if not (run_dir / name).is_file()]
    if missing:
        raise ExportError(f"{run_dir} is not an evonas run directory (no "
                          f"{' or '.join(missing)}); give the folder `evonas run` created, "
                          f"e.g. runs/<name>")
    return load_config(run_dir / "config.yaml")


def _check_trainable(config: Config, what: str) -> None:
    if config.evaluation.evaluator:
        raise ExportError(
            f"{what} uses the evaluator {config.evaluation.evaluator!r}, which scores genomes "
            f"without building a model, so there is nothing to export. Export needs the "
            f"built-in trainer (evaluation.evaluator unset)"
            + ("" if config.search.encoding == "choice" else
               "; to get a model of one of its genomes anyway, use evonas export --genome "
               "GENOME --config CONFIG --out DIR with a config that sets no evaluator"))
    if config.search.encoding == "choice":
        raise ExportError(f"{what} searches choice genomes, which evonas cannot decode into a "
                          f"model; export works for binary (Genetic-CNN) and cell genomes")


def _order(result: Mapping[str, Any]) -> tuple[float, float, int]:
    """Sort key of results: higher fitness, then lower validation loss, then earlier index."""
    loss = (result.get("metrics") or {}).get("val_loss")
    loss = loss if isinstance(loss, (int, float)) and math.isfinite(loss) else math.inf
    return -float(result["fitness"]), loss, int(result["index"])


def ranked_results(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The run's successful results, one per distinct architecture (canonical key), best
    first: by fitness, then lower validation loss, then evaluation index.

    Each is the journal's ``result`` event of the evaluation that trained the architecture
    (not a cache hit); its ``seed`` is that evaluation's seed, which reproduces its metrics.
    """
    run_dir = Path(run_dir)
    seeds: dict[int, int] = {}
    best: dict[str, dict[str, Any]] = {}
    try:
        events = list(read_journal(run_dir))
    except ValueError as exc:
        raise ExportError(f"{run_dir / JOURNAL} has a line that is not JSON ({exc}); was it "
                          f"edited by hand?") from None
    for event in events:
        if event.get("event") == "ask":
            seeds[event["index"]] = event["seed"]
    for event in events:
        if (event.get("event") != "result" or event.get("status") != "ok"
                or not isinstance(event.get("fitness"), (int, float))):
            continue
        result = dict(event)
        if result.get("cached"):  # metrics of evaluation cache_of, trained with its seed
            source = result.get("cache_of")
            if source not in seeds:
                continue
            result["seed"] = seeds[source]
        key = result["key"]
        # prefer the evaluation that trained it, then the earliest
        rank = (bool(result.get("cached")), result["index"])
        if key not in best or rank < (bool(best[key].get("cached")), best[key]["index"]):
            best[key] = result
    return sorted(best.values(), key=_order)


def _no_success(run_dir: Path) -> ExportError:
    counts = Counter(e.get("status") for e in read_journal(run_dir) if e.get("event") == "result")
    if not counts:
        found = "no evaluation has finished yet"
    else:
        found = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return ExportError(f"run {run_dir} has no successful evaluation ({found}), so there is no "
                       f"model to export; the messages of failed evaluations are in "
                       f"{run_dir / JOURNAL}")


# ------------------------------------------------------------------------------- training
def _reuse_best(run_dir: Path, result: Mapping[str, Any], space: Mapping[str, Any],
                settings: Mapping[str, Any]):
    """``(model, metrics)`` from ``best/`` when it holds this result's retrained weights."""
    import torch

    from training import build_model

    try:
        info = json.loads((run_dir / "best" / "genome.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    weights = run_dir / "best" / "model.pt"
    if not (isinstance(info, dict) and weights.is_file() and info.get("key") == result["key"]
            and info.get("seed") == result["seed"] and info.get("space") == dict(space)
            and info.get("evaluation") == dict(settings)
            and "test_accuracy" in (info.get("metrics") or {})):
        return None
    model = build_model(genome_from_dict(result["genome"]), space)
    try:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except Exception as exc:  # unreadable or not this model's: retrain instead
        log.warning("cannot reuse %s (%s); retraining", weights, exc)
        return None
    return model, dict(info["metrics"])


def _retrain(genome: Any, space: Mapping[str, Any], splits: Any, settings: Mapping[str, Any],
             seed: int, epochs: Optional[int]):
    """Train ``genome`` with ``seed``: as in the search (``epochs`` None: train split, metrics
    on validation and test), or from scratch for ``epochs`` on training + validation data
    (test metrics only). Returns ``(metrics, model)``."""
    import torch

    from training import build_model, score
    from training.score import count_flops, count_parameters, evaluate, seed_everything, train

    if epochs is None:
        return score(genome, space, splits, settings, seed, with_test=True)
    start = time.perf_counter()
    seed_everything(seed)
    model = build_model(genome, {**space, "in_channels": splits.in_channels,
                                 "num_classes": splits.num_classes})
    metrics: dict[str, Any] = {"params": count_parameters(model),
                               "flops": count_flops(model, tuple(splits.x_train.shape[1:]))}
    x = torch.cat([splits.x_train, splits.x_val])
    y = torch.cat([splits.y_train, splits.y_val])
    metrics["train_loss"] = train(model, x, y, {**settings, "epochs": epochs}, seed)
    metrics["val_accuracy"] = metrics["val_loss"] = None  # the validation data was trained on
    metrics["test_accuracy"], metrics["test_loss"] = evaluate(
        model, splits.x_test, splits.y_test, int(settings["eval_batch_size"]))
    if not math.isfinite(metrics["test_loss"]):
        raise ExportError(f"retraining {genome} for {epochs} epochs diverged (test loss "
                          f"{metrics['test_loss']}); try fewer epochs or a lower evaluation.lr")
    metrics["train_seconds"] = time.perf_counter() - start
    return metrics, model


def _train(run_dir: Path, config: Config, result: Mapping[str, Any], space: Mapping[str, Any],
           splits: Any, epochs: Optional[int]):
    """``(model, metrics, training info)`` for one exported result."""
    import torch

    settings = config.evaluation.model_dump(mode="json")
    genome = genome_from_dict(result["genome"])
    training = {"trained": True, "seed": result["seed"], "threads":
                config.pool.threads_per_worker,
                "epochs": epochs if epochs is not None else settings["epochs"],
                "data": "train" if epochs is None else "train+val"}
    if epochs is None:
        reused = _reuse_best(run_dir, result, space, settings)
        if reused is not None:
            model, metrics = reused
            training["weights"] = "best/model.pt (retrained by the search with this seed)"
            training["reproduced"] = metrics.get("val_accuracy") == \
                result["metrics"].get("val_accuracy")
            return model, metrics, training
    threads = torch.get_num_threads()
    torch.set_num_threads(config.pool.threads_per_worker)  # as in the workers: same numbers
    try:
        metrics, model = _retrain(genome, config.search.space(), splits, settings,
                                  result["seed"], epochs)
    except ExportError:
        raise
    except Exception as exc:  # NaN loss, out of memory: say which genome
        raise ExportError(f"retraining {genome} (evaluation {result['index']}) failed: "
                          f"{type(exc).__name__}: {exc}") from exc
    finally:
        torch.set_num_threads(threads)
    training["weights"] = "retrained for this export"
    if epochs is None:
        training["reproduced"] = metrics["val_accuracy"] == result["metrics"].get("val_accuracy")
        if not training["reproduced"]:
            log.warning("retraining %s gives validation accuracy %.4f, the search measured %s: "
                        "a different machine, torch version or thread count", genome,
                        metrics["val_accuracy"], result["metrics"].get("val_accuracy"))
    return model, metrics, training


# ------------------------------------------------------------------------------- export_run
def export_run(run_dir: str | os.PathLike, *, top: int = 1, retrain_epochs: Optional[int] = None,
               formats: Iterable[str] | str = FORMATS,
               progress: Optional[Progress] = None) -> list[Path]:
    """Export the ``top`` best distinct genomes of the run in ``run_dir`` to
    ``run_dir/export/<rank>/`` (rank 1 = best) and return those folders, best first.

    Ranking: successful results only, one per canonical key, by fitness, then lower
    validation loss, then evaluation index. Each genome is retrained with its evaluation seed
    and the run's settings (see the module docstring); with ``retrain_epochs`` it is trained
    from scratch on training + validation data for that many epochs instead. Fewer folders
    than ``top`` come back when the run has fewer distinct successful genomes. ``formats``:
    any of :data:`training.export.FORMATS`. ``progress`` receives ``export_start``,
    ``export_train`` (before each training), ``exported`` (after each folder) events.

    The previous ``export/`` folder is replaced as a whole once every rank is written.
    """
    import torch

    from training.export import replace_dir

    progress = progress or (lambda event: None)
    run_dir = Path(run_dir)
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ExportError(f"top must be a positive number of genomes, got {top!r}")
    if retrain_epochs is not None and (isinstance(retrain_epochs, bool) or
                                       not isinstance(retrain_epochs, int) or retrain_epochs < 1):
        raise ExportError(f"retrain_epochs must be a positive number of epochs, got "
                          f"{retrain_epochs!r}")
    formats = check_formats(formats)
    config = _run_config(run_dir)
    _check_trainable(config, f"run {run_dir}")
    ranked = ranked_results(run_dir)
    if not ranked:
        raise _no_success(run_dir)
    chosen = ranked[:top]
    if len(chosen) < top:
        log.warning("run %s has %d distinct successful genomes; exporting %d, not %d",
                    run_dir, len(ranked), len(chosen), top)
    data = config.data.model_dump(mode="json")
    spec, splits = input_spec(data)
    space = {**config.search.space(), "in_channels": splits.in_channels,
             "num_classes": splits.num_classes}
    evaluation = config.evaluation.model_dump(mode="json")
    progress({"event": "export_start", "run_dir": str(run_dir), "ranks": len(chosen),
              "top": top, "retrain_epochs": retrain_epochs, "formats": list(formats)})
    entries: list[dict[str, Any]] = []

    def build(root: Path) -> None:
        for rank, result in enumerate(chosen, 1):
            genome = genome_from_dict(result["genome"])
            progress({"event": "export_train", "rank": rank, "genome": genome.to_string(),
                      "index": result["index"], "seed": result["seed"],
                      "epochs": retrain_epochs})
            model, metrics, training = _train(run_dir, config, result, space, splits,
                                              retrain_epochs)
            info = {"source": {"kind": "run", "run": config.name, "run_dir": str(run_dir),
                               "rank": rank, "index": result["index"], "seed": result["seed"],
                               "fitness": result["fitness"]},
                    "metrics": metrics, "search_metrics": result["metrics"],
                    "training": training, "input": spec, "evaluation": evaluation, "data": data}
            path = export_model(model, genome, space, root / str(rank),
                                input_shape=spec["shape"], formats=formats, info=info,
                                latency_batch_size=config.evaluation.eval_batch_size)
            entries.append({"rank": rank, "path": str(rank), "genome": genome.to_string(),
                            "key": result["key"], "index": result["index"],
                            "seed": result["seed"], "fitness": result["fitness"],
                            "metrics": metrics, "training": training})
            latency = json.loads((path / "settings.json").read_text())["latency"]
            progress({"event": "exported", "rank": rank,
                      "path": str(run_dir / "export" / str(rank)), "genome": genome.to_string(),
                      "metrics": metrics, "latency_ms": latency["median_ms"]})
        write_json(root / "index.json", {
            "format": INDEX_FORMAT, "version": 1, "run_dir": str(run_dir),
            "retrain_epochs": retrain_epochs, "formats": list(formats), "torch": torch.__version__,
            "ranks": entries})

    target = replace_dir(run_dir / "export", build, owned=_is_export_root)
    return [target / str(entry["rank"]) for entry in entries]


def _is_export_root(path: Path) -> bool:
    try:
        return json.loads((path / "index.json").read_text())["format"] == INDEX_FORMAT
    except (OSError, ValueError, KeyError, TypeError):
        return False


# ------------------------------------------------------------------------------- export_genome
def parse_genome(genome: Union[str, os.PathLike, Mapping[str, Any]], encoding: str):
    """A genome from its text form (``binary``: ``1-01_1-01-001``; ``cell``:
    ``op@i+op@j,.../op@i+op@j,...``), from a dict, or from a JSON file holding a genome dict
    or a document with a ``genome`` entry (``genome.json`` of an export or of ``best/``).
    ``encoding`` is the config's; a genome of another encoding is an error."""
    if isinstance(genome, Mapping):
        doc: Any = genome
    else:
        text = os.fspath(genome).strip()
        path = Path(text)
        if text.endswith(".json") or path.is_file():
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ExportError(f"genome file {text!r} does not exist; give a genome string "
                                  f"or a JSON file with a genome dict") from None
            except (OSError, ValueError) as exc:
                raise ExportError(f"cannot read genome file {text!r}: {exc}") from None
        else:
            doc = None
            cls = {"binary": BinaryGenome, "cell": CellGenome}.get(encoding)
            if cls is None:
                raise ExportError(f"the config searches {encoding} genomes, which evonas cannot "
                                  f"decode into a model; use a binary or cell config")
            try:
                return cls.from_string(text)
            except GenomeError as exc:
                example = ("1-01_1-01-001" if encoding == "binary" else
                           "sep_conv_3x3@0+identity@1,.../avg_pool_3x3@0+max_pool_3x3@1,...")
                raise ExportError(f"{text!r} is not a {encoding} genome ({exc}); the config "
                                  f"expects a string like {example}, or a JSON file with a "
                                  f"genome dict") from None
    if isinstance(doc, Mapping) and isinstance(doc.get("genome"), Mapping):
        doc = doc["genome"]  # genome.json of an export or of best/
    try:
        parsed = genome_from_dict(doc)
    except GenomeError as exc:
        raise ExportError(f"not a genome: {exc}") from None
    if parsed.encoding != encoding:
        raise ExportError(f"the genome is a {parsed.encoding} genome but the config searches "
                          f"{encoding} genomes; give a config of the same encoding")
    return parsed


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
    from training.score import seed_everything

    formats = check_formats(formats)
    if not isinstance(config, Config):
        path = Path(config)
        if path.is_dir():
            path = path / "config.yaml"
        config = load_config(path)
        source = str(path)
    else:
        source = config.name
    _check_trainable(config, f"config {source}")
    parsed = parse_genome(genome, config.search.encoding)
    data = config.data.model_dump(mode="json")
    spec, splits = input_spec(data)
    space = {**config.search.space(), "in_channels": splits.in_channels,
             "num_classes": splits.num_classes}
    seed_everything(seed)
    model = build_model(parsed, space)
    info = {"source": {"kind": "genome", "config": source},
            "training": {"trained": False, "seed": seed}, "metrics": {}, "input": spec,
            "evaluation": config.evaluation.model_dump(mode="json"), "data": data}
    return export_model(model, parsed, space, out_dir, input_shape=spec["shape"],
                        formats=formats, info=info,
                        latency_batch_size=config.evaluation.eval_batch_size)
