"""Export: the best genomes of a run (or a genome alone) as files people can use anywhere.

One tiny Genetic-CNN run and one tiny cell run are made and exported once per module; tests
that export again work on copies. The checks are the issue's: the torch.export program, ONNX
and TorchScript load where evonas is not importable and match the module at several batch sizes,
for both encodings, and so do the model card's snippets; ONNX comes from the dynamo exporter; ``load_model`` gives identical outputs; ``--top``; ``--retrain-epochs``; errors.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY, merge
from evolution import run
from evolution.config import config_from_dict
from evolution.export import export_genome, export_run, parse_genome, ranked_results
from evolution.journal import RunDirectory
from genome import genome_from_dict
from training import ExportError, build_model, load_dataset, load_model
from training.export import FILES, input_spec

CELL = {**TINY, "search": {"encoding": "cell", "blocks": 2, "cells_per_stack": 1, "filters": 4},
        "strategy": {"name": "random", "evaluations": 3}}
CELL_GENOME = "sep_conv_3x3@0+identity@1,max_pool_3x3@2+avg_pool_3x3@0/" \
              "dil_sep_conv_3x3@1+sep_conv_5x5@0,conv_1x7_7x1@2+identity@1"
pytestmark = [pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning"),
              # the legacy TorchScript file's warnings reach users (checked below), not this log
              pytest.mark.filterwarnings("ignore:`torch.jit.trace:FutureWarning"),
              pytest.mark.filterwarnings("ignore:`torch.jit.save` is deprecated:FutureWarning"),
              pytest.mark.usefixtures("one_thread"),
              pytest.mark.slow]  # trains and exports whole runs, subprocesses load them
EVERY_FILE = {"genome.json", "settings.json", "README.md", *FILES.values()}


def _run(tmp_path_factory, config: dict, name: str) -> Path:
    root = tmp_path_factory.mktemp(name)
    return run(config_from_dict({**config, "runs_dir": str(root), "name": name})).run_dir


@contextmanager
def single_thread():
    """torch on one thread while the module's runs are made, restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory) -> Path:
    """A finished tiny Genetic-CNN run (3 distinct genomes), exported with ``top=2``."""
    with single_thread():
        run_dir = _run(tmp_path_factory, TINY, "binary")
        export_run(run_dir, top=2)
    return run_dir


@pytest.fixture(scope="module")
def cell_run(tmp_path_factory) -> Path:
    """A finished tiny cell run (B=2, N=1, F=4), exported with ``top=1``."""
    with single_thread():
        run_dir = _run(tmp_path_factory, CELL, "cell")
        export_run(run_dir)
    return run_dir


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / run_dir.name))


def best_model(run_dir: Path) -> torch.nn.Module:
    """The run's own best model (``best/``), built independently of the export code."""
    genome = json.loads((run_dir / "best" / "genome.json").read_text())["genome"]
    space = json.loads((run_dir / "best" / "settings.json").read_text())["space"]
    model = build_model(genome_from_dict(genome), space)
    model.load_state_dict(load_file(run_dir / "best" / "model.safetensors"))
    return model.eval()


def inputs(*batches: int, shape=(1, 8, 8)) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    return [torch.randn(b, *shape, generator=g) for b in batches]


