"""ANN-to-SNN conversion: a trained hard LSTM → an IF-initialised spiking LSTM.

Per layer: weights copied; θ from the source thresholds (θ_a = V_a for f, i, o; θ_g = V_g and,
when g spikes, θ_g_neg = V_g_neg; θ_c = V_c, θ_c_neg = V_c_neg); every λ = 1 (IF); the bias
of each sigmoid-type gate gains :func:`~snnhw.model.spiking_lstm.sigmoid_bias_offset`
(``+θ/2`` centring, ``+θ/(2T)`` shift for spiking f, o, i when ``cfg.shift``); the g bias is
unchanged (the ternary shift depends on the sign of z and stays in the forward pass). The head
is copied unchanged.

:func:`retime_spiking` moves a spiking LSTM to another number of time steps T (a conversion
schedule: fine-tune at T = 4, re-time to T = 2, fine-tune again).

A non-spiking g has one threshold (``clip(z/θ_g, −1, 1)``); the source's ``V_g_neg`` is then
not representable and θ_g = V_g is used (exact only when V_g = V_g_neg).
"""

from __future__ import annotations

import torch

from snnhw.errors import UserError
from snnhw.model.config import ModelConfig
from snnhw.model.hard_lstm import HardLSTM
from snnhw.model.spiking_lstm import SpikingLSTM, sigmoid_bias_offset

_SHARED_FIELDS: tuple[str, ...] = ("input_size", "num_classes", "hidden_size", "num_layers", "head_hidden")


def convert_hard_to_spiking(hard: HardLSTM, cfg: ModelConfig) -> SpikingLSTM:
    """A :class:`SpikingLSTM` for ``cfg`` initialised from the trained ``hard`` model.

    ``cfg`` must have ``spiking=True`` and the same architecture fields as ``hard.cfg``; its
    ``T``, ``nonspiking_gate``, ``shift``, ``train_theta``, ``train_leak``, ``gamma`` and
    ``encoding`` choose the spiking variant. The result has ``hard``'s dtype and device.
    """
    if not cfg.spiking:
        raise UserError("conversion needs a spiking model config (spiking=True)")
    for name in _SHARED_FIELDS:
        if getattr(cfg, name) != getattr(hard.cfg, name):
            raise UserError(
                f"cannot convert: {name} is {getattr(hard.cfg, name)} in the source model but {getattr(cfg, name)} in the target config"
            )
    ref = hard.layers[0].weight_x
    snn = SpikingLSTM(cfg).to(device=ref.device, dtype=ref.dtype)
    with torch.no_grad():
        for src, dst in zip(hard.layers, snn.layers, strict=True):
            dst.weight_x.copy_(src.weight_x)
            dst.weight_h.copy_(src.weight_h)
            dst.bias.copy_(src.bias)
            for key in dst.theta:
                dst.theta[key].copy_(src.V[key])
            for lam in dst.leak.values():
                lam.fill_(1.0)
            for gate, spiking in dst.sigmoid_gates:
                offset = sigmoid_bias_offset(float(src.V[gate].detach()), cfg.T, cfg.shift, spiking)
                dst.gate_bias(gate).add_(offset)
        snn.head.load_state_dict(hard.head.state_dict())
    return snn


def retime_spiking(snn: SpikingLSTM, T: int) -> SpikingLSTM:
    """A copy of ``snn`` that runs ``T`` time steps per element.

    Weights, θ, λ and the head are copied; the bias of each spiking sigmoid-type gate moves by
    the change of its shift, ``sigmoid_bias_offset(θ, T) − sigmoid_bias_offset(θ, T_old)`` (the
    ternary shifts follow T in the forward pass). A hard LSTM converted at ``T_old`` and
    re-timed is therefore the same model as the hard LSTM converted at ``T`` (to float
    rounding). The result has ``snn``'s dtype and device.
    """
    if T < 1:
        raise UserError(f"T must be ≥ 1, got {T}")
    cfg = snn.cfg.replace(T=T)
    ref = snn.layers[0].weight_x
    out = SpikingLSTM(cfg).to(device=ref.device, dtype=ref.dtype)
    out.load_state_dict(snn.state_dict())
    with torch.no_grad():
        for layer in out.layers:
            for gate, spiking in layer.sigmoid_gates:
                theta = float(layer.theta[gate].detach())
                move = (sigmoid_bias_offset(theta, T, cfg.shift, spiking)
                        - sigmoid_bias_offset(theta, snn.cfg.T, cfg.shift, spiking))
                layer.gate_bias(gate).add_(move)
    return out
