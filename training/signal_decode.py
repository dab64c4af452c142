"""Signal genome -> ``nn.Module``: I/Q frames ``(batch, T, 2)`` in, I/Q frames out. Pure: no
I/O, no printing, no global state.

Every layer is causal (sample n sees samples n, n-1, ...), so a model runs on frames of any
length and its output on a frame is the frame's prediction sample by sample. The op table
:data:`BLOCKS` has one factory signature ``(c_in, block) -> module`` mapping ``(batch, T, c_in)``
to ``(batch, T, block.width)``; features are a second table, :data:`FEATURES`
(``name -> (channels, function)``).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import nn

from genome.errors import GenomeError
from genome.signal import Block, SignalGenome


def _iq(x: torch.Tensor) -> torch.Tensor:
    return x


def _iqa(x: torch.Tensor) -> torch.Tensor:
    """I, Q, |x|, |x|^3, sin(theta), cos(theta) (OpenDPD's feature set)."""
    i, q = x[..., 0:1], x[..., 1:2]
    amp = torch.sqrt(i * i + q * q + 1e-12)
    return torch.cat([i, q, amp, amp ** 3, q / amp, i / amp], dim=-1)


def _poly(x: torch.Tensor) -> torch.Tensor:
    """The I/Q of x, x|x|, x|x|^2."""
    amp = torch.sqrt(x[..., 0:1] ** 2 + x[..., 1:2] ** 2 + 1e-12)
    return torch.cat([x, x * amp, x * amp * amp], dim=-1)


FEATURES: dict[str, tuple[int, Callable[[torch.Tensor], torch.Tensor]]] = {
    "iq": (2, _iq), "iqa": (6, _iqa), "poly": (6, _poly)}


def delay(x: torch.Tensor, taps: int) -> torch.Tensor:
    """``(batch, T, C)`` -> ``(batch, T, C * taps)``: x(n), x(n-1), .., x(n-taps+1) side by
    side, zeros before the frame's first sample."""
    if taps == 1:
        return x
    padded = nn.functional.pad(x, (0, 0, taps - 1, 0))
    length = x.shape[1]
    return torch.cat([padded[:, taps - 1 - q:taps - 1 - q + length] for q in range(taps)],
                     dim=-1)


class Recurrent(nn.Module):
    def __init__(self, cls: type, c_in: int, width: int):
        super().__init__()
        self.rnn = cls(c_in, width, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


class CausalConv(nn.Module):
    """Kernel 3, dilated, left-padded so output n sees inputs n, n-d, n-2d; then tanh."""

    def __init__(self, c_in: int, width: int, dilation: int):
        super().__init__()
        self.pad = 2 * dilation
        self.conv = nn.Conv1d(c_in, width, 3, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.pad(x.transpose(1, 2), (self.pad, 0))
        return torch.tanh(self.conv(h)).transpose(1, 2)


class Dense(nn.Module):
    def __init__(self, c_in: int, width: int):
        super().__init__()
        self.fc = nn.Linear(c_in, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(x))


BLOCKS: dict[str, Callable[[int, Block], nn.Module]] = {
    "gru": lambda c, b: Recurrent(nn.GRU, c, b.width),
    "lstm": lambda c, b: Recurrent(nn.LSTM, c, b.width),
    "tcn": lambda c, b: CausalConv(c, b.width, b.dilation),
    "fc": lambda c, b: Dense(c, b.width),
}


class MemoryPolynomial(nn.Module):
    """sum over k = 1..degree, q = 0..memory-1 of c_kq x(n-q)|x(n-q)|^(k-1) with complex
    coefficients c_kq (2 * degree * memory real parameters, zero at initialisation)."""

    def __init__(self, degree: int, memory: int):
        super().__init__()
        self.degree, self.memory = degree, memory
        self.re = nn.Parameter(torch.zeros(degree * memory))
        self.im = nn.Parameter(torch.zeros(degree * memory))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        amp = torch.sqrt(x[..., 0:1] ** 2 + x[..., 1:2] ** 2 + 1e-12)
        terms = [x * amp ** (k - 1) if k > 1 else x for k in range(1, self.degree + 1)]
        t = delay(torch.cat(terms, dim=-1), self.memory)    # (batch, T, 2 * degree * memory)
        ti, tq = t[..., 0::2], t[..., 1::2]
        return torch.stack([ti @ self.re - tq @ self.im, ti @ self.im + tq @ self.re], dim=-1)


class SignalNet(nn.Module):
    """features -> tapped delay -> blocks -> linear head, plus the optional polynomial branch
    and linear residual path."""

    def __init__(self, genome: SignalGenome):
        super().__init__()
        self.memory = genome.memory
        channels, self.features = FEATURES[genome.features]
        c = channels * genome.memory
        blocks = []
        for block in genome.blocks:
            blocks.append(BLOCKS[block.kind](c, block))
            c = block.width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c, 2)
        self.gmp = MemoryPolynomial(*genome.gmp) if genome.gmp else None
        self.residual = nn.Linear(2, 2, bias=False) if genome.residual else None
        if self.residual is not None:
            nn.init.eye_(self.residual.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.blocks(delay(self.features(x), self.memory)))
        if self.gmp is not None:
            out = out + self.gmp(x)
        if self.residual is not None:
            out = out + self.residual(x)
        return out


def signal_net(genome: SignalGenome, space: Mapping[str, Any]) -> SignalNet:
    """The decoder of the ``signal`` encoding. ``space`` may say ``channels`` (2: I and Q,
    the only layout); the genome says everything else."""
    if space.get("channels", 2) != 2:
        raise GenomeError(f"signal models take and return I/Q (space['channels'] = 2), got "
                          f"channels={space.get('channels')!r}")
    return SignalNet(genome)


class TResGRU(nn.Module):
    """OpenDPD's TRes-GRU (a published architecture, not a search result): a bias-free GRU on
    (I, Q, |x|, |x|^3, I(n+1), Q(n+1)) plus a dilated convolution skip path. Here to load the
    benchmark's own frozen PA model (``data.signal.pa_model: opendpd``); its lookahead makes it
    non-causal, which a PA model may be."""

    def __init__(self, hidden: int):
        super().__init__()
        self.rnn = nn.GRU(6, hidden, batch_first=True, bias=False)
        self.fc_out = nn.Linear(hidden, 2, bias=False)
        self.tcn = nn.Sequential(nn.Conv1d(2, 3, 3, padding=16, dilation=16, bias=False),
                                 nn.Hardswish(), nn.Conv1d(3, 2, 1, bias=False), nn.Hardswish())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.tcn(x.transpose(1, 2)).transpose(1, 2)
        ahead = torch.roll(x, shifts=-1, dims=1)
        amp = torch.sqrt(x[..., 0:1] ** 2 + x[..., 1:2] ** 2 + 1e-24)
        features = torch.cat([x, amp, amp ** 3, ahead], dim=-1)
        return self.fc_out(self.rnn(features)[0]) + skip


class PAStage(nn.Module):
    """A PA model as the ``pa`` task trains and measures it: output = model(x)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class DPDStage(nn.Module):
    """A predistorter D before the frozen PA model P, as the ``dpd`` task trains and measures
    it: returns ``(P(D(x)), G*x)``. P is held outside the module tree, so the stage's
    parameters (what the optimiser updates) are D's alone; ``.to(device)`` moves P too."""

    def __init__(self, model: nn.Module, pa: nn.Module, gain: float):
        super().__init__()
        self.model, self.gain = model, float(gain)
        self.frozen = [pa]  # a list: not a submodule

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.frozen[0](self.model(x)), self.gain * x

    def _apply(self, fn: Any, recurse: bool = True) -> "DPDStage":
        self.frozen[0]._apply(fn)
        return super()._apply(fn, recurse)