# ------------------------------------------------------------------------------- export_run
def test_top_k_writes_ranked_folders_with_every_file(binary_run):
    export = binary_run / "export"
    assert sorted(p.name for p in export.iterdir()) == ["1", "2", "index.json"]
    ranked = ranked_results(binary_run)
    assert len({r["key"] for r in ranked}) == len(ranked) >= 3
    assert not any(r["cached"] for r in ranked)
    assert [(-r["values"][0], r["metrics"]["val_loss"]) for r in ranked] == \
        sorted((-r["values"][0], r["metrics"]["val_loss"]) for r in ranked)
    index = json.loads((export / "index.json").read_text())
    docs = []
    for rank in (1, 2):
        folder = export / str(rank)
        assert {p.name for p in folder.iterdir()} == EVERY_FILE
        doc = json.loads((folder / "genome.json").read_text())
        settings = json.loads((folder / "settings.json").read_text())
        result = ranked[rank - 1]
        assert doc["genome"] == result["genome"] and doc["key"] == result["key"]
        assert doc["string"] == genome_from_dict(doc["genome"]).to_string()
        assert settings["source"]["rank"] == rank
        assert settings["source"]["seed"] == settings["training"]["seed"] == result["seed"]
        assert settings["space"] == {"channels": [4, 4], "in_channels": 1, "num_classes": 3}
        assert settings["evaluation"]["epochs"] == 1 and settings["input"]["shape"] == [1, 8, 8]
        # retrained with the evaluation seed: the search's numbers, plus the test accuracy
        assert settings["training"]["reproduced"] is True
        assert settings["metrics"]["val_accuracy"] == result["metrics"]["val_accuracy"]
        assert 0.0 <= settings["metrics"]["test_accuracy"] <= 1.0
        assert settings["latency"]["batch_size"] == 1 and settings["latency"]["median_ms"] > 0
        assert settings["parameters"] == result["metrics"]["params"]
        assert settings["flops"] == result["metrics"]["flops"]
        card = (folder / "README.md").read_text()
        for text in (doc["string"], "validation accuracy", "test accuracy",
                     f"{settings['metrics']['test_accuracy']:.4f}", "FLOPs per example",
                     "ms per batch of 1 (median; interquartile range",
                     "blocked_autorange", "1 thread,", "torch.jit.load", "onnxruntime", "load_model"):
            assert text in card
        assert index["ranks"][rank - 1]["genome"] == doc["string"]
        docs.append(doc)
    assert docs[0]["key"] != docs[1]["key"]
    # rank 1 reuses the search's retrained best weights; rank 2 was retrained for the export
    assert json.loads((export / "1" / "settings.json").read_text())["training"]["weights"] \
        .startswith("best/")
    assert json.loads((export / "2" / "settings.json").read_text())["training"]["weights"] \
        == "retrained for this export"


NO_EVONAS = """
import sys
sys.path.append({site!r})   # torch only: -S skips the .pth of evonas' editable install

class NoEvonas:             # and should evonas be installed into site-packages itself
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("evolution", "training", "genome", "evonas"):
            raise ModuleNotFoundError(name)

sys.meta_path.insert(0, NoEvonas())
for name in ("evolution", "training", "genome", "evonas"):
    try:
        __import__(name)
    except ModuleNotFoundError:
        continue
    raise SystemExit(name + " is importable")
"""


