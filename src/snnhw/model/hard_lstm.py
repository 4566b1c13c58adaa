"""The non-spiking source model: an LSTM with hard (clipped) sigmoid and tanh activations.

Per layer, element n (gates stacked f, i, g, o in blocks of H rows)::

    z(n)  = Wx·u(n) + Wh·h(n−1) + b                      h(0) = c(0) = 0
    f, i, o = clip(z_a/V_a + 1/2, 0, 1)
    g     = clip(z_g/V_g, 0, 1) if z_g ≥ 0 else clip(z_g/V_gneg, −1, 0)
    c(n)  = f·c(n−1) + i·g
    h(n)  = o·tanh2_c(c(n))                              tanh2_c with V_c, V_cneg like g

Layer 1 takes u(n) = x_n, layer 2 the h of layer 1. Readout: h of the last layer at each
sample's last element, then the FC head.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from snnhw.errors import UserError
from snnhw.model.config import ModelConfig
from snnhw.model.heads import Head
from snnhw.model.neurons import hard_sigmoid, hard_tanh2

THRESHOLD_MIN: float = 1e-3
"""Lower bound that ``constrain_parameters`` keeps every threshold (V, θ) at, so it stays > 0."""

HARD_THRESHOLD_KEYS: tuple[str, ...] = ("f", "i", "g", "g_neg", "o", "c", "c_neg")
"""Keys of :attr:`HardLSTMLayer.V`."""


def init_lstm_weights(weight_x: Tensor, weight_h: Tensor, bias: Tensor, hidden_size: int) -> None:
    """PyTorch's LSTM default: every weight and bias uniform in ±1/√H (in place, no grad)."""
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for p in (weight_x, weight_h, bias):
            p.uniform_(-bound, bound)


def check_inputs(x: Tensor, lengths: Tensor | None, input_size: int) -> Tensor:
    """Validate ``x`` [B, N, D] and ``lengths`` [B]; return the lengths (all N when None) as int64."""
    if x.dim() != 3 or x.shape[2] != input_size:
        raise UserError(f"model input must be [batch, length, {input_size}], got {list(x.shape)}")
    batch, length = x.shape[0], x.shape[1]
    if length < 1:
        raise UserError("model input sequences must have at least one element")
    if lengths is None:
        return torch.full((batch,), length, dtype=torch.long, device=x.device)
    lengths = torch.as_tensor(lengths, device=x.device).long()
    if lengths.shape != (batch,):
        raise UserError(f"lengths must have shape [{batch}], got {list(lengths.shape)}")
    if bool((lengths < 1).any()) or bool((lengths > length).any()):
        raise UserError(f"lengths must lie in [1, {length}]")
    return lengths


class HardLSTMLayer(nn.Module):
    """One hard-LSTM layer: ``weight_x`` [4H, D_in], ``weight_h`` [4H, H], ``bias`` [4H], ``V``.

    ``V`` holds 0-dim thresholds (all initialised to 1.0) with keys ``f, i, o`` (hard
    sigmoid), ``g, g_neg`` (hard tanh of g), ``c, c_neg`` (hard tanh of c); they are trainable
    when ``train_theta`` is set.
    """

    def __init__(self, input_size: int, hidden_size: int, train_theta: bool = True) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_x = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_h = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size))
        init_lstm_weights(self.weight_x, self.weight_h, self.bias, hidden_size)
        self.V = nn.ParameterDict(
            {k: nn.Parameter(torch.tensor(1.0), requires_grad=train_theta) for k in HARD_THRESHOLD_KEYS}
        )

    def constrain_parameters(self) -> None:
        """Keep every threshold ≥ :data:`THRESHOLD_MIN` (called by the trainer after each step)."""
        with torch.no_grad():
            for v in self.V.values():
                v.clamp_(min=THRESHOLD_MIN)

    def forward(self, u: Tensor) -> Tensor:
        """Hidden states h [N, B, H] for the input u [N, B, D_in] (element-major)."""
        hs = self.hidden_size
        zx = torch.matmul(u, self.weight_x.t()) + self.bias
        wh_t = self.weight_h.t()
        v = self.V
        h = u.new_zeros(u.shape[1], hs)
        c = u.new_zeros(u.shape[1], hs)
        out = []
        for zx_n in zx.unbind(0):
            z = torch.addmm(zx_n, h, wh_t)
            z_f, z_i, z_g, z_o = z.chunk(4, dim=1)
            f = hard_sigmoid(z_f, v["f"])
            i = hard_sigmoid(z_i, v["i"])
            g = hard_tanh2(z_g, v["g"], v["g_neg"])
            o = hard_sigmoid(z_o, v["o"])
            c = f * c + i * g
            h = o * hard_tanh2(c, v["c"], v["c_neg"])
            out.append(h)
        return torch.stack(out)


class HardLSTM(nn.Module):
    """Stacked hard-LSTM classifier (the non-spiking source of the conversion).

    Attributes: ``cfg`` (the :class:`ModelConfig`, ``spiking`` False), ``layers``
    (:class:`HardLSTMLayer` list), ``head`` (:class:`Head`).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.spiking:
            raise UserError("HardLSTM needs a config with spiking=False")
        self.cfg = cfg
        sizes = [cfg.input_size] + [cfg.hidden_size] * (cfg.num_layers - 1)
        self.layers = nn.ModuleList(HardLSTMLayer(d, cfg.hidden_size, cfg.train_theta) for d in sizes)
        self.head = Head(cfg.hidden_size, cfg.num_classes, cfg.head_hidden)

    def readout(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The head's input r [B, H]: h of the last layer at each sample's last element."""
        lengths = check_inputs(x, lengths, self.cfg.input_size)
        u = x.transpose(0, 1)
        for layer in self.layers:
            u = layer(u)
        return u[lengths - 1, torch.arange(x.shape[0], device=x.device)]

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Logits [B, C] for x [B, N, D]; sample b is read out at element ``lengths[b]`` (1-based)."""
        return self.head(self.readout(x, lengths))
