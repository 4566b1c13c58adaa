"""ANN-to-SNN conversion: a trained hard LSTM → an IF-initialised spiking LSTM.

Per layer: weights copied; θ from the source thresholds (θ_a = V_a for f, i, o; θ_g = V_g and,
when g spikes, θ_g_neg = V_g_neg; θ_c = V_c, θ_c_neg = V_c_neg); every λ = 1 (IF); the bias
of each sigmoid-type gate gains :func:`~snnhw.model.spiking_lstm.sigmoid_bias_offset`
(``+θ/2`` centring, ``+θ/(2T)`` shift for spiking f, o, i when ``cfg.shift``); the g bias is
unchanged (the ternary shift depends on the sign of z and stays in the forward pass). The head
is copied unchanged.

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
            for gate, spiking in (("f", True), ("i", dst.spiking_i), ("o", True)):
                offset = sigmoid_bias_offset(float(src.V[gate].detach()), cfg.T, cfg.shift, spiking)
                dst.gate_bias(gate).add_(offset)
        snn.head.load_state_dict(hard.head.state_dict())
    return snn
