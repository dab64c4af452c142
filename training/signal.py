"""Sequence regression on complex baseband: power-amplifier (PA) modelling and digital
predistortion (DPD), tasks ``pa`` and ``dpd``.

A model maps I/Q frames ``(batch, T, 2)`` to I/Q frames. Training minimises the mean squared
error per I/Q component. The two-step protocol of OpenDPD:

``pa``
    fit a behavioural model of the PA: input x -> measured output y.
``dpd``
    train a predistorter D placed before a **frozen** PA model P (fitted first; see
    ``data.signal.pa_model``) so that P(D(x)) approaches G*x, with G = max|y| / max|x| on the
    training split. The searched model is D; its parameters are counted, P's are not.

Metrics, on a split's frames laid end to end (the validation and test splits are cut into
non-overlapping frames, so this is the split's signal), follow OpenDPD's
``general-spectral-v1`` profile:

``nmse_db``
    pooled NMSE, 10*log10(sum|y - r|^2 / sum|r|^2) with r the reference (y for ``pa``, G*x for
    ``dpd``) and y the prediction (the model's output, or P(D(x))).
``aclr_db``
    adjacent-channel leakage of the prediction in dBc: 10*log10(P_adj / P_main), with powers
    from a two-sided Welch PSD (Hann window, ``nperseg`` from the data set's spec, capped at the
    signal's length, 50 % overlap, density scaling), P_main the power in [-B/2, B/2) and P_adj
    the power in the band of the same width right next to it, [B/2, 3B/2) or [-3B/2, -B/2),
    whichever is larger (the worse side). Lower is better.
``evm_db``
    an EVM proxy: the in-band error, 10*log10(P_main(y - r) / P_main(r)) from the same PSD. Not
    a demodulated EVM.
"""
from __future__ import annotations

import math
from typing import Any, Literal, Mapping

import numpy as np

from genome.section import Section
from training.tasks import Task, register_task


# --------------------------------------------------------------------------- metrics (numpy)
def to_complex(iq: Any) -> np.ndarray:
    """``(..., 2)`` I/Q (numpy or torch) -> a flat complex128 signal."""
    a = np.asarray(iq.detach().cpu().numpy() if hasattr(iq, "detach") else iq, dtype=np.float64)
    a = a.reshape(-1, 2)
    return a[:, 0] + 1j * a[:, 1]


def _db(ratio: float) -> float:
    return 10.0 * math.log10(ratio) if ratio > 0 else -300.0


def nmse_db(prediction: np.ndarray, reference: np.ndarray) -> float:
    """10*log10(sum|prediction - reference|^2 / sum|reference|^2), complex signals."""
    return _db(float(np.sum(np.abs(prediction - reference) ** 2))
               / float(np.sum(np.abs(reference) ** 2)))


