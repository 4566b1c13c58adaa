"""snnhw: trained spiking LSTM → bit-exact verified FPGA hardware.

Dependency order of the subpackages (imports flow one way only)::

    data, model → train → quant → hw → sim, flow → cli
"""

__version__ = "0.1.0"
