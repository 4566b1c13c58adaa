"""Quantizer, integer golden models (the bit-exact contract), frozen model file, energy."""