def psd(z: np.ndarray, fs: float, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided Welch PSD (Hann, 50 % overlap, no detrending, density), frequencies ascending;
    ``nperseg`` is capped at the signal's length."""
    from scipy.signal import welch

    n = min(int(nperseg), len(z))
    f, p = welch(z, fs=fs, window="hann", nperseg=n, noverlap=n // 2, detrend=False,
                 return_onesided=False, scaling="density")
    order = np.argsort(f)
    return f[order], p[order]


def band_power(f: np.ndarray, p: np.ndarray, lo: float, hi: float) -> float:
    """Power in the bins whose centre lies in ``[lo, hi)``."""
    width = f[1] - f[0] if len(f) > 1 else 1.0
    return float(p[(f >= lo) & (f < hi)].sum() * width)


def aclr_db(z: np.ndarray, fs: float, bandwidth: float, nperseg: int) -> float:
    """Adjacent-channel leakage of ``z`` in dBc, the worse of the two sides (see the module
    docstring)."""
    f, p = psd(z, fs, nperseg)
    main = band_power(f, p, -bandwidth / 2, bandwidth / 2)
    left = band_power(f, p, -1.5 * bandwidth, -bandwidth / 2)
    right = band_power(f, p, bandwidth / 2, 1.5 * bandwidth)
    return _db(max(left, right) / main)


def evm_db(prediction: np.ndarray, reference: np.ndarray, fs: float, bandwidth: float,
           nperseg: int) -> float:
    """In-band error 10*log10(P_main(prediction - reference) / P_main(reference))."""
    f, p_err = psd(prediction - reference, fs, nperseg)
    _, p_ref = psd(reference, fs, nperseg)
    return _db(band_power(f, p_err, -bandwidth / 2, bandwidth / 2)
               / band_power(f, p_ref, -bandwidth / 2, bandwidth / 2))


def signal_metrics(prediction: np.ndarray, reference: np.ndarray,
                   spec: Mapping[str, Any]) -> dict[str, float]:
    """NMSE, ACLR and the EVM proxy of a complex ``prediction`` against ``reference`` under the
    data set's ``spec`` (``sample_rate_hz``, ``bandwidth_hz``, ``nperseg``)."""
    fs, bw, n = spec["sample_rate_hz"], spec["bandwidth_hz"], spec["nperseg"]
    return {"nmse_db": nmse_db(prediction, reference),
            "aclr_db": aclr_db(prediction, fs, bw, n),
            "evm_db": evm_db(prediction, reference, fs, bw, n)}


class SignalConfig(Section):
    """``task: {name: pa}`` or ``{name: dpd}``; the frames, the spec and the frozen PA model
    are data settings (``data.signal``)."""

    name: Literal["pa", "dpd"] = "pa"


class PAConfig(SignalConfig):
    name: Literal["pa"] = "pa"


class DPDConfig(SignalConfig):
    name: Literal["dpd"] = "dpd"


class SignalTask(Task):
    """Complex baseband I/Q frames in, I/Q frames out (see the module docstring)."""

    data_kind = "iq"
    layout = "NTC"
    output_name = "iq"
    split_metrics = ("nmse_db", "aclr_db", "evm_db", "loss")
    primary = "nmse_db"
    metrics = ("val_nmse_db", "val_aclr_db", "val_evm_db", "val_loss", "train_loss", "params",
               "flops", "train_seconds")
    directions = {m: "min" for m in metrics}

    def __init__(self, name: str, title: str, config: type[Section]):
        self.name, self.title, self.Config = name, title, config

    def loss(self, output: Any, target: Any, evaluation: Mapping[str, Any]) -> Any:
        from torch import nn

        if isinstance(output, tuple):  # a DPD stage: (P(D(x)), G*x)
            return nn.functional.mse_loss(output[0], output[1])
        return nn.functional.mse_loss(output, target)

    def attach(self, model: Any, data: Any) -> Any:
        from training.signal_decode import DPDStage, PAStage

        stage = (DPDStage(model, data.frozen_pa(), data.gain) if self.name == "dpd"
                 else PAStage(model))
        stage.signal_spec = dict(data.spec)  # what measure() computes the spectrum with
        return stage

    def measure(self, model: Any, x: Any, y: Any, batch_size: int) -> dict[str, float]:
        import torch

        model.eval()
        predictions, references = [], []
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                out = model(x[i:i + batch_size])
                if isinstance(out, tuple):
                    out, ref = out
                else:
                    ref = y[i:i + batch_size]
                predictions.append(out.cpu())
                references.append(ref.cpu())
        prediction, reference = torch.cat(predictions), torch.cat(references)
        loss = float(torch.nn.functional.mse_loss(prediction, reference))
        if not math.isfinite(loss):
            return {"nmse_db": float("nan"), "aclr_db": float("nan"), "evm_db": float("nan"),
                    "loss": loss}
        metrics = signal_metrics(to_complex(prediction), to_complex(reference),
                                 getattr(model, "signal_spec", None) or DEFAULT_SPEC)
        return {**metrics, "loss": loss}

    def decoder_space(self, data: Any) -> dict[str, Any]:
        return {}

    def output_meaning(self, space: Mapping[str, Any]) -> dict[str, Any]:
        return {"name": self.output_name, "shape": ["batch", "time", 2],
                "meaning": "complex baseband I/Q per sample (PA output for a PA model, the "
                           "predistorted PA input for a DPD model)"}


DEFAULT_SPEC = {"sample_rate_hz": 983.04e6, "bandwidth_hz": 200e6, "nperseg": 2048}
"""The spectrum settings of a model measured without a data set's (OpenDPD's APA sets)."""

register_task(SignalTask("pa", "PA behavioural modelling", PAConfig))
register_task(SignalTask("dpd", "digital predistortion", DPDConfig))
