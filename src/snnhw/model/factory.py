"""Build a float model from its :class:`~snnhw.model.config.ModelConfig`."""

from __future__ import annotations

from torch import nn

from snnhw.model.config import ModelConfig
from snnhw.model.hard_lstm import HardLSTM
from snnhw.model.spiking_lstm import SpikingLSTM


def build_model(cfg: ModelConfig) -> nn.Module:
    """A freshly initialised model: :class:`HardLSTM` if not ``cfg.spiking`` else :class:`SpikingLSTM`.

    The spiking model's default initialisation is the "from scratch" (NP) starting point:
    weights uniform in ±1/√H, θ = 1, λ = 1 and the sigmoid-gate bias offsets folded in, i.e.
    what converting a freshly initialised hard LSTM would give.
    """
    return SpikingLSTM(cfg) if cfg.spiking else HardLSTM(cfg)