def without_evonas(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh Python that has torch, onnxruntime and numpy but cannot
    import evonas; fails the test when it fails."""
    site = str(Path(torch.__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-I", "-S", "-c",
                           NO_EVONAS.format(site=site) + textwrap.dedent(script), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    return done


@pytest.mark.parametrize("which", ["binary", "cell"])
def test_pt2_onnx_and_torchscript_load_and_match_where_evonas_is_not_importable(
        which, binary_run, cell_run, tmp_path):
    run_dir = {"binary": binary_run, "cell": cell_run}[which]
    folder = run_dir / "export" / "1"
    xs = inputs(1, 3, 7)
    torch.save(xs, tmp_path / "in.pt")
    done = without_evonas("""
        import torch, onnxruntime
        folder = sys.argv[1]
        xs = torch.load(sys.argv[2], weights_only=True)
        pt2 = torch.export.load(folder + "/model.pt2").module()
        session = onnxruntime.InferenceSession(folder + "/model.onnx",
                                               providers=["CPUExecutionProvider"])
        ts = torch.jit.load(folder + "/model.ts")
        torch.save({"pt2": [pt2(x) for x in xs], "ts": [ts(x) for x in xs],
                    "onnx": [torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
                             for x in xs]}, sys.argv[3])
    """, str(folder), "in.pt", "out.pt", cwd=tmp_path)
    assert "deprecated" in done.stderr  # torch.jit.load's warning reaches the user
    outs = torch.load(tmp_path / "out.pt", weights_only=True)
    original = best_model(run_dir)
    with torch.no_grad():
        for fmt, tolerance in (("pt2", 1e-5), ("ts", 1e-5), ("onnx", 1e-4)):
            for x, out in zip(xs, outs[fmt]):  # batches 1, 3, 7: the batch is dynamic
                assert out.shape == (len(x), 3)
                assert (out - original(x)).abs().max() <= tolerance, fmt


def code_blocks(card: str) -> list[str]:
    return [block.split("\n", 1)[1] for block in card.split("```")[1::2]
            if block.startswith("python")]


def test_the_cards_snippets_run_without_evonas(binary_run, tmp_path):
    folder = binary_run / "export" / "1"
    card = (folder / "README.md").read_text()
    blocks = code_blocks(card)
    preprocess = next(b for b in blocks if "raw = " in b)
    pt2 = next(b for b in blocks if "torch.export.load" in b)
    onnx_code = next(b for b in blocks if "onnxruntime" in b)
    without_evonas(preprocess + pt2 + "out_pt2 = logits\n" + onnx_code + """
import numpy as np
np.save(sys.argv[1], x); np.save(sys.argv[2], out_pt2.detach().numpy()); np.save(sys.argv[3], logits)
""", str(tmp_path / "x.npy"), str(tmp_path / "pt2.npy"), str(tmp_path / "onnx.npy"), cwd=folder)
    x = np.load(tmp_path / "x.npy")
    assert x.dtype == np.float32 and x.shape == (2, 1, 8, 8)
    # the stand-in raw data standardised exactly as evonas standardised the training data
    settings = json.loads((folder / "settings.json").read_text())
    mean, std = (np.float32(settings["input"]["normalize"][k][0]) for k in ("mean", "std"))
    stand_in = np.random.default_rng(0).normal(size=(2, 1, 8, 8)).astype(np.float32)
    assert np.array_equal(x, (stand_in - mean) / std)
    with torch.no_grad():
        expected = best_model(binary_run)(torch.from_numpy(x)).numpy()
    assert np.abs(np.load(tmp_path / "pt2.npy") - expected).max() <= 1e-5
    assert np.abs(np.load(tmp_path / "onnx.npy") - expected).max() <= 1e-4
    assert "print(" not in pt2  # synthetic data has no class names


@pytest.mark.parametrize("which", ["binary", "cell"])
def test_onnx_runs_in_onnxruntime_with_a_dynamic_batch(which, binary_run, cell_run):
    run_dir = {"binary": binary_run, "cell": cell_run}[which]
    path = run_dir / "export" / "1" / "model.onnx"
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    original = best_model(run_dir)
    for x in inputs(1, 3):
        out = session.run(None, {"input": x.numpy()})[0]
        assert out.shape == (len(x), 3)
        with torch.no_grad():
            assert np.abs(out - original(x).numpy()).max() <= 1e-4


def test_load_model_gives_identical_outputs(binary_run, cell_run):
    for run_dir in (binary_run, cell_run):
        model = load_model(run_dir / "export" / "1")
        assert not model.training
        original = best_model(run_dir)
        with torch.no_grad():
            for x in inputs(1, 5):
                assert torch.equal(model(x), original(x))
        # a run's best/ folder is an export folder too: it loads the same way
        with torch.no_grad():
            assert torch.equal(load_model(run_dir / "best")(x), original(x))
    # rank 2 has no reference in best/: the export's own TorchScript graph must agree
    model = load_model(binary_run / "export" / "2")
    traced = torch.jit.load(str(binary_run / "export" / "2" / "model.ts"))
    with torch.no_grad():
        x = inputs(4)[0]
        assert (model(x) - traced(x)).abs().max() <= 1e-5


def test_genome_json_files_parse(binary_run):
    """A run's best/genome.json and an export's genome.json both name a genome."""
    best = ranked_results(binary_run)[0]["genome"]
    for path in (binary_run / "best" / "genome.json",
                 binary_run / "export" / "1" / "genome.json"):
        assert parse_genome(path, "binary").to_dict() == best
        assert parse_genome(str(path), "binary").to_dict() == best
    with pytest.raises(ExportError, match="a binary genome, not a cell genome"):
        parse_genome(binary_run / "best" / "genome.json", "cell")


def test_input_normalisation_is_recorded(binary_run):
    data = config_from_dict(TINY).data.model_dump(mode="json")
    spec, splits = input_spec(data)
    raw = load_dataset({**data, "normalize": False})
    mean = torch.tensor(spec["normalize"]["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(spec["normalize"]["std"]).view(1, -1, 1, 1)
    assert torch.allclose((raw.x_val - mean) / std, splits.x_val, atol=1e-5)
    settings = json.loads((binary_run / "export" / "1" / "settings.json").read_text())
    assert settings["input"]["normalize"] == spec["normalize"]


def test_retrain_epochs_trains_on_train_plus_val_and_reports_test_accuracy(binary_run,
                                                                          tmp_path):
    run_dir = copy_run(binary_run, tmp_path)
    events = []
    [folder] = export_run(run_dir, retrain_epochs=2, formats=["weights"],
                          progress=events.append)
    assert [e["event"] for e in events] == ["export_start", "export_train", "exported"]
    assert sorted(p.name for p in (run_dir / "export").iterdir()) == ["1", "index.json"]
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["training"]["data"] == "train+val" and settings["training"]["epochs"] == 2
    assert settings["metrics"]["val_accuracy"] is None
    assert 0.0 <= settings["metrics"]["test_accuracy"] <= 1.0
    card = (folder / "README.md").read_text()
    assert "not meaningful" in card and "after retraining" in card
    assert {p.name for p in folder.iterdir()} == {"genome.json", "settings.json", "README.md",
                                                  "model.safetensors"}
    retrained = load_model(folder).state_dict()
    searched = best_model(run_dir).state_dict()
    assert not all(torch.equal(retrained[k], searched[k]) for k in searched)
    # the model is the one measured: its test accuracy is reproduced from the weights
    splits = load_dataset(settings["data"])
    with torch.no_grad():
        accuracy = (load_model(folder)(splits.x_test).argmax(1) == splits.y_test).float().mean()
    assert float(accuracy) == pytest.approx(settings["metrics"]["test_accuracy"])


def test_a_failed_export_keeps_the_previous_one(binary_run, tmp_path, monkeypatch):
    run_dir = copy_run(binary_run, tmp_path)
    before = (run_dir / "export" / "index.json").read_text()
    import evolution.export as module

    real = module.train_result
    second = ranked_results(run_dir)[1]["key"]

    def fail_on_rank_two(config, result, *args):
        if result["key"] == second:
            raise ExportError("injected failure")
        return real(config, result, *args)

    monkeypatch.setattr(module, "train_result", fail_on_rank_two)
    with pytest.raises(ExportError, match="injected"):
        export_run(run_dir, top=3)
    assert (run_dir / "export" / "index.json").read_text() == before
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == []


# ------------------------------------------------------------------------------- export_genome
@pytest.mark.parametrize("encoding", ["binary", "cell"])
def test_export_genome_builds_an_untrained_model(encoding, write_config, tmp_path):
    config = write_config(TINY if encoding == "binary" else CELL)
    text = "1_1-01" if encoding == "binary" else CELL_GENOME
    out = export_genome(text, config, tmp_path / "out")
    assert {p.name for p in out.iterdir()} == EVERY_FILE
    doc = json.loads((out / "genome.json").read_text())
    assert doc["string"] == text and doc["encoding"] == encoding
    settings = json.loads((out / "settings.json").read_text())
    assert settings["training"]["trained"] is False and settings["metrics"] == {}
    card = (out / "README.md").read_text()
    assert "untrained" in card and "not measured" in card
    model = load_model(out)
    session = onnxruntime.InferenceSession(str(out / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    traced = torch.jit.load(str(out / "model.ts"))
    with torch.no_grad():
        for x in inputs(1, 3):
            reference = model(x)
            assert (traced(x) - reference).abs().max() <= 1e-5
            assert np.abs(session.run(None, {"input": x.numpy()})[0]
                          - reference.numpy()).max() <= 1e-4
    # the same genome from a JSON file (an export's genome.json) gives the same weights
    again = export_genome(out / "genome.json", config, tmp_path / "again", formats=["weights"])
    with torch.no_grad():
        assert torch.equal(load_model(again)(x), reference)


def test_export_genome_of_a_cell_with_auxiliary_head_returns_logits_only(write_config,
                                                                          tmp_path):
    config = write_config(merge(CELL, {"search": {"auxiliary": True}}))
    out = export_genome(CELL_GENOME, config, tmp_path / "aux")
    settings = json.loads((out / "settings.json").read_text())
    assert settings["space"]["auxiliary"] is True and settings["auxiliary_parameters"] > 0
    assert "auxiliary head, used in training only" in (out / "README.md").read_text()
    model = load_model(out)  # the head's weights are in model.safetensors
    assert model.auxiliary_head is not None
    traced = torch.jit.load(str(out / "model.ts"))
    session = onnxruntime.InferenceSession(str(out / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    x = inputs(2)[0]
    with torch.no_grad():
        reference = model(x)
        assert isinstance(traced(x), torch.Tensor)
        assert (traced(x) - reference).abs().max() <= 1e-5
    outputs = session.run(None, {"input": x.numpy()})
    assert len(outputs) == 1 and np.abs(outputs[0] - reference.numpy()).max() <= 1e-4


def test_the_legacy_onnx_exporter_is_only_a_fallback_and_the_card_says_so(tmp_path,
                                                                           monkeypatch):
    import training.export
    from genome import BinaryGenome

    torch.manual_seed(0)
    genome = BinaryGenome.from_string("1-01_1-01-001")
    space = {"channels": [4, 4], "in_channels": 1, "num_classes": 3}
    model = build_model(genome, space).eval()
    real = training.export._export_onnx
    exporters = []

    def dynamo_fails(model, example, path, *, dynamo=True):
        exporters.append(dynamo)
        if dynamo:
            raise RuntimeError("unsupported operator aten::made_up")
        return real(model, example, path, dynamo=dynamo)
    monkeypatch.setattr(training.export, "_export_onnx", dynamo_fails)
    with pytest.warns(Warning):  # the legacy exporter's deprecation warning is not hidden
        folder = training.export.export_model(model, genome, space, tmp_path / "m",
                                              input_shape=(1, 8, 8), formats=("onnx",),
                                              latency_runs=1)
    assert exporters == [True, False]
    onnx_info = json.loads((folder / "settings.json").read_text())["onnx"]
    assert onnx_info["exporter"] == "torchscript" and "aten::made_up" in onnx_info["fallback"]
    card = (folder / "README.md").read_text()
    assert "legacy TorchScript-based exporter" in card and "aten::made_up" in card
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    with torch.no_grad():
        for x in inputs(1, 3):
            assert np.abs(session.run(None, {"input": x.numpy()})[0]
                          - model(x).numpy()).max() <= 1e-4


def test_the_card_of_a_known_data_set_names_classes_and_scales_raw_pixels(write_config,
                                                                          tmp_path):
    config = write_config({**TINY, "data": {"dataset": "digits"}})
    folder = export_genome("1-01_1", config, tmp_path / "digits", formats=("weights", "pt2"))
    card = (folder / "README.md").read_text()
    preprocess = next(b for b in code_blocks(card) if "raw = " in b)
    assert "/ 16" in preprocess and "/ 255" not in preprocess
    assert "labels = ['0', '1'," in card and "9 `9`" in card
    namespace: dict = {}
    exec(preprocess, namespace)  # numpy only
    x = namespace["x"]
    assert x.dtype == np.float32 and x.shape == (2, 1, 8, 8)
    spec, _ = input_spec({"dataset": "digits"})
    expected = (namespace["raw"].astype(np.float32) / 16 - np.float32(spec["normalize"]["mean"][0])) \
        / np.float32(spec["normalize"]["std"][0])
    assert np.array_equal(x, expected)


# ------------------------------------------------------------------------------- errors
def test_unknown_run_dir_is_a_clear_error(tmp_path):
    with pytest.raises(ExportError, match="does not exist.*evonas run"):
        export_run(tmp_path / "nope")
    with pytest.raises(ExportError, match="not an evonas run directory"):
        export_run(tmp_path)
    with pytest.raises(ExportError, match="not a folder"):
        load_model(tmp_path / "nope")


def _hand_made_run(tmp_path: Path, config: dict, results: list[dict]) -> Path:
    config = config_from_dict({**config, "runs_dir": str(tmp_path / "runs"), "name": "hand"})
    with RunDirectory.create(config.runs_dir, config.name, config.to_dict(), exact=True) as rd:
        for i, result in enumerate(results):
            genome = {"encoding": "binary", "stages": [2, 3], "code": "1_1-01"}
            rd.append({"event": "ask", "index": i, "seed": i, "genome": genome, "key": "1_1-01"})
            rd.append({"event": "result", "index": i, "genome": genome, "key": "1_1-01",
                       "seed": i, "metrics": {}, "cached": False, **result})
        return rd.path


def test_run_without_successful_evaluation_is_a_clear_error(tmp_path):
    failed = _hand_made_run(tmp_path, TINY, [
        {"status": "failed", "fitness": None, "message": "NonFiniteLoss"},
        {"status": "crashed", "fitness": None, "message": "worker died"}])
    with pytest.raises(ExportError, match=r"no successful evaluation \(1 crashed, 1 failed\)"):
        export_run(failed)
    assert not (failed / "export").exists()


def test_run_with_an_evaluator_is_a_clear_error(tmp_path):
    rd = _hand_made_run(tmp_path, merge(TINY, {"evaluation": {"evaluator": "my_bench:score"}}),
                        [{"status": "ok", "fitness": 0.9}])
    with pytest.raises(ExportError, match="evaluator 'my_bench:score'.*nothing to export"):
        export_run(rd)


def test_unknown_format_lists_the_valid_ones(binary_run):
    before = (binary_run / "export" / "index.json").read_text()
    with pytest.raises(ExportError, match="unknown export format 'tflite'; valid formats: "
                                          "weights, pt2, onnx, torchscript"):
        export_run(binary_run, formats=["weights", "tflite"])
    with pytest.raises(ExportError, match="no export format"):
        export_run(binary_run, formats=[])
    with pytest.raises(ExportError, match="top must be a positive"):
        export_run(binary_run, top=0)
    assert (binary_run / "export" / "index.json").read_text() == before


def test_missing_onnx_says_what_to_install(binary_run, monkeypatch, write_config, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now fails
    message = r"onnxruntime, which is not installed: run `pip install onnx onnxruntime " \
              r"onnxscript` \(from a checkout of evonas: `.venv/bin/pip install -e '.\[export\]'`\)"
    with pytest.raises(ExportError, match=message):
        export_run(binary_run)
    with pytest.raises(ExportError, match=message):
        export_genome("1_1-01", write_config(TINY), tmp_path / "out")
    # without onnx in the formats the export works
    out = export_genome("1_1-01", write_config(TINY), tmp_path / "out",
                        formats=("weights", "torchscript"))
    assert not (out / "model.onnx").exists() and (out / "model.ts").exists()


def test_export_genome_errors(write_config, tmp_path):
    config = write_config(TINY)
    with pytest.raises(ExportError, match="not a binary genome"):
        export_genome(CELL_GENOME, config, tmp_path / "out")
    with pytest.raises(ExportError, match="does not exist"):
        export_genome("missing.json", config, tmp_path / "out")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not an evonas export"):
        export_genome("1_1-01", config, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    chooser = write_config({"search": {"encoding": "choice", "choices": [[1, 2]]},
                            "evaluation": {"evaluator": "my_bench:score",
                                           "objective": "accuracy"}}, "choice.yaml")
    with pytest.raises(ExportError, match="evaluator"):
        export_genome("1", chooser, tmp_path / "out")
