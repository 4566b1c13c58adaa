"""Float models: hard LSTM (non-spiking source), spiking LIF-LSTM, conversion."""
