"""The trainer's GPU path, exercised on the CPU wherever it can be.

Mixed precision (bf16 autocast runs on the CPU; fp16 with a gradient scaler too), the loss
checked every N steps instead of every step (and a NaN mid-epoch still caught, at the next
check or at the epoch's end), channels_last, torch.compile's hook, the data moved to a device
once per process ("meta" stands in for a GPU). The CUDA run itself is tests/bench/gpu_check.sh.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import training
import training.trainer
from genome import BinaryGenome
from training.data import on_device
from training.trainer import amp_dtype

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"dataset": "synthetic",
         "synthetic": {"samples": 120, "num_classes": 3, "image_size": 8, "channels": 1}}
QUICK = {"epochs": 2, "batch_size": 8, "lr": 0.05}  # 77 training examples: 10 steps an epoch
CHAIN = BinaryGenome.from_string("1-01")
SPACE = {"channels": [4]}
STEPS = 10


@pytest.fixture
def data():
    return training.load_dataset(SMALL)


def test_amp_choices():
    assert amp_dtype("auto", "cpu") is None and amp_dtype("off", "cpu") is None
    assert amp_dtype("bf16", "cpu") == torch.bfloat16 and amp_dtype("fp16", "cpu") == torch.float16
    with pytest.raises(training.trainer.EvonasError, match="'fp8'"):
        amp_dtype("fp8", "cpu")


def conv_dtypes(monkeypatch) -> list[torch.dtype]:
    """Records the output dtype of every Conv2d forward while training."""
    seen: list[torch.dtype] = []
    real = nn.Conv2d.forward

    def spy(self, x):
        out = real(self, x)
        if self.training:
            seen.append(out.dtype)
        return out
    monkeypatch.setattr(nn.Conv2d, "forward", spy)
    return seen


def test_bf16_autocast_trains_on_the_cpu(data, monkeypatch):
    plain, _ = training.score(CHAIN, SPACE, data, QUICK, seed=0)
    seen = conv_dtypes(monkeypatch)
    mixed, model = training.score(CHAIN, SPACE, data, {**QUICK, "amp": "bf16"}, seed=0)
    assert seen and set(seen) == {torch.bfloat16}  # the convolutions ran in bf16
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay fp32
    assert math.isfinite(mixed["train_loss"]) and 0 <= mixed["val_accuracy"] <= 1
    assert mixed["train_loss"] != plain["train_loss"]


def test_fp16_uses_a_gradient_scaler(data, monkeypatch):
    scaled = []
    real = torch.amp.GradScaler.scale
    monkeypatch.setattr(torch.amp.GradScaler, "scale",
                        lambda self, loss: scaled.append(1) or real(self, loss))
    metrics, _ = training.score(CHAIN, SPACE, data, {**QUICK, "amp": "fp16"}, seed=0)
    assert len(scaled) == 2 * STEPS and math.isfinite(metrics["train_loss"])


def test_default_on_the_cpu_is_fp32_without_scaler(data, monkeypatch):
    seen = conv_dtypes(monkeypatch)
    monkeypatch.setattr(torch.amp, "GradScaler", None)  # would fail if used
    training.score(CHAIN, SPACE, data, QUICK, seed=0)
    assert set(seen) == {torch.float32}


def nan_on(calls_when_bad, monkeypatch):
    """cross_entropy returns NaN on the given (1-based) training calls."""
    real = nn.functional.cross_entropy
    calls: list[int] = []

    def loss(*args, **kwargs):
        out = real(*args, **kwargs)
        if kwargs.get("reduction", "mean") == "sum":  # validation: untouched
            return out
        calls.append(1)
        return out * float("nan") if len(calls) in calls_when_bad else out
    monkeypatch.setattr(nn.functional, "cross_entropy", loss)
    return calls


def test_nan_mid_epoch_is_caught_at_the_next_check(data, monkeypatch):
    checks = []
    real = training.trainer._check_finite
    monkeypatch.setattr(training.trainer, "_check_finite",
                        lambda *a: checks.append(a[3]) or real(*a))
    calls = nan_on({STEPS + 5}, monkeypatch)  # step 5 of epoch 2; checks at 4, 8, end
    with pytest.raises(training.NonFiniteLoss,
                       match=r"became nan in epoch 2 \(between steps 5 and 8 of the epoch; "
                             r"checked every 4 steps\)"):
        training.score(CHAIN, SPACE, data, {**QUICK, "check_every": 4}, seed=0)
    assert len(calls) == STEPS + 8          # caught at the check after it, not at once
    assert checks == [4, 8, STEPS, 4, 8]    # no check per step: two an epoch plus its end


def test_nan_after_the_last_check_is_caught_at_the_epoch_end(data, monkeypatch):
    calls = nan_on({STEPS}, monkeypatch)  # the last step of epoch 1
    with pytest.raises(training.NonFiniteLoss, match=f"in epoch 1 .between steps 1 and {STEPS} of"):
        training.score(CHAIN, SPACE, data, {**QUICK, "check_every": 100}, seed=0)
    assert len(calls) == STEPS


def test_channels_last_and_compile_hook(data, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model: compiled.append(model) or model)
    plain, _ = training.score(CHAIN, SPACE, data, QUICK, seed=0)
    metrics, model = training.score(CHAIN, SPACE, data,
                                    {**QUICK, "channels_last": True, "compile": True}, seed=0)
    assert compiled == [model]
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert metrics["train_loss"] == pytest.approx(plain["train_loss"], rel=1e-4)


def test_data_is_moved_to_a_device_once_and_reused(data):
    assert on_device(data, "cpu") is data
    first = on_device(data, "meta")
    assert first.x_train.device.type == "meta" and first.y_test.device.type == "meta"
    assert first.x_train.shape == data.x_train.shape and first.num_classes == data.num_classes
    assert on_device(data, "meta") is first  # the next evaluation reuses it
    other = training.load_dataset({**SMALL, "split_seed": 1})
    assert on_device(other, "meta") is not first  # another data set replaces it
