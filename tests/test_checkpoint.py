"""Training in pieces: a training stopped at an epoch and resumed from its state (safetensors +
JSON) is bitwise the training that never stopped; learning curves do not change the training;
damaged, foreign or mismatched states and unreachable stop epochs are refused clearly.
"""
from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

import training
from genome import BinaryGenome, EvonasError, parse_genome
from genome.cell import CellGenome
from training.checkpoint import CheckpointError, header

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"dataset": "synthetic",
         "synthetic": {"samples": 64, "num_classes": 3, "image_size": 8, "channels": 1}}
QUICK = {"epochs": 3, "batch_size": 16, "lr": 0.05}
CHAIN = BinaryGenome.from_string("1-01")
BINARY_SPACE = {"channels": [4]}
CELL = CellGenome([(0, "sep_conv_3x3", 1, "max_pool_3x3")],
                  [(0, "avg_pool_3x3", 1, "sep_conv_3x3")])
CELL_SPACE = {"cells_per_stack": 1, "filters": 4, "auxiliary": True, "drop_path": 0.3}

CASES = {
    "sgd_nesterov": (CHAIN, BINARY_SPACE, QUICK),
    "adam": (CHAIN, BINARY_SPACE, {**QUICK, "optimizer": "adam", "lr": 0.01}),
    "augmented": (CHAIN, BINARY_SPACE, {**QUICK, "random_crop": 2, "flip": True, "cutout": 3}),
    "cell_drop_path": (CELL, CELL_SPACE, QUICK),
}


@pytest.fixture(scope="module")
def data():
    return training.load_dataset(SMALL)


def run(case, data, **kw):
    genome, space, evaluation = CASES[case]
    return training.score(genome, space, data, evaluation, seed=5, **kw)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def same_state(a: bytes, b: bytes) -> None:
    """Every tensor (weights, optimizer moments, RNG states) and the JSON are equal."""
    ta, tb = load_tensors(a), load_tensors(b)
    assert sorted(ta) == sorted(tb)
    for name in ta:
        assert torch.equal(ta[name], tb[name]), name
    assert metadata(a) == metadata(b)


def metadata(blob: bytes) -> dict:
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(json.loads(blob[8:8 + n])["__metadata__"]["evonas"])


def measured(metrics: dict) -> dict:
    """What the model's quality and size are, without time and bookkeeping."""
    return {k: v for k, v in metrics.items()
            if k not in ("train_seconds", "epochs", "epochs_trained", "curve", "checkpoint")}


# ------------------------------------------------------------------------------ resume = whole
@pytest.mark.parametrize("case", list(CASES))
def test_resumed_training_is_the_uninterrupted_one(case, data):
    whole, whole_model = run(case, data, checkpoint=True)
    first, first_model = run(case, data, stop_epoch=1, checkpoint=True)
    assert first["epochs"] == first["epochs_trained"] == 1
    assert header(first["checkpoint"]).epoch == 1
    assert first["train_loss"] == header(first["checkpoint"]).train_loss
    assert measured(first) != measured(whole)  # one epoch is not three
    rest, rest_model = run(case, data, resume=first["checkpoint"], checkpoint=True)
    assert (rest["epochs"], rest["epochs_trained"]) == (3, 2)
    same_weights(whole_model, rest_model)
    assert measured(rest) == measured(whole)
    same_state(whole["checkpoint"], rest["checkpoint"])
    if case == "cell_drop_path":  # the annealed rate is put back for later use
        assert rest_model.drop_path_prob == whole_model.drop_path_prob == 0.3
        assert rest_model.auxiliary_head is not None


def test_a_chain_of_resumes_is_the_uninterrupted_training(data):
    whole, whole_model = run("augmented", data, checkpoint=True)
    state, losses = None, []
    for stop in (1, 2, 3):
        metrics, model = run("augmented", data, stop_epoch=stop, resume=state,
                             checkpoint=True)
        assert metrics["epochs_trained"] == 1 and metrics["epochs"] == stop
        state = metrics["checkpoint"]
        losses.append(metrics["train_loss"])
    same_weights(whole_model, model)
    same_state(whole["checkpoint"], state)
    assert measured(metrics) == measured(whole)
    assert len(set(losses)) == 3


def test_stop_epoch_keeps_the_whole_schedule(data):
    """Stopping at epoch 2 of 3 is not a 2-epoch training: the cosine schedule and drop-path
    annealing span all 3 epochs, so the weights differ from those of epochs=2."""
    stopped, stopped_model = run("sgd_nesterov", data, stop_epoch=2)
    genome, space, evaluation = CASES["sgd_nesterov"]
    short, short_model = training.score(genome, space, data, {**evaluation, "epochs": 2}, 5)
    assert stopped["train_loss"] != short["train_loss"]
    assert not all(torch.equal(a, b) for a, b in zip(stopped_model.state_dict().values(),
                                                     short_model.state_dict().values()))


