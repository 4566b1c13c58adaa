"""Simulation drivers: cocotb runner wrappers, stimulus/expectation files, verification reports."""
