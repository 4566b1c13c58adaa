"""Float models: hard LSTM (non-spiking source), spiking LIF-LSTM, conversion."""

from snnhw.model.config import GATES, ModelConfig
from snnhw.model.convert import convert_hard_to_spiking, retime_spiking
from snnhw.model.factory import build_model
from snnhw.model.hard_lstm import HardLSTM
from snnhw.model.spiking_lstm import SpikingLSTM

__all__ = ["GATES", "HardLSTM", "ModelConfig", "SpikingLSTM", "build_model", "convert_hard_to_spiking", "retime_spiking"]