def test_dpd_resumes_through_the_frozen_pa_and_curves_its_signal_metrics():
    """A task that trains the searched model inside a larger module (DPD: before a frozen PA
    model): the state is the attached module's, the curve holds the task's split metrics."""
    data = training.load_dataset(
        {"dataset": "synthetic_pa", "normalize": False,
         "signal": {"samples": 1500, "frame_length": 20, "stride": 5,
                    "pa_model": "iq*1|fc4|nogmp|res", "pa_epochs": 2}})
    genome = parse_genome("iq*1|fc3|nogmp|res")
    evaluation = {"epochs": 3, "optimizer": "adamw", "lr": 1e-2, "batch_size": 32}
    whole, whole_model = training.score(genome, {}, data, evaluation, 0, task="dpd",
                                        curve=True)
    first, _ = training.score(genome, {}, data, evaluation, 0, task="dpd", stop_epoch=2,
                              checkpoint=True)
    # The attached module's state: the predistorter inside it (the PA comes from the data)
    assert {k for k in load_tensors(first["checkpoint"]) if k.startswith("model.")} == \
        {f"model.model.{k}" for k in whole_model.state_dict()}
    rest, rest_model = training.score(genome, {}, data, evaluation, 0, task="dpd",
                                      resume=first["checkpoint"], curve=True)
    same_weights(whole_model, rest_model)
    assert measured(rest) == measured(whole)
    assert rest["curve"] == whole["curve"][2:]
    assert set(whole["curve"][0]) == {"epoch", "train_loss", "val_nmse_db", "val_aclr_db",
                                      "val_evm_db", "val_loss"}


# -------------------------------------------------------------------------- learning curves
@pytest.mark.parametrize("case", ["augmented", "cell_drop_path"])
def test_curve_changes_nothing_and_ends_at_the_final_metrics(case, data):
    plain, plain_model = run(case, data)
    traced, traced_model = run(case, data, curve=True)
    same_weights(plain_model, traced_model)
    assert measured(traced) == measured(plain)
    curve = traced["curve"]
    assert [p["epoch"] for p in curve] == [1, 2, 3]
    assert set(curve[0]) == {"epoch", "train_loss", "val_accuracy", "val_loss"}
    assert {k: v for k, v in curve[-1].items() if k != "epoch"} == \
        {k: plain[k] for k in ("train_loss", "val_accuracy", "val_loss")}
    # The curve is measured on the model as it was after each epoch
    first, first_model = run(case, data, stop_epoch=1)
    assert curve[0]["val_loss"] == first["val_loss"] != curve[-1]["val_loss"]
    assert curve[0]["train_loss"] == first["train_loss"]


def test_curve_of_a_resumed_training_has_its_own_epochs(data):
    first, _ = run("sgd_nesterov", data, stop_epoch=2, checkpoint=True, curve=True)
    rest, _ = run("sgd_nesterov", data, resume=first["checkpoint"], curve=True)
    whole, _ = run("sgd_nesterov", data, curve=True)
    assert [p["epoch"] for p in first["curve"]] == [1, 2]
    assert [p["epoch"] for p in rest["curve"]] == [3]
    assert first["curve"] + rest["curve"] == whole["curve"]


