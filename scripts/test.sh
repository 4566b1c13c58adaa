#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite on 2 workers.
# Extra arguments go to pytest (e.g. --runslow, -k spiking).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/python -m pytest -n 2 --dist worksteal -q "$@"
