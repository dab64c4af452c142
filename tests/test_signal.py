"""PA modelling and DPD: metrics against hand-computed values, I/Q data sets and frames, the
two-step protocol, signal genomes and their models, the synthetic-PA search, export."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genome import GenomeError, parse_genome
from training.data import DataError, load_dataset
from training.decode import build_model
from training.signal import aclr_db, evm_db, nmse_db, to_complex
from training.signal_data import frames, memory_polynomial_pa
from training.tasks import get_task
from training.measures import count_parameters
from training.trainer import score

FS, BW, NPERSEG = 1000.0, 200.0, 100


def tone(freq: float, n: int = 2000, amplitude: float = 1.0) -> np.ndarray:
    return amplitude * np.exp(2j * np.pi * freq * np.arange(n) / FS)


# --------------------------------------------------------------------------- metrics
def test_nmse_is_the_pooled_error_power_over_the_reference_power():
    reference = np.array([1.0, 1j, -1.0, 0.5 + 0.5j])
    prediction = reference + np.array([0.1, 0.0, -0.1j, 0.0])
    # error power 0.01 + 0.01 = 0.02; reference power 1 + 1 + 1 + 0.5 = 3.5
    assert nmse_db(prediction, reference) == pytest.approx(10 * math.log10(0.02 / 3.5))
    assert nmse_db(1.1 * reference, reference) == pytest.approx(-20.0)


def test_aclr_is_the_worse_adjacent_band_over_the_main_band():
    # 1.0 at 50 Hz (main band [-100, 100)), 0.01 at 150 Hz (right [100, 300)), 0.001 at
    # -200 Hz (left): bins of 10 Hz, the Hann main lobe stays inside each band
    z = tone(50) + tone(150, amplitude=0.01) + tone(-200, amplitude=0.001)
    assert aclr_db(z, FS, BW, NPERSEG) == pytest.approx(-40.0, abs=0.01)
    z = tone(50) + tone(-250, amplitude=0.1)  # the left side is now the worse one
    assert aclr_db(z, FS, BW, NPERSEG) == pytest.approx(-20.0, abs=0.01)


def test_evm_proxy_counts_the_in_band_error_only():
    reference = tone(30) + tone(-70, amplitude=0.5)  # power 1.25
    error = tone(80, amplitude=math.sqrt(1.25) * 0.1) + tone(400, amplitude=1.0)
    assert evm_db(reference + error, reference, FS, BW, NPERSEG) == \
        pytest.approx(-20.0, abs=0.01)


def test_metrics_of_back_to_back_frames_are_those_of_the_signal():
    x = np.random.default_rng(0).normal(size=(400, 2))
    framed = frames(x, 50, 50)
    assert framed.shape == (8, 50, 2)
    assert np.allclose(to_complex(torch.from_numpy(framed)), x[:, 0] + 1j * x[:, 1], atol=1e-6)
    assert frames(x, 50, 10).shape == (36, 50, 2)


# --------------------------------------------------------------------------- data
SMALL = {"dataset": "synthetic_pa", "normalize": False,
         "signal": {"samples": 1500, "frame_length": 20, "stride": 5,
                    "pa_model": "iq*1|fc4|nogmp|res", "pa_epochs": 2}}


def test_synthetic_pa_is_split_in_time_and_framed():
    data = load_dataset(SMALL)
    assert data.kind == "iq" and data.num_classes is None
    assert data.x_train.shape == (177, 20, 2) and data.x_val.shape == (15, 20, 2)
    assert data.x_train.dtype == torch.float32
    # the training frames overlap by frame_length - stride samples
    assert torch.equal(data.x_train[1, :15], data.x_train[0, 5:])
    # the synthetic PA is the memory polynomial of its input (plus -60 dB noise)
    x, y = to_complex(data.x_val), to_complex(data.y_val)
    assert nmse_db(memory_polynomial_pa(x)[2:], y[2:]) < -35
    assert data.gain == pytest.approx(float(np.abs(to_complex(data.y_train)).max()
                                            / np.abs(to_complex(data.x_train)).max()), rel=1e-5)


def test_signal_data_refuse_standardisation_and_bad_files(tmp_path):
    with pytest.raises(DataError, match="data.normalize: false"):
        load_dataset({**SMALL, "normalize": True})
    with pytest.raises(DataError, match="needs data.path"):
        load_dataset({"dataset": "iq", "normalize": False})
    np.savez(tmp_path / "bad.npz", x=np.zeros((100, 3)), y=np.zeros((100, 3)))
    with pytest.raises(DataError, match=r"shape \(N, 2\)"):
        load_dataset({"dataset": "iq", "normalize": False, "path": str(tmp_path / "bad.npz")})


def test_user_iq_pairs_from_npz_and_from_a_csv_folder(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=1000) + 1j * rng.normal(size=1000)
    y = 2 * x
    np.savez(tmp_path / "pairs.npz", x=x, y=y)  # complex, split 60/20/20 in time
    data = load_dataset({"dataset": "iq", "normalize": False, "path": str(tmp_path / "pairs.npz"),
                         "signal": {"frame_length": 10, "stride": 10}})
    assert data.x_train.shape == (60, 10, 2) and data.x_test.shape == (20, 10, 2)
    assert np.allclose(to_complex(data.x_test), x[800:], atol=1e-6)
    assert data.gain == pytest.approx(2.0)
    folder = tmp_path / "set"
    folder.mkdir()
    for split, part in (("train", x[:600]), ("val", x[600:800]), ("test", x[800:])):
        for io, z in (("input", part), ("output", 2 * part)):
            np.savetxt(folder / f"{split}_{io}.csv", np.stack([z.real, z.imag], 1),
                       delimiter=",", header="I,Q", comments="")
    (folder / "spec.json").write_text(json.dumps(
        {"input_signal_fs": 800e6, "bw_main_ch": 100e6, "nperseg": 64}))
    csv = load_dataset({"dataset": "iq", "normalize": False, "path": str(folder),
                        "signal": {"frame_length": 10, "stride": 10}})
    assert torch.allclose(csv.x_train, data.x_train) and torch.allclose(csv.y_val, data.y_val)
    assert csv.spec == {"sample_rate_hz": 800e6, "bandwidth_hz": 100e6, "nperseg": 64}


def test_opendpd_data_come_from_the_installed_package_or_name_the_extra(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "opendpd" else real(name, *a))
    settings = {"dataset": "opendpd", "normalize": False,
                "signal": {"name": "APA_200MHz", "frame_length": 10}}
    with pytest.raises(DataError, match=r"evonas\[dpd\]"):
        load_dataset(settings)
    # a package in OpenDPD's datasets/<NAME>/ layout
    folder = tmp_path / "opendpd" / "datasets" / "APA_200MHz"
    folder.mkdir(parents=True)
    (tmp_path / "opendpd" / "__init__.py").write_text("")
    for split, n in (("train", 60), ("val", 20), ("test", 20)):
        for io in ("input", "output"):
            np.savetxt(folder / f"{split}_{io}.csv", np.ones((n, 2)), delimiter=",",
                       header="I,Q", comments="")
    (folder / "spec.json").write_text(json.dumps({"input_signal_fs": 983.04e6,
                                                  "bw_main_ch": 200e6, "nperseg": 2560}))
    spec = importlib.util.spec_from_file_location(
        "opendpd", tmp_path / "opendpd" / "__init__.py",
        submodule_search_locations=[str(tmp_path / "opendpd")])
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: spec if name == "opendpd" else real(name, *a))
    data = load_dataset({**settings, "split_seed": 1})  # another cache entry
    assert data.x_train.shape == (51, 10, 2) and data.spec["nperseg"] == 2560
    with pytest.raises(DataError, match="APA_200MHz"):
        load_dataset({**settings, "signal": {"name": "nope"}})


# --------------------------------------------------------------------------- protocol
def test_pa_task_fits_input_to_output_and_reports_signal_metrics():
    genome, data = parse_genome("iqa*1|gru6|nogmp|res"), load_dataset(SMALL)
    metrics, model = score(genome, {}, data, {"epochs": 4, "optimizer": "adamw", "lr": 1e-2,
                                              "weight_decay": 0.0}, 0, task="pa", with_test=True)
    torch.manual_seed(0)  # the same initial weights, untrained
    untrained = get_task("pa").measure(get_task("pa").attach(build_model(genome, {}), data),
                                       data.x_val, data.y_val, 64)
    assert metrics["params"] == count_parameters(model)
    assert set(get_task("pa").metrics) <= set(metrics)
    assert metrics["val_nmse_db"] < untrained["nmse_db"] - 3 and metrics["val_nmse_db"] < -10
    assert metrics["test_nmse_db"] < -10
    assert all(math.isfinite(metrics[k]) for k in ("val_aclr_db", "val_evm_db"))


def test_dpd_trains_through_the_frozen_pa_model_towards_the_gain_times_the_input():
    data = load_dataset(SMALL)
    pa = data.frozen_pa()
    before = {k: v.clone() for k, v in pa.state_dict().items()}
    assert not any(p.requires_grad for p in pa.parameters())
    genome = parse_genome("iq*1|fc3|nogmp|res")  # the PA model is iq*1|fc4|nogmp|res: 26
    metrics, model = score(genome, {}, data, {"epochs": 2, "optimizer": "adamw", "lr": 1e-2,
                                              "weight_decay": 0.0}, 0, task="dpd")
    assert metrics["params"] == count_parameters(model) == 21  # 6+3 + 6+2 + 4, not the PA's
    assert all(torch.equal(before[k], v) for k, v in pa.state_dict().items())
    stage = get_task("dpd").attach(model, data)
    out, target = stage(data.x_val)
    assert torch.allclose(target, data.gain * data.x_val)
    assert torch.allclose(out, pa(model(data.x_val)))
    assert metrics["val_nmse_db"] == pytest.approx(
        nmse_db(to_complex(out.detach()), to_complex(target)), abs=1e-3)


# --------------------------------------------------------------------------- genomes, models
def test_signal_genome_text_form_and_validation():
    g = parse_genome("iqa*2|gru12-tcn8d2|gmp3m4|res")
    assert g.features == "iqa" and g.memory == 2 and g.gmp == (3, 4) and g.residual
    assert [b.to_string() for b in g.blocks] == ["gru12", "tcn8d2"]
    assert parse_genome("iq*1||gmp5m4|nores").blocks == ()
    for bad in ("iq*1|gru8d2|nogmp|res", "iq*0|gru8|nogmp|res", "xy*1|gru8|nogmp|res",
                "iq*1|tcn8|nogmp|res"):
        with pytest.raises(GenomeError):
            parse_genome(bad, "signal")


def test_signal_models_are_causal_and_run_on_any_frame_length():
    torch.manual_seed(0)
    for text in ("iqa*3|gru5-tcn4d2|gmp3m3|res", "poly*2|lstm4-fc3|nogmp|nores",
                 "iq*1||gmp5m4|nores"):
        model = build_model(parse_genome(text), {}).eval()
        x = torch.randn(2, 30, 2)
        y = x.clone()
        y[:, 20:] = torch.randn(2, 10, 2)  # change the future from sample 20 on
        with torch.no_grad():
            assert torch.allclose(model(x)[:, :20], model(y)[:, :20], atol=1e-6)
            assert model(torch.randn(3, 7, 2)).shape == (3, 7, 2)


def test_gru_parameter_count_follows_the_formula():
    # GRU(6 -> 10): 3 * (6*10 + 10*10 + 2*10) = 540; head 10*2 + 2; residual 2x2
    model = build_model(parse_genome("iqa*1|gru10|nogmp|res"), {})
    assert count_parameters(model) == 540 + 22 + 4
    assert count_parameters(build_model(parse_genome("iq*1||gmp5m4|nores"), {})) == \
        2 * 2 + 2 + 2 * 5 * 4


@pytest.mark.slow
def test_exported_signal_model_loads_without_evonas_and_matches(tmp_path):
    from training.export import export_model, load_model

    torch.manual_seed(0)
    genome = parse_genome("iqa*2|gru6-tcn4d2|gmp3m2|res")
    model = build_model(genome, {}).eval()
    folder = export_model(model, genome, {"channels": 2}, tmp_path / "dpd", input_shape=(20, 2),
                          formats=("weights", "torchscript"), latency_runs=1,
                          latency_batch_size=2, info={"input": {"task": "dpd"}})
    x = torch.randn(3, 40, 2)
    with torch.no_grad():
        expected = model(x)
    assert torch.equal(load_model(folder)(x), expected)
    torch.save({"x": x, "y": expected}, tmp_path / "probe.pt")
    script = ("import sys, torch; sys.modules['evonas'] = sys.modules['genome'] = None; "
              f"m = torch.jit.load({str(folder / 'model.ts')!r}); "
              f"d = torch.load({str(tmp_path / 'probe.pt')!r}); "
              "print(float((m(d['x']) - d['y']).abs().max()))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True)
    assert float(out.stdout.strip()) <= 1e-5
    card = (folder / "README.md").read_text()
    assert "nmse_db" in card and "(batch, 20, 2)" in card


@pytest.mark.slow
def test_synthetic_pa_search_under_a_parameter_budget_end_to_end(tmp_path):
    from evolution import run
    from evolution.config import load_config
    from evolution.export import export_run
    from evolution.record import RunRecord
    from training.export import load_model

    repo = Path(__file__).resolve().parents[1]
    config = load_config(repo / "runs" / "dpd-synthetic.yaml").replace(
        runs_dir=str(tmp_path), **{"constraints": {"params": {"max": 150}}})
    summary = run(config)
    results = RunRecord(summary.run_dir).results
    assert len(results) == 8 and summary.best is not None
    for r in results:  # over the budget: refused before training, never trained
        if r["metrics"]["params"] > 150:
            assert r["status"] == "infeasible" and "val_nmse_db" not in r["metrics"]
        else:
            assert r["status"] == "ok" and math.isfinite(r["metrics"]["val_nmse_db"])
    assert any(r["status"] == "infeasible" for r in results)
    assert summary.best["metrics"]["params"] <= 150
    assert summary.best["metrics"]["val_nmse_db"] == min(
        r["metrics"]["val_nmse_db"] for r in results if r["status"] == "ok")
    folder, = export_run(summary.run_dir, formats=("weights", "torchscript"))
    model = load_model(folder)
    x = load_dataset(config.data.model_dump(mode="json")).x_test
    with torch.no_grad():
        assert (torch.jit.load(str(folder / "model.ts"))(x) - model(x)).abs().max() <= 1e-5
    card = (folder / "README.md").read_text()
    assert "test aclr_db" in card and "test evm_db" in card


def test_opendpd_pa_model_is_the_published_tres_gru(tmp_path, monkeypatch):
    from training.signal_data import opendpd_pa_model
    from training.signal_decode import TResGRU

    torch.manual_seed(0)
    reference = TResGRU(5)
    root = tmp_path / "opendpd"
    (root / "arena_assets").mkdir(parents=True)
    np.savez(root / "arena_assets" / "pa.npz",
             **{f"backbone.{k}": v.numpy() for k, v in reference.state_dict().items()})
    (root / "arena_assets" / "calibration-x.json").write_text(json.dumps(
        {"set": {"dataset": "SET", "teacher": {"file": "pa.npz", "pa_test_nmse_db": -39.7}}}))
    spec = importlib.util.spec_from_file_location(
        "opendpd", root / "__init__.py", submodule_search_locations=[str(root)])
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: spec if name == "opendpd" else real(name, *a))
    model = opendpd_pa_model("SET")
    x = torch.randn(2, 40, 2)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    assert count_parameters(model) == 3 * 5 * (6 + 5) + 2 * 5 + 3 * 2 * 3 + 2 * 3
    with pytest.raises(DataError, match="publishes no PA model"):
        opendpd_pa_model("OTHER")