# ------------------------------------------------------------------------------- the format
def test_state_is_safetensors_with_json_metadata(data):
    metrics, model = run("adam", data, stop_epoch=2, checkpoint=True)
    blob = metrics["checkpoint"]
    assert isinstance(blob, bytes)
    # Every byte is the header or a tensor the header names: nothing else (no pickle) hides here
    (n,) = struct.unpack("<Q", blob[:8])
    head = json.loads(blob[8:8 + n])
    ends = [entry["data_offsets"][1] for name, entry in head.items() if name != "__metadata__"]
    assert 8 + n + max(ends) == len(blob)
    assert set(head["__metadata__"]) == {"evonas"}
    doc = metadata(blob)
    assert doc["format"] == "evonas-training-state" and doc["version"] == 1
    assert doc["epoch"] == 2 and doc["train_loss"] == metrics["train_loss"]
    assert doc["settings"]["epochs"] == 3 and doc["settings"]["optimizer"] == "adam"
    steps = -(-len(data.y_train) // 16)  # batches of 16 per epoch
    assert doc["scheduler"]["last_epoch"] == 2 * steps
    tensors = load_tensors(blob)
    for name, value in model.state_dict().items():
        assert torch.equal(tensors[f"model.{name}"], value), name
    assert {"exp_avg", "exp_avg_sq", "step"} == \
        {k.rsplit(".", 1)[1] for k in tensors if k.startswith("optimizer.state.0.")}
    assert tensors["optimizer.state.0.step"].item() == 2 * steps
    assert {k for k in tensors if k.startswith("rng.")} == {"rng.torch", "rng.batches"}
    assert all(tensors[k].dtype == torch.uint8 for k in ("rng.torch", "rng.batches"))
    assert save_tensors(tensors, metadata={"evonas": json.dumps(doc)}) == blob  # round trip


def damaged(blob: bytes) -> dict[str, object]:
    tensors = load_tensors(blob)
    doc = metadata(blob)
    return {
        "truncated": blob[:len(blob) - 10],
        "cut_in_the_header": blob[:100],
        "empty": b"",
        "noise": bytes(range(256)) * 4,
        "foreign_safetensors": save_tensors({"weight": torch.zeros(3)}),
        "other_format": save_tensors(tensors, metadata={"evonas": json.dumps(
            {**doc, "format": "something-else"})}),
        "newer_version": save_tensors(tensors, metadata={"evonas": json.dumps(
            {**doc, "version": 99})}),
        "metadata_not_json": save_tensors(tensors, metadata={"evonas": "{not json"}),
        "missing_tensor": save_tensors({k: v for k, v in tensors.items() if k != "rng.torch"},
                                       metadata={"evonas": json.dumps(doc)}),
        "not_bytes": "a string",
    }


@pytest.mark.parametrize("kind", ["truncated", "cut_in_the_header", "empty", "noise",
                                  "foreign_safetensors", "other_format", "newer_version",
                                  "metadata_not_json", "missing_tensor", "not_bytes"])
def test_damaged_or_foreign_states_are_refused(kind, data):
    first, _ = run("sgd_nesterov", data, stop_epoch=1, checkpoint=True)
    with pytest.raises(CheckpointError) as caught:
        run("sgd_nesterov", data, resume=damaged(first["checkpoint"])[kind])
    assert isinstance(caught.value, EvonasError)
    message = str(caught.value)
    assert "\n" not in message and ("training state" in message)


def test_a_state_of_another_model_or_other_settings_is_refused(data):
    first, _ = run("sgd_nesterov", data, stop_epoch=1, checkpoint=True)
    genome, space, evaluation = CASES["sgd_nesterov"]
    with pytest.raises(CheckpointError, match="does not fit this model"):
        training.score(genome, {"channels": [6]}, data, evaluation, 5,
                       resume=first["checkpoint"])
    # Same weights' shapes, another graph: bound to the genome, so refused all the same
    with pytest.raises(CheckpointError, match="genome='1-01'.*genome='1-11'"):
        training.score(BinaryGenome.from_string("1-11"), space, data, evaluation, 5,
                       resume=first["checkpoint"])
    with pytest.raises(CheckpointError, match=r"lr=0\.05.*lr=0\.1"):
        training.score(genome, space, data, {**evaluation, "lr": 0.1}, 5,
                       resume=first["checkpoint"])
    with pytest.raises(CheckpointError, match="epochs=3.*epochs=4"):
        training.score(genome, space, data, {**evaluation, "epochs": 4}, 5,
                       resume=first["checkpoint"])
    with pytest.raises(CheckpointError, match="seed=5.*seed=6"):
        training.score(genome, space, data, evaluation, 6, resume=first["checkpoint"])


# --------------------------------------------------------------------------- stop epochs
def test_unreachable_stop_epochs_are_refused(data):
    for stop in (0, 4, -1, 1.5, True):
        with pytest.raises(CheckpointError, match=rf"stop_epoch {stop!r} .* 1 to "
                                                  rf"evaluation\.epochs = 3"):
            run("sgd_nesterov", data, stop_epoch=stop)
    first, _ = run("sgd_nesterov", data, stop_epoch=2, checkpoint=True)
    for stop in (1, 2):
        with pytest.raises(CheckpointError, match=rf"stop_epoch {stop} .* from 3 to .* "
                                                  rf"reached epoch 2"):
            run("sgd_nesterov", data, stop_epoch=stop, resume=first["checkpoint"])
    whole, _ = run("sgd_nesterov", data, checkpoint=True)
    with pytest.raises(CheckpointError, match="reached epoch 3"):
        run("sgd_nesterov", data, resume=whole["checkpoint"])


def test_a_state_from_another_kind_of_device_resumes_with_fresh_augmentation(data):
    """A GPU's augmentation generator cannot drive the CPU's: the state resumes with a fresh
    one (seeded from the seed and epoch), everything else as saved."""
    whole, whole_model = run("augmented", data)
    first, _ = run("augmented", data, stop_epoch=1, checkpoint=True)
    blob = first["checkpoint"]
    moved = save_tensors(load_tensors(blob),
                         metadata={"evonas": json.dumps({**metadata(blob), "device": "cuda"})})
    again = [run("augmented", data, resume=moved)[0] for _ in range(2)]
    assert measured(again[0]) == measured(again[1])  # still deterministic
    assert again[0]["train_loss"] != whole["train_loss"]  # other augmented batches
    same, _ = run("augmented", data, resume=blob)
    assert measured(same) == measured(whole)
