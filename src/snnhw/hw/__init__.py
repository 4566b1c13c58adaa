"""Amaranth generators: accumulate-only spiking LSTM core and MAC baseline core."""
